"""Serial protocol: framing and CRC (pure Python), and the retrying client against a fake device on a pty."""

from __future__ import annotations

import hashlib
import re
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from fake_device import FakeDevice

from edgepack.errors import BundleIncompatibleError
from edgepack.runtime.backends import device as device_backend
from edgepack.runtime.serial_protocol import (
    BadFrame,
    Cmd,
    DeviceClient,
    DeviceError,
    DeviceInfo,
    Fault,
    FaultInjectingTransport,
    Frame,
    FrameDecoder,
    SerialTransport,
    Status,
    encode_frame,
    status_text,
)

FIRMWARE = Path(__file__).resolve().parents[2] / "edgepack" / "targets" / "mcu" / "firmware"
SHA = hashlib.sha256(b"fake model").hexdigest()


def reverse_plus_one(data: bytes) -> bytes:
    return bytes((b + 1) & 0xFF for b in reversed(data))


def decode_all(data: bytes, max_payload: int = 1 << 20) -> list[Frame | BadFrame]:
    return list(FrameDecoder(max_payload).feed(data))


# ---------------------------------------------------------------------------------------------- framing


@pytest.mark.parametrize("size", [0, 1, 7, 1024, 70_000])
def test_round_trip_whole_and_byte_by_byte(size: int) -> None:
    payload = np.random.default_rng(size).integers(0, 256, size, dtype=np.uint8).tobytes()
    frame = encode_frame(Cmd.LOAD_INPUT, 200, payload)
    assert len(frame) == 2 + 7 + size + 4
    assert decode_all(frame) == [Frame(Cmd.LOAD_INPUT, 200, payload)]
    decoder = FrameDecoder()
    items = [item for b in frame for item in decoder.feed(bytes([b]))]
    assert items == [Frame(Cmd.LOAD_INPUT, 200, payload)]


def test_frame_layout_is_documented_one() -> None:
    frame = encode_frame(Cmd.IDENTIFY, 1, b"")
    assert frame[:2] == b"\xa5\x5a" and frame[2:9] == bytes([1, 1, 1, 0, 0, 0, 0])
    assert frame[9:] == struct.pack("<I", zlib.crc32(frame[2:9]))


def test_every_single_byte_corruption_is_detected() -> None:
    frame = encode_frame(Cmd.READ_OUTPUT, 9, bytes(range(40)))
    for pos in range(len(frame)):
        for mask in (0x01, 0x80, 0xFF):
            bad = bytearray(frame)
            bad[pos] ^= mask
            frames = [i for i in decode_all(bytes(bad), 4096) if isinstance(i, Frame)]
            assert frames == [], f"corruption at byte {pos} (xor 0x{mask:02x}) passed"


def test_garbage_resync_and_frame_after_a_bad_one() -> None:
    good = encode_frame(Cmd.ECHO, 3, b"hello")
    bad = bytearray(encode_frame(Cmd.ECHO, 2, b"world"))
    bad[-1] ^= 1
    items = decode_all(b"\x00\xa5\xff junk" + bytes(bad) + b"\xa5" + good + good)
    assert isinstance(items[0], BadFrame) and items[0].reason == "CRC mismatch" and items[0].seq == 2
    assert items[1:] == [Frame(Cmd.ECHO, 3, b"hello")] * 2


def test_impossible_length_is_dropped_at_once() -> None:
    frame = bytearray(encode_frame(Cmd.ECHO, 4, b"x"))
    frame[5:9] = struct.pack("<I", 5000)
    items = decode_all(bytes(frame) + encode_frame(Cmd.ECHO, 5, b"y"), max_payload=1024)
    assert isinstance(items[0], BadFrame) and "length 5000" in items[0].reason
    assert items[1] == Frame(Cmd.ECHO, 5, b"y")


def _c_defines(header: str, prefix: str) -> dict[str, int]:
    text = (FIRMWARE / header).read_text()
    return {m[1]: int(m[2], 16) for m in re.finditer(rf"#define {prefix}(\w+)\s+0x([0-9A-Fa-f]+)u", text)}


def test_status_and_command_codes_match_the_firmware() -> None:
    assert _c_defines("ep_status.h", "EP_STATUS_") == {s.name: s.value for s in Status}
    assert _c_defines("ep_protocol.h", "EP_CMD_") == {c.name: c.value for c in Cmd}
    groups = {s.value >> 4 for s in Status}
    assert groups == {0, 1, 2, 3}
    assert status_text(0x11) == "0x11 BAD_CRC (frame CRC mismatch)"
    assert "unknown" in status_text(0x7E)


def test_identify_parse_round_trip_and_truncation() -> None:
    strings = [b"0.1.0", b"kws", SHA.encode(), b"qemu-mps2-an386", b"cortex-m4"]
    data = struct.pack("<B6I", 1, 1024, 490, 12, 24_300, 25_000_000, 0) + b"".join(bytes([len(s)]) + s for s in strings)
    info = DeviceInfo.parse(data + b"future fields")
    assert (info.max_payload, info.input_bytes, info.model_sha256, info.cpu) == (1024, 490, SHA, "cortex-m4")
    with pytest.raises(DeviceError, match="malformed"):
        DeviceInfo.parse(data[:-3])
    assert info.encode() == data  # what a board sends (the FPGA identity ROM is made with it)
    long = DeviceInfo(1, 256, 4, 4, 0, 12_000_000, 1, "fw", "m" * 300, SHA, "sim", "ice40-up5k int8 engine")
    assert DeviceInfo.parse(long.encode()).model_name == "m" * 255


# ---------------------------------------------------------------------------------------------- client on a pty


@pytest.fixture
def fake():
    with FakeDevice(reverse_plus_one, 700, 700, SHA) as dev:
        yield dev


def client_for(dev: FakeDevice, faults: list[Fault] | None = None, retries: int = 3) -> DeviceClient:
    transport = SerialTransport(dev.port)
    if faults is not None:
        transport = FaultInjectingTransport(transport, faults)
    return DeviceClient(transport, retries=retries, timeout=0.5, invoke_timeout=0.5)


def test_run_chunks_large_input_and_output(fake: FakeDevice) -> None:
    client = client_for(fake)
    info = client.identify()
    assert (info.board, info.max_payload, info.model_sha256) == ("fake-board", 256, SHA)
    data = np.random.default_rng(0).integers(0, 256, 700, dtype=np.uint8).tobytes()
    out, result = client.run(data)
    assert out == reverse_plus_one(data) and result.ticks == 1234
    assert fake.requests.count(Cmd.LOAD_INPUT) == 3 and fake.requests.count(Cmd.READ_OUTPUT) == 3
    assert client.retried == 0
    assert client.echo(b"ping") == b"ping"


@pytest.mark.parametrize("fault", [
    Fault("flip", "rx", cmd=Cmd.READ_OUTPUT, nth=1, offset=20),
    Fault("flip", "rx", cmd=Cmd.INVOKE, offset=-1),
    Fault("drop", "rx", cmd=Cmd.IDENTIFY, offset=30, count=5),
    Fault("swallow", "rx", cmd=Cmd.LOAD_INPUT, nth=2),
    Fault("flip", "tx", cmd=Cmd.LOAD_INPUT, nth=0, offset=50),
    Fault("drop", "tx", cmd=Cmd.INVOKE, offset=4, count=3),
    Fault("swallow", "tx", cmd=Cmd.READ_OUTPUT, nth=0),
    Fault("delay", "rx", cmd=Cmd.INVOKE, seconds=0.7),
])
def test_corrupt_lost_or_late_frames_are_retried(fake: FakeDevice, fault: Fault) -> None:
    client = client_for(fake, [fault])
    data = bytes(range(256)) * 2 + bytes(188)
    out, _ = client.run(data)
    assert out == reverse_plus_one(data)
    assert client.transport.injected == 1 and client.retried >= 1


def test_persistent_corruption_raises_naming_the_command(fake: FakeDevice) -> None:
    client = client_for(fake, [Fault("flip", "rx", cmd=Cmd.READ_OUTPUT, nth=None)], retries=2)
    with pytest.raises(DeviceError, match=r"READ_OUTPUT failed after 3 attempts: corrupt response \(CRC mismatch\)"):
        client.run(bytes(700))


def test_silent_device_raises_with_a_hint(fake: FakeDevice) -> None:
    client = client_for(fake, [Fault("swallow", "tx", nth=None)], retries=1)
    with pytest.raises(DeviceError, match="IDENTIFY failed after 2 attempts: no response within 0.5 s") as exc:
        client.identify()
    assert "port" in exc.value.hint


def test_output_corruption_that_passes_the_frame_crc_is_caught_and_reread(fake: FakeDevice) -> None:
    # "forge" flips a payload bit and recomputes the frame CRC: only the end-to-end output CRC can see it
    client = client_for(fake, [Fault("forge", "rx", cmd=Cmd.READ_OUTPUT, nth=1, offset=10)])
    data = bytes(range(200)) * 3 + bytes(100)
    out, _ = client.run(data)
    assert out == reverse_plus_one(data) and client.transport.injected == 1 and client.retried == 1


def test_persistent_undetectable_output_corruption_is_an_error_not_a_result(fake: FakeDevice) -> None:
    client = client_for(fake, [Fault("forge", "rx", cmd=Cmd.READ_OUTPUT, nth=None, offset=3)], retries=2)
    with pytest.raises(DeviceError, match="does not match the device's CRC-32"):
        client.run(bytes(700))


def test_input_corruption_that_passes_the_frame_crc_is_caught_and_reloaded(fake: FakeDevice) -> None:
    client = client_for(fake, [Fault("forge", "tx", cmd=Cmd.LOAD_INPUT, nth=1, offset=100)])
    data = bytes(range(256)) * 2 + bytes(range(188))
    out, _ = client.run(data)
    assert out == reverse_plus_one(data)
    assert fake.requests.count(Cmd.INVOKE) == 2 and fake.requests.count(Cmd.LOAD_INPUT) == 6


def test_model_failure_and_board_fault_are_reported() -> None:
    with FakeDevice(reverse_plus_one, 8, 8, SHA, model_rc=5) as dev:
        with pytest.raises(DeviceError, match="returned error 5"):
            client_for(dev).run(bytes(8))
    with FakeDevice(reverse_plus_one, 8, 8, SHA, status_override=Status.FAULT) as dev:
        with pytest.raises(DeviceError, match=r"0x31 FAULT .*CFSR=0x00000100 .*PC=0x00001234"):
            client_for(dev).run(bytes(8))


def test_wrong_input_size_is_refused_before_sending(fake: FakeDevice) -> None:
    client = client_for(fake)
    with pytest.raises(DeviceError, match="input is 10 bytes, the device's model takes 700"):
        client.run(bytes(10))


# ---------------------------------------------------------------------------------------------- device backend


def manifest(sha: str = SHA) -> dict:
    return {"model": {"name": "fake", "source_sha256": sha},
            "inputs": [{"name": "a", "shape": [1, 100], "dtype": "int8", "quant": None},
                       {"name": "b", "shape": [150], "dtype": "float32", "quant": None}],
            "outputs": [{"name": "y", "shape": [2, 50], "dtype": "int16", "quant": None},
                        {"name": "z", "shape": [125], "dtype": "float32", "quant": None}]}


def test_device_session_packs_inputs_in_graph_order_little_endian(fake: FakeDevice) -> None:
    session = device_backend.open_session(manifest(), SerialTransport(fake.port))
    rng = np.random.default_rng(3)
    inputs = {"b": rng.standard_normal(150).astype(np.float32), "a": rng.integers(-128, 128, (1, 100), np.int8)}
    out = session.run(inputs)
    raw = inputs["a"].tobytes() + inputs["b"].astype("<f4").tobytes()
    want = reverse_plus_one(raw)
    assert out["y"].dtype == np.int16 and out["y"].shape == (2, 50)
    assert out["y"].tobytes() == np.frombuffer(want[:200], "<i2").astype(np.int16).tobytes()
    assert np.array_equal(out["z"], np.frombuffer(want[200:], "<f4"))
    assert session.last_ticks == 1234


def test_device_session_refuses_another_model(fake: FakeDevice) -> None:
    with pytest.raises(BundleIncompatibleError, match=r"board fake-board runs model 'test-fake' \(sha256 "):
        device_backend.open_session(manifest("ab" * 32), SerialTransport(fake.port))


def test_device_session_refuses_mismatched_buffer_sizes(fake: FakeDevice) -> None:
    m = manifest()
    m["outputs"][0]["shape"] = [2, 51]
    with pytest.raises(BundleIncompatibleError, match="output buffer is 700 bytes, the bundle's outputs need 704"):
        device_backend.open_session(m, SerialTransport(fake.port))


def test_device_backend_load_explains_what_to_do() -> None:
    assert device_backend.available()
    with pytest.raises(Exception, match="needs a board connection") as exc:
        device_backend.load(None)
    assert "--port" in exc.value.hint


def test_only_damaged_request_statuses_are_retried() -> None:
    from edgepack.runtime.serial_protocol import is_retryable

    assert [s.name for s in Status if is_retryable(s)] == ["BAD_FRAME", "BAD_CRC", "BAD_LENGTH", "TIMEOUT"]


def test_unknown_command_is_answered_not_retried(fake: FakeDevice) -> None:
    client = client_for(fake)
    assert client.request(0x42) == (Status.UNKNOWN_CMD, b"")
    assert client.retried == 0


def test_boot_timeout_applies_to_the_first_attempt_only(fake: FakeDevice) -> None:
    import time

    silent = FaultInjectingTransport(SerialTransport(fake.port), [Fault("swallow", "tx", nth=None)])
    client = DeviceClient(silent, retries=1, timeout=0.3, boot_timeout=1.5)
    start = time.monotonic()
    with pytest.raises(DeviceError, match="IDENTIFY failed after 2 attempts: no response within 0.3 s"):
        client.identify()
    assert 1.7 < time.monotonic() - start < 5  # 1.5 s for the first attempt, 0.3 s for the retry
