"""Best-of selection on the host, the manifest's `selection` entry, and the TVM runtime backend."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest
from linux_helpers import AD_INT8, need, needs_tvm, package_linux

from edgepack.errors import BundleIncompatibleError, EdgepackError
from edgepack.runtime import load
from edgepack.runtime.backends import BACKENDS
from edgepack.runtime.backends import tvm as tvm_backend
from edgepack.runtime.bundle import MANIFEST_SCHEMA_PATH, Bundle
from edgepack.runtime.session import choose_backend
from edgepack.targets.linux.select import select_and_record, select_fastest


@pytest.fixture(scope="module")
def ad_x86(tmp_path_factory: pytest.TempPathFactory) -> Path:
    needs_tvm()
    mp = pytest.MonkeyPatch()
    try:
        out = tmp_path_factory.mktemp("select") / "ad.edgepack"
        return package_linux(need(AD_INT8), out, "x86-64", mp, golden_count=8).path
    finally:
        mp.undo()


def test_select_fastest_times_every_verified_backend(ad_x86: Path) -> None:
    chosen, latencies = select_fastest(ad_x86, runs=20, warmup=2)
    assert set(latencies) == {"litert", "onnxruntime", "tvm"}  # reference is the oracle, not a contender
    assert all(r["runs"] == 20 and 0 < r["median_ms"] <= r["p90_ms"] for r in latencies.values())
    assert latencies[chosen]["median_ms"] == min(r["median_ms"] for r in latencies.values())


def test_select_and_record_rewrites_default_and_selection(ad_x86: Path, tmp_path: Path) -> None:
    path = tmp_path / "ad.edgepack"
    path.write_bytes(ad_x86.read_bytes())
    manifest = select_and_record(path, runs=10, warmup=1)
    sel = manifest["selection"]
    assert manifest["default_backend"] == sel["chosen"] and sel["method"] == "fastest"
    assert set(sel["latency"]) == {"litert", "onnxruntime", "tvm"} and sel["runs"] == 10
    assert "x86_64" in sel["machine"]
    jsonschema.validate(manifest, json.loads(MANIFEST_SCHEMA_PATH.read_text()),
                        cls=jsonschema.Draft202012Validator)
    with Bundle.open(path) as b:
        b.verify_all()
        before = {a["path"]: a["sha256"] for a in Bundle.open(ad_x86).manifest["artifacts"]}
        assert {a["path"]: a["sha256"] for a in b.manifest["artifacts"]} == before  # artifacts untouched


def test_selection_rejects_a_backend_that_fails_its_golden_check(ad_x86: Path, tmp_path: Path) -> None:
    path = tmp_path / "ad.edgepack"
    path.write_bytes(ad_x86.read_bytes())
    with Bundle.open(path) as b:
        manifest = b.manifest
    manifest["backends"]["tvm"]["tolerance"] = {"max_abs": 0, "unit": "lsb"}  # TVM is not exact on AD
    from edgepack.packager.bundle_writer import write_bundle

    with Bundle.open(path) as b:
        files = [(a["path"], a["role"], b.artifact(a["path"])) for a in b.manifest["artifacts"]
                 if a["role"] != "golden"]
        gin, gout = b.golden()
    manifest = {k: v for k, v in manifest.items() if k not in ("format_version", "edgepack_version", "artifacts",
                                                                "golden")}
    write_bundle(path, manifest, files, gin, gout)
    chosen, latencies = select_fastest(path, runs=5, warmup=1)
    assert "disagrees with the golden outputs" in latencies["tvm"]["rejected"]
    assert chosen in ("litert", "onnxruntime")


def test_selection_refuses_a_foreign_cpu(tmp_path: Path) -> None:
    from edgepack.packager.pipeline import package

    bundle = package(need(AD_INT8), tmp_path / "ad.edgepack", target="rpi4", golden_count=2,
                     backends=["litert"]).path
    with pytest.raises(EdgepackError, match="latency must be measured on the device's CPU"):
        select_fastest(bundle)


def test_package_select_fastest_for_a_foreign_cpu_leaves_no_bundle(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from edgepack import cli

    out = tmp_path / "pi.edgepack"
    res = CliRunner().invoke(cli.app, ["package", str(need(AD_INT8)), "--target", "rpi4", "--select", "fastest",
                                       "-o", str(out)])
    assert isinstance(res.exception, EdgepackError), res.output
    assert "latency must be measured on the device's CPU" in res.exception.message
    assert not out.exists()


def test_runtime_falls_back_when_the_recorded_default_is_missing(monkeypatch: pytest.MonkeyPatch) -> None:
    assert list(BACKENDS)[:5] == ["litert", "edgetpu", "onnxruntime", "tvm", "reference"]
    manifest = {"backends": {"tvm": {}, "onnxruntime": {}, "litert": {}, "reference": {}}, "default_backend": "tvm"}
    assert choose_backend(manifest, None) == "tvm"
    monkeypatch.setattr(tvm_backend, "available", lambda: False)
    assert choose_backend(manifest, None) == "litert"


def test_tvm_session_runs_with_threads_and_refuses_foreign_code(ad_x86: Path) -> None:
    sess = load(ad_x86, backend="tvm", threads=1)
    try:
        inputs, _ = sess.bundle.golden()
        out = sess.run(inputs)
        assert out["Identity"].shape == (8, 1, 640) and out["Identity"].dtype.name == "int8"
    finally:
        sess.bundle.close()
    with pytest.raises(BundleIncompatibleError, match="compiled for aarch64"):
        tvm_backend.TVMSession(b"\x7fELF\x02\x01" + bytes(12) + b"\xb7\x00" + bytes(40), "x.so", ["a"], ["b"], None)
    assert "apache-tvm==0.27.0.post1" in tvm_backend.missing_hint()


def test_tvm_backend_loads_only_the_tvm_runtime(ad_x86: Path) -> None:
    """With TVM_USE_RUNTIME_LIB=1 (what a device sets) the backend runs without the compiler library."""
    code = ("import sys; from edgepack.runtime import load, verify; s = load(sys.argv[1], backend='tvm'); "
            "r = verify(s); import tvm.base as b; "
            "print(r.passed, b._RUNTIME_ONLY, any(m.startswith('tvm.relax') for m in sys.modules))")
    env = {**os.environ, "TVM_USE_RUNTIME_LIB": "1"}
    proc = subprocess.run([sys.executable, "-c", code, str(ad_x86)], capture_output=True, text=True, env=env,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["True", "True", "False"]
