"""Shared checks for the frontend tests: package a converted file and verify every backend of the bundle.

Frameworks are imported inside the tests (never at collection), so `pytest -m "not slow"` stays fast and a
missing framework skips with a reason naming the package to install.
"""

from __future__ import annotations

import importlib.util
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from edgepack.packager.pipeline import package
from edgepack.runtime.bundle import Bundle
from edgepack.runtime.session import Session
from edgepack.runtime.verify import verify


def needs(*modules: str, extra: str) -> pytest.MarkDecorator:
    """Skip unless every module imports; the reason names the first missing one and the extra."""
    missing = [m for m in modules if importlib.util.find_spec(m) is None]
    return pytest.mark.skipif(bool(missing), reason=f"{missing[0] if missing else ''} not installed "
                                                    f"(pip install 'edgepack[{extra}]')")


def mcu_missing() -> str | None:
    """Why the cortex-m4 packaging tests cannot run here (None when they can)."""
    try:
        from edgepack.quantize.options import QuantizeOptions  # noqa: F401
        from edgepack.targets import get_target
        from edgepack.targets.mcu.build import toolchain_available
        from edgepack.targets.mcu.qemu import qemu_available

        get_target("cortex-m4")
    except Exception as exc:  # the quantizer or the MCU target is not importable in this tree
        return f"the cortex-m4 target or the quantizer is not available ({type(exc).__name__}: {exc})"
    if not toolchain_available() or shutil.which("arm-none-eabi-gcc") is None:
        return "arm-none-eabi-gcc not installed (apt-get install gcc-arm-none-eabi libnewlib-arm-none-eabi)"
    if not qemu_available():
        return "qemu-system-arm not installed (apt-get install qemu-system-arm)"
    return None


def package_and_verify(model: Path, tmp_path: Path, target: str = "host",
                       calib: dict[str, np.ndarray] | None = None, golden_count: int = 8) -> dict[str, Any]:
    """Package `model` for `target` (quantized with `calib` when given), then verify every backend that runs
    on this machine against the bundle's golden pairs; returns the manifest."""
    quantize = None
    if calib is not None:
        from edgepack.quantize.options import QuantizeOptions

        np.savez(tmp_path / "calib.npz", **calib)
        quantize = QuantizeOptions(calib=tmp_path / "calib.npz")
    out = tmp_path / f"{model.stem}-{target}.edgepack"
    manifest = package(model, out, target=target, quantize=quantize, golden_count=golden_count).manifest
    with Bundle.open(out) as bundle:
        for backend in manifest["backends"]:
            if backend == "device":  # run on the QEMU board by `package` itself; its tolerance is recorded
                continue
            report = verify(Session(bundle, backend))
            assert report.passed, (backend, report.to_dict())
    return manifest


def run_reference(model: Path, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Import `model` with edgepack's importer and run one sample with the golden reference interpreter."""
    from edgepack.ir.loader import load_model
    from edgepack.ir.reference import run

    return run(load_model(model), inputs)


def assert_close(got: np.ndarray, want: np.ndarray, atol: float = 1e-4) -> None:
    """Float outputs agree within `atol` (shape first, then the largest difference and where it is)."""
    assert got.shape == want.shape, f"shape {got.shape} != {want.shape}"
    diff = np.abs(got.astype(np.float64) - want.astype(np.float64))
    assert diff.max() <= atol, f"max |diff| {diff.max():.3g} at {np.unravel_index(diff.argmax(), diff.shape)}"
