"""`Session`: one bundle, one backend; run inferences with user-friendly inputs."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from edgepack.errors import BackendUnavailableError, BundleError, BundleIncompatibleError, InputError
from edgepack.runtime.backends import BACKENDS, backend_module
from edgepack.runtime.bundle import Bundle
from edgepack.runtime.tensors import TensorInfo


def choose_backend(manifest: dict[str, Any], requested: str | None) -> str:
    """The backend to use: the requested one, else the bundle's default, else the first available.

    Fallback order when the default's library is missing: the bundle's other backends in the
    order of `edgepack.runtime.backends.BACKENDS` (litert, edgetpu, onnxruntime, tvm, reference).
    """
    offered = manifest.get("backends", {})
    if requested is not None:
        if requested not in offered:
            raise BundleIncompatibleError(
                f"backend {requested!r} is not in this bundle (it offers: {', '.join(offered) or 'none'})",
                hint="rebuild with 'edgepack package ... --backend' or pick one of those")
        module = backend_module(requested)
        if not module.available():
            raise BackendUnavailableError(f"backend {requested!r} cannot run here: its library is not installed",
                                          hint=module.missing_hint())
        return requested
    default = manifest.get("default_backend")
    # A default this reader does not know (a newer writer's backend) is skipped, not an error.
    order = ([default] if default in offered and default in BACKENDS else []) + [
        b for b in BACKENDS if b in offered and b != default]
    for name in order:
        if backend_module(name).available():
            return name
    hints = "; ".join(f"{n}: {backend_module(n).missing_hint()}" for n in order) or "none offered"
    raise BackendUnavailableError(f"no backend of this bundle can run here ({hints})")


class Session:
    """A loaded bundle bound to one backend.

    `inputs` / `outputs` describe the model's tensors. `run` accepts one array (single-input
    models), a list in input order, or a name -> array dict; each array may be one sample or a stack
    of samples with one more leading axis. Float values given to an integer input are quantized.
    """

    def __init__(self, bundle: Bundle, backend: str | None = None, threads: int | None = None,
                 require_accelerator: bool = False) -> None:
        self.bundle = bundle
        self.manifest = bundle.manifest
        self.backend = choose_backend(self.manifest, backend)
        self.tolerance: dict[str, Any] = self.manifest["backends"][self.backend].get("tolerance", {})
        artifact = self.manifest["backends"][self.backend].get("artifact")
        if require_accelerator:
            if not getattr(backend_module(self.backend), "ACCELERATOR", False):
                raise BackendUnavailableError(
                    f"an accelerator is required, but backend {self.backend!r} runs on the CPU",
                    hint="pick an accelerator backend (e.g. --backend edgetpu for an Edge TPU bundle)")
            self._impl = backend_module(self.backend).load(bundle, artifact, threads, require_accelerator=True)
        else:
            self._impl = backend_module(self.backend).load(bundle, artifact, threads)
        self.inputs = [TensorInfo.from_manifest(s) for s in self.manifest["inputs"]]
        self.outputs = [TensorInfo.from_manifest(s) for s in self.manifest["outputs"]]

    def _normalize(self, inputs: Any) -> tuple[dict[str, np.ndarray], int | None]:
        if isinstance(inputs, Mapping):
            unknown = sorted(set(inputs) - {t.name for t in self.inputs})
            if unknown:
                raise InputError(f"unknown input name(s) {unknown}; the model takes {[t.name for t in self.inputs]}")
            values = [inputs.get(t.name) for t in self.inputs]
        elif isinstance(inputs, Sequence) and not isinstance(inputs, np.ndarray | str):
            values = list(inputs)
        else:
            values = [inputs]
        if len(values) != len(self.inputs) or any(v is None for v in values):
            raise InputError(f"the model takes {len(self.inputs)} input(s) {[t.name for t in self.inputs]}, "
                             f"got {len([v for v in values if v is not None])}")
        arrays: dict[str, np.ndarray] = {}
        counts = set()
        for info, value in zip(self.inputs, values, strict=True):
            arr, stacked = info.coerce(value)
            arrays[info.name] = arr
            counts.add(arr.shape[0] if stacked else None)
        if len(counts) > 1:
            raise InputError("inputs must all be single samples or all stacks of the same length")
        return arrays, counts.pop()

    def run(self, inputs: Any, dequantize: bool = False) -> dict[str, np.ndarray]:
        """Run inference; returns output name -> array (stacked like the inputs).

        Usage: ``session.run(x)`` or ``session.run({"input_1": x}, dequantize=True)``
        """
        arrays, count = self._normalize(inputs)
        if count is None:
            out = self._impl.run(arrays)
        else:
            per_sample = [self._impl.run({k: v[i] for k, v in arrays.items()}) for i in range(count)]
            out = {t.name: np.stack([r[t.name] for r in per_sample]) if per_sample
                   else np.zeros((0, *t.shape), t.dtype) for t in self.outputs}
        if dequantize:
            out = {t.name: t.dequantize(out[t.name]) if t.quantized else out[t.name] for t in self.outputs}
        return out


def load(path: str | os.PathLike[str], backend: str | None = None, threads: int | None = None,
         require_accelerator: bool = False) -> Session:
    """Open a bundle and bind it to a backend. Usage: ``sess = edgepack.runtime.load("kws.edgepack")``"""
    bundle = Bundle.open(path)
    try:
        return Session(bundle, backend, threads, require_accelerator)
    except BaseException:
        bundle.close()
        raise


__all__ = ["BundleError", "Session", "choose_backend", "load"]
