"""FPGA boards: data (device, package, clock, pin file, flasher) and `flash()`.

`sim` is the emulated board: the bundle's RTL under Verilator or Icarus Verilog (`sim.verify_sim`). The
iCE40 boards get a bitstream built against their pin file (`engine/rtl/<board>.pcf`); `flash()` writes it
with openFPGALoader (iceprog as a fallback) and fails with a reason when no board is attached. xc7 has a
device entry only: the bundle carries RTL and a Vivado script, no bitstream.

Usage: ``board = get_board("icebreaker"); board.pcf``; ``flash("kws.edgepack", "icebreaker")``
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from edgepack.errors import EdgepackError

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


def flash(bundle_path: str | Path, board: str = "icebreaker") -> str:
    """Write the bundle's bitstream to `board` with openFPGALoader (or iceprog); returns the tool's output.

    The weights are not in the bitstream (SPRAM has no initial contents): the host driver writes them
    through the UART bridge after configuration (docs/targets/fpga.md).
    """
    from edgepack.runtime.bundle import Bundle

    spec = get_board(board)
    if spec.family != "ice40-up5k":
        raise EdgepackError(f"board {board} has no bitstream to flash ({spec.description})")
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
        raise EdgepackError(f"{cmd[0]} could not program {board} (is it attached?):\n{tail}",
                            hint="connect the board over USB, or use --board sim")
    return proc.stdout + proc.stderr
