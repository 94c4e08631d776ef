"""LiteRT backend: runs the bundle's .tflite with ai_edge_litert (or the older tflite_runtime).

LiteRT's default CPU path (XNNPACK) is not TFLM-exact for int8 models; bundles state the tolerance
this backend was verified to.
"""

from __future__ import annotations

import importlib
from typing import Any

import numpy as np

from edgepack.errors import BackendUnavailableError
from edgepack.runtime.bundle import Bundle

NAME = "litert"
_MODULES = ("ai_edge_litert.interpreter", "tflite_runtime.interpreter")


def _interpreter_module() -> Any:
    for name in _MODULES:
        try:
            return importlib.import_module(name)
        except ImportError:
            continue
    return None


def available() -> bool:
    """True when ai_edge_litert or tflite_runtime imports."""
    return _interpreter_module() is not None


def missing_hint() -> str:
    """What to install."""
    return "pip install ai-edge-litert   (or tflite-runtime with numpy<2 on older systems)"


class LiteRTSession:
    """One LiteRT interpreter over the bundle's .tflite."""

    def __init__(self, model: bytes, threads: int | None) -> None:
        mod = _interpreter_module()
        if mod is None:
            raise BackendUnavailableError("the litert backend needs LiteRT", hint=missing_hint())
        self.interpreter = mod.Interpreter(model_content=model, num_threads=threads)
        self.interpreter.allocate_tensors()
        self.inputs = {d["name"]: d["index"] for d in self.interpreter.get_input_details()}
        self.outputs = {d["name"]: d["index"] for d in self.interpreter.get_output_details()}

    def run(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """One inference."""
        for name, value in inputs.items():
            self.interpreter.set_tensor(self.inputs[name], value)
        self.interpreter.invoke()
        return {name: self.interpreter.get_tensor(idx).copy() for name, idx in self.outputs.items()}


def load(bundle: Bundle, artifact: str | None = None, threads: int | None = None) -> LiteRTSession:
    """A LiteRT session over the bundle's tflite artifact."""
    return LiteRTSession(bundle.artifact(artifact or "tflite"), threads)
