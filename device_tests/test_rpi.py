"""Emulated Raspberry Pi 4 (`qemu-rpi4`): rpi4 bundles run by edgepack's runtime in a Debian arm64 userland
under `qemu-aarch64-static -cpu cortex-a72`, compared on the host with the bundle's golden outputs.

The userland is built once into ~/.cache/edgepack/rpi-userland-<hash> (needs network to the Debian mirrors
and PyPI the first time); the tests skip with the reason when qemu, apt's arm64 packages or the network are
missing. onnxruntime is not run here: it segfaults on import under qemu-user (FIELD-NOTES); the host tests
cover it. LiteRT's XNNPACK int8 kernels are not TFLM-exact, so LiteRT is held to the tolerance the bundle
states and, on the 1000 KWS inputs, to >= 99 % top-1 agreement with the golden outputs.

    pytest device_tests/test_rpi.py -s         # prints the max LSB difference and top-1 agreement
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "targets" / "linux"))

from linux_helpers import AD_INT8, KWS_INT8, KWS_TEST, need, needs_tvm, package_linux  # noqa: E402

from edgepack.runtime.bundle import Bundle  # noqa: E402
from edgepack.runtime.verify import compare  # noqa: E402
from edgepack.targets.linux.pi_emulator import EmulatorUnavailable, build_userland, run_bundle  # noqa: E402

BOARD = "qemu-rpi4"
CPU = "cortex-a72"
pytestmark = [pytest.mark.board(BOARD), pytest.mark.slow]


@pytest.fixture(scope="module")
def userland() -> Path:
    try:
        return build_userland(progress=lambda msg: print(f"[{BOARD}] {msg}"))
    except EmulatorUnavailable as exc:
        pytest.skip(f"cannot build the emulated Pi userland: {exc.message}")


def _check(bundle_path: Path, outputs: dict[str, dict[str, np.ndarray]], out_dir: Path) -> dict[str, dict]:
    """Compare each backend's emulated outputs with the golden outputs within the bundle's tolerance."""
    with Bundle.open(bundle_path) as bundle:
        _, want = bundle.golden()
        tolerances = {n: spec["tolerance"] for n, spec in bundle.manifest["backends"].items()}
    summary = {}
    for backend, got in outputs.items():
        np.savez(out_dir / f"{bundle_path.stem}-{backend}-{BOARD}.npz", **got)
        tol = tolerances[backend]
        for name, expected in want.items():
            check = compare(name, got[name], expected, float(tol["max_abs"]), float(tol.get("rtol", 0)))
            summary[f"{backend}/{name}"] = {"max_diff": check.max_abs_diff, "unit": check.unit,
                                            "allowed": check.allowed, "top1": check.top1_agreement,
                                            "mismatched": check.mismatched_samples, "passed": check.passed}
    print(json.dumps({bundle_path.name: summary}, indent=1))
    return summary


def test_kws_int8_litert_in_emulated_pi(userland: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    bundle = package_linux(need(KWS_INT8), tmp_path / "kws.edgepack", "rpi4", monkeypatch,
                           golden=need(KWS_TEST), golden_count=1000, backends=["litert"]).path
    run = run_bundle(bundle, userland, ["litert"], cpu=CPU)
    assert not run.errors, run.errors
    assert run.edgepack_from.endswith("-py3-none-any.whl")  # installed from a wheel, as pip would
    summary = _check(bundle, run.outputs, tmp_path)["litert/Identity"]
    assert summary["passed"], summary
    assert summary["top1"] >= 0.99, f"top-1 agreement {summary['top1']:.1%} on the 1000 KWS inputs"


def test_ad_int8_litert_and_reference_in_emulated_pi(userland: Path, tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    bundle = package_linux(need(AD_INT8), tmp_path / "ad.edgepack", "rpi4", monkeypatch, golden_count=64,
                           backends=["litert"]).path
    run = run_bundle(bundle, userland, ["litert", "reference"], cpu=CPU)
    assert not run.errors, run.errors
    summary = _check(bundle, run.outputs, tmp_path)
    assert all(s["passed"] for s in summary.values()), summary
    assert summary["reference/Identity"]["max_diff"] == 0  # the golden interpreter is exact on aarch64 too


@pytest.mark.parametrize("model", [KWS_INT8, AD_INT8], ids=["kws", "ad"])
def test_tvm_aarch64_so_in_emulated_pi(model: Path, userland: Path, tmp_path: Path,
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """The cross-compiled Cortex-A72 .so, loaded by TVM's runtime (TVM_USE_RUNTIME_LIB=1) in the emulated Pi."""
    needs_tvm()
    golden = {"golden": need(KWS_TEST), "golden_count": 100} if model == KWS_INT8 else {"golden_count": 32}
    bundle = package_linux(need(model), tmp_path / f"{model.stem}.edgepack", "rpi4", monkeypatch,
                           backends=["tvm"], **golden).path
    with Bundle.open(bundle) as b:
        entry = b.manifest["backends"]["tvm"]
        assert entry["artifact"] == "model.aarch64.so"
        assert "qemu-rpi4" in entry["verified_on"]  # the pipeline ran the shipped .so in this emulator
    run = run_bundle(bundle, userland, ["tvm"], cpu=CPU)
    assert not run.errors, run.errors
    summary = _check(bundle, run.outputs, tmp_path)
    assert all(s["passed"] for s in summary.values()), summary
