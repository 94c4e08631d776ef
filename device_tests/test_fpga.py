"""FPGA boards over the serial link: the sim board (the bundle's board top under Verilator, UART on a pty) and
a real iCEBreaker (flashed here with openFPGALoader, then talked to on --port).

The model is a small int8 engine MLP (the FPGA tests' mlp_graph), so the test is quick on the sim board and
its bitstream builds in seconds; KWS on the sim board is in tests/targets/fpga/test_fpga_target.py.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "targets" / "fpga"))
from fpga_helpers import mlp_graph  # noqa: E402

from edgepack.targets.board_session import run_connected, verify_connected  # noqa: E402
from edgepack.targets.fpga.boards import connect, flash  # noqa: E402

BOARDS = [pytest.param(name, marks=pytest.mark.board(name), id=name) for name in ("sim", "icebreaker")]


def _bundle(tmp: Path, board: str) -> Path:
    from edgepack.ir.tflite_export import to_tflite
    from edgepack.packager.pipeline import package

    (tmp / "mlp.tflite").write_bytes(to_tflite(mlp_graph()))
    out = tmp / "mlp_engine.edgepack"
    package(tmp / "mlp.tflite", out, target="ice40-up5k", golden_count=32, board=None if board == "sim" else board,
            target_options={"fpga_arch": "engine", "implement": board != "sim"})
    return out


@pytest.mark.parametrize("board", BOARDS)
def test_engine_bundle_bit_exact_on_the_board(board: str, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    bundle = _bundle(tmp_path, board)
    port = request.config.getoption("--port")
    if board != "sim":
        flash(bundle, board, port)
    with connect(bundle, board, port) as b:
        report = verify_connected(bundle, b)
        from edgepack.runtime.bundle import Bundle

        with Bundle.open(bundle) as bb:
            inputs, want = bb.golden()
        run = run_connected(bundle, b, {"input": inputs["input"][:4]})
    assert report.passed and report.samples == 32, report.to_dict()
    assert len(set(report.ticks)) == 1, "the engine's cycles are fixed by its program"
    np.testing.assert_array_equal(run.outputs["output"], want["output"][:4])
    print(f"{board}: 32/32 golden inputs bit-exact, {report.ticks_per_inference:,} cycles per inference "
          f"({report.timing_source}); {report.seconds:.1f} s with the link")
