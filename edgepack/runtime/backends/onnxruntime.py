"""ONNX Runtime backend: runs the bundle's .onnx on the CPU execution provider."""

from __future__ import annotations

import importlib.util

import numpy as np

from edgepack.errors import BackendUnavailableError
from edgepack.runtime.bundle import Bundle

NAME = "onnxruntime"


def available() -> bool:
    """True when onnxruntime is installed."""
    return importlib.util.find_spec("onnxruntime") is not None


def missing_hint() -> str:
    """What to install."""
    return "pip install onnxruntime   (or: pip install 'edgepack[onnx]')"


class OrtSession:
    """One onnxruntime InferenceSession over the bundle's .onnx."""

    def __init__(self, model: bytes, threads: int | None) -> None:
        try:
            import onnxruntime as ort
        except ImportError as exc:
            raise BackendUnavailableError("the onnxruntime backend needs onnxruntime", hint=missing_hint()) from exc
        opts = ort.SessionOptions()
        if threads:
            opts.intra_op_num_threads = threads
        opts.log_severity_level = 3
        self.session = ort.InferenceSession(model, sess_options=opts, providers=["CPUExecutionProvider"])
        self.output_names = [o.name for o in self.session.get_outputs()]

    def run(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """One inference."""
        return dict(zip(self.output_names, self.session.run(self.output_names, inputs), strict=True))


def load(bundle: Bundle, artifact: str | None = None, threads: int | None = None) -> OrtSession:
    """An onnxruntime session over the bundle's onnx artifact."""
    return OrtSession(bundle.artifact(artifact or "onnx"), threads)
