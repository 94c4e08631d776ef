"""Cortex-M boards: data only (core, compiler flags, memory map, UART, clock, how to flash).

The QEMU boards are checked by running firmware on qemu-system-arm 7.2 (tests/targets/mcu/test_firmware_qemu.py);
their memory maps were read from QEMU's `info mtree` and match Arm's application notes (AN385, AN386, AN500,
AN505, AN547). AN505 and AN547 boot in the secure state, so the firmware uses the secure aliases
(code at 0x10000000, data at 0x38000000 / 0x30000000, UART0 at 0x50200000 / 0x59303000).

Real boards are listed with the figures from their datasheets; their firmware ports are not written yet
(`port` names the family file that would hold them), so building for them raises a clear error.

Usage: ``board = get_board("qemu-mps2-an386"); board.cflags``
"""

from __future__ import annotations

from dataclasses import dataclass, field

from edgepack.errors import EdgepackError

KIB = 1024
MIB = 1024 * KIB


@dataclass(frozen=True)
class McuBoard:
    """One board: what gcc needs (-mcpu/-mfpu/-mfloat-abi), where memory is, how to reach its UART."""

    name: str
    description: str
    core: str  # gcc -mcpu value, e.g. "cortex-m4"
    fpu: str | None  # gcc -mfpu value; None for soft float, "auto" to let -mcpu decide
    float_abi: str  # gcc -mfloat-abi value
    features: tuple[str, ...]  # "fpu", "fpu-dp", "dsp", "mve", "trustzone"
    flash_base: int
    flash_bytes: int
    ram_base: int
    ram_bytes: int
    clock_hz: int  # core clock; SysTick counts it, the UART baud divider derives from it
    port: str  # firmware/ports/port_<port>.c
    uart_base: int | None  # UART0 as the core sees it
    flasher: str  # "qemu" or "pyocd"
    qemu_machine: str | None = None
    pyocd_target: str | None = None
    notes: tuple[str, ...] = field(default=())

    @property
    def emulated(self) -> bool:
        """True for boards run under qemu-system-arm."""
        return self.flasher == "qemu"

    @property
    def cflags(self) -> list[str]:
        """Target flags for arm-none-eabi-gcc (compile and link)."""
        flags = [f"-mcpu={self.core}", "-mthumb", f"-mfloat-abi={self.float_abi}"]
        if self.fpu is not None:
            flags.insert(2, f"-mfpu={self.fpu}")
        return flags

    @property
    def linker_script(self) -> str:
        """File name of the board's linker script in firmware/ld/."""
        return f"{self.name}.ld"


BOARDS: dict[str, McuBoard] = {
    b.name: b
    for b in [
        McuBoard(
            "qemu-mps2-an385", "Arm MPS2 AN385 (Cortex-M3) emulated by QEMU", "cortex-m3", None, "soft",
            (), 0x0000_0000, 4 * MIB, 0x2000_0000, 4 * MIB, 25_000_000, "cmsdk", 0x4000_4000, "qemu",
            qemu_machine="mps2-an385"),
        McuBoard(
            "qemu-mps2-an386", "Arm MPS2 AN386 (Cortex-M4F) emulated by QEMU", "cortex-m4", "fpv4-sp-d16", "hard",
            ("fpu", "dsp"), 0x0000_0000, 4 * MIB, 0x2000_0000, 4 * MIB, 25_000_000, "cmsdk", 0x4000_4000, "qemu",
            qemu_machine="mps2-an386"),
        McuBoard(
            "qemu-mps2-an500", "Arm MPS2 AN500 (Cortex-M7) emulated by QEMU", "cortex-m7", "fpv5-d16", "hard",
            ("fpu", "fpu-dp", "dsp"), 0x0000_0000, 4 * MIB, 0x2000_0000, 4 * MIB, 25_000_000, "cmsdk", 0x4000_4000,
            "qemu", qemu_machine="mps2-an500"),
        McuBoard(
            "qemu-mps2-an505", "Arm MPS2 AN505 (Cortex-M33, SSE-200) emulated by QEMU, secure state", "cortex-m33",
            "fpv5-sp-d16", "hard", ("fpu", "dsp", "trustzone"), 0x1000_0000, 4 * MIB, 0x3800_0000, 4 * MIB,
            20_000_000, "cmsdk", 0x5020_0000, "qemu", qemu_machine="mps2-an505",
            notes=("runs in the secure state: secure aliases of SSRAM1 (code), SSRAM2/3 (data) and UART0",)),
        McuBoard(
            "qemu-mps3-an547", "Arm MPS3 AN547 (Cortex-M55, SSE-300) emulated by QEMU, secure state", "cortex-m55",
            "auto", "hard", ("fpu", "fpu-dp", "dsp", "mve", "trustzone"), 0x1000_0000, 512 * KIB, 0x3000_0000,
            512 * KIB, 32_000_000, "cmsdk", 0x5930_3000, "qemu", qemu_machine="mps3-an547",
            notes=("runs in the secure state: code in ITCM, data in DTCM, UART0 secure alias",)),
        McuBoard(
            "nucleo-l4r5zi", "ST NUCLEO-L4R5ZI (STM32L4R5, Cortex-M4F @120 MHz), MLPerf Tiny reference board",
            "cortex-m4", "fpv4-sp-d16", "hard", ("fpu", "dsp"), 0x0800_0000, 2 * MIB, 0x2000_0000, 640 * KIB,
            120_000_000, "stm32", None, "pyocd", pyocd_target="stm32l4r5zitx"),
        McuBoard(
            "nucleo-f746zg", "ST NUCLEO-F746ZG (STM32F746, Cortex-M7 @216 MHz)", "cortex-m7", "fpv5-sp-d16", "hard",
            ("fpu", "dsp"), 0x0800_0000, 1 * MIB, 0x2000_0000, 320 * KIB, 216_000_000, "stm32", None, "pyocd",
            pyocd_target="stm32f746zgtx"),
        McuBoard(
            "nrf52840-dk", "Nordic nRF52840-DK (Cortex-M4F @64 MHz)", "cortex-m4", "fpv4-sp-d16", "hard",
            ("fpu", "dsp"), 0x0000_0000, 1 * MIB, 0x2000_0000, 256 * KIB, 64_000_000, "nrf52", None, "pyocd",
            pyocd_target="nrf52840"),
        McuBoard(
            "rpi-pico", "Raspberry Pi Pico (RP2040, dual Cortex-M0+ @125 MHz, 2 MB QSPI flash)", "cortex-m0plus",
            None, "soft", (), 0x1000_0000, 2 * MIB, 0x2000_0000, 264 * KIB, 125_000_000, "rp2040", None, "pyocd",
            pyocd_target="rp2040"),
    ]
}


def get_board(name: str) -> McuBoard:
    """The board called `name`. Usage: ``get_board("qemu-mps3-an547")``"""
    try:
        return BOARDS[name]
    except KeyError:
        raise EdgepackError(f"unknown board {name!r}; known boards: {', '.join(BOARDS)}",
                            hint="run 'edgepack targets' to list targets and boards") from None


def boards_for(core: str) -> list[McuBoard]:
    """The boards with this core, emulated ones first. Usage: ``boards_for("cortex-m4")``"""
    return sorted((b for b in BOARDS.values() if b.core == core), key=lambda b: not b.emulated)


def qemu_boards() -> list[McuBoard]:
    """The boards run under qemu-system-arm."""
    return [b for b in BOARDS.values() if b.emulated]
