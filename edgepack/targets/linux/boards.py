"""Linux targets and their boards: one `LinuxSpec` per target, data only.

Each aarch64 board names the `-cpu` model `qemu-aarch64-static` emulates it with (DESIGN §5): the
`qemu-rpi*` boards run the bundle's runtime in an emulated Debian arm64 userland (`pi_emulator.py`);
the real boards are reached over SSH (`deploy.py`). `x86-64` runs on the host itself.

Usage: ``spec = TARGETS["rpi4"]; spec.tvm_target["mcpu"] == "cortex-a72"``
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from edgepack.errors import EdgepackError


@dataclass(frozen=True)
class LinuxBoard:
    """A machine a Linux target runs on: emulated (qemu-user) or real (SSH)."""

    name: str
    description: str
    emulated: bool
    qemu_cpu: str | None = None  # `qemu-aarch64-static -cpu` model for emulated boards


@dataclass(frozen=True)
class LinuxSpec:
    """One Linux target: CPU architecture, core, TVM target and boards."""

    name: str
    arch: str  # platform.machine() of the device: "aarch64" or "x86_64"
    cpu: str  # core name, e.g. "cortex-a72"; "generic" when not tuned for one core
    description: str
    tvm_target: dict[str, Any]
    boards: tuple[LinuxBoard, ...] = field(default_factory=tuple)
    cross_compiler: str | None = None  # C compiler for TVM's shared object; None = the host's

    @property
    def default_board(self) -> LinuxBoard:
        """The first board: the real machine (the manifest's `board` unless --board names another)."""
        return self.boards[0]

    @property
    def emulated_board(self) -> LinuxBoard | None:
        """The qemu-user board, if the target has one."""
        return next((b for b in self.boards if b.emulated), None)


_AARCH64_CC = "aarch64-linux-gnu-gcc"


def _llvm_aarch64(cpu: str | None) -> dict[str, Any]:
    target: dict[str, Any] = {"kind": "llvm", "mtriple": "aarch64-linux-gnu"}
    if cpu:
        target["mcpu"] = cpu
    return target


def _qemu(name: str, cpu: str) -> LinuxBoard:
    return LinuxBoard(name, f"Debian arm64 userland under qemu-aarch64-static -cpu {cpu}", True, cpu)


def _ssh(name: str, what: str) -> LinuxBoard:
    return LinuxBoard(name, f"{what}, reached over SSH (edgepack deploy)", False)


TARGETS: dict[str, LinuxSpec] = {
    "rpi3-64": LinuxSpec("rpi3-64", "aarch64", "cortex-a53", "Raspberry Pi 3 (64-bit OS, 4x Cortex-A53)",
                         _llvm_aarch64("cortex-a53"),
                         (_ssh("rpi3", "a Raspberry Pi 3 running a 64-bit OS"), _qemu("qemu-rpi3", "cortex-a53")),
                         _AARCH64_CC),
    "rpi4": LinuxSpec("rpi4", "aarch64", "cortex-a72", "Raspberry Pi 4 / 400 / CM4 (4x Cortex-A72)",
                      _llvm_aarch64("cortex-a72"),
                      (_ssh("rpi4", "a Raspberry Pi 4 running a 64-bit OS"), _qemu("qemu-rpi4", "cortex-a72")),
                      _AARCH64_CC),
    "rpi5": LinuxSpec("rpi5", "aarch64", "cortex-a76", "Raspberry Pi 5 (4x Cortex-A76)", _llvm_aarch64("cortex-a76"),
                      (_ssh("rpi5", "a Raspberry Pi 5"), _qemu("qemu-rpi5", "cortex-a76")), _AARCH64_CC),
    "aarch64": LinuxSpec("aarch64", "aarch64", "generic", "any aarch64 Linux machine (generic ARMv8-A code)",
                         _llvm_aarch64(None),
                         (_ssh("ssh", "any aarch64 Linux machine"), _qemu("qemu-aarch64", "cortex-a53")), _AARCH64_CC),
    "x86-64": LinuxSpec("x86-64", "x86_64", "generic", "x86-64 Linux (this host or another x86-64 machine)",
                        {"kind": "llvm"},
                        (LinuxBoard("host", "the machine running edgepack", False),
                         _ssh("ssh", "any x86-64 Linux machine"))),
}


def get_spec(name: str) -> LinuxSpec:
    """The Linux target called `name` (EdgepackError listing the known names otherwise)."""
    if name not in TARGETS:
        raise EdgepackError(f"unknown Linux target {name!r}; known: {', '.join(TARGETS)}")
    return TARGETS[name]


def get_board(spec: LinuxSpec, name: str | None) -> LinuxBoard:
    """`spec`'s board called `name` (its default board when None)."""
    if name is None:
        return spec.default_board
    for board in spec.boards:
        if board.name == name:
            return board
    raise EdgepackError(f"target {spec.name} has no board {name!r}; its boards: "
                        f"{', '.join(b.name for b in spec.boards)}",
                        hint="run 'edgepack targets' to list every target with its boards")
