"""Coral Edge TPU boards: data only (host link, where the runtime library comes from, the parameter cache).

All three boards carry the same Edge TPU (4 TOPS int8, about 8 MB of on-chip SRAM for parameter data);
they differ in how the host reaches it. None is emulated: nothing here can execute the Edge TPU's
instructions, so bundles are verified on the CPU (LiteRT) with the int8 model and, on a machine with
`libedgetpu.so.1` and a Coral device, with the delegate.

There is nothing to flash: a bundle is copied to the host that drives the Edge TPU (the Dev Board itself,
or the computer the USB Accelerator / M.2 card is plugged into) and run there with `edgepack run`.

Sources: https://coral.ai/docs/edgetpu/compiler/#parameter-data-caching (cache),
https://coral.ai/docs/accelerator/get-started/ and https://coral.ai/docs/m2/get-started/ (runtime packages).

Usage: ``board = get_board("coral-usb"); board.runtime_install``
"""

from __future__ import annotations

from dataclasses import dataclass

from edgepack.errors import EdgepackError

MIB = 1024 * 1024
PARAMETER_CACHE_BYTES = 8 * MIB
"""On-chip SRAM for parameter data ("roughly 8 MB", Coral's compiler page). Part of it holds the model's
executable, so the compiler reports a little less as available (about 7 MiB in published logs)."""

CORAL_APT = ("curl https://packages.cloud.google.com/apt/doc/apt-key.gpg | sudo apt-key add -",
             'echo "deb https://packages.cloud.google.com/apt coral-edgetpu-stable main" | '
             "sudo tee /etc/apt/sources.list.d/coral-edgetpu.list",
             "sudo apt-get update")
"""Coral's apt repository, as its documentation adds it (Debian-based systems)."""


@dataclass(frozen=True)
class CoralBoard:
    """A board with an Edge TPU: how the host reaches it and what to install there."""

    name: str
    description: str
    link: str  # how the host talks to the Edge TPU: "usb", "pcie" or "on-module"
    delegate_device: str | None  # `device` option of the delegate ("usb", "pci"); None: the first one found
    host_cpu: str  # CPU that runs the ops the Edge TPU does not map
    runtime_install: tuple[str, ...]  # shell commands installing libedgetpu.so.1 on the host

    @property
    def emulated(self) -> bool:
        """Always False: no emulator runs Edge TPU code."""
        return False


BOARDS: dict[str, CoralBoard] = {
    b.name: b
    for b in [
        CoralBoard("coral-usb", "Coral USB Accelerator plugged into a Linux host (x86-64, aarch64, armv7)", "usb",
                   "usb", "the host's CPU", (*CORAL_APT, "sudo apt-get install libedgetpu1-std")),
        CoralBoard("coral-devboard", "Coral Dev Board (NXP i.MX 8M, 4x Cortex-A53, Mendel Linux)", "on-module",
                   None, "cortex-a53", ("# libedgetpu1-std ships with Mendel Linux; update it with:",
                                        "sudo apt-get update", "sudo apt-get install libedgetpu1-std")),
        CoralBoard("coral-m2", "Coral M.2 / Mini PCIe Accelerator in a Linux host (gasket PCIe driver)", "pcie",
                   "pci", "the host's CPU", (*CORAL_APT, "sudo apt-get install gasket-dkms libedgetpu1-std")),
    ]
}
DEFAULT_BOARD = "coral-usb"


def get_board(name: str | None) -> CoralBoard:
    """The board called `name` (the USB Accelerator when None); EdgepackError listing the boards otherwise."""
    if name is None:
        return BOARDS[DEFAULT_BOARD]
    if name not in BOARDS:
        raise EdgepackError(f"target edgetpu has no board {name!r}; its boards: {', '.join(BOARDS)}",
                            hint="run 'edgepack targets' to list every target with its boards")
    return BOARDS[name]
