"""`edgepack quantize` and `edgepack package --calib` through typer's CliRunner, on tiny models built in code."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from edgepack import cli
from edgepack.errors import QuantizationError
from edgepack.ir.tflite_export import to_tflite

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "ir"))  # onnx_models, the in-code ONNX builders


@pytest.fixture(autouse=True)
def wide_console(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cli.out, "width", 200)
    monkeypatch.setattr(cli.err, "width", 200)


def invoke(*args: object):
    return CliRunner().invoke(cli.app, [str(a) for a in args])


@pytest.fixture
def files(tiny, tmp_path: Path) -> dict[str, Path]:
    """The tiny float graph as .tflite, 64 calibration samples and 32 labelled evaluation samples."""
    rng = np.random.default_rng(5)
    x = rng.normal(0, 1, (96, 8, 8, 3)).astype(np.float32)
    (tmp_path / "tiny.tflite").write_bytes(to_tflite(tiny))
    np.savez(tmp_path / "calib.npz", x=x[:64])
    np.savez(tmp_path / "eval.npz", x=x[64:], y=rng.integers(0, 5, 32))
    return {"model": tmp_path / "tiny.tflite", "calib": tmp_path / "calib.npz", "eval": tmp_path / "eval.npz"}


def test_quantize_writes_model_and_report(files, tmp_path: Path) -> None:
    out, report = tmp_path / "q.tflite", tmp_path / "report"
    res = invoke("quantize", files["model"], "--calib", files["calib"], "--eval", files["eval"], "--bits", "mixed",
                 "--max-weights-kb", 0.3, "--report", report, "-o", out)
    assert res.exit_code == 0, res.output
    assert out.stat().st_size > 0 and "wrote" in res.stdout and "of int8" in res.stdout
    assert "Δ w4a8" in res.stdout and "narrowed" in res.stdout  # the per-layer sensitivity column
    front = json.loads((report / "report.json").read_text())["front"]
    assert all(isinstance(p["dominated"], bool) for p in front)
    assert not min(front, key=lambda p: p["weight_bytes"])["dominated"]  # nothing is smaller than the smallest
    for name in ("layers.txt", "report.json", "pareto.json"):
        assert (report / name).stat().st_size > 0
    assert (report / "pareto.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    chosen = json.loads((report / "report.json").read_text())["chosen"]
    assert chosen["weight_bytes"] <= 0.3 * 1024

    from edgepack.ir.tflite import from_tflite

    q = from_tflite(out)
    assert q.is_quantized and {q.tensor(n.inputs[1]).quant.bits for n in q.nodes if n.op.value == "CONV_2D"}


def test_quantize_json_onnx_and_uniform_report(files, tmp_path: Path) -> None:
    res = invoke("quantize", files["model"], "--calib", files["calib"], "--eval", files["eval"], "--bits", "int16x8",
                 "--report", tmp_path / "r", "-o", tmp_path / "q.onnx", "--json")
    assert res.exit_code == 0, res.output
    data = json.loads(res.stdout)
    assert data["bits"] == "int16x8" and {r["bits"] for r in data["layers"]} == {"w8a16"}
    assert data["accuracy"] is not None and data["eval_samples"] == 32
    assert all(r["sensitivity"]["w4a8"] >= 0 for r in data["layers"])  # narrowing weights adds noise
    assert (tmp_path / "q.onnx").stat().st_size > 0 and (tmp_path / "r" / "pareto.png").exists()
    chosen = json.loads((tmp_path / "r" / "report.json").read_text())["chosen"]
    assert set(chosen["layer_bits"].values()) == {"w8a16"} and chosen["label"] == "uniform int16x8"


def test_overlap_warns_on_stderr(files, tmp_path: Path) -> None:
    res = invoke("quantize", files["model"], "--calib", files["calib"], "--eval", files["calib"], "-o",
                 tmp_path / "q.tflite")
    # the calibration file has no labels: the eval load fails first; use a labelled copy of the calibration data
    assert res.exit_code != 0
    data = dict(np.load(files["calib"]))
    np.savez(tmp_path / "same.npz", x=data["x"][:10], y=np.zeros(10, np.int64))
    res = invoke("quantize", files["model"], "--calib", files["calib"], "--eval", tmp_path / "same.npz", "-o",
                 tmp_path / "q.tflite")
    assert res.exit_code == 0, res.output
    assert "10 of 10 evaluation samples" in res.stderr and "warning" in res.stderr


@pytest.mark.parametrize(("args", "fragments"), [
    (["--bits", "int8", "--max-weights-kb", "1"], ["--max-weights-kb", "--bits int8"]),
    (["--bits", "mixed"], ["--bits mixed", "--max-weights-kb"]),
    (["--max-accuracy-drop", "1"], ["--max-accuracy-drop", "--eval"]),
    (["--bits", "int2"], ["--bits", "int2"]),
])
def test_conflicting_flags_name_both(files, tmp_path: Path, args: list[str], fragments: list[str]) -> None:
    res = invoke("quantize", files["model"], "--calib", files["calib"], *args, "-o", tmp_path / "q.tflite")
    assert isinstance(res.exception, QuantizationError), res.output
    assert all(f in res.exception.message for f in fragments), res.exception.message
    assert not (tmp_path / "q.tflite").exists()


def test_target_allowed_bits_are_enforced(files, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from edgepack.targets.host import HostTarget

    monkeypatch.setattr(HostTarget, "allowed_bits", frozenset({(8, 8)}))
    res = invoke("quantize", files["model"], "--calib", files["calib"], "--bits", "int4", "-o", tmp_path / "q.tflite")
    assert isinstance(res.exception, QuantizationError)
    assert "--bits int4" in res.exception.message and "target host" in res.exception.message
    assert "w8a8" in res.exception.message


def test_user_errors_are_one_line(files, tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "EDGEPACK_DEBUG"}
    proc = subprocess.run([sys.executable, "-m", "edgepack.cli", "package", str(files["model"]), "--bits", "int4",
                           "-o", str(tmp_path / "m.edgepack")], capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert "Error: --bits needs --calib" in proc.stderr


def test_help_has_examples() -> None:
    res = invoke("quantize", "--help")
    assert res.exit_code == 0 and "--max-weights-kb" in res.stdout and "edgepack quantize kws.onnx" in res.stdout


def test_package_with_calib_verifies_on_every_backend(tmp_path: Path) -> None:
    onnx_models = pytest.importorskip("onnx_models")
    pytest.importorskip("onnxruntime")
    import onnx

    model = tmp_path / "cnn.onnx"
    onnx.save(onnx_models.cnn(), model)
    x = np.random.default_rng(3).normal(0, 1, (40, 1, 3, 12, 10)).astype(np.float32)
    np.savez(tmp_path / "calib.npz", x=x)
    bundle = tmp_path / "cnn.edgepack"
    res = invoke("package", model, "--calib", tmp_path / "calib.npz", "--bits", "mixed", "--max-weights-kb", 2,
                 "-o", bundle, "--json")
    assert res.exit_code == 0, res.output
    m = json.loads(res.stdout)["manifest"]
    assert set(m["backends"]) == {"reference", "litert", "onnxruntime"}
    assert m["backends"]["reference"]["tolerance"] == {"max_abs": 0, "unit": "lsb"}
    assert m["quantization"]["bits"] == "mixed" and m["quantization"]["calibration"]["samples"] == 40
    assert m["golden"]["count"] == 16 and m["inputs"][0]["dtype"] == "int8"
    fc = next(r for r in m["layers"] if r["op"] == "FULLY_CONNECTED")
    assert fc["weight_bits"] in (4, 8) and fc["activation_bits"] in (8, 16)
    res = invoke("verify", bundle, "--json")
    assert res.exit_code == 0, res.output
    report = json.loads(res.stdout)
    assert report["passed"] and {r["backend"] for r in report["reports"]} == {"reference", "litert", "onnxruntime"}
