"""An emulated board: a child process whose UART is a pty it names on its output (QEMU, the FPGA simulator).

The process is started with `start()`, which waits for the line naming the pty and returns that path;
its output is drained in a thread (so it never blocks on a full pipe) and kept in `log`. Every started
process is stopped by `stop()`, by leaving the `with` block, or at interpreter exit.

Usage::

    with PtyProcess(["qemu-system-arm", ...], PTY_LINE, "qemu-mps2-an386") as proc:
        client = DeviceClient(SerialTransport(proc.port))
"""

from __future__ import annotations

import atexit
import re
import subprocess
import threading
from collections import deque
from pathlib import Path

from edgepack.errors import EdgepackError

_running: set[PtyProcess] = set()


class PtyProcess:
    """A running emulator; `port` is the pty its output named, `command` the exact command line."""

    what = "the emulator"

    def __init__(self, command: list[str], pty_line: re.Pattern[str], name: str, cwd: Path | None = None,
                 start_timeout: float = 10.0) -> None:
        self.command = command
        self.pty_line = pty_line
        self.name = name
        self.cwd = cwd
        self.start_timeout = start_timeout
        self.port: str | None = None
        self.proc: subprocess.Popen[str] | None = None
        self.log: deque[str] = deque(maxlen=200)
        self._port_found = threading.Event()
        self._drainer: threading.Thread | None = None

    def start(self) -> str:
        """Start the process and return the pty path of the board's UART."""
        self.proc = subprocess.Popen(self.command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, text=True, start_new_session=True, cwd=self.cwd)
        _running.add(self)
        self._drainer = threading.Thread(target=self._drain, daemon=True)
        self._drainer.start()
        if not self._port_found.wait(self.start_timeout) or self.port is None:
            self.stop()
            raise EdgepackError(f"{self.what} did not start {self.name} within {self.start_timeout:g} s: "
                                f"{self.last_words()}", hint="run the command by hand: " + " ".join(self.command))
        return self.port

    def _drain(self) -> None:
        assert self.proc is not None and self.proc.stdout is not None
        for line in self.proc.stdout:
            self.log.append(line.rstrip())
            m = self.pty_line.search(line)
            if m and self.port is None:
                self.port = m.group(1)
                self._port_found.set()
        self._port_found.set()  # the process exited: wake start()

    def last_words(self) -> str:
        """The process's last output lines."""
        return " | ".join(list(self.log)[-3:]) or "no output"

    @property
    def running(self) -> bool:
        """True while the process is alive."""
        return self.proc is not None and self.proc.poll() is None

    def stop(self, grace: float = 2.0) -> None:
        """Terminate the process (kill after `grace` seconds); safe to call twice."""
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
            self._drainer.join(grace)  # its last words end up in `log`
        if proc.stdout is not None:
            proc.stdout.close()

    def __enter__(self) -> PtyProcess:
        self.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: object) -> None:
        code = None
        if exc is not None and self.proc is not None:
            try:  # a crashing emulator closes the pty a moment before it exits
                code = self.proc.wait(1.0)
            except subprocess.TimeoutExpired:
                code = None
        self.stop()
        if exc is not None and code is not None:
            # the board died under the caller: the process's own message says why, the link error only that
            # it went quiet
            raise EdgepackError(f"{self.what} ({self.name}) exited with code {code}: {self.last_words()}",
                                hint="run the command by hand: " + " ".join(self.command)) from exc


@atexit.register
def _stop_all() -> None:
    for p in list(_running):
        p.stop()
