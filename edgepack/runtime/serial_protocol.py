"""Host side of the edgepack serial protocol, version 1 (docs/serial-protocol.md): framing, CRC, status codes,
transports and a retrying client. Needs only the standard library and (for real ports) pyserial.

Frame: ``A5 5A | version u8 | cmd u8 | seq u8 | len u32 LE | payload | crc32 u32 LE`` where the CRC is
zlib.crc32 over version..payload. A response echoes cmd and seq; its payload starts with a status byte.

Usage::

    client = DeviceClient(SerialTransport("/dev/ttyACM0"))
    info = client.identify()
    output, ticks = client.run(input_bytes)
"""

from __future__ import annotations

import contextlib
import struct
import time
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from enum import IntEnum
from typing import Protocol

from edgepack.errors import EdgepackError

PROTOCOL_VERSION = 1
SYNC = b"\xa5\x5a"
HEADER = struct.Struct("<BBBI")  # version, cmd, seq, len
OVERHEAD = len(SYNC) + HEADER.size + 4
MAX_FRAME_PAYLOAD = 1 << 20  # the host refuses longer frames outright (a corrupt length field)
FLAG_NEEDS_WEIGHTS = 1 << 0  # IDENTIFY flags: the host loads the weight image (LOAD_WEIGHTS, COMMIT_WEIGHTS)
FLAG_WEIGHTS_COMMITTED = 1 << 1  # IDENTIFY flags: a weight image is loaded and checked


class Cmd(IntEnum):
    """Command codes (firmware/ep_protocol.h)."""

    IDENTIFY = 0x01
    LOAD_INPUT = 0x02
    INVOKE = 0x03
    READ_OUTPUT = 0x04
    ECHO = 0x05
    RESET = 0x06
    LOAD_WEIGHTS = 0x07  # boards with a volatile weight memory (FPGA): offset u32 + bytes
    COMMIT_WEIGHTS = 0x08  # crc32 u32 of the whole weight image; INVOKE answers NO_WEIGHTS until it matched


class Status(IntEnum):
    """Status codes, stable and grouped: 0x00 ok, 0x1x frame, 0x2x model/bundle, 0x3x board (firmware/ep_status.h)."""

    OK = 0x00
    BAD_FRAME = 0x10
    BAD_CRC = 0x11
    BAD_LENGTH = 0x12
    TIMEOUT = 0x13
    BAD_VERSION = 0x14
    UNKNOWN_CMD = 0x15
    BAD_PAYLOAD = 0x16
    INPUT_RANGE = 0x21
    OUTPUT_RANGE = 0x22
    INPUT_CHECKSUM = 0x23
    MODEL_FAILED = 0x24
    NO_OUTPUT = 0x25
    WEIGHTS_RANGE = 0x26
    WEIGHTS_CHECKSUM = 0x27
    NO_WEIGHTS = 0x28
    BOARD_ERROR = 0x30
    FAULT = 0x31


STATUS_TEXT = {
    Status.OK: "ok",
    Status.BAD_FRAME: "malformed frame",
    Status.BAD_CRC: "frame CRC mismatch",
    Status.BAD_LENGTH: "payload longer than the device accepts",
    Status.TIMEOUT: "frame incomplete (inter-byte timeout)",
    Status.BAD_VERSION: "protocol version not supported by the firmware",
    Status.UNKNOWN_CMD: "command not known to the firmware",
    Status.BAD_PAYLOAD: "payload size wrong for the command",
    Status.INPUT_RANGE: "input offset/length beyond the model's input",
    Status.OUTPUT_RANGE: "output offset/length beyond the model's output",
    Status.INPUT_CHECKSUM: "the device's input buffer differs from what the host sent",
    Status.MODEL_FAILED: "the model returned an error",
    Status.NO_OUTPUT: "no output: INVOKE has not succeeded since the last LOAD_INPUT",
    Status.WEIGHTS_RANGE: "weight offset/length beyond the device's weight image",
    Status.WEIGHTS_CHECKSUM: "the device's weight memory differs from the image the host sent",
    Status.NO_WEIGHTS: "no weights: the weight image was not loaded and committed",
    Status.BOARD_ERROR: "board error",
    Status.FAULT: "the CPU took a fault and the board stopped",
}


def status_text(code: int) -> str:
    """'0x11 BAD_CRC (frame CRC mismatch)' for a status byte."""
    try:
        s = Status(code)
    except ValueError:
        return f"0x{code:02x} (unknown status)"
    return f"0x{code:02x} {s.name} ({STATUS_TEXT[s]})"


RETRYABLE = frozenset({Status.BAD_FRAME, Status.BAD_CRC, Status.BAD_LENGTH, Status.TIMEOUT})


def is_retryable(code: int) -> bool:
    """True when the device did not get the request intact (0x10-0x13), so resending it may help.

    The other 0x1x codes (version, unknown command, payload size) answer an intact frame: resending cannot help.
    """
    return code in RETRYABLE


def cmd_name(cmd: int) -> str:
    """'READ_OUTPUT' for 0x04, '0x42' for an unknown code."""
    try:
        return Cmd(cmd).name
    except ValueError:
        return f"0x{cmd:02x}"


class DeviceError(EdgepackError):
    """A board did not answer, answered with an error, or its answers could not be trusted."""


# ---------------------------------------------------------------------------------------------- framing


@dataclass(frozen=True)
class Frame:
    """One decoded frame."""

    cmd: int
    seq: int
    payload: bytes
    version: int = PROTOCOL_VERSION


@dataclass(frozen=True)
class BadFrame:
    """A frame the decoder had to drop (CRC mismatch or impossible length); cmd/seq are as received, unchecked."""

    reason: str
    cmd: int
    seq: int


def encode_frame(cmd: int, seq: int, payload: bytes = b"", version: int = PROTOCOL_VERSION) -> bytes:
    """Frame bytes for a request or response. Usage: ``encode_frame(Cmd.IDENTIFY, 1)``"""
    body = HEADER.pack(version, cmd, seq, len(payload)) + payload
    return SYNC + body + struct.pack("<I", zlib.crc32(body))


def response_payload(status: int, data: bytes = b"") -> bytes:
    """A response payload: status byte then data."""
    return bytes([status]) + data


class FrameDecoder:
    """Incremental decoder: ``feed(bytes)`` yields Frame and BadFrame items; garbage between frames is skipped.

    After a bad frame it resumes hunting for SYNC right after the bad frame's sync bytes, so a frame hidden in a
    corrupt frame's body is still found.
    """

    def __init__(self, max_payload: int = MAX_FRAME_PAYLOAD) -> None:
        self.max_payload = max_payload
        self.buf = bytearray()

    def feed(self, data: bytes) -> Iterator[Frame | BadFrame]:
        """Add bytes; yield every complete frame (or bad frame) they finish."""
        self.buf += data
        while True:
            start = self.buf.find(SYNC)
            if start < 0:
                del self.buf[: max(0, len(self.buf) - 1)]  # keep a trailing 0xA5
                return
            del self.buf[:start]
            if len(self.buf) < len(SYNC) + HEADER.size:
                return
            version, cmd, seq, length = HEADER.unpack_from(self.buf, len(SYNC))
            if length > self.max_payload:
                del self.buf[: len(SYNC)]
                yield BadFrame(f"length {length} exceeds {self.max_payload}", cmd, seq)
                continue
            end = len(SYNC) + HEADER.size + length + 4
            if len(self.buf) < end:
                return
            body = bytes(self.buf[len(SYNC): end - 4])
            (crc,) = struct.unpack_from("<I", self.buf, end - 4)
            if zlib.crc32(body) != crc:
                del self.buf[: len(SYNC)]
                yield BadFrame("CRC mismatch", cmd, seq)
                continue
            del self.buf[:end]
            yield Frame(cmd, seq, body[HEADER.size:], version)


# ---------------------------------------------------------------------------------------------- transports


class Transport(Protocol):
    """A byte pipe to a board. `read` returns what arrives within `timeout` seconds (maybe b"")."""

    def write(self, data: bytes) -> None: ...

    def read(self, max_bytes: int, timeout: float) -> bytes: ...

    def reset_input(self) -> None: ...

    def close(self) -> None: ...


class SerialTransport:
    """pyserial port: a real board's /dev/ttyACM*, or QEMU's /dev/pts/N. Usage: ``SerialTransport("/dev/pts/3")``"""

    def __init__(self, port: str, baudrate: int = 115_200) -> None:
        try:
            import serial
        except ImportError as exc:
            raise EdgepackError("the serial link needs pyserial", hint="pip install pyserial") from exc
        try:
            self.serial = serial.Serial(port, baudrate, timeout=0.1)
        except (serial.SerialException, OSError) as exc:
            raise DeviceError(f"cannot open serial port {port}: {exc}",
                              hint="check --port, the cable and that no other program holds the port") from exc
        self.port = port

    def write(self, data: bytes) -> None:
        """Send all bytes."""
        with self._errors():
            self.serial.write(data)
            self.serial.flush()

    def read(self, max_bytes: int, timeout: float) -> bytes:
        """Bytes available within `timeout` seconds (at most max_bytes)."""
        with self._errors():
            self.serial.timeout = max(timeout, 0.0)
            first = self.serial.read(1)
            if not first:
                return b""
            waiting = min(self.serial.in_waiting, max_bytes - 1)
            return first + (self.serial.read(waiting) if waiting > 0 else b"")

    @contextlib.contextmanager
    def _errors(self) -> Iterator[None]:
        import serial

        try:
            yield
        except (serial.SerialException, OSError) as exc:
            raise DeviceError(f"serial port {self.port} failed: {exc}",
                              hint="the board was unplugged, reset or (QEMU) exited; check it and retry") from exc

    def reset_input(self) -> None:
        """Drop bytes received but not read."""
        self.serial.reset_input_buffer()

    def close(self) -> None:
        """Close the port."""
        self.serial.close()


@dataclass
class Fault:
    """One fault to inject. kind: "flip" (xor 0xFF at `offset`), "drop" (remove `count` bytes at `offset`),
    "swallow" (lose the whole frame), "delay" (`seconds` before the frame), "forge" (flip a payload byte at
    `offset` and recompute the CRC: corruption the frame CRC cannot see). direction: "rx" (device to host) or
    "tx". Applies to frames of command `cmd` (any when None), to the `nth` such frame (every one when None).
    Negative offsets count from the frame's end."""

    kind: str
    direction: str = "rx"
    cmd: int | None = None
    nth: int | None = 0
    offset: int = -5
    count: int = 1
    seconds: float = 0.0


class FaultInjectingTransport:
    """Wraps a transport and corrupts chosen frames, for tests of the retry and integrity logic.

    Usage: ``FaultInjectingTransport(inner, [Fault("flip", cmd=Cmd.READ_OUTPUT)])``; `injected` counts hits.
    """

    def __init__(self, inner: Transport, faults: list[Fault]) -> None:
        self.inner = inner
        self.faults = faults
        self.seen: dict[tuple[str, int | None, int], int] = {}
        self.injected = 0
        self.decoder = FrameDecoder()
        self.pending = bytearray()
        self.held: list[tuple[float, bytes]] = []  # (release time, frame) of delayed rx frames

    def _apply(self, direction: str, frame: bytes, cmd: int) -> tuple[bytes, float]:
        """The frame after matching faults, and its delay in seconds."""
        delay = 0.0
        for i, fault in enumerate(self.faults):
            if fault.direction != direction or fault.cmd not in (None, cmd):
                continue
            key = (direction, fault.cmd, i)
            index = self.seen.get(key, 0)
            self.seen[key] = index + 1
            if fault.nth is not None and fault.nth != index:
                continue
            self.injected += 1
            delay += fault.seconds if fault.kind == "delay" else 0.0
            frame = self._corrupt(fault, frame)
            if not frame:
                break
        return frame, delay

    @staticmethod
    def _corrupt(fault: Fault, frame: bytes) -> bytes:
        data = bytearray(frame)
        pos = fault.offset % len(data)
        if fault.kind == "flip":
            data[pos] ^= 0xFF
        elif fault.kind == "drop":
            del data[pos: pos + fault.count]
        elif fault.kind == "swallow":
            return b""
        elif fault.kind == "delay":
            pass  # applied by the caller: the frame is held back
        elif fault.kind == "forge":
            payload = bytearray(data[len(SYNC) + HEADER.size: -4])
            payload[fault.offset % len(payload)] ^= 0x01
            version, cmd, seq, _ = HEADER.unpack_from(data, len(SYNC))
            return encode_frame(cmd, seq, bytes(payload), version)
        else:
            raise ValueError(f"unknown fault kind {fault.kind!r}")
        return bytes(data)

    def write(self, data: bytes) -> None:
        """Send one frame (the client writes one frame per call), corrupted if a tx fault matches."""
        cmd = data[len(SYNC) + 1] if len(data) > len(SYNC) + 1 else -1
        out, delay = self._apply("tx", data, cmd)
        time.sleep(delay)
        if out:
            self.inner.write(out)

    def read(self, max_bytes: int, timeout: float) -> bytes:
        """Bytes from whole frames read from the inner transport, after rx faults."""
        deadline = time.monotonic() + timeout
        while True:
            now = time.monotonic()
            self.pending += b"".join(f for t, f in self.held if t <= now)
            self.held = [(t, f) for t, f in self.held if t > now]
            if self.pending or now >= deadline:
                break
            chunk = self.inner.read(4096, min(0.05, deadline - now))
            for item in self.decoder.feed(chunk):
                if isinstance(item, Frame):
                    frame = encode_frame(item.cmd, item.seq, item.payload, item.version)
                    out, delay = self._apply("rx", frame, item.cmd)
                    self.held.append((time.monotonic() + delay, out))
        out = bytes(self.pending[:max_bytes])
        del self.pending[:max_bytes]
        return out

    def reset_input(self) -> None:
        """Drop pending bytes (held, delayed frames still arrive late; injected faults stay scheduled)."""
        self.pending.clear()
        self.inner.reset_input()

    def close(self) -> None:
        """Close the inner transport."""
        self.inner.close()


# ---------------------------------------------------------------------------------------------- client


@dataclass(frozen=True)
class DeviceInfo:
    """What IDENTIFY reports."""

    protocol_version: int
    max_payload: int
    input_bytes: int
    output_bytes: int
    arena_bytes: int
    clock_hz: int
    flags: int
    firmware_version: str
    model_name: str
    model_sha256: str
    board: str
    cpu: str
    weights_crc32: int = 0  # appended after the strings by boards with FLAG_NEEDS_WEIGHTS: the committed image

    @property
    def needs_weights(self) -> bool:
        """The board's weight memory is loaded by the host (LOAD_WEIGHTS, COMMIT_WEIGHTS)."""
        return bool(self.flags & FLAG_NEEDS_WEIGHTS)

    @property
    def weights_committed(self) -> bool:
        """A weight image was loaded and its CRC matched (its CRC is `weights_crc32`)."""
        return bool(self.flags & FLAG_WEIGHTS_COMMITTED)

    def encode(self) -> bytes:
        """IDENTIFY's data as a board sends it (after the status byte), the inverse of `parse`; strings are
        cut to 255 bytes. `weights_crc32` is left out: a board appends it at run time."""
        out = struct.pack("<B6I", self.protocol_version, self.max_payload, self.input_bytes, self.output_bytes,
                          self.arena_bytes, self.clock_hz, self.flags)
        for text in (self.firmware_version, self.model_name, self.model_sha256, self.board, self.cpu):
            raw = text.encode()[:255]
            out += bytes([len(raw)]) + raw
        return out

    @classmethod
    def parse(cls, data: bytes) -> DeviceInfo:
        """Decode an IDENTIFY response (after the status byte); trailing fields of newer firmware are ignored."""
        try:
            version, *numbers = struct.unpack_from("<B6I", data)
            pos = struct.calcsize("<B6I")
            strings = []
            for _ in range(5):
                n = data[pos]
                strings.append(data[pos + 1: pos + 1 + n].decode("utf-8"))
                pos += 1 + n
            if pos > len(data):
                raise IndexError
        except (struct.error, IndexError, UnicodeDecodeError) as exc:
            raise DeviceError(f"IDENTIFY response is malformed ({len(data)} bytes)") from exc
        weights_crc = struct.unpack_from("<I", data, pos)[0] if len(data) >= pos + 4 else 0
        return cls(version, *numbers, *strings, weights_crc)


@dataclass(frozen=True)
class InvokeResult:
    """What INVOKE reports: model return code, core clock ticks over the invoke, CRC-32 of the output buffer."""

    model_rc: int
    ticks: int
    output_crc: int


class DeviceClient:
    """Talks to one board. Every request is retried (new seq) up to `retries` times on timeout, a corrupt response
    or a 0x1x status; every request is idempotent. Results are end-to-end checked: INVOKE sends the CRC of the
    input the host loaded, and the output read back must match the CRC the device computed. Anything else raises
    DeviceError; a wrong result is never returned silently.
    """

    def __init__(self, transport: Transport, retries: int = 3, timeout: float = 2.0,
                 invoke_timeout: float = 120.0, boot_timeout: float | None = None) -> None:
        self.transport = transport
        self.retries = retries
        self.timeout = timeout
        self.invoke_timeout = invoke_timeout
        # For a board that may still be starting (QEMU notices a new pty client only on a 1 s poll): the
        # first attempt of the first request waits this long before it counts as lost.
        self.boot_timeout = boot_timeout
        self._booted = boot_timeout is None
        self.info: DeviceInfo | None = None
        self.retried = 0  # requests resent so far (for reports and tests)
        self._seq = 0

    def _next_seq(self) -> int:
        self._seq = self._seq % 255 + 1  # 1..255; 0 marks the device's replies to unreadable headers
        return self._seq

    def _await(self, cmd: int, seq: int, timeout: float) -> Frame | str:
        decoder = FrameDecoder(max(self.info.max_payload if self.info else 0, 2048))
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            for item in decoder.feed(self.transport.read(4096, left)):
                if isinstance(item, BadFrame):
                    return f"corrupt response ({item.reason})"
                if item.seq == 0 and item.payload[:1] and is_retryable(item.payload[0]):
                    return f"device dropped a request: {status_text(item.payload[0])}"
                if item.seq != seq:
                    continue  # a late answer to an earlier attempt
                if item.cmd != cmd or not item.payload:
                    return f"response does not match the request (cmd 0x{item.cmd:02x}, {len(item.payload)} bytes)"
                return item
        return f"no response within {timeout:g} s"

    def request(self, cmd: int, payload: bytes = b"", timeout: float | None = None) -> tuple[int, bytes]:
        """Send a request until an intact response arrives; returns (status, data after the status byte)."""
        problem = ""
        for attempt in range(self.retries + 1):
            if attempt:
                self.retried += 1
            seq = self._next_seq()
            self.transport.reset_input()
            self.transport.write(encode_frame(cmd, seq, payload))
            wait = self.timeout if timeout is None else timeout
            if not self._booted:
                wait, self._booted = max(wait, self.boot_timeout or 0.0), True
            got = self._await(cmd, seq, wait)
            if isinstance(got, str):
                problem = got
                continue
            if is_retryable(got.payload[0]):
                problem = f"device reported {status_text(got.payload[0])}"
                continue
            return got.payload[0], got.payload[1:]
        raise DeviceError(f"{cmd_name(cmd)} failed after {self.retries + 1} attempts: {problem}",
                          hint="check the port and baud rate, that the board runs edgepack firmware, "
                               "and that no other program uses the port")

    def _ok(self, cmd: Cmd, payload: bytes = b"", timeout: float | None = None) -> bytes:
        status, data = self.request(cmd, payload, timeout)
        if status != Status.OK:
            raise DeviceError(f"{cmd.name}: device answered {status_text(status)}{_fault_detail(status, data)}")
        return data

    def identify(self) -> DeviceInfo:
        """Query the firmware and model identity (cached in `info`)."""
        self.info = DeviceInfo.parse(self._ok(Cmd.IDENTIFY))
        if self.info.protocol_version != PROTOCOL_VERSION:
            raise DeviceError(f"device speaks protocol version {self.info.protocol_version}, this host "
                              f"version {PROTOCOL_VERSION}", hint="rebuild the firmware with this edgepack")
        return self.info

    def _device(self) -> DeviceInfo:
        return self.info if self.info is not None else self.identify()

    def echo(self, data: bytes) -> bytes:
        """Round-trip bytes through the device (link test)."""
        back = self._ok(Cmd.ECHO, data)
        if back != data:
            raise DeviceError(f"ECHO returned {len(back)} different bytes for {len(data)} sent")
        return back

    def load_input(self, data: bytes) -> None:
        """Write the whole input buffer, in chunks that fit the device's max payload."""
        info = self._device()
        if len(data) != info.input_bytes:
            raise DeviceError(f"input is {len(data)} bytes, the device's model takes {info.input_bytes}")
        step = info.max_payload - 4
        for offset in range(0, len(data), step):
            self._ok(Cmd.LOAD_INPUT, struct.pack("<I", offset) + data[offset: offset + step])

    def load_weights(self, image: bytes) -> None:
        """Write the weight image and commit it (the device checks its CRC); reload while the check fails."""
        info = self._device()
        if len(image) % 4:
            raise DeviceError(f"weight image is {len(image)} bytes, not a whole number of 32-bit words")
        step = (info.max_payload - 4) // 4 * 4
        crc = zlib.crc32(image)
        for _ in range(self.retries + 1):
            for offset in range(0, len(image), step):
                self._ok(Cmd.LOAD_WEIGHTS, struct.pack("<I", offset) + image[offset: offset + step])
            status, data = self.request(Cmd.COMMIT_WEIGHTS, struct.pack("<I", crc))
            if status == Status.OK:
                return
            if status != Status.WEIGHTS_CHECKSUM:
                raise DeviceError(f"COMMIT_WEIGHTS: device answered {status_text(status)}")
            self.retried += 1
        raise DeviceError(f"the device's weight memory never matched the image after {self.retries + 1} loads",
                          hint="check the cable and baud rate")

    def invoke(self, input_crc: int) -> tuple[int, InvokeResult]:
        """Run the model on the loaded input; returns (status, result). Status is OK, INPUT_CHECKSUM or
        MODEL_FAILED; anything else raises."""
        status, data = self.request(Cmd.INVOKE, struct.pack("<I", input_crc), self.invoke_timeout)
        if status == Status.INPUT_CHECKSUM:
            return status, InvokeResult(0, 0, 0)
        if status not in (Status.OK, Status.MODEL_FAILED) or len(data) < 16:
            raise DeviceError(f"INVOKE: device answered {status_text(status)}{_fault_detail(status, data)}")
        rc, ticks, crc = struct.unpack_from("<iQI", data)
        return status, InvokeResult(rc, ticks, crc)

    def read_output(self, expected_crc: int) -> bytes:
        """Read the whole output buffer; re-read while it does not match the CRC the device computed."""
        info = self._device()
        step = info.max_payload - 1
        for _ in range(self.retries + 1):
            out = bytearray()
            for offset in range(0, info.output_bytes, step):
                n = min(step, info.output_bytes - offset)
                chunk = self._ok(Cmd.READ_OUTPUT, struct.pack("<II", offset, n))
                if len(chunk) != n:
                    raise DeviceError(f"READ_OUTPUT returned {len(chunk)} bytes at offset {offset}, asked for {n}")
                out += chunk
            if zlib.crc32(out) == expected_crc:
                return bytes(out)
            self.retried += 1
        raise DeviceError(f"output read back does not match the device's CRC-32 0x{expected_crc:08x} "
                          f"after {self.retries + 1} reads: the link corrupts data the frame CRC did not catch",
                          hint="check the cable and baud rate; lower the baud rate")

    def run(self, data: bytes) -> tuple[bytes, InvokeResult]:
        """One inference: load `data`, invoke, read the output. Returns (output bytes, invoke result)."""
        crc = zlib.crc32(data)
        for _ in range(self.retries + 1):
            self.load_input(data)
            status, result = self.invoke(crc)
            if status == Status.INPUT_CHECKSUM:
                self.retried += 1
                continue
            if status == Status.MODEL_FAILED:
                raise DeviceError(f"the model on the device returned error {result.model_rc}",
                                  hint="check the firmware build log and the bundle's target options")
            return self.read_output(result.output_crc), result
        raise DeviceError(f"the device's input never matched the host's after {self.retries + 1} loads",
                          hint="check the cable and baud rate")

    def reset(self, settle: float = 0.5) -> DeviceInfo:
        """Reset the board and identify it again."""
        self._ok(Cmd.RESET)
        time.sleep(settle)
        self._booted = self.boot_timeout is None
        return self.identify()


def _fault_detail(status: int, data: bytes) -> str:
    if status == Status.FAULT and len(data) >= 20:
        cfsr, hfsr, pc, lr, exc = struct.unpack_from("<5I", data)
        return f"; CFSR=0x{cfsr:08x} HFSR=0x{hfsr:08x} PC=0x{pc:08x} LR=0x{lr:08x} EXC_RETURN=0x{exc:08x}"
    return ""

