"""The firmware on QEMU-emulated boards: identify, run, deterministic ticks, calibration, errors, bad frames."""

from __future__ import annotations

import hashlib
import struct
import time
import zlib
from pathlib import Path

import mcu_test_model
import numpy as np
import pytest

from edgepack.errors import EdgepackError
from edgepack.packager.bundle_writer import write_bundle
from edgepack.runtime.backends.device import open_board_session
from edgepack.runtime.bundle import Bundle
from edgepack.runtime.serial_protocol import (
    Cmd,
    DeviceClient,
    DeviceError,
    Fault,
    FaultInjectingTransport,
    Frame,
    FrameDecoder,
    SerialTransport,
    Status,
    encode_frame,
)
from edgepack.runtime.verify import verify
from edgepack.targets.mcu.boards import get_board, qemu_boards
from edgepack.targets.mcu.build import toolchain_available
from edgepack.targets.mcu.qemu import QemuBoard, qemu_available

pytestmark = [
    pytest.mark.skipif(not qemu_available(), reason="qemu-system-arm not installed"),
    pytest.mark.skipif(not toolchain_available(), reason="arm-none-eabi-gcc not installed"),
]
QEMU_BOARDS = [b.name for b in qemu_boards()]


@pytest.fixture(scope="module")
def firmware(tmp_path_factory: pytest.TempPathFactory):
    """build(board, kind) -> FirmwareBuild, each built once per module."""
    cache = {}

    def build(board: str, kind: str = "reverse"):
        if (board, kind) not in cache:
            cache[board, kind] = mcu_test_model.build(board, tmp_path_factory.mktemp(f"{board}-{kind}"), kind)
        return cache[board, kind]

    return build


def inputs(count: int, size: int = 3000, seed: int = 0) -> list[bytes]:
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 256, size, dtype=np.uint8).tobytes() for _ in range(count)]


def read_frame(transport: SerialTransport, timeout: float = 3.0) -> Frame:
    decoder = FrameDecoder()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for item in decoder.feed(transport.read(64, 0.1)):
            return item
    raise AssertionError("no frame from the firmware")


def run_all(board: str, elf: Path, data: list[bytes], kind: str = "reverse") -> tuple[object, list[int]]:
    with QemuBoard(board, elf) as qemu:
        client = DeviceClient(SerialTransport(qemu.port), boot_timeout=10.0)
        info = client.identify()
        ticks = []
        for x in data:
            out, result = client.run(x)
            assert out == mcu_test_model.expected(kind, x)
            ticks.append(result.ticks)
        assert client.retried == 0
        return info, ticks


@pytest.mark.parametrize("board", QEMU_BOARDS)
def test_identify_run_20_inputs_and_ticks_repeat_across_qemu_runs(board: str, firmware) -> None:
    fw = firmware(board)
    data = inputs(20)
    info, ticks = run_all(board, fw.elf, data)
    spec = get_board(board)
    assert (info.board, info.cpu, info.clock_hz) == (board, spec.core, spec.clock_hz)
    assert (info.model_name, info.model_sha256) == ("test-reverse", mcu_test_model.model_sha256("reverse"))
    assert (info.input_bytes, info.output_bytes, info.max_payload) == (3000, 1500, 1024)
    assert min(ticks) > 0
    assert len(set(ticks)) == 1, f"the loop is data independent, ticks must not vary: {ticks}"
    _, again = run_all(board, fw.elf, data[:5])
    assert again == ticks[:5], "-icount shift=0 makes ticks repeat exactly in a fresh QEMU"


@pytest.mark.parametrize("board", QEMU_BOARDS)
def test_ticks_count_instructions_at_the_board_clock(board: str, firmware) -> None:
    # the spin model runs exactly 2 * SPIN_LOOPS instructions (subs + bne): under -icount shift=0 that is
    # 2 * SPIN_LOOPS ns, i.e. 2 * SPIN_LOOPS * clock_hz / 1e9 SysTick ticks (+ a few for the copy and the call)
    info, ticks = run_all(board, firmware(board, "spin").elf, inputs(2, 16), "spin")
    instructions = ticks[0] * 1e9 / info.clock_hz
    assert 2 * mcu_test_model.SPIN_LOOPS <= instructions < 2 * mcu_test_model.SPIN_LOOPS + 500, instructions
    assert ticks[0] == ticks[1]


def test_model_error_and_cpu_fault_are_reported(firmware) -> None:
    with QemuBoard("qemu-mps2-an386", firmware("qemu-mps2-an386", "fail").elf) as qemu:
        client = DeviceClient(SerialTransport(qemu.port), boot_timeout=10.0)
        with pytest.raises(DeviceError, match="the model on the device returned error 7"):
            client.run(bytes(16))
        with pytest.raises(DeviceError, match="READ_OUTPUT: device answered 0x25 NO_OUTPUT"):
            client.read_output(0)
    with QemuBoard("qemu-mps2-an386", firmware("qemu-mps2-an386", "fault").elf) as qemu:
        client = DeviceClient(SerialTransport(qemu.port), retries=0, timeout=1.0)
        with pytest.raises(DeviceError, match=r"INVOKE: device answered 0x31 FAULT .*CFSR=0x00010000 .*PC=0x"):
            client.run(bytes(16))  # CFSR.UNDEFINSTR from the UDF


def test_bad_frames_get_frame_statuses_and_the_firmware_resyncs(firmware) -> None:
    with QemuBoard("qemu-mps2-an386", firmware("qemu-mps2-an386").elf) as qemu:
        transport = SerialTransport(qemu.port)
        client = DeviceClient(transport, retries=0, timeout=1.0)
        bad = bytearray(encode_frame(Cmd.IDENTIFY, 9, b""))
        bad[-1] ^= 0x40
        transport.write(b"\x00\xa5\x13noise" + bytes(bad))
        assert read_frame(transport) == Frame(Cmd.IDENTIFY, 9, bytes([Status.BAD_CRC]))
        assert client.request(Cmd.IDENTIFY)[0] == Status.OK
        assert client.request(0x42)[0] == Status.UNKNOWN_CMD
        assert client.request(Cmd.INVOKE, b"\x00")[0] == Status.BAD_PAYLOAD
        assert client.request(Cmd.LOAD_INPUT, struct.pack("<I", 2999) + b"ab")[0] == Status.INPUT_RANGE
        status, data = client.request(Cmd.INVOKE, struct.pack("<I", 0xDEADBEEF))
        assert status == Status.INPUT_CHECKSUM and struct.unpack("<I", data)[0] == zlib.crc32(bytes(3000))
        transport.write(encode_frame(Cmd.IDENTIFY, 7, b"", version=2))
        assert read_frame(transport) == Frame(Cmd.IDENTIFY, 7, bytes([Status.BAD_VERSION]))
        too_long = encode_frame(Cmd.ECHO, 8, bytes(1025))
        transport.write(too_long[:9])
        assert read_frame(transport) == Frame(Cmd.ECHO, 8, bytes([Status.BAD_LENGTH]))
        transport.write(encode_frame(Cmd.ECHO, 10, b"abc")[:-3])  # stalls: the firmware times the frame out
        # 100 ms of virtual time is ~1e8 polling instructions: seconds of host time on a loaded machine.
        assert read_frame(transport, timeout=30.0) == Frame(Cmd.ECHO, 10, bytes([Status.TIMEOUT]))
        assert client.echo(bytes(range(256)) * 3) == bytes(range(256)) * 3
        assert client.reset().board == "qemu-mps2-an386"


@pytest.mark.parametrize("fault", [
    Fault("flip", "tx", cmd=Cmd.LOAD_INPUT, nth=1, offset=300),
    Fault("drop", "tx", cmd=Cmd.READ_OUTPUT, nth=0, offset=6, count=2),
    Fault("flip", "rx", cmd=Cmd.READ_OUTPUT, nth=1, offset=500),
    Fault("forge", "rx", cmd=Cmd.READ_OUTPUT, nth=0, offset=7),
    Fault("forge", "tx", cmd=Cmd.LOAD_INPUT, nth=2, offset=9),
])
def test_link_faults_against_the_real_firmware_are_recovered(fault: Fault, firmware) -> None:
    with QemuBoard("qemu-mps3-an547", firmware("qemu-mps3-an547").elf) as qemu:
        transport = FaultInjectingTransport(SerialTransport(qemu.port), [fault])
        client = DeviceClient(transport, timeout=1.0)
        x = inputs(1, seed=5)[0]
        out, _ = client.run(x)
        assert out == mcu_test_model.expected("reverse", x)
        assert transport.injected == 1 and client.retried >= 1


def _bundle(path: Path, fw, golden_out_fix=None) -> Path:
    gin = np.stack([np.frombuffer(x, np.uint8) for x in inputs(4, seed=9)])
    gout = np.stack([np.frombuffer(mcu_test_model.expected("reverse", x.tobytes()), np.uint8) for x in gin])
    if golden_out_fix is not None:
        golden_out_fix(gout)
    manifest = {
        "target": "cortex-m", "board": "qemu-mps3-an547",
        "model": {"name": "test-reverse", "source_file": "test.tflite", "source_format": "tflite",
                  "source_sha256": mcu_test_model.model_sha256("reverse")},
        "inputs": [{"name": "x", "shape": [3000], "dtype": "uint8", "quant": None}],
        "outputs": [{"name": "y", "shape": [1500], "dtype": "uint8", "quant": None}],
        "layers": [], "memory": {"flash_bytes": fw.flash_bytes, "ram_bytes": fw.ram_bytes, "source": fw.source},
        "tools": {}, "backends": {"device": {"artifact": "firmware.elf", "tolerance": {"max_abs": 0, "unit": "lsb"}}},
        "default_backend": "device",
    }
    return write_bundle(path, manifest, [("firmware.elf", "firmware", fw.elf.read_bytes())], {"x": gin}, {"y": gout})


def test_verify_on_a_board_passes_and_detects_a_wrong_output(firmware, tmp_path: Path) -> None:
    fw = firmware("qemu-mps3-an547")
    good = _bundle(tmp_path / "good.edgepack", fw)

    def break_one(gout: np.ndarray) -> None:
        gout[2, 700] ^= 0x10  # as if the device computed one wrong value for sample 2

    bad = _bundle(tmp_path / "bad.edgepack", fw, break_one)
    with QemuBoard("qemu-mps3-an547", fw.elf) as qemu, Bundle.open(good) as b1, Bundle.open(bad) as b2:
        session = open_board_session(b1, SerialTransport(qemu.port))
        report = verify(session)
        assert report.passed and report.backend == "device" and report.samples == 4
        assert session.device.last_ticks > 0
        report = verify(open_board_session(b2, SerialTransport(qemu.port)))
        assert not report.passed and report.outputs[0].mismatched_samples == 1
        assert report.outputs[0].max_abs_diff == 16
        # corruption the frame CRC cannot see, on every read: an error, never a silently wrong result
        transport = FaultInjectingTransport(SerialTransport(qemu.port),
                                            [Fault("forge", "rx", cmd=Cmd.READ_OUTPUT, nth=None, offset=11)])
        with pytest.raises(DeviceError, match="does not match the device's CRC-32"):
            verify(open_board_session(b1, transport))


def test_a_board_running_another_model_is_refused(firmware, tmp_path: Path) -> None:
    fw = firmware("qemu-mps3-an547")
    path = _bundle(tmp_path / "b.edgepack", fw)
    with Bundle.open(path) as bundle, QemuBoard("qemu-mps3-an547", firmware("qemu-mps3-an547", "spin").elf) as qemu:
        with pytest.raises(Exception, match=r"runs model 'test-spin' \(sha256 "
                                            + hashlib.sha256(b"edgepack test model spin").hexdigest()[:12]):
            open_board_session(bundle, SerialTransport(qemu.port))


def test_qemu_is_stopped_and_its_crash_is_reported(tmp_path: Path) -> None:
    bogus = tmp_path / "bogus.elf"
    bogus.write_bytes(np.random.default_rng(0).integers(0, 256, 1000, dtype=np.uint8).tobytes())
    with pytest.raises(EdgepackError, match=r"QEMU \(qemu-mps2-an386\) exited with code .*Lockup") as exc:
        with QemuBoard("qemu-mps2-an386", bogus) as qemu:
            DeviceClient(SerialTransport(qemu.port), retries=0, timeout=0.5).identify()
    assert isinstance(exc.value.__cause__, DeviceError)
    assert not qemu.running and qemu.proc is None
    qemu.stop()  # idempotent
    with pytest.raises(EdgepackError, match="firmware ELF not found"):
        QemuBoard("qemu-mps2-an386", tmp_path / "missing.elf").start()
    with pytest.raises(EdgepackError, match="not emulated by QEMU"):
        QemuBoard("nucleo-l4r5zi", bogus)


@pytest.mark.parametrize("board", ["qemu-mps2-an386", "qemu-mps3-an547"])
def test_generated_model_runs_bit_exact_with_repeatable_ticks(board: str, tmp_path: Path) -> None:
    """The code generator's model.c + kernels inside this firmware, against the golden interpreter."""
    from test_codegen import small_graph, stacked_inputs

    from edgepack.ir.reference import Interpreter
    from edgepack.targets.mcu.build import build_firmware
    from edgepack.targets.mcu.codegen import write_sources

    graph = small_graph(np.random.default_rng(0))
    sources = write_sources(graph, "ab" * 32, get_board(board).core, tmp_path / "src")
    fw = build_firmware(board, sources, [tmp_path / "src"], tmp_path / "build")
    samples = stacked_inputs(graph, np.random.default_rng(1), 5)
    want = Interpreter(graph).run(samples)
    runs = []
    for _ in range(2):
        with QemuBoard(board, fw.elf) as qemu:
            client = DeviceClient(SerialTransport(qemu.port), boot_timeout=10.0)
            assert client.identify().model_sha256 == "ab" * 32
            ticks = []
            for i in range(5):
                out, result = client.run(b"".join(samples[n][i].tobytes() for n in graph.inputs))
                assert out == b"".join(want[n][i].tobytes() for n in graph.outputs), f"sample {i} differs"
                ticks.append(result.ticks)
            runs.append(ticks)
    assert min(runs[0]) > 0 and runs[0] == runs[1]
