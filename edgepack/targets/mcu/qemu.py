"""Run firmware on a QEMU-emulated board and reach its UART0 through a pty.

    qemu-system-arm -M <machine> -kernel firmware.elf -nodefaults -display none -monitor none \
                    -serial pty -icount shift=0

`-icount shift=0` runs one instruction per nanosecond of virtual time, so SysTick counts over an invoke are
deterministic. QEMU prints "char device redirected to /dev/pts/N"; that path opens like a real port.
The process handling (start, drain, stop, clean-up at exit) is `edgepack.targets.pty_process.PtyProcess`.

Usage::

    with QemuBoard("qemu-mps2-an386", "build/firmware.elf") as qemu:
        client = DeviceClient(SerialTransport(qemu.port))
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

from edgepack.errors import EdgepackError
from edgepack.targets.mcu.boards import McuBoard, get_board
from edgepack.targets.pty_process import PtyProcess

QEMU = "qemu-system-arm"
QEMU_HINT = "install QEMU: apt-get install qemu-system-arm"
PTY_LINE = re.compile(r"char device redirected to (/dev/pts/\d+)")


def qemu_available() -> bool:
    """True when qemu-system-arm is on PATH."""
    return shutil.which(QEMU) is not None


def qemu_command(board: McuBoard, elf: Path, icount: bool = True) -> list[str]:
    """The command line for `board` running `elf` with UART0 on a new pty."""
    if board.qemu_machine is None:
        raise EdgepackError(f"board {board.name} is not emulated by QEMU (its flasher is {board.flasher})")
    exe = shutil.which(QEMU)
    if exe is None:
        raise EdgepackError(f"{QEMU} not found on PATH", hint=QEMU_HINT)
    cmd = [exe, "-M", board.qemu_machine, "-kernel", str(elf), "-nodefaults", "-display", "none",
           "-monitor", "none", "-serial", "pty", "-nic", "none"]
    return cmd + (["-icount", "shift=0"] if icount else [])


class QemuBoard(PtyProcess):
    """A running qemu-system-arm; `port` is the pty of the board's UART0, `command` the exact command line."""

    what = "QEMU"

    def __init__(self, board: str | McuBoard, elf: str | Path, icount: bool = True,
                 start_timeout: float = 10.0) -> None:
        self.board = board if isinstance(board, McuBoard) else get_board(board)
        self.elf = Path(elf)
        super().__init__(qemu_command(self.board, self.elf, icount), PTY_LINE, self.board.name,
                         start_timeout=start_timeout)

    def start(self) -> str:
        """Start QEMU and return the pty path of UART0."""
        if not self.elf.is_file():
            raise EdgepackError(f"{self.elf}: firmware ELF not found")
        return super().start()

    def last_words(self) -> str:
        """QEMU's own messages ("qemu: fatal: ..."), else its last output lines."""
        said = [line for line in self.log if line.startswith("qemu") and "has no peer" not in line]
        return " | ".join(said[-3:]) or super().last_words()

    def __enter__(self) -> QemuBoard:
        self.start()
        return self
