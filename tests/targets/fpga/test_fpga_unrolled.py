"""The unrolled (da4ml) architecture: the traced function and its RTL against the golden interpreter."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from fpga_helpers import mlp_graph, need

from edgepack.ir.reference import Interpreter
from edgepack.targets.fpga.unrolled import unsupported


def _golden(graph, x: np.ndarray) -> np.ndarray:
    it = Interpreter(graph)
    return np.concatenate([it.run({"input": x[i: i + 1]})["output"] for i in range(len(x))])


def test_mlp_requantization_is_a_shift() -> None:
    g = mlp_graph()
    assert unsupported(g) == []
    for n in g.nodes:
        assert n.op.value == "FULLY_CONNECTED"


def test_non_power_of_two_scale_is_refused() -> None:
    g = mlp_graph()
    g.tensors["h0"].quant.scale[:] = np.float32(0.013)
    reasons = [why for _, _, _, why in unsupported(g)]
    assert any("2**30" in r for r in reasons)


def test_traced_function_is_exact() -> None:
    need("da4ml")
    from edgepack.targets.fpga.unrolled import trace_graph

    g = mlp_graph()
    _, comb = trace_graph(g)
    x = np.random.default_rng(0).integers(-128, 128, size=(200, 16)).astype(np.int8)
    np.testing.assert_array_equal(comb.predict(x.astype(np.float64)).astype(np.int64), _golden(g, x))


def test_unrolled_rtl_bit_exact(tmp_path: Path) -> None:
    """Must-show (simulation part): the da4ml Verilog under our testbench, 50 inputs, bit-exact."""
    need("da4ml", "verilator-or-iverilog")
    from edgepack.targets.fpga.sim import available_simulators
    from edgepack.targets.fpga.unrolled import simulate_design, write_design

    g = mlp_graph()
    design = write_design(g, tmp_path)
    assert (design.n_in, design.n_out, design.in_bits) == (16, 4, 8)
    x = np.random.default_rng(1).integers(-128, 128, size=(50, 16)).astype(np.int8)
    sim = "iverilog" if "iverilog" in available_simulators() else "verilator"
    np.testing.assert_array_equal(simulate_design(design, design.files, x, sim), _golden(g, x))
