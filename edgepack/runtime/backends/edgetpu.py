"""Edge TPU backend: the compiled model through the libedgetpu LiteRT delegate, or the int8 model on the CPU.

A separate backend rather than an option of `litert`, because it needs two artifacts and a policy:

- with `libedgetpu.so.1` loadable (`accelerator_available()`) and the bundle's `edgetpu` artifact compiled
  (model_edgetpu.tflite), the compiled model runs with the delegate; Coral's runtime maps the Edge TPU
  custom op, the rest runs on the CPU;
- otherwise it runs the bundle's CPU-runnable int8 model (role `tflite`) with LiteRT and issues one
  `EdgeTpuFallbackWarning` saying why, or raises `AcceleratorUnavailableError` when the caller asked for
  `require_accelerator=True` (`edgepack run --require-accelerator`). A compiled model alone cannot run on
  the CPU: its Edge TPU op exists only in libedgetpu.

`load_delegate` raises OSError when the library is absent, and the partly built `Delegate` then prints a
spurious `AttributeError ... '_library'` from its `__del__` when collected (FIELD-NOTES); `load_libedgetpu`
collects it at once with that one message filtered out.

Runtime only: imports numpy, LiteRT (lazily) and edgepack.runtime; never packager, quantize or targets.

Usage: ``sess = load(bundle, "model_edgetpu.tflite", require_accelerator=True); sess.run({"input_1": x})``
"""

from __future__ import annotations

import contextlib
import gc
import sys
import warnings
from collections.abc import Iterator
from typing import Any

import numpy as np

from edgepack.errors import BackendUnavailableError
from edgepack.runtime.backends import litert
from edgepack.runtime.bundle import Bundle

NAME = "edgetpu"
ACCELERATOR = True  # runs on an accelerator when present (`require_accelerator` refuses the CPU fallback)
LIBRARY = "libedgetpu.so.1"
"""Coral's runtime library (`libedgetpu1-std` or `libedgetpu1-max` from Coral's apt repository)."""
RUNTIME_HINT = ("install Coral's Edge TPU runtime: add Coral's apt repository (https://coral.ai/docs/accelerator/"
                "get-started/) and run 'sudo apt-get install libedgetpu1-std', then plug in the Edge TPU")
_CPU_ROLE = "tflite"


class EdgeTpuFallbackWarning(RuntimeWarning):
    """Backend edgetpu runs the int8 model on the CPU (no libedgetpu, or no compiled model in the bundle)."""


class AcceleratorUnavailableError(BackendUnavailableError):
    """`require_accelerator=True` and the Edge TPU cannot be used here; the message says why."""


def available() -> bool:
    """True when LiteRT imports: the CPU path always exists; the Edge TPU itself is `accelerator_available()`."""
    return litert.available()


def missing_hint() -> str:
    """What to install."""
    return litert.missing_hint() + "; for the Edge TPU itself: " + RUNTIME_HINT


@contextlib.contextmanager
def _quiet_delegate_del() -> Iterator[None]:
    """Drop the one known unraisable error of a failed `load_delegate` (Delegate.__del__ without `_library`)."""
    previous = sys.unraisablehook

    def hook(unraisable: Any) -> None:
        if isinstance(unraisable.exc_value, AttributeError) and "_library" in str(unraisable.exc_value):
            return
        previous(unraisable)

    sys.unraisablehook = hook
    try:
        yield
    finally:
        gc.collect()  # the half-built Delegate sits in a reference cycle with the traceback: collect it here
        sys.unraisablehook = previous


def load_libedgetpu(device: str | None = None) -> tuple[Any | None, str | None]:
    """(delegate, None), or (None, why it cannot be loaded). `device`: 'usb', 'pci', 'usb:0', ... or None."""
    mod = litert._interpreter_module()  # noqa: SLF001 - the same LiteRT module the litert backend uses
    if mod is None:
        return None, "LiteRT is not installed"
    options = {"device": device} if device else {}
    why: str | None = None
    with _quiet_delegate_del():
        try:
            return mod.load_delegate(LIBRARY, options), None
        except (OSError, ValueError, RuntimeError) as exc:
            why = f"{LIBRARY} could not be loaded ({exc})"
    return None, why


def accelerator_available(device: str | None = None) -> bool:
    """True when libedgetpu loads and finds an Edge TPU (the delegate fails without a device)."""
    delegate, _ = load_libedgetpu(device)
    return delegate is not None


class EdgeTpuSession:
    """One LiteRT interpreter: the compiled model with the delegate, or the int8 model on the CPU.

    `where` says which, for reports ('Edge TPU (libedgetpu.so.1 delegate)' or 'CPU (LiteRT, model.tflite): ...').
    """

    def __init__(self, compiled: bytes | None, cpu_model: bytes, threads: int | None, require_accelerator: bool,
                 device: str | None = None) -> None:
        mod = litert._interpreter_module()  # noqa: SLF001
        if mod is None:
            raise BackendUnavailableError("the edgetpu backend needs LiteRT", hint=litert.missing_hint())
        why: str | None = None
        delegate = None
        if compiled is None:
            why = "the bundle has no model compiled for the Edge TPU (run 'edgepack compile-edgetpu BUNDLE')"
        else:
            delegate, why = load_libedgetpu(device)
        if delegate is not None and compiled is not None:
            self.interpreter = mod.Interpreter(model_content=compiled, experimental_delegates=[delegate],
                                               num_threads=threads)
            self.where = f"Edge TPU ({LIBRARY} delegate)"
        else:
            if require_accelerator:
                raise AcceleratorUnavailableError(f"the Edge TPU cannot be used here: {why}",
                                                  hint=RUNTIME_HINT if compiled is not None else
                                                  "compile the bundle on an x86-64 machine with edgetpu_compiler")
            warnings.warn(f"backend edgetpu runs on the CPU: {why}", EdgeTpuFallbackWarning, stacklevel=3)
            self.interpreter = mod.Interpreter(model_content=cpu_model, num_threads=threads)
            self.where = f"CPU (LiteRT, model.tflite): {why}"
        self.interpreter.allocate_tensors()
        self.inputs = {d["name"]: d["index"] for d in self.interpreter.get_input_details()}
        self.outputs = {d["name"]: d["index"] for d in self.interpreter.get_output_details()}

    def run(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """One inference."""
        for name, value in inputs.items():
            self.interpreter.set_tensor(self.inputs[name], value)
        self.interpreter.invoke()
        return {name: self.interpreter.get_tensor(idx).copy() for name, idx in self.outputs.items()}


def load(bundle: Bundle, artifact: str | None = None, threads: int | None = None,
         require_accelerator: bool = False, device: str | None = None) -> EdgeTpuSession:
    """A session over the bundle's Edge TPU artifact (see the module docstring).

    `require_accelerator` turns the CPU fallback into AcceleratorUnavailableError; it never changes a result.
    """
    entry = bundle.artifact_entry(artifact or "edgetpu") if artifact or _has_role(bundle, "edgetpu") else None
    compiled = bundle.artifact(entry["path"]) if entry is not None and entry["role"] == "edgetpu" else None
    return EdgeTpuSession(compiled, bundle.artifact(_CPU_ROLE), threads, require_accelerator, device)


def _has_role(bundle: Bundle, role: str) -> bool:
    return any(a["role"] == role for a in bundle.artifacts)
