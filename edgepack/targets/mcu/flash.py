"""Board operations on a Cortex-M bundle: flash its firmware, open a session, run inputs, verify the golden pairs.

For a `qemu-*` board, flashing means starting qemu-system-arm with the bundle's ELF (`-icount shift=0`,
UART0 on a pty) and stopping it when the returned `FlashedBoard` is closed. For a real board it means
`pyocd flash -t <target> firmware.elf` (pyOCD must be installed); its UART is then the `port` given.

The bundle says which core (`target`) and board its firmware was built for; another board is refused
before anything runs, since a firmware image only fits the memory map and UART of its own board.

Usage::

    with flash("kws.edgepack", "qemu-mps2-an386") as fb:        # QEMU runs until the block ends
        report = verify_flashed("kws.edgepack", fb)
    report = verify_on_board("kws.edgepack")                    # the same, in one call
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from edgepack.errors import EdgepackError
from edgepack.runtime.bundle import Bundle
from edgepack.runtime.serial_protocol import Transport
from edgepack.targets.board_session import (
    BoardConnection,
    BoardReport,
    BoardRun,
    golden_on_emulator,
    run_connected,
    verify_connected,
)
from edgepack.targets.mcu.boards import McuBoard, boards_for, get_board
from edgepack.targets.mcu.qemu import QemuBoard

CORES = ("cortex-m0plus", "cortex-m3", "cortex-m4", "cortex-m7", "cortex-m33", "cortex-m55")
PYOCD_HINT = "install pyOCD: pip install pyocd (and the probe's udev rules, see pyocd.io)"


@dataclass
class FlashedBoard(BoardConnection):
    """A board running the bundle's firmware; `port` is its UART (QEMU's pty, or the --port given)."""

    @property
    def qemu(self) -> QemuBoard | None:
        """The QEMU process of an emulated board."""
        return self.emulator  # type: ignore[no-any-return]

    @property
    def counts_instructions(self) -> bool:
        """QEMU boards run with -icount shift=0: their ticks convert exactly to instructions."""
        return self.emulated

    @property
    def timing_source(self) -> str:
        """Where the ticks come from, e.g. 'SysTick under qemu -icount shift=0, mps2-an386'."""
        if self.board.emulated:
            return f"SysTick under qemu -icount shift=0, {self.board.qemu_machine}"
        return f"SysTick at {self.board.clock_hz / 1e6:g} MHz, {self.board.name}"


def bundle_board(manifest: Mapping[str, Any], board: str | None = None) -> McuBoard:
    """The board to use for a bundle: `board` or the one it was built for; refuses another core or board."""
    target = manifest.get("target")
    if target not in CORES:
        raise EdgepackError(f"the bundle is for target {target!r}, which has no boards to flash",
                            hint=f"package the model for a Cortex-M target ({', '.join(CORES)}) with --board")
    built = manifest.get("board")
    name = board or built
    if name is None:
        raise EdgepackError(f"the bundle ({target}) was built without a board, so it holds no firmware",
                            hint=f"package it with --board, one of: "
                                 f"{', '.join(b.name for b in boards_for(target)) or 'none for ' + target}")
    spec = get_board(name)
    if spec.core != target:
        raise EdgepackError(f"the bundle is for {target}, but board {name} has a {spec.core}",
                            hint=f"package the model again with --target {spec.core} --board {name}")
    if built is not None and name != built:
        raise EdgepackError(f"the bundle's firmware was built for board {built}, not {name} (same core, but another "
                            "memory map and UART)", hint=f"package the model again with --board {name}")
    return spec


def _firmware(bundle: Bundle, spec: McuBoard) -> tuple[str, bytes]:
    entry = bundle.manifest.get("backends", {}).get("device")
    if entry is None:
        raise EdgepackError(f"the bundle holds no firmware for {spec.name} (no 'device' backend): "
                            f"board family {spec.port!r} has no edgepack firmware port yet",
                            hint="link the bundle's src/ (CMake project) into your own firmware, or use a QEMU board")
    return entry["artifact"], bundle.artifact(entry["artifact"])


def _pyocd_command(spec: McuBoard, elf: Path) -> list[str]:
    if importlib.util.find_spec("pyocd") is None:
        raise EdgepackError(f"flashing {spec.name} needs pyOCD, which is not installed", hint=PYOCD_HINT)
    return [sys.executable, "-m", "pyocd", "flash", "-t", str(spec.pyocd_target), str(elf)]


def flash(bundle_path: str | Path, board: str | None = None, port: str | None = None) -> FlashedBoard:
    """Put the bundle's firmware on `board` (default: the bundle's); close the result to stop a QEMU board.

    Usage: ``with flash("kws.edgepack", "qemu-mps2-an386") as fb: print(fb.port)``
    """
    with Bundle.open(bundle_path) as bundle:
        spec = bundle_board(bundle.manifest, board)
        path, elf_bytes = _firmware(bundle, spec)
    tmp = tempfile.TemporaryDirectory(prefix="edgepack-flash-")
    elf = Path(tmp.name) / Path(path).name
    elf.write_bytes(elf_bytes)
    try:
        if spec.emulated:
            qemu = QemuBoard(spec, elf)
            qemu.start()
            return FlashedBoard(spec, qemu.port, qemu.command, qemu, tmp)
        cmd = _pyocd_command(spec, elf)
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode != 0:
            raise EdgepackError(f"pyocd could not flash {spec.name} (exit {proc.returncode}): "
                                + " | ".join((proc.stderr or proc.stdout).strip().splitlines()[-3:]),
                                hint="check the probe is attached: pyocd list; the command was: " + " ".join(cmd))
    except BaseException:
        tmp.cleanup()
        raise
    tmp.cleanup()
    return FlashedBoard(spec, port, cmd)


def connect(bundle_path: str | Path, board: str | None, port: str | None) -> FlashedBoard:
    """Emulated boards are started with the bundle's firmware; a real board must already run it."""
    with Bundle.open(bundle_path) as bundle:
        spec = bundle_board(bundle.manifest, board)
    if spec.emulated:
        return flash(bundle_path, spec.name)
    if port is None:
        raise EdgepackError(f"board {spec.name} is a real board: give its serial port",
                            hint=f"--board {spec.name} --port /dev/ttyACM0 (flash it first: edgepack flash BUNDLE "
                                 f"--board {spec.name})")
    return FlashedBoard(spec, port, [])


def run_on_board(bundle_path: str | Path, inputs: Any, board: str | None = None, port: str | None = None,
                 dequantize: bool = False, transport_wrapper: Callable[[Transport], Transport] | None = None
                 ) -> BoardRun:
    """Run `inputs` (as `Session.run` takes them) on the board; QEMU boards are started and stopped here.

    Usage: ``run_on_board("kws.edgepack", x, "qemu-mps2-an386").outputs``
    """
    with connect(bundle_path, board, port) as fb:
        return run_connected(bundle_path, fb, inputs, dequantize, transport_wrapper)


def verify_on_board(bundle_path: str | Path, board: str | None = None, port: str | None = None,
                    transport_wrapper: Callable[[Transport], Transport] | None = None) -> BoardReport:
    """Every golden input on the board, compared with the golden outputs at the bundle's device tolerance.

    `transport_wrapper` wraps the serial transport (tests inject faults with it).
    Usage: ``report = verify_on_board("kws.edgepack"); report.passed, report.instructions_per_inference``
    """
    with connect(bundle_path, board, port) as fb:
        return verify_connected(bundle_path, fb, transport_wrapper)


def run_golden(bundle_path: str | Path, progress: Callable[[str], None] | None = None
               ) -> tuple[dict[str, np.ndarray] | None, dict[str, Any]]:
    """The device backend's outputs on the golden inputs, and what to record in its manifest entry.

    QEMU boards run them now; a real board cannot be reached while packaging, so it returns (None, note)
    and the bundle keeps the declared 0 LSB (the kernels are bit-exact by construction and on QEMU).
    """
    with Bundle.open(bundle_path) as bundle:
        spec = bundle_board(bundle.manifest)
    if not spec.emulated:
        return None, {"note": f"not run at packaging time ({spec.name} is a real board); 0 LSB is declared. "
                              f"Check it with: edgepack verify BUNDLE --board {spec.name} --port PORT"}
    with flash(bundle_path, spec.name) as fb:
        return golden_on_emulator(bundle_path, fb, progress or (lambda msg: None))
