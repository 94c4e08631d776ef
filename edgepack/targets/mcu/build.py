"""Build the device firmware for one board with arm-none-eabi-gcc, and measure it with arm-none-eabi-size.

The firmware is the fixed part in firmware/ (startup, SysTick, protocol loop, one board port) plus the
caller's sources: the generated model.c, the kernels it calls, and an include directory holding model.h.
One gcc call compiles and links everything (-Wall -Wextra -Werror, newlib-nano, --gc-sections).

Usage: ``fw = build_firmware("qemu-mps2-an386", [gen / "model.c"], [gen], out_dir); fw.flash_bytes``
"""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from edgepack import __version__
from edgepack.errors import EdgepackError
from edgepack.targets.mcu.boards import McuBoard, get_board

FIRMWARE_DIR = Path(__file__).parent / "firmware"
FIRMWARE_SOURCES = ("startup.c", "cortexm.c", "ep_protocol.c", "main.c")
TOOLCHAIN_HINT = "install the Arm GNU toolchain: apt-get install gcc-arm-none-eabi libnewlib-arm-none-eabi"
WARNINGS = ["-Wall", "-Wextra", "-Werror"]
DEFAULT_MAX_PAYLOAD = 1024
DEFAULT_BAUD = 115_200


@dataclass
class FirmwareBuild:
    """A linked firmware image and its measured size."""

    board: str
    elf: Path
    bin: Path
    map: Path
    flash_bytes: int  # text (code + rodata + vectors) + data initialisers, as stored in flash
    ram_bytes: int  # data + bss, including the stack reservation
    stack_bytes: int
    sections: dict[str, int] = field(default_factory=dict)  # section -> bytes, from `size -A`
    source: str = "arm-none-eabi-size"
    command: list[str] = field(default_factory=list)


def find_tool(name: str) -> str:
    """Absolute path of a cross tool (EdgepackError naming the package when missing)."""
    path = shutil.which(name)
    if path is None:
        raise EdgepackError(f"{name} not found on PATH", hint=TOOLCHAIN_HINT)
    return path


def toolchain_available() -> bool:
    """True when arm-none-eabi-gcc, -objcopy and -size are on PATH."""
    return all(shutil.which(f"arm-none-eabi-{t}") for t in ("gcc", "objcopy", "size"))


def port_source(board: McuBoard) -> Path:
    """The board family's port file (EdgepackError when that port is not written yet)."""
    path = FIRMWARE_DIR / "ports" / f"port_{board.port}.c"
    if not path.is_file():
        raise EdgepackError(f"board {board.name}: no firmware port for the {board.port!r} family yet "
                            f"(expected {path.name})",
                            hint="use a QEMU board (qemu-mps2-an386, qemu-mps3-an547, ...) or write the port; "
                                 "see firmware/ep_port.h")
    return path


def board_defines(board: McuBoard, max_payload: int, baud: int) -> list[str]:
    """The -D flags that tell the fixed firmware which board it runs on."""
    if board.uart_base is None:
        raise EdgepackError(f"board {board.name}: no UART address in boards.py")
    return [f'-DEP_BOARD_NAME="{board.name}"', f'-DEP_CPU_NAME="{board.core}"',
            f"-DEP_CLOCK_HZ={board.clock_hz}u", f"-DEP_UART_BASE=0x{board.uart_base:08X}u", f"-DEP_BAUD={baud}u",
            f"-DEP_MAX_PAYLOAD={max_payload}u", f'-DEP_FIRMWARE_VERSION="{__version__}"']


def gcc_command(board: McuBoard, sources: Sequence[Path], include_dirs: Sequence[Path], elf: Path, map_file: Path,
                opt: str, max_payload: int, baud: int, extra_cflags: Sequence[str]) -> list[str]:
    """The one compile-and-link command line."""
    fixed = [FIRMWARE_DIR / s for s in FIRMWARE_SOURCES] + [port_source(board)]
    includes = [f"-I{d}" for d in [*include_dirs, FIRMWARE_DIR]]
    return [find_tool("arm-none-eabi-gcc"), *board.cflags, opt, "-g", "-std=c11", *WARNINGS,
            "-ffunction-sections", "-fdata-sections", *board_defines(board, max_payload, baud), *includes,
            *extra_cflags, *map(str, fixed), *map(str, sources), "-lm",
            "-nostartfiles", "--specs=nano.specs", "--specs=nosys.specs", "-Wl,--gc-sections",
            f"-L{FIRMWARE_DIR / 'ld'}", f"-T{board.linker_script}", f"-Wl,-Map={map_file}", "-o", str(elf)]


def _run(cmd: list[str], what: str) -> str:
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        lines = (proc.stderr or proc.stdout).strip().splitlines()
        raise EdgepackError(f"{what} failed (exit {proc.returncode}): " + "\n".join(lines[-30:]),
                            hint="the full command was: " + " ".join(cmd))
    return proc.stdout


def measure(elf: Path) -> tuple[int, int, dict[str, int]]:
    """(flash_bytes, ram_bytes, sections) of an ELF: Berkeley text+data and data+bss, plus `size -A` per section."""
    size = find_tool("arm-none-eabi-size")
    berkeley = _run([size, "-B", str(elf)], "arm-none-eabi-size").splitlines()[1].split()
    text, data, bss = (int(v) for v in berkeley[:3])
    sections = {}
    for line in _run([size, "-A", str(elf)], "arm-none-eabi-size").splitlines():
        m = re.match(r"^(\.\S+)\s+(\d+)\s+\d+", line)
        if m and not m.group(1).startswith((".debug", ".comment", ".ARM.attributes")):
            sections[m.group(1)] = int(m.group(2))
    return text + data, data + bss, sections


def build_firmware(board: str | McuBoard, sources: Sequence[str | Path], include_dirs: Sequence[str | Path],
                   out_dir: str | Path, *, opt: str = "-O2", max_payload: int = DEFAULT_MAX_PAYLOAD,
                   baud: int = DEFAULT_BAUD, extra_cflags: Sequence[str] = ()) -> FirmwareBuild:
    """Compile and link the firmware for `board` around the given model sources; returns paths and sizes.

    Usage: ``build_firmware("qemu-mps3-an547", ["gen/model.c"], ["gen"], "build/an547")``
    """
    spec = board if isinstance(board, McuBoard) else get_board(board)
    if max_payload < 64:
        raise EdgepackError(f"max_payload must be at least 64 bytes, got {max_payload}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    elf, binary, map_file = out / "firmware.elf", out / "firmware.bin", out / "firmware.map"
    cmd = gcc_command(spec, [Path(s) for s in sources], [Path(d) for d in include_dirs], elf, map_file, opt,
                      max_payload, baud, extra_cflags)
    _run(cmd, f"arm-none-eabi-gcc for {spec.name}")
    _run([find_tool("arm-none-eabi-objcopy"), "-O", "binary", str(elf), str(binary)], "arm-none-eabi-objcopy")
    flash, ram, sections = measure(elf)
    if flash > spec.flash_bytes or ram > spec.ram_bytes:
        raise EdgepackError(f"firmware for {spec.name} does not fit: flash {flash} of {spec.flash_bytes} bytes, "
                            f"RAM {ram} of {spec.ram_bytes} bytes (arm-none-eabi-size)")
    return FirmwareBuild(spec.name, elf, binary, map_file, flash, ram, sections.get(".stack", 0), sections,
                         command=cmd)
