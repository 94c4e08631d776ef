"""Run firmware on a QEMU-emulated board and reach its UART0 through a pty.

    qemu-system-arm -M <machine> -kernel firmware.elf -nodefaults -display none -monitor none \
                    -serial pty -icount shift=0

`-icount shift=0` runs one instruction per nanosecond of virtual time, so SysTick counts over an invoke are
deterministic. QEMU prints "char device redirected to /dev/pts/N"; that path opens like a real port.
Every started process is stopped by `stop()`, by leaving the `with` block, or at interpreter exit.

Usage::

    with QemuBoard("qemu-mps2-an386", "build/firmware.elf") as qemu:
        client = DeviceClient(SerialTransport(qemu.port))
"""

from __future__ import annotations

import atexit
import re
import shutil
import subprocess
import threading
from collections import deque
from pathlib import Path

from edgepack.errors import EdgepackError
from edgepack.targets.mcu.boards import McuBoard, get_board

QEMU = "qemu-system-arm"
QEMU_HINT = "install QEMU: apt-get install qemu-system-arm"
PTY_LINE = re.compile(r"char device redirected to (/dev/pts/\d+)")

_running: set[QemuBoard] = set()


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


class QemuBoard:
    """A running qemu-system-arm; `port` is the pty of the board's UART0, `command` the exact command line."""

    def __init__(self, board: str | McuBoard, elf: str | Path, icount: bool = True,
                 start_timeout: float = 10.0) -> None:
        self.board = board if isinstance(board, McuBoard) else get_board(board)
        self.elf = Path(elf)
        self.command = qemu_command(self.board, self.elf, icount)
        self.start_timeout = start_timeout
        self.port: str | None = None
        self.proc: subprocess.Popen[str] | None = None
        self.log: deque[str] = deque(maxlen=200)
        self._port_found = threading.Event()
        self._drainer: threading.Thread | None = None

    def start(self) -> str:
        """Start QEMU and return the pty path of UART0."""
        if not self.elf.is_file():
            raise EdgepackError(f"{self.elf}: firmware ELF not found")
        self.proc = subprocess.Popen(self.command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, text=True, start_new_session=True)
        _running.add(self)
        self._drainer = threading.Thread(target=self._drain, daemon=True)
        self._drainer.start()
        if not self._port_found.wait(self.start_timeout) or self.port is None:
            self.stop()
            raise EdgepackError(f"QEMU did not start {self.board.name} within {self.start_timeout:g} s: "
                                f"{self.last_words()}",
                                hint="run the command by hand: " + " ".join(self.command))
        return self.port

    def _drain(self) -> None:
        """Keep reading QEMU's output so it never blocks on a full pipe; note the pty path."""
        assert self.proc is not None and self.proc.stdout is not None
        for line in self.proc.stdout:
            self.log.append(line.rstrip())
            m = PTY_LINE.search(line)
            if m and self.port is None:
                self.port = m.group(1)
                self._port_found.set()
        self._port_found.set()  # QEMU exited: wake start()

    def last_words(self) -> str:
        """QEMU's own messages ("qemu: fatal: ..."), else its last output lines."""
        said = [line for line in self.log if line.startswith("qemu") and "has no peer" not in line]
        return " | ".join(said[-3:] or list(self.log)[-3:]) or "no output"

    @property
    def running(self) -> bool:
        """True while the QEMU process is alive."""
        return self.proc is not None and self.proc.poll() is None

    def stop(self, grace: float = 2.0) -> None:
        """Terminate QEMU (kill after `grace` seconds); safe to call twice."""
        proc, self.proc = self.proc, None
        _running.discard(self)
        if proc is None:
            return
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(grace)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(grace)
        if self._drainer is not None:
            self._drainer.join(grace)  # QEMU's last words end up in `log`
        if proc.stdout is not None:
            proc.stdout.close()

    def __enter__(self) -> QemuBoard:
        self.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: object) -> None:
        code = None
        if exc is not None and self.proc is not None:
            try:  # a crashing QEMU closes the pty a moment before it exits
                code = self.proc.wait(1.0)
            except subprocess.TimeoutExpired:
                code = None
        self.stop()
        if exc is not None and code is not None:
            # the board died under the test: QEMU's own message says why, the link error only that it went quiet
            raise EdgepackError(f"QEMU ({self.board.name}) exited with code {code}: {self.last_words()}",
                                hint="run the command by hand: " + " ".join(self.command)) from exc


@atexit.register
def _stop_all() -> None:
    for q in list(_running):
        q.stop()

