"""The `edgepack` CLI: happy paths through typer's CliRunner, and user errors through real subprocesses, which
must print one `Error: ...` line (plus an optional `Hint: ...`), no traceback, and exit with status 1."""

from __future__ import annotations

import hashlib
import io
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from typer.testing import CliRunner

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "ir"))  # onnx_models, the in-code ONNX builders

onnx = pytest.importorskip("onnx")

import onnx_models  # noqa: E402

import edgepack  # noqa: E402
import edgepack.runtime as rt  # noqa: E402
from edgepack import cli  # noqa: E402
from edgepack.errors import EdgepackError  # noqa: E402
from edgepack.runtime.backends import backend_module  # noqa: E402

MODELS = Path(__file__).resolve().parents[2].parent / "shared" / "models"
COMMANDS = ["targets", "check", "package", "inspect", "run", "verify", "version"]


@pytest.fixture(autouse=True)
def wide_console(monkeypatch: pytest.MonkeyPatch) -> None:
    """Wide tables, so cell text is not truncated at the runner's 80 columns."""
    monkeypatch.setattr(cli.out, "width", 200)
    monkeypatch.setattr(cli.err, "width", 200)


def invoke(*args: Any) -> Any:
    return CliRunner().invoke(cli.app, [str(a) for a in args])


def run_cli(*args: Any, cwd: Path, debug: bool = False) -> subprocess.CompletedProcess[str]:
    """A real `edgepack` process (python -m edgepack.cli, which calls the console entry point main())."""
    env = {k: v for k, v in os.environ.items() if k != "EDGEPACK_DEBUG"}
    env.update(COLUMNS="200", **({"EDGEPACK_DEBUG": "1"} if debug else {}))
    return subprocess.run([sys.executable, "-m", "edgepack.cli", *map(str, args)], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=120)


def assert_user_error(proc: subprocess.CompletedProcess[str], *fragments: str) -> str:
    """Exit 1, no traceback, exactly one `Error:` line holding every fragment, then at most one `Hint:` line."""
    assert proc.returncode == 1, (proc.returncode, proc.stdout, proc.stderr)
    assert "Traceback" not in proc.stderr and "Traceback" not in proc.stdout, proc.stderr
    lines = proc.stderr.splitlines()
    errors = [i for i, line in enumerate(lines) if line.startswith("Error:")]
    assert len(errors) == 1, proc.stderr
    after = lines[errors[0] + 1:]
    assert after == [] or (len(after) == 1 and after[0].startswith("Hint: ")), proc.stderr
    for fragment in fragments:
        assert fragment in lines[errors[0]], (fragment, lines[errors[0]])
    return lines[errors[0]]


@pytest.fixture(scope="module")
def work(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("cli")
    onnx.save(onnx_models.cnn(), path / "cnn.onnx")
    onnx.save(onnx_models.gemm_bn_3d(), path / "multi.onnx")
    onnx.save(onnx_models.unsupported(), path / "unsupported.onnx")
    return path


@pytest.fixture(scope="module")
def cnn_bundle(work: Path) -> Path:
    result = CliRunner().invoke(cli.app, ["package", str(work / "cnn.onnx"), "-o", str(work / "cnn.edgepack"),
                                          "--golden-count", "4"])
    assert result.exit_code == 0, (result.output, result.exception)
    return work / "cnn.edgepack"


@pytest.fixture(scope="module")
def multi_bundle(work: Path) -> Path:
    """Three inputs x, seq, img and three outputs y1, y2, y3 (float)."""
    bundle = work / "multi.edgepack"
    result = CliRunner().invoke(cli.app, ["package", str(work / "multi.onnx"), "-o", str(bundle),
                                          "--golden-count", "2"])
    assert result.exit_code == 0, (result.output, result.exception)
    return bundle


@pytest.fixture(scope="module")
def kws_bundle(work: Path) -> Path:
    model = MODELS / "kws_ref_model.tflite"
    if not model.is_file():
        pytest.skip(f"shared model not found at {model}")
    from edgepack.packager.pipeline import package

    return package(model, work / "kws.edgepack", golden_count=4, backends=["reference"]).path


# -- help and version -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("command", COMMANDS)
def test_help_has_an_example(command: str) -> None:
    result = invoke(command, "--help")
    assert result.exit_code == 0, result.output
    assert "Example" in result.output and f"edgepack {command}" in result.output, result.output


def test_top_level_help_and_version() -> None:
    result = invoke("--help")
    assert result.exit_code == 0 and all(c in result.output for c in COMMANDS)
    assert invoke().exit_code in (0, 2)  # no_args_is_help
    result = invoke("version")
    assert result.exit_code == 0 and result.stdout.strip() == edgepack.__version__


# -- targets and check ------------------------------------------------------------------------------------------


def test_targets() -> None:
    result = invoke("targets")
    assert result.exit_code == 0 and "host" in result.stdout
    rows = json.loads(invoke("targets", "--json").stdout)
    assert [r["target"] for r in rows][0] == "host"
    assert rows[0]["boards"][0]["name"] == "host" and "description" in rows[0]


def test_check_onnx_model(work: Path) -> None:
    result = invoke("check", work / "cnn.onnx")
    assert result.exit_code == 0, result.output
    assert "input  x: float32[1, 3, 12, 10]" in result.stdout and "output probs: float32[1, 10]" in result.stdout
    assert "CONV_2D" in result.stdout and "FULLY_CONNECTED" in result.stdout
    assert "total: 28,320 MACs, 2,634 parameters" in result.stdout
    report = json.loads(invoke("check", work / "cnn.onnx", "--json").stdout)
    assert report["unsupported"] == [] and report["target"] == "host"
    assert {o["op"] for o in report["ops"]} >= {"Conv", "Gemm", "Softmax"} and all(o["supported"]
                                                                                   for o in report["ops"])
    assert report["total_macs"] == sum(r["macs"] for r in report["layers"]) == 28_320
    assert report["layers"][1]["op"] == "CONV_2D" and report["layers"][1]["output_shape"] == [1, 12, 10, 8]


def test_check_lists_every_unsupported_op(work: Path) -> None:
    result = invoke("check", work / "unsupported.onnx")
    assert result.exit_code == 1
    unsupported = [line for line in result.stderr.splitlines() if line.startswith("unsupported:")]
    assert [line.split()[1] for line in unsupported] == ["Conv", "Resize", "Erf"], result.stderr
    assert "Resize x2 (first: up1)" in result.stderr
    report = json.loads(invoke("check", work / "unsupported.onnx", "--json").stdout)
    assert sorted((u["op"], u["count"]) for u in report["unsupported"]) == [("Conv", 1), ("Erf", 1), ("Resize", 2)]


# -- package -> inspect -> verify -> run ------------------------------------------------------------------------


def test_package_output(work: Path) -> None:
    result = invoke("package", work / "cnn.onnx", "-o", work / "p.edgepack", "--golden-count", "2", "-b",
                    "reference")
    assert result.exit_code == 0, result.output
    assert f"wrote {work / 'p.edgepack'}" in result.stdout and "for target host" in result.stdout
    assert "backend reference    verified on 2 golden pairs, tolerance 1e-05 abs + rtol 1e-05" in result.stdout
    assert "importing cnn.onnx" in result.stderr and "wrote" not in result.stderr
    result = invoke("package", work / "cnn.onnx", "-o", work / "p.zip", "--golden-count", "2", "--json")
    assert result.exit_code == 0 and "usually end in .edgepack" in result.stderr
    data = json.loads(result.stdout)
    assert data["bundle"] == str(work / "p.zip") and set(data["manifest"]["backends"]) == {"reference",
                                                                                            "onnxruntime"}


def test_inspect(cnn_bundle: Path) -> None:
    result = invoke("inspect", cnn_bundle)
    assert result.exit_code == 0, result.output
    for text in ("format 1.0", "model cnn from cnn.onnx", "target host", "input  x: float32[1, 3, 12, 10]",
                 "graph.json", "weights.npz", "model.onnx", "golden.npz", "onnxruntime", "CONV_2D"):
        assert text in result.stdout, text
    manifest = json.loads(invoke("inspect", cnn_bundle, "--json").stdout)
    with rt.Bundle.open(cnn_bundle) as b:
        assert manifest == b.manifest
    assert sorted(a["path"] for a in manifest["artifacts"]) == ["golden.npz", "graph.json", "model.onnx",
                                                                 "weights.npz"]


def test_verify(cnn_bundle: Path) -> None:
    result = invoke("verify", cnn_bundle)
    assert result.exit_code == 0, result.output
    rows = [line for line in result.stdout.splitlines() if "probs" in line]
    assert len(rows) == 2 and all("pass" in row for row in rows), result.stdout
    assert {row.split()[1] for row in rows} == {"reference", "onnxruntime"}
    data = json.loads(invoke("verify", cnn_bundle, "--json").stdout)
    assert data["passed"] is True and data["skipped"] == []
    assert sorted(r["backend"] for r in data["reports"]) == ["onnxruntime", "reference"]
    assert all(r["samples"] == 4 and r["outputs"][0]["name"] == "probs" for r in data["reports"])
    data = json.loads(invoke("verify", cnn_bundle, "-b", "reference", "--json").stdout)
    assert [r["backend"] for r in data["reports"]] == ["reference"] and data["skipped"] == ["onnxruntime"]


def test_verify_reports_a_skipped_backend(cnn_bundle: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(backend_module("onnxruntime"), "available", lambda: False)
    result = invoke("verify", cnn_bundle)
    assert result.exit_code == 0 and "skipped backend onnxruntime: pip install onnxruntime" in result.stderr


def test_verify_with_no_runnable_backend_fails(kws_bundle: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(backend_module("reference"), "available", lambda: False)
    result = invoke("verify", kws_bundle)
    assert result.exit_code == 1 and "none of the bundle's backends (reference) can run here" in str(
        result.exception)


def test_verify_fails_on_wrong_golden_outputs(cnn_bundle: Path, tmp_path: Path) -> None:
    with zipfile.ZipFile(cnn_bundle) as zf:
        members = {info.filename: zf.read(info) for info in zf.infolist()}
    with np.load(io.BytesIO(members["golden.npz"])) as npz:
        arrays = {k: npz[k] for k in npz.files}
    arrays["output_0"][0, 0, 0] += 0.5
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    members["golden.npz"] = buffer.getvalue()
    manifest = json.loads(members["manifest.json"])
    entry = next(a for a in manifest["artifacts"] if a["path"] == "golden.npz")
    entry.update(size=len(buffer.getvalue()), sha256=hashlib.sha256(buffer.getvalue()).hexdigest())
    members["manifest.json"] = json.dumps(manifest).encode()
    bad = tmp_path / "bad.edgepack"
    with zipfile.ZipFile(bad, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    result = invoke("verify", bad, "-b", "reference")
    assert result.exit_code == 1 and "FAIL" in result.stdout, result.output
    data = json.loads(invoke("verify", bad, "-b", "reference", "--json").stdout)
    (check,) = data["reports"][0]["outputs"]
    assert data["passed"] is False and check["name"] == "probs" and check["max_abs_diff"] == pytest.approx(0.5, 1e-5)


def _cnn_inputs(count: int | None) -> np.ndarray:
    shape = (1, 3, 12, 10) if count is None else (count, 1, 3, 12, 10)
    return np.random.default_rng(1).standard_normal(shape).astype(np.float32)


def test_run_npy_single_sample(cnn_bundle: Path, tmp_path: Path) -> None:
    np.save(tmp_path / "x.npy", _cnn_inputs(None))
    result = invoke("run", cnn_bundle, "-i", tmp_path / "x.npy")
    assert result.exit_code == 0, result.output
    assert "probs: float32[1, 10]" in result.stdout and "argmax: [" in result.stdout
    assert "backend onnxruntime" in result.stderr


def test_run_npy_stack_to_npz(cnn_bundle: Path, tmp_path: Path) -> None:
    x = _cnn_inputs(3)
    np.save(tmp_path / "x.npy", x)
    out = tmp_path / "y.npz"
    result = invoke("run", cnn_bundle, "-i", tmp_path / "x.npy", "-o", out, "-b", "reference")
    assert result.exit_code == 0, result.output
    assert "probs: float32[3, 1, 10]" in result.stdout and f"wrote {out}" in result.stderr
    with np.load(out) as saved:
        assert saved.files == ["probs"]
        np.testing.assert_array_equal(saved["probs"], rt.load(cnn_bundle, backend="reference").run(x)["probs"])
    data = json.loads(invoke("run", cnn_bundle, "-i", tmp_path / "x.npy", "-b", "reference", "--json").stdout)
    assert data["backend"] == "reference" and np.asarray(data["outputs"]["probs"]).shape == (3, 1, 10)


def test_run_refuses_bad_paths_before_running(cnn_bundle: Path, tmp_path: Path) -> None:
    np.save(tmp_path / "x.npy", np.zeros((1, 8, 8, 3), np.float32))
    proc = run_cli("run", cnn_bundle, "-i", tmp_path / "x.npy", "-o", tmp_path / "y.txt", cwd=tmp_path)
    assert_user_error(proc, "outputs are written as .npz")
    assert "y.npz" in proc.stderr and not (tmp_path / "y.txt").exists()
    absent = run_cli("run", cnn_bundle, "-i", tmp_path / "absent.npy", cwd=tmp_path)
    assert_user_error(absent, "absent.npy: no such file")


def test_run_npz_named_arrays(multi_bundle: Path, tmp_path: Path) -> None:
    bundle = multi_bundle
    sess = rt.load(bundle, backend="reference")
    rng = np.random.default_rng(2)
    x = {t.name: rng.standard_normal((2, *t.shape)).astype(np.float32) for t in sess.inputs}
    np.savez(tmp_path / "x.npz", **dict(reversed(list(x.items()))))  # order in the file does not matter
    out = tmp_path / "y.npz"
    result = invoke("run", bundle, "-i", tmp_path / "x.npz", "-o", out, "-b", "reference")
    assert result.exit_code == 0, result.output
    want = sess.run(x)
    with np.load(out) as saved:
        assert sorted(saved.files) == ["y1", "y2", "y3"]
        for name in want:
            np.testing.assert_array_equal(saved[name], want[name])


def test_run_dequantize(kws_bundle: Path, tmp_path: Path) -> None:
    x = np.random.default_rng(4).integers(-128, 128, (2, 1, 49, 10, 1)).astype(np.int8)
    np.save(tmp_path / "x.npy", x)
    assert invoke("run", kws_bundle, "-i", tmp_path / "x.npy", "-o", tmp_path / "q.npz").exit_code == 0
    result = invoke("run", kws_bundle, "-i", tmp_path / "x.npy", "-o", tmp_path / "r.npz", "--dequantize")
    assert result.exit_code == 0 and "Identity: float32[2, 1, 12]" in result.stdout, result.output
    with np.load(tmp_path / "q.npz") as q, np.load(tmp_path / "r.npz") as r:
        assert q["Identity"].dtype == np.int8 and r["Identity"].dtype == np.float32
        np.testing.assert_array_equal(r["Identity"], ((q["Identity"].astype(np.float64) + 128) / 256).astype(
            np.float32))


def test_errors_propagate_as_edgepack_errors_in_process(work: Path) -> None:
    """Inside the app (CliRunner) errors stay exceptions; main() turns them into one line (tested below)."""
    result = invoke("check", work / "nope.onnx")
    assert result.exit_code == 1 and isinstance(result.exception, EdgepackError)


# -- user errors in a real process ------------------------------------------------------------------------------


def _zip(path: Path, members: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in members.items():
            zf.writestr(zipfile.ZipInfo(name), data)
    return path


def test_error_missing_and_unknown_model_files(work: Path, tmp_path: Path) -> None:
    assert_user_error(run_cli("check", tmp_path / "nope.onnx", cwd=tmp_path), "nope.onnx: no such file")
    (tmp_path / "model.txt").write_text("hello")
    line = assert_user_error(run_cli("package", tmp_path / "model.txt", "-o", tmp_path / "m.edgepack", cwd=tmp_path),
                             "unknown model format '.txt'")
    assert ".tflite, .onnx" in line
    (tmp_path / "garbage.tflite").write_bytes(bytes(range(256)) * 4)
    assert_user_error(run_cli("check", tmp_path / "garbage.tflite", cwd=tmp_path), "garbage.tflite",
                      "not a valid TFLite flatbuffer")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["garbage.tflite", "model.txt"]
    # Brackets in a path are printed as they are, not read as rich markup.
    assert_user_error(run_cli("check", "a[/b]c[red].onnx", cwd=tmp_path), "Error: a[/b]c[red].onnx: no such file")


def test_error_debug_variable_shows_the_traceback(tmp_path: Path) -> None:
    proc = run_cli("check", tmp_path / "nope.onnx", cwd=tmp_path, debug=True)
    assert proc.returncode == 1 and "Traceback" in proc.stderr and "ModelError" in proc.stderr


def test_error_damaged_bundles(cnn_bundle: Path, tmp_path: Path) -> None:
    data = cnn_bundle.read_bytes()
    (tmp_path / "truncated.edgepack").write_bytes(data[: len(data) // 2])
    assert_user_error(run_cli("inspect", tmp_path / "truncated.edgepack", cwd=tmp_path), "truncated.edgepack",
                      "not an edgepack bundle")

    # One flipped byte inside graph.json's compressed data: the checksum (CRC or sha256) catches it.
    with zipfile.ZipFile(cnn_bundle) as zf:
        info = zf.getinfo("graph.json")
    start = info.header_offset + 30 + len(info.filename.encode()) + len(info.extra)
    flipped = bytearray(data)
    flipped[start + info.compress_size // 2] ^= 0x01
    (tmp_path / "flipped.edgepack").write_bytes(bytes(flipped))
    for command in ("inspect", "verify"):
        assert_user_error(run_cli(command, tmp_path / "flipped.edgepack", cwd=tmp_path), "graph.json",
                          "corrupted")

    evil = _zip(tmp_path / "evil.edgepack", {"manifest.json": b"{}", "../x": b"boom"})
    assert_user_error(run_cli("inspect", evil, cwd=tmp_path), "unsafe member name '../x'")
    assert not (tmp_path.parent / "x").exists()


def test_error_unknown_target_and_backend(work: Path, cnn_bundle: Path, tmp_path: Path) -> None:
    line = assert_user_error(run_cli("package", work / "cnn.onnx", "-o", tmp_path / "x.edgepack", "-t", "mcu9",
                                     cwd=tmp_path), "unknown target 'mcu9'", "known targets: host")
    assert "mcu9" in line
    assert_user_error(run_cli("check", work / "cnn.onnx", "--target", "mcu9", cwd=tmp_path), "unknown target")
    assert_user_error(run_cli("package", work / "cnn.onnx", "-o", tmp_path / "x.edgepack", "-b", "tvm",
                              cwd=tmp_path), "cannot offer backend(s) ['tvm']")
    np.save(tmp_path / "x.npy", _cnn_inputs(None))
    assert_user_error(run_cli("run", cnn_bundle, "-i", tmp_path / "x.npy", "-b", "litert", cwd=tmp_path),
                      "backend 'litert' is not in this bundle (it offers: onnxruntime, reference)")
    assert_user_error(run_cli("verify", cnn_bundle, "-b", "nosuch", cwd=tmp_path), "backend 'nosuch'")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.npy"]


def test_error_bad_inputs(cnn_bundle: Path, multi_bundle: Path, tmp_path: Path) -> None:
    (tmp_path / "text.npy").write_text("not numpy")
    assert_user_error(run_cli("run", cnn_bundle, "-i", tmp_path / "text.npy", cwd=tmp_path),
                      "text.npy: not a .npy or .npz file")
    np.save(tmp_path / "ok.npy", _cnn_inputs(None))
    assert_user_error(run_cli("run", cnn_bundle, "-i", tmp_path / "absent.npy", cwd=tmp_path),
                      "absent.npy: no such file")
    np.savez(tmp_path / "x.npz", x=_cnn_inputs(None))
    (tmp_path / "cut.npz").write_bytes((tmp_path / "x.npz").read_bytes()[:200])
    assert_user_error(run_cli("run", cnn_bundle, "-i", tmp_path / "cut.npz", cwd=tmp_path),
                      "cut.npz: not a readable .npy/.npz file")
    np.savez(tmp_path / "wrong_name.npz", x=np.zeros((1, 6), np.float32), image=np.zeros((1, 2, 5, 4), np.float32))
    assert_user_error(run_cli("run", multi_bundle, "-i", tmp_path / "wrong_name.npz", cwd=tmp_path),
                      "wrong_name.npz: no array for input(s) ['seq', 'img']")
    assert_user_error(run_cli("run", multi_bundle, "-i", tmp_path / "ok.npy", cwd=tmp_path),
                      "a .npy holds one array but the model takes 3 inputs ['x', 'seq', 'img']")
    np.save(tmp_path / "shape.npy", np.zeros((3, 12, 10), np.float32))
    assert_user_error(run_cli("run", cnn_bundle, "-i", tmp_path / "shape.npy", cwd=tmp_path),
                      "input 'x': expected shape [1, 3, 12, 10]", "got [3, 12, 10]")
    assert_user_error(run_cli("run", cnn_bundle, "-i", tmp_path / "ok.npy", "-o", tmp_path / "no" / "y.npz",
                              cwd=tmp_path), "y.npz: cannot write the outputs")
