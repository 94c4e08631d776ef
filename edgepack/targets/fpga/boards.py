"""FPGA boards: data (device, package, clock, pin file, flasher), `flash()` and `connect()`.

Every board top speaks the edgepack serial protocol (link.py), so a connected board is driven by the same
host code as a Cortex-M board (`edgepack.targets.board_session`). `sim` is the emulated board: the bundle's
board top under Verilator with its UART on a pty (simboard.py). The iCE40 boards get a bitstream built
against their pin file (`engine/rtl/<board>.pcf`); `flash()` writes it with openFPGALoader (iceprog as a
fallback) and fails with a reason when no board is attached; their UART is then the port given. xc7 has
a device entry only: the bundle carries RTL and a Vivado script, no bitstream.

Usage: ``board = get_board("icebreaker"); board.pcf``; ``flash("kws.edgepack", "icebreaker")``;
``with connect("kws.edgepack", "sim") as b: verify_connected("kws.edgepack", b)``
"""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edgepack.errors import EdgepackError
from edgepack.targets.board_session import BoardConnection

RTL_DIR = Path(__file__).parent / "engine" / "rtl"


@dataclass(frozen=True)
class FpgaBoard:
    """One FPGA board."""

    name: str
    description: str
    family: str  # "ice40-up5k" or "xc7"
    package: str | None  # nextpnr --package
    clock_hz: int  # the board oscillator the bitstream runs at (no PLL)
    pcf: str | None  # pin file name under engine/rtl/
    flasher: str  # "openfpgaloader", "sim" or "vivado"
    loader_board: str | None = None  # openFPGALoader -b value
    part: str | None = None  # Vivado part for xc7

    @property
    def emulated(self) -> bool:
        """True for the simulation board."""
        return self.flasher == "sim"

    @property
    def pcf_path(self) -> Path | None:
        """The pin constraint file, if the board has one."""
        return RTL_DIR / self.pcf if self.pcf else None


BOARDS: dict[str, FpgaBoard] = {b.name: b for b in [
    FpgaBoard("icebreaker", "1BitSquared iCEBreaker v1.0: iCE40UP5K-SG48, 12 MHz, FTDI UART", "ice40-up5k", "sg48",
              12_000_000, "icebreaker.pcf", "openfpgaloader", loader_board="ice40_generic"),
    FpgaBoard("upduino", "tinyVision UPduino v3: iCE40UP5K-SG48, 12 MHz oscillator (OSC jumper); check the pin "
              "file against your board revision", "ice40-up5k", "sg48", 12_000_000, "upduino.pcf",
              "openfpgaloader", loader_board="ice40_generic"),
    FpgaBoard("sim", "RTL simulation (Verilator or Icarus Verilog): bit-exact check and cycle counts",
              "any", None, 0, None, "sim"),
    FpgaBoard("arty-a7-35", "Digilent Arty A7-35T (xc7a35ticsg324-1L): RTL + Vivado script, no open bitstream",
              "xc7", None, 100_000_000, None, "vivado", part="xc7a35ticsg324-1L"),
]}


def get_board(name: str) -> FpgaBoard:
    """The board called `name` (EdgepackError listing the known ones otherwise)."""
    try:
        return BOARDS[name]
    except KeyError:
        raise EdgepackError(f"unknown FPGA board {name!r}; known: {', '.join(BOARDS)}") from None


def boards_for(family: str) -> list[FpgaBoard]:
    """Boards of a target family, the simulation board included."""
    return [b for b in BOARDS.values() if b.family in (family, "any")]


@dataclass
class FpgaConnection(BoardConnection):
    """A board running the bundle's design: the simulator this connection started, or a real board on `port`."""

    clock_hz: int = 0  # a tick is a clock cycle (counts_instructions stays False)
    port_example = "/dev/ttyUSB1"

    @property
    def timing_source(self) -> str:
        """Where the ticks come from."""
        if self.board.emulated:
            return (f"clock cycles of the RTL under Verilator (sim board), at the bitstream's "
                    f"{self.clock_hz / 1e6:g} MHz clock for time")
        return f"clock cycles counted by the FPGA at {self.clock_hz / 1e6:g} MHz, {self.board.name}"


def _fpga_parts(bundle_path: str | Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """(manifest, fpga.json) of an FPGA bundle; EdgepackError for a bundle of another target."""
    from edgepack.runtime.bundle import Bundle

    with Bundle.open(bundle_path) as bundle:
        if not any(a["path"] == "fpga.json" for a in bundle.artifacts):
            raise EdgepackError(f"{bundle_path}: not an FPGA bundle (target {bundle.manifest.get('target')!r})",
                                hint="package the model with --target ice40-up5k or --target xc7")
        fpga = json.loads(bundle.artifact("fpga.json"))
        if "device" not in bundle.manifest.get("backends", {}) or "link" not in fpga:
            raise EdgepackError(f"{bundle_path}: the bundle has no device backend (no serial link in its RTL)",
                                hint="package the model again with this edgepack")
        return bundle.manifest, fpga


def bundle_board(manifest: dict[str, Any], fpga: dict[str, Any], board: str | None, port: str | None) -> FpgaBoard:
    """The board to use: `board`, else `sim` without a port, else the board the bitstream was built for."""
    target = manifest["target"]
    spec = get_board(board or (fpga["board"] if port is not None else "sim"))
    if spec.family not in (target, "any"):
        raise EdgepackError(f"board {spec.name} is a {spec.family} board, but the bundle is for {target}",
                            hint="use one of: " + ", ".join(b.name for b in boards_for(target)))
    if not spec.emulated and spec.name != fpga["board"]:
        raise EdgepackError(f"the bundle's bitstream was built for {fpga['board']}, not {spec.name} (another pin "
                            "file)", hint=f"package the model again with --board {spec.name}")
    return spec


def start_sim(bundle_path: str | Path, progress: Any = None, fpga: dict[str, Any] | None = None) -> FpgaConnection:
    """Start the sim board on the bundle's RTL (built with Verilator once, then cached); `fpga` is the
    bundle's fpga.json when the caller has read it already."""
    from edgepack.runtime.bundle import Bundle
    from edgepack.targets.fpga.link import SIM_CLKS_PER_BIT
    from edgepack.targets.fpga.simboard import SimBoard, build_sim

    if fpga is None:
        _, fpga = _fpga_parts(bundle_path)
    link = fpga["link"]
    tmp = tempfile.TemporaryDirectory(prefix="edgepack-fpga-sim-")
    try:
        work = Path(tmp.name)
        with Bundle.open(bundle_path) as bundle:
            for a in bundle.artifacts:
                if a["path"].startswith("rtl/"):
                    (work / Path(a["path"]).name).write_bytes(bundle.artifact(a["path"]))
        params = dict(link["board_params"], CLKS_PER_BIT=SIM_CLKS_PER_BIT)
        exe = build_sim(work, link["sources"], link["top"], params, progress)
        sim = SimBoard(exe, work)
        sim.start()
    except BaseException:
        tmp.cleanup()
        raise
    clock = int(fpga.get("board_clock_hz") or get_board(fpga["board"]).clock_hz)
    return FpgaConnection(get_board("sim"), sim.port, sim.command, sim, tmp, clock_hz=clock)


def connect(bundle_path: str | Path, board: str | None = None, port: str | None = None,
            progress: Any = None) -> FpgaConnection:
    """The sim board started on the bundle's RTL, or a real board (already flashed) on `port`."""
    manifest, fpga = _fpga_parts(bundle_path)
    spec = bundle_board(manifest, fpga, board, port)
    if spec.emulated:
        return start_sim(bundle_path, progress, fpga)
    if port is None:
        raise EdgepackError(f"board {spec.name} is a real board: give its serial port",
                            hint=f"--board {spec.name} --port {FpgaConnection.port_example} (flash it first: "
                                 f"edgepack flash BUNDLE --board {spec.name})")
    return FpgaConnection(spec, port, clock_hz=spec.clock_hz)


def flash(bundle_path: str | Path, board: str | None = None, port: str | None = None) -> FpgaConnection:
    """Configure `board` with the bundle's bitstream (the sim board: start the simulator).

    Real boards are written with openFPGALoader (or iceprog). The weights are not in the bitstream
    (SPRAM has no initial contents): a session loads them over the serial link (LOAD_WEIGHTS).
    """
    manifest, fpga = _fpga_parts(bundle_path)
    spec = bundle_board(manifest, fpga, board, port)
    if spec.emulated:
        return start_sim(bundle_path, fpga=fpga)
    command = write_bitstream(bundle_path, spec)
    return FpgaConnection(spec, port, command, clock_hz=spec.clock_hz)


def write_bitstream(bundle_path: str | Path, spec: FpgaBoard) -> list[str]:
    """Write the bundle's bitstream to the board with openFPGALoader (or iceprog); returns the command."""
    from edgepack.runtime.bundle import Bundle

    if spec.family != "ice40-up5k":
        raise EdgepackError(f"board {spec.name} has no bitstream to flash ({spec.description})")
    with Bundle.open(bundle_path) as bundle:
        try:
            bitstream = bundle.artifact("bitstream/top.bin")
        except EdgepackError:
            raise EdgepackError(f"{bundle_path}: no bitstream (the open iCE40 tools were missing when packaging)",
                                hint="apt-get install yosys nextpnr-ice40 fpga-icestorm, then package again") from None
    if shutil.which("openFPGALoader"):
        cmd = ["openFPGALoader", "-b", spec.loader_board or "ice40_generic"]
    elif shutil.which("iceprog"):
        cmd = ["iceprog"]
    else:
        raise EdgepackError("no flasher found (openFPGALoader or iceprog)", hint="apt-get install openfpgaloader")
    with tempfile.TemporaryDirectory(prefix="edgepack-fpga-flash-") as tmp:
        path = Path(tmp) / "top.bin"
        path.write_bytes(bitstream)
        proc = subprocess.run([*cmd, str(path)], capture_output=True, text=True, timeout=300)
    if proc.returncode != 0:
        tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-5:])
        raise EdgepackError(f"{cmd[0]} could not program {spec.name} (is it attached?):\n{tail}",
                            hint="connect the board over USB, or use --board sim")
    return [*cmd, "top.bin"]
