"""The serial link in RTL (ep_link.v) on the sim board: the protocol of docs/serial-protocol.md, byte for
byte as the Cortex-M firmware speaks it, plus the weight commands; faults on the wire; exact ticks.

The bundles are small engine and unrolled MLPs packaged without synthesis (implement=False), so each
sim board builds in seconds; KWS, with synthesis, is in test_fpga_target.py and device_tests/.
"""

from __future__ import annotations

import json
import re
import struct
import zlib
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from fpga_helpers import mlp_graph, need

from edgepack.runtime.bundle import Bundle
from edgepack.runtime.serial_protocol import (
    Cmd,
    DeviceClient,
    DeviceError,
    Fault,
    FaultInjectingTransport,
    SerialTransport,
    Status,
    encode_frame,
)
from edgepack.targets.board_session import run_connected, verify_connected
from edgepack.targets.fpga.boards import connect
from edgepack.targets.fpga.link import port_cycles
from edgepack.targets.fpga.sim import RTL_DIR


def _package(tmp: Path, arch: str, count: int = 12) -> Path:
    from edgepack.ir.tflite_export import to_tflite
    from edgepack.packager.pipeline import package

    (tmp / "mlp.tflite").write_bytes(to_tflite(mlp_graph()))
    out = tmp / f"mlp_{arch}.edgepack"
    package(tmp / "mlp.tflite", out, target="ice40-up5k", golden_count=count,
            target_options={"fpga_arch": arch, "implement": False})
    return out


@pytest.fixture(scope="module")
def engine_bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    need("verilator")
    return _package(tmp_path_factory.mktemp("link"), "engine")


@pytest.fixture
def board(engine_bundle: Path) -> Iterator:
    with connect(engine_bundle, "sim") as b:
        yield b


def _client(board, faults: list[Fault] | None = None, retries: int = 3) -> DeviceClient:
    transport = SerialTransport(board.port)
    return DeviceClient(FaultInjectingTransport(transport, faults) if faults else transport, retries=retries,
                        timeout=2.0)


def _weights(bundle: Path) -> bytes:
    with Bundle.open(bundle) as b:
        return b.artifact(b.manifest["backends"]["device"]["weights_image"])


def _raw(client: DeviceClient, cmd: int, payload: bytes = b"") -> tuple[int, bytes]:
    return client.request(cmd, payload)


def test_status_codes_in_rtl_match_the_protocol() -> None:
    text = (RTL_DIR / "ep_link.v").read_text()
    codes = {name: int(value, 16) for name, value in re.findall(r"(\w+) = 8'h([0-9A-F]{2})", text)}
    for name, value in codes.items():
        if name in Status.__members__:
            assert Status[name] == value, name
        elif name.startswith("C_"):
            assert Cmd[name[2:]] == value, name
    assert {"BAD_CRC", "TIMEOUT", "NO_WEIGHTS", "WEIGHTS_CHECKSUM", "C_COMMIT_WEIGHTS"} <= set(codes)


def test_identify_weights_and_every_error_status(engine_bundle: Path, board) -> None:
    client = _client(board)
    info = client.identify()
    with Bundle.open(engine_bundle) as b:
        m = b.manifest
    assert info.model_sha256 == m["model"]["source_sha256"] and info.max_payload == 256
    assert (info.input_bytes, info.output_bytes, info.clock_hz) == (16, 4, 12_000_000)
    assert info.needs_weights and not info.weights_committed and info.board == "icebreaker"
    # INVOKE before the weights: refused, never a result computed from an empty SPRAM
    assert _raw(client, Cmd.INVOKE, struct.pack("<I", zlib.crc32(bytes(16))))[0] == Status.NO_WEIGHTS
    image = _weights(engine_bundle)
    assert _raw(client, Cmd.LOAD_WEIGHTS, struct.pack("<I", 2) + bytes(4))[0] == Status.BAD_PAYLOAD  # unaligned
    assert _raw(client, Cmd.LOAD_WEIGHTS, struct.pack("<I", len(image)) + bytes(4))[0] == Status.WEIGHTS_RANGE
    client.load_weights(image)
    status, data = _raw(client, Cmd.COMMIT_WEIGHTS, struct.pack("<I", zlib.crc32(image) ^ 1))
    assert status == Status.WEIGHTS_CHECKSUM and struct.unpack("<I", data)[0] == zlib.crc32(image)
    client.load_weights(image)
    info = client.identify()
    assert info.weights_committed and info.weights_crc32 == zlib.crc32(image)
    # the firmware's statuses, same codes and payloads
    assert _raw(client, Cmd.READ_OUTPUT, struct.pack("<II", 0, 4))[0] == Status.NO_OUTPUT
    assert _raw(client, Cmd.LOAD_INPUT, struct.pack("<I", 10) + bytes(7))[0] == Status.INPUT_RANGE
    assert _raw(client, Cmd.LOAD_INPUT, b"\x00")[0] == Status.BAD_PAYLOAD
    assert _raw(client, 0x42)[0] == Status.UNKNOWN_CMD
    status, data = _raw(client, Cmd.INVOKE, struct.pack("<I", 12345))
    assert status == Status.INPUT_CHECKSUM and len(data) == 4
    x = bytes(range(16))
    out, result = client.run(x)
    assert _raw(client, Cmd.READ_OUTPUT, struct.pack("<II", 2, 3))[0] == Status.OUTPUT_RANGE
    assert client.echo(b"edgepack" * 20) == b"edgepack" * 20
    assert len(out) == 4 and result.model_rc == 0
    fpga = _fpga_json(engine_bundle)
    assert result.ticks == fpga["link"]["cycles_per_invoke"] == port_cycles(
        "engine", fpga["link"]["params"], fpga["cycles_per_inference"])


def test_frame_errors_are_answered_like_the_firmware(board) -> None:
    client = _client(board)
    client.identify()
    transport = client.transport
    too_long = encode_frame(Cmd.ECHO, 7, bytes(300))
    bad_crc = bytearray(encode_frame(Cmd.ECHO, 8, b"abc"))
    bad_crc[-1] ^= 0xFF
    old = encode_frame(Cmd.IDENTIFY, 9, b"", version=2)
    for frame, seq, want in ((too_long[:12], 7, Status.BAD_LENGTH), (bytes(bad_crc), 8, Status.BAD_CRC),
                             (old, 9, Status.BAD_VERSION), (encode_frame(Cmd.ECHO, 10, b"xy")[:-2], 10,
                                                            Status.TIMEOUT)):
        transport.reset_input()
        transport.write(frame)
        got = client._await(frame[3], seq, 5.0)
        assert not isinstance(got, str), got
        assert got.payload[0] == want, (want, got)


@pytest.mark.parametrize("fault", [
    Fault("flip", "rx", cmd=Cmd.READ_OUTPUT, nth=0, offset=11),
    Fault("flip", "tx", cmd=Cmd.LOAD_INPUT, nth=0, offset=12),
    Fault("drop", "tx", cmd=Cmd.INVOKE, offset=4, count=3),
    Fault("forge", "tx", cmd=Cmd.LOAD_INPUT, nth=0, offset=10),
    Fault("forge", "rx", cmd=Cmd.READ_OUTPUT, nth=0, offset=12),  # an output byte, frame CRC recomputed
    Fault("forge", "tx", cmd=Cmd.LOAD_WEIGHTS, nth=0, offset=-1),  # a weight byte: caught by COMMIT_WEIGHTS
])
def test_faults_on_the_wire_are_retried_and_results_stay_exact(engine_bundle: Path, board, fault: Fault) -> None:
    with Bundle.open(engine_bundle) as b:
        inputs, want = b.golden()
    client = _client(board, [fault])
    client.load_weights(_weights(engine_bundle))
    x = inputs["input"][0]
    out, _ = client.run(np.ascontiguousarray(x, dtype=np.int8).tobytes())
    assert client.transport.injected == 1 and client.retried >= 1
    # the board returns the engine's output; this graph has no host nodes, so it is the model output
    np.testing.assert_array_equal(np.frombuffer(out, np.int8), want["output"][0].reshape(-1))


def test_persistent_corruption_is_an_error_not_a_result(engine_bundle: Path, board) -> None:
    client = _client(board, [Fault("forge", "rx", cmd=Cmd.READ_OUTPUT, nth=None, offset=12)], retries=1)
    client.load_weights(_weights(engine_bundle))
    with pytest.raises(DeviceError, match="does not match the device's CRC-32"):
        client.run(bytes(16))


def _fpga_json(bundle: Path) -> dict:
    with Bundle.open(bundle) as b:
        return json.loads(b.artifact("fpga.json"))


def test_bundle_verifies_and_runs_on_the_sim_board(engine_bundle: Path, board) -> None:
    report = verify_connected(engine_bundle, board)
    assert report.passed and report.samples == 12 and report.emulated
    assert set(report.ticks) == {_fpga_json(engine_bundle)["link"]["cycles_per_invoke"]}
    assert report.instructions_per_inference is None and report.ms_per_inference is not None
    with Bundle.open(engine_bundle) as b:
        inputs, want = b.golden()
        measured = b.manifest["backends"]["device"]["measured"]
    assert measured["board"] == "sim" and measured["samples"] == 12  # packaging ran them on the sim board
    run = run_connected(engine_bundle, board, {"input": inputs["input"][:3]})
    np.testing.assert_array_equal(run.outputs["output"], want["output"][:3])


def test_unrolled_bundle_speaks_the_same_protocol(tmp_path: Path) -> None:
    need("verilator", "da4ml")
    bundle = _package(tmp_path, "unrolled", count=20)
    fpga = _fpga_json(bundle)
    assert fpga["arch"] == "unrolled"
    with connect(bundle, "sim") as b:
        report = verify_connected(bundle, b)
        client = _client(b)
        info = client.identify()
        assert not info.needs_weights
        assert _raw(client, Cmd.LOAD_WEIGHTS, struct.pack("<I", 0))[0] == Status.UNKNOWN_CMD
    assert report.passed and report.samples == 20
    assert set(report.ticks) == {port_cycles("unrolled", fpga["link"]["params"])}


def test_other_boards_and_bundles_are_refused(engine_bundle: Path, tmp_path: Path) -> None:
    from edgepack.errors import EdgepackError

    with pytest.raises(EdgepackError, match="is a xc7 board"):
        connect(engine_bundle, "arty-a7-35")
    with pytest.raises(EdgepackError, match="real board: give its serial port"):
        connect(engine_bundle, "icebreaker")
    with pytest.raises(EdgepackError, match="built for icebreaker, not upduino"):
        connect(engine_bundle, "upduino", "/dev/null")
