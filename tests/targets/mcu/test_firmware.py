"""Firmware build: boards data, linker scripts, gcc flags, size figures (needs arm-none-eabi-gcc, not QEMU)."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import mcu_test_model
import pytest

from edgepack.errors import EdgepackError
from edgepack.targets.mcu.boards import BOARDS, get_board, qemu_boards
from edgepack.targets.mcu.build import FIRMWARE_DIR, build_firmware, find_tool, toolchain_available

needs_gcc = pytest.mark.skipif(not toolchain_available(), reason="arm-none-eabi-gcc not installed")
QEMU_BOARDS = [b.name for b in qemu_boards()]


def _ld_memory(board: str) -> dict[str, tuple[int, int]]:
    text = (FIRMWARE_DIR / "ld" / f"{board}.ld").read_text()
    units = {"": 1, "K": 1024, "M": 1024 * 1024}
    return {m[1]: (int(m[2], 16), int(m[3]) * units[m[4]])
            for m in re.finditer(r"(\w+)\s+\(\w+\)\s*:\s*ORIGIN = 0x([0-9A-Fa-f]+), LENGTH = (\d+)([KM]?)", text)}


@pytest.mark.parametrize("name", QEMU_BOARDS)
def test_linker_script_matches_board_data(name: str) -> None:
    board = get_board(name)
    want = {"FLASH": (board.flash_base, board.flash_bytes), "RAM": (board.ram_base, board.ram_bytes)}
    assert _ld_memory(name) == want


def test_board_data_is_consistent() -> None:
    assert {"qemu-mps2-an385", "qemu-mps2-an386", "qemu-mps2-an500", "qemu-mps2-an505", "qemu-mps3-an547",
            "nucleo-l4r5zi", "nucleo-f746zg", "nrf52840-dk"} <= set(BOARDS)
    for b in BOARDS.values():
        assert ("fpu" in b.features) == (b.float_abi == "hard"), b.name
        assert b.emulated == (b.qemu_machine is not None) and b.flasher in ("qemu", "pyocd")
        assert b.emulated or b.pyocd_target
    assert get_board("qemu-mps3-an547").cflags == ["-mcpu=cortex-m55", "-mthumb", "-mfpu=auto", "-mfloat-abi=hard"]
    assert "mve" in get_board("qemu-mps3-an547").features
    with pytest.raises(EdgepackError, match="unknown board 'mps2-an999'; known boards: qemu-mps2-an385"):
        get_board("mps2-an999")


@needs_gcc
@pytest.mark.parametrize("name", QEMU_BOARDS)
def test_cflags_select_the_right_newlib_multilib(name: str) -> None:
    board = get_board(name)
    out = subprocess.run([find_tool("arm-none-eabi-gcc"), *board.cflags, "--specs=nano.specs",
                          "-print-multi-directory"], capture_output=True, text=True, check=True).stdout.strip()
    assert out.endswith("/hard") if board.float_abi == "hard" else out.endswith("/nofp")


@needs_gcc
@pytest.mark.parametrize("name", QEMU_BOARDS)
def test_firmware_builds_warning_free_and_is_measured(name: str, tmp_path: Path) -> None:
    fw = mcu_test_model.build(name, tmp_path)
    assert fw.elf.is_file() and fw.bin.is_file() and fw.map.is_file()
    assert "-Werror" in fw.command and "-Wextra" in fw.command
    assert 1000 < fw.flash_bytes < 16 * 1024, "startup + protocol + port + test model stay small"
    assert fw.stack_bytes == 16 * 1024
    assert fw.ram_bytes == fw.sections.get(".data", 0) + fw.sections[".bss"] + fw.sections[".stack"]
    assert fw.flash_bytes == fw.sections[".text"] + fw.sections.get(".ARM.exidx", 0) + fw.sections.get(".data", 0)
    assert fw.sections[".bss"] >= 3000 + 1500 + 1024, "input, output and frame buffers are static"
    assert fw.source == "arm-none-eabi-size"
    assert fw.bin.stat().st_size == fw.flash_bytes


@needs_gcc
def test_model_compile_errors_surface_with_gcc_message(tmp_path: Path) -> None:
    src = mcu_test_model.write_model(tmp_path / "model")
    src.write_text(src.read_text() + "\nstatic int unused_variable_in_model;\n")
    with pytest.raises(EdgepackError, match="arm-none-eabi-gcc for qemu-mps2-an386 failed.*unused_variable_in_model"):
        build_firmware("qemu-mps2-an386", [src], [src.parent], tmp_path / "build")


@needs_gcc
@pytest.mark.parametrize("name", ["nucleo-l4r5zi", "nrf52840-dk"])
def test_real_boards_without_a_port_fail_clearly(name: str, tmp_path: Path) -> None:
    with pytest.raises(EdgepackError, match=f"board {name}: no firmware port for the"):
        mcu_test_model.build(name, tmp_path)
