"""Cortex-M targets: `cortex-m0plus`, `cortex-m3`, `cortex-m4`, `cortex-m7`, `cortex-m33`, `cortex-m55`.

One class, `MCUTarget`, parametrized by the core; `targets/__init__.py` lists one factory per core.
The pieces: `check.py` (what can run, and whether it fits the board), `compile.py` (sources, CMake project,
library, firmware, measured sizes), `flash.py` (flash / run / verify on a board), `boards.py` (board data),
and underneath them the kernel library (`kernels/`), `lowering.py`, `memory_plan.py` and `codegen.py`.

Usage: ``get_target("cortex-m4").compile(graph, ("tflite", blob), {"board": "qemu-mps2-an386"})``
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from edgepack.ir.graph import Graph
from edgepack.quantize.scheme import ALLOWED_MCU
from edgepack.targets.base import Artifacts, Board, CompatibilityReport

CORE_NAMES = {"cortex-m0plus": "Cortex-M0+", "cortex-m3": "Cortex-M3", "cortex-m4": "Cortex-M4",
              "cortex-m7": "Cortex-M7", "cortex-m33": "Cortex-M33", "cortex-m55": "Cortex-M55"}


class MCUTarget:
    """A Cortex-M core: native int8/int4/int16 C kernels, AOT model.c, firmware for the core's boards."""

    # Int8 activations with int8 or int4 weights, int16 activations with int8 weights (kernels/ep_*_s16.c).
    allowed_bits = ALLOWED_MCU
    # Target options `package(target_options=...)` passes to compile: kernels "native" (default for quantized
    # graphs) or "tvm" (default for float32 graphs).
    compile_options = frozenset({"kernels"})

    def __init__(self, core: str) -> None:
        from edgepack.targets.mcu.boards import boards_for

        if core not in CORE_NAMES:
            raise ValueError(f"unknown core {core!r}; known: {', '.join(CORE_NAMES)}")
        self.name = core
        self.core = core
        emulated = [b.name for b in boards_for(core) if b.emulated]
        self.description = (f"{CORE_NAMES[core]} microcontroller: generated C + native kernels, firmware for "
                            + (emulated[0] + " (QEMU) by default" if emulated else "no emulated board (sources only)"))
        self.boards = [Board(b.name, b.description, b.emulated, constraints={
            "core": b.core, "flash_bytes": b.flash_bytes, "ram_bytes": b.ram_bytes, "clock_hz": b.clock_hz,
            "features": list(b.features), "flasher": b.flasher}) for b in boards_for(core)]

    def check(self, graph: Graph, board: str | None = None) -> CompatibilityReport:
        """Nodes the kernels cannot run, float graphs, and the memory fit on `board` (default board if None)."""
        from edgepack.targets.mcu.check import check_graph
        from edgepack.targets.mcu.compile import resolve_board

        return check_graph(graph, self.core, resolve_board(self.core, board))

    def compile(self, graph: Graph, source: tuple[str, bytes], options: dict[str, Any]) -> Artifacts:
        """Sources, CMake project, library, firmware for `options['board']` (see compile.py)."""
        from edgepack.targets.mcu.compile import compile_model

        return compile_model(graph, source, options, self.core)

    def run_golden(self, backend: str, bundle_path: Path, progress: Any = None
                   ) -> tuple[dict[str, np.ndarray] | None, dict[str, Any]]:
        """Packaging hook: `device` runs the golden inputs on its QEMU board; (None, note) for a real board."""
        from edgepack.targets.mcu.flash import run_golden

        if backend != "device":
            raise ValueError(f"target {self.name} has no backend {backend!r} to run")
        return run_golden(bundle_path, progress)

    def connect(self, bundle_path: Path, board: str | None = None, port: str | None = None) -> Any:
        """A connected board for `edgepack run/verify --board` (a QEMU board is started; flash.connect)."""
        from edgepack.targets.mcu.flash import connect

        return connect(bundle_path, board, port)

    def flash(self, bundle_path: Path, board: str | None = None, port: str | None = None) -> Any:
        """Put the bundle's firmware on a board, or start a QEMU board with it (flash.flash)."""
        from edgepack.targets.mcu.flash import flash

        return flash(bundle_path, board, port)


def cortex_m0plus() -> MCUTarget:
    """The cortex-m0plus target."""
    return MCUTarget("cortex-m0plus")


def cortex_m3() -> MCUTarget:
    """The cortex-m3 target."""
    return MCUTarget("cortex-m3")


def cortex_m4() -> MCUTarget:
    """The cortex-m4 target."""
    return MCUTarget("cortex-m4")


def cortex_m7() -> MCUTarget:
    """The cortex-m7 target."""
    return MCUTarget("cortex-m7")


def cortex_m33() -> MCUTarget:
    """The cortex-m33 target."""
    return MCUTarget("cortex-m33")


def cortex_m55() -> MCUTarget:
    """The cortex-m55 target."""
    return MCUTarget("cortex-m55")
