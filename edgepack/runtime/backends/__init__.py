"""Runtime backends. Each module offers `NAME`, `available() -> bool`, `missing_hint() -> str` and
`load(bundle, artifact_role, threads) -> BackendSession` whose `run(inputs) -> outputs` takes and returns
{name: array} with the model's exact shapes and dtypes (one sample). A module with `NEEDS_BOARD = True`
(`device`) runs only on a board: it is opened with a transport (`device.open_board_session`), never by
`load`, and is never chosen as a fallback.

Backends import their libraries lazily and never import edgepack.packager, .quantize or .targets.
"""

from __future__ import annotations

import importlib
from types import ModuleType

from edgepack.errors import EdgepackError

# name -> module; the order is the fallback order when a bundle's default backend is unavailable.
BACKENDS = {
    "litert": "edgepack.runtime.backends.litert",
    "edgetpu": "edgepack.runtime.backends.edgetpu",
    "onnxruntime": "edgepack.runtime.backends.onnxruntime",
    "tvm": "edgepack.runtime.backends.tvm",
    "reference": "edgepack.runtime.backends.reference",
    "device": "edgepack.runtime.backends.device",
}


def backend_module(name: str) -> ModuleType:
    """The backend module called `name` (EdgepackError listing the known names otherwise)."""
    if name not in BACKENDS:
        raise EdgepackError(f"unknown backend {name!r}; known backends: {', '.join(BACKENDS)}")
    return importlib.import_module(BACKENDS[name])


def needs_board(name: str) -> bool:
    """True for backends that run on a board (opened with a port, not by `Session`)."""
    return bool(getattr(backend_module(name), "NEEDS_BOARD", False))
