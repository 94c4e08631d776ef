"""The serial link to each board: identity, 20 inferences checked byte for byte, deterministic timing.

QEMU boards get firmware built around the test model (tests/mcu_test_model.py) and are started here; a real
board must already run edgepack firmware built from that test model ("reverse" kind).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import mcu_test_model
import numpy as np
import pytest

from edgepack.runtime.serial_protocol import DeviceClient, SerialTransport
from edgepack.targets.mcu.boards import BOARDS, get_board

BOARD_PARAMS = [pytest.param(name, marks=pytest.mark.board(name), id=name) for name in BOARDS]


@pytest.fixture
def client(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[DeviceClient]:
    """A client for the test's board: QEMU started with fresh firmware, or --port for a real board."""
    board = get_board(request.node.get_closest_marker("board").args[0])
    if board.emulated:
        from edgepack.targets.mcu.qemu import QemuBoard

        fw = mcu_test_model.build(board.name, tmp_path)
        with QemuBoard(board, fw.elf) as qemu:
            yield DeviceClient(SerialTransport(qemu.port), boot_timeout=10.0)
    else:
        config = request.config
        transport = SerialTransport(config.getoption("--port"), config.getoption("--baud"))
        try:
            yield DeviceClient(transport, timeout=5.0)
        finally:
            transport.close()


@pytest.mark.parametrize("board", BOARD_PARAMS)
def test_identify_and_20_inferences(board: str, client: DeviceClient) -> None:
    info = client.identify()
    assert info.board == board and info.model_sha256 == mcu_test_model.model_sha256("reverse")
    rng = np.random.default_rng(42)
    ticks = []
    t0 = time.perf_counter()
    for _ in range(20):
        x = rng.integers(0, 256, info.input_bytes, dtype=np.uint8).tobytes()
        out, result = client.run(x)
        assert out == mcu_test_model.expected("reverse", x), "output differs from the host's"
        ticks.append(result.ticks)
    seconds = time.perf_counter() - t0
    assert min(ticks) > 0
    if get_board(board).emulated:
        assert len(set(ticks)) == 1, f"-icount shift=0 makes ticks exact: {ticks}"
    print(f"{board}: {ticks[0]:,} ticks @ {info.clock_hz / 1e6:g} MHz per invoke; "
          f"{seconds / 20 * 1e3:.1f} ms per inference round trip ({info.input_bytes} B in, {info.output_bytes} B out)")
