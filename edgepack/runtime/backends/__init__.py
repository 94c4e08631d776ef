"""Runtime backends. Each module offers `NAME`, `available() -> bool`, `missing_hint() -> str` and
`load(bundle, artifact_role, threads) -> BackendSession` whose `run(inputs) -> outputs` takes and returns
{name: array} with the model's exact shapes and dtypes (one sample).

Backends import their libraries lazily and never import edgepack.packager, .quantize or .targets.
"""

from __future__ import annotations

import importlib
from types import ModuleType

from edgepack.errors import EdgepackError

# name -> module; the order is the fallback order when a bundle's default backend is unavailable.
BACKENDS = {
    "litert": "edgepack.runtime.backends.litert",
    "onnxruntime": "edgepack.runtime.backends.onnxruntime",
    "reference": "edgepack.runtime.backends.reference",
}


def backend_module(name: str) -> ModuleType:
    """The backend module called `name` (EdgepackError listing the known names otherwise)."""
    if name not in BACKENDS:
        raise EdgepackError(f"unknown backend {name!r}; known backends: {', '.join(BACKENDS)}")
    return importlib.import_module(BACKENDS[name])
