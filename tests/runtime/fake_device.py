"""A Python twin of the firmware's protocol loop on a pty pair (test fixture for the host client).

It answers like firmware/main.c: 0x1x statuses for bad frames (seq 0 when the header itself timed out),
CRC checks of the input at INVOKE, output CRC in the INVOKE response.
"""

from __future__ import annotations

import os
import select
import struct
import threading
import time
import tty
import zlib
from collections.abc import Callable

from edgepack.runtime.serial_protocol import (
    PROTOCOL_VERSION,
    BadFrame,
    Cmd,
    FrameDecoder,
    Status,
    encode_frame,
    response_payload,
)

BYTE_TIMEOUT = 0.1


class FakeDevice:
    """Serves the protocol on `port` (a /dev/pts path) from a thread. Usage: ``with FakeDevice(...) as dev:``"""

    def __init__(self, model: Callable[[bytes], bytes], input_bytes: int, output_bytes: int, sha256: str,
                 max_payload: int = 256, model_rc: int = 0, name: str = "fake", status_override: int | None = None):
        self.model = model
        self.input = bytearray(input_bytes)
        self.output = bytearray(output_bytes)
        self.output_valid = False
        self.sha256 = sha256
        self.max_payload = max_payload
        self.model_rc = model_rc
        self.name = name
        self.status_override = status_override
        self.requests: list[int] = []
        self.master, self.slave = os.openpty()
        tty.setraw(self.slave)
        self.port = os.ttyname(self.slave)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)

    def __enter__(self) -> FakeDevice:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(2)
        os.close(self.master)
        os.close(self.slave)

    def _send(self, cmd: int, seq: int, status: int, data: bytes = b"") -> None:
        os.write(self.master, encode_frame(cmd, seq, response_payload(status, data)))

    def _serve(self) -> None:
        decoder = FrameDecoder(self.max_payload)
        last = time.monotonic()
        while not self._stop.is_set():
            ready, _, _ = select.select([self.master], [], [], 0.02)
            if not ready:
                if decoder.buf and time.monotonic() - last > BYTE_TIMEOUT:
                    decoder.buf.clear()
                    self._send(0, 0, Status.TIMEOUT)
                continue
            last = time.monotonic()
            for item in decoder.feed(os.read(self.master, 4096)):
                if isinstance(item, BadFrame):
                    status = Status.BAD_LENGTH if item.reason.startswith("length") else Status.BAD_CRC
                    self._send(item.cmd, item.seq, status)
                elif item.version != PROTOCOL_VERSION:
                    self._send(item.cmd, item.seq, Status.BAD_VERSION)
                else:
                    self.requests.append(item.cmd)
                    self._send(item.cmd, item.seq, *self._handle(item.cmd, item.payload))

    def _handle(self, cmd: int, p: bytes) -> tuple[int, bytes]:
        if self.status_override is not None and cmd == Cmd.INVOKE:
            return self.status_override, struct.pack("<5I", 0x100, 0x40000000, 0x1234, 0x5678, 0xFFFFFFF9)
        if cmd == Cmd.IDENTIFY:
            strings = ["0.1.0", f"test-{self.name}", self.sha256, "fake-board", "python"]
            return Status.OK, struct.pack("<B6I", PROTOCOL_VERSION, self.max_payload, len(self.input),
                                          len(self.output), 0, 25_000_000, 0) + b"".join(
                bytes([len(s)]) + s.encode() for s in strings)
        if cmd == Cmd.LOAD_INPUT:
            (offset,) = struct.unpack_from("<I", p)
            if offset + len(p) - 4 > len(self.input):
                return Status.INPUT_RANGE, b""
            self.input[offset: offset + len(p) - 4] = p[4:]
            self.output_valid = False
            return Status.OK, b""
        if cmd == Cmd.INVOKE:
            have = zlib.crc32(self.input)
            if have != struct.unpack("<I", p)[0]:
                return Status.INPUT_CHECKSUM, struct.pack("<I", have)
            self.output[:] = self.model(bytes(self.input))
            self.output_valid = self.model_rc == 0
            status = Status.OK if self.model_rc == 0 else Status.MODEL_FAILED
            return status, struct.pack("<iQI", self.model_rc, 1234, zlib.crc32(self.output))
        if cmd == Cmd.READ_OUTPUT:
            offset, n = struct.unpack("<II", p)
            if not self.output_valid:
                return Status.NO_OUTPUT, b""
            return Status.OK, bytes(self.output[offset: offset + n])
        if cmd == Cmd.ECHO:
            return Status.OK, p
        return Status.UNKNOWN_CMD, b""
