"""Targets by name. Built-in targets are listed here; outside targets register through the
`edgepack.targets` entry-point group (a plug-in that fails to load raises an error naming it).
"""

from __future__ import annotations

import importlib
from importlib.metadata import entry_points

from edgepack.errors import EdgepackError
from edgepack.targets.base import Target

BUILTIN = {
    "host": "edgepack.targets.host:HostTarget",
    "cortex-m0plus": "edgepack.targets.mcu:cortex_m0plus",
    "cortex-m3": "edgepack.targets.mcu:cortex_m3",
    "cortex-m4": "edgepack.targets.mcu:cortex_m4",
    "cortex-m7": "edgepack.targets.mcu:cortex_m7",
    "cortex-m33": "edgepack.targets.mcu:cortex_m33",
    "cortex-m55": "edgepack.targets.mcu:cortex_m55",
    "rpi3-64": "edgepack.targets.linux:rpi3_64",
    "rpi4": "edgepack.targets.linux:rpi4",
    "rpi5": "edgepack.targets.linux:rpi5",
    "aarch64": "edgepack.targets.linux:aarch64",
    "x86-64": "edgepack.targets.linux:x86_64",
    "edgetpu": "edgepack.targets.edgetpu:edgetpu",
    "ice40-up5k": "edgepack.targets.fpga:ice40_up5k",
    "xc7": "edgepack.targets.fpga:xc7",
}


def _load(spec: str) -> Target:
    module, _, attr = spec.partition(":")
    return getattr(importlib.import_module(module), attr)()


def target_names() -> list[str]:
    """Names of every known target (built-in first, then plug-ins)."""
    return list(BUILTIN) + sorted(ep.name for ep in entry_points(group="edgepack.targets") if ep.name not in BUILTIN)


def get_target(name: str) -> Target:
    """The target called `name`; EdgepackError listing the known names otherwise."""
    if name in BUILTIN:
        return _load(BUILTIN[name])
    for ep in entry_points(group="edgepack.targets"):
        if ep.name == name:
            try:
                return ep.load()()
            except Exception as exc:
                raise EdgepackError(f"target plug-in {name!r} ({ep.value}) failed to load: {exc}") from exc
    raise EdgepackError(f"unknown target {name!r}; known targets: {', '.join(target_names())}",
                        hint="run 'edgepack targets' to list them with their boards")
