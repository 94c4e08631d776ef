"""Linux targets: registry, check, compile (which artifacts, from what), and packaging through the pipeline."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from linux_helpers import (
    AD_FLOAT_ONNX,
    AD_INT8,
    KWS_FLOAT_ONNX,
    KWS_INT8,
    KWS_TEST,
    need,
    needs_tvm,
    package_linux,
)

from edgepack.errors import EdgepackError
from edgepack.ir.loader import load_model
from edgepack.runtime import load, verify
from edgepack.runtime.backends.tvm import elf_arch
from edgepack.targets import get_target, target_names
from edgepack.targets.linux import LinuxTarget
from edgepack.targets.linux import compile as linux_compile
from edgepack.targets.linux.boards import TARGETS
from edgepack.targets.linux.compile import REPORT_PATH

NAMES = ["rpi3-64", "rpi4", "rpi5", "aarch64", "x86-64"]


def _files(arts) -> dict[str, tuple[str, bytes]]:
    return {a.path: (a.role, a.data) for a in arts.files}


@pytest.mark.parametrize("name", NAMES)
def test_targets_are_registered_with_their_boards(name: str) -> None:
    assert name in target_names()
    tgt = get_target(name)
    assert isinstance(tgt, LinuxTarget)
    assert tgt.allowed_bits == {(8, 8), (4, 8), (8, 16)}
    assert tgt.spec.tvm_target["kind"] == "llvm"
    arch = tgt.spec.arch
    assert all(b.constraints["arch"] == arch for b in tgt.boards)
    if arch == "aarch64":
        assert tgt.spec.tvm_target["mtriple"] == "aarch64-linux-gnu"
        assert any(b.emulated and b.name.startswith("qemu-") for b in tgt.boards)


def test_rpi_cores() -> None:
    assert {n: TARGETS[n].tvm_target.get("mcpu") for n in ("rpi3-64", "rpi4", "rpi5")} == {
        "rpi3-64": "cortex-a53", "rpi4": "cortex-a72", "rpi5": "cortex-a76"}


def test_check_accepts_mlperf_models_and_names_unknown_boards() -> None:
    tgt = get_target("rpi4")
    report = tgt.check(load_model(need(KWS_INT8)))
    assert report.ok and not report.issues
    with pytest.raises(EdgepackError, match="has no board 'nope'"):
        tgt.check(load_model(need(KWS_INT8)), "nope")


def test_compile_without_tvm_builds_litert_onnx_and_reference(monkeypatch: pytest.MonkeyPatch) -> None:
    why = "Apache TVM is not installed; pip install 'edgepack[tvm]'"
    monkeypatch.setattr(linux_compile, "tvm_missing", lambda: why)
    blob = need(KWS_INT8).read_bytes()
    arts = get_target("rpi4").compile(load_model(KWS_INT8), ("tflite", blob), {"backends": None})
    files = _files(arts)
    assert set(arts.backends) == {"reference", "litert", "onnxruntime"}
    assert files["model.tflite"] == ("tflite", blob)  # an int8 TFLite source ships as is
    assert files["model.onnx"][0] == "onnx" and b"QuantizeLinear" in files["model.onnx"][1]  # QDQ export
    assert arts.default_backend == "litert" and arts.board == "rpi4"
    report = json.loads(files[REPORT_PATH][1])
    assert "edgepack[tvm]" in report["left_out"]["tvm"]
    # Asked for by name, a backend that cannot be built is an error that says why.
    with pytest.raises(EdgepackError, match=r"cannot offer backend tvm: Apache TVM is not installed"):
        get_target("rpi4").compile(load_model(KWS_INT8), ("tflite", blob), {"backends": ["tvm"]})


def test_compile_float_onnx_ships_the_source_and_exports_tflite(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(linux_compile, "tvm_missing", lambda: "no TVM in this test")
    blob = need(KWS_FLOAT_ONNX).read_bytes()
    arts = get_target("x86-64").compile(load_model(KWS_FLOAT_ONNX), ("onnx", blob), {"backends": ["onnxruntime"]})
    assert set(arts.backends) == {"reference", "onnxruntime"}
    assert _files(arts)["model.onnx"] == ("onnx", blob)
    arts = get_target("x86-64").compile(load_model(KWS_FLOAT_ONNX), ("onnx", blob), {"backends": None})
    assert _files(arts)["model.tflite"][1][4:8] == b"TFL3"


def test_compile_rejects_unknown_backends() -> None:
    with pytest.raises(EdgepackError, match=r"unknown backend\(s\) \['coreml'\]"):
        get_target("rpi4").compile(load_model(need(AD_INT8)), ("tflite", AD_INT8.read_bytes()),
                                   {"backends": ["coreml"]})


@pytest.mark.parametrize(("name", "arch"), [("rpi4", "aarch64"), ("rpi5", "aarch64"), ("x86-64", "x86_64")])
def test_tvm_shared_object_is_built_for_the_target_cpu(name: str, arch: str) -> None:
    needs_tvm()
    arts = get_target(name).compile(load_model(need(AD_INT8)), ("tflite", AD_INT8.read_bytes()),
                                    {"backends": ["tvm"]})
    role, data = _files(arts)[f"model.{arch}.so"]
    assert role == "tvm" and elf_arch(data) == arch
    assert arts.backends["tvm"] == {"artifact": f"model.{arch}.so"}
    built = json.loads(_files(arts)[REPORT_PATH][1])["backends"]["tvm"]
    assert built["target"] == TARGETS[name].tvm_target and built["version"].startswith("0.27")


@pytest.mark.slow
def test_package_x86_64_kws_int8_every_backend_verifies(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    needs_tvm()
    result = package_linux(need(KWS_INT8), tmp_path / "kws.edgepack", "x86-64", monkeypatch,
                           golden=need(KWS_TEST), golden_count=200)
    m = result.manifest
    assert set(m["backends"]) == {"reference", "litert", "onnxruntime", "tvm"}
    assert m["backends"]["reference"]["tolerance"] == {"max_abs": 0, "unit": "lsb"}
    for name in m["backends"]:
        sess = load(result.path, backend=name)
        try:
            report = verify(sess)
        finally:
            sess.bundle.close()
        assert report.passed, (name, report.to_dict())
        # LiteRT (XNNPACK), onnxruntime (QLinear kernels) and TVM (Relax QNN lowering) are not TFLM-exact on KWS.
        top1 = report.outputs[0].top1_agreement
        assert top1 is not None and top1 >= (0.97 if name == "tvm" else 0.99), (name, top1)


@pytest.mark.slow
def test_package_rpi4_checks_the_cross_compiled_tvm_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """An aarch64 .so cannot load on an x86-64 host: the target checks it in the emulator or through its host twin."""
    needs_tvm()
    result = package_linux(need(AD_INT8), tmp_path / "ad.edgepack", "rpi4", monkeypatch, golden_count=8,
                           backends=["litert", "tvm"])
    entry = result.manifest["backends"]["tvm"]
    assert entry["artifact"] == "model.aarch64.so"
    assert "qemu-rpi4" in entry["verified_on"] or "same Relax module" in entry["verified_on"]
    assert entry["tolerance"]["unit"] == "lsb" and entry["tolerance"]["max_abs"] <= 4
    from edgepack.errors import BundleIncompatibleError

    with pytest.raises(BundleIncompatibleError, match="compiled for aarch64; this machine is x86_64"):
        load(result.path, backend="tvm")


@pytest.mark.slow
def test_package_float_ad_onnx_for_x86_64(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    needs_tvm()
    result = package_linux(need(AD_FLOAT_ONNX), tmp_path / "ad.edgepack", "x86-64", monkeypatch, golden_count=8)
    m = result.manifest
    assert set(m["backends"]) == {"reference", "litert", "onnxruntime", "tvm"}
    assert all(spec["tolerance"]["unit"] == "abs" for spec in m["backends"].values())
