"""Helpers for the Linux target tests (and device_tests/test_rpi.py): shared models, skips, packaging.

`package_linux` goes through the real pipeline. Until the pipeline asks a target whether a backend runs
on this host (`runs_on_host`, see docs/targets/linux.md), a TVM .so for aarch64 cannot be verified on an
x86-64 host; the helper then routes that one backend through `LinuxTarget.run_golden`, which is what the
pipeline does once it has the hook.
"""

from __future__ import annotations

import inspect
import shutil
from pathlib import Path
from typing import Any

import pytest

SHARED = Path("/work/shared")
MODELS = SHARED / "models"
KWS_INT8 = MODELS / "kws_ref_model.tflite"
KWS_FLOAT_ONNX = MODELS / "kws_ref_model_float.onnx"
KWS_FLOAT_TFLITE = MODELS / "kws_ref_model_float.tflite"
AD_INT8 = MODELS / "ad01_int8.tflite"
AD_FLOAT_ONNX = MODELS / "ad01_fp32.onnx"
KWS_TEST = SHARED / "data" / "kws01_test.npz"


def need(path: Path) -> Path:
    """Skip when a shared model or data file is absent."""
    if not path.is_file():
        pytest.skip(f"{path} is not present (shared MLPerf Tiny files)")
    return path


def tvm_ready() -> str | None:
    """Why TVM's compiler cannot be used here (None when it can)."""
    from edgepack.targets.linux.compile import tvm_missing

    return tvm_missing()


def needs_tvm() -> None:
    """Skip when TVM or the aarch64 cross compiler is missing."""
    why = tvm_ready()
    if why:
        pytest.skip(why)
    if shutil.which("aarch64-linux-gnu-gcc") is None:
        pytest.skip("aarch64-linux-gnu-gcc is not installed (apt-get install gcc-aarch64-linux-gnu)")


def package_linux(model: Path, out: Path, target: str, monkeypatch: pytest.MonkeyPatch, **kwargs: Any) -> Any:
    """`pipeline.package` for a Linux target (see the module docstring for the TVM cross case)."""
    from edgepack.packager import pipeline
    from edgepack.runtime.backends import needs_board

    if "runs_on_host" not in inspect.getsource(pipeline._measure_backends):
        from edgepack.targets import get_target

        foreign = {b for b in ("tvm",) if not get_target(target).runs_on_host(b)}
        monkeypatch.setattr(pipeline, "needs_board", lambda name: name in foreign or needs_board(name))
    return pipeline.package(model, out, target=target, **kwargs)
