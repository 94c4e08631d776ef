"""The packaging pipeline: manifest contents, golden inputs, backend selection, and that a failure of any
step (unsupported op, impossible backend, a backend that disagrees) leaves no bundle and no temporary file."""

from __future__ import annotations

import hashlib
import importlib.metadata
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "ir"))  # onnx_models, the in-code ONNX builders

onnx = pytest.importorskip("onnx")

import onnx_models  # noqa: E402

import edgepack  # noqa: E402
from edgepack.errors import EdgepackError, InputError, UnsupportedOpsError  # noqa: E402
from edgepack.ir.loader import load_model  # noqa: E402
from edgepack.packager import pipeline  # noqa: E402
from edgepack.packager.pipeline import package  # noqa: E402
from edgepack.runtime.backends import backend_module  # noqa: E402
from edgepack.runtime.bundle import Bundle  # noqa: E402
from edgepack.runtime.tensors import TensorInfo  # noqa: E402

MODELS = Path(__file__).resolve().parents[2].parent / "shared" / "models"
DATA = MODELS.parent / "data"


def _shared(name: str) -> Path:
    path = MODELS / name
    if not path.is_file():
        pytest.skip(f"shared file {name} not found at {path}")
    return path


def _save(model: Any, path: Path) -> Path:
    onnx.save(model, path)
    return path


def _golden(bundle: Path) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    with Bundle.open(bundle) as b:
        return b.golden()


def _only_files(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir())


# -- manifest ---------------------------------------------------------------------------------------------------


def test_float_onnx_manifest(tmp_path: Path) -> None:
    model = _save(onnx_models.cnn(), tmp_path / "cnn.onnx")
    result = package(model, tmp_path / "cnn.edgepack")
    assert result.path == tmp_path / "cnn.edgepack" and result.path.is_file()
    with Bundle.open(result.path) as b:
        b.verify_all()
        m = b.manifest
    assert result.manifest == m  # what package returns is what it wrote
    assert m["format_version"] == "1.0" and m["edgepack_version"] == edgepack.__version__
    assert m["target"] == "host" and m["board"] is None
    assert m["model"] == {"name": "cnn", "source_file": "cnn.onnx", "source_format": "onnx",
                          "source_sha256": hashlib.sha256(model.read_bytes()).hexdigest()}
    assert m["inputs"] == [{"name": "x", "shape": [1, 3, 12, 10], "dtype": "float32", "quant": None}]
    assert m["outputs"] == [{"name": "probs", "shape": [1, 10], "dtype": "float32", "quant": None}]

    graph = load_model(model)
    assert [row["op"] for row in m["layers"]] == [n.op.value for n in graph.nodes]
    assert sum(row["macs"] for row in m["layers"]) == sum(graph.macs(n) for n in graph.nodes) == 25_920 + 2_400
    conv = next(row for row in m["layers"] if row["op"] == "CONV_2D")
    assert (conv["weight_bits"], conv["activation_bits"], conv["params"]) == (32, 32, 8 * 3 * 3 * 3 + 8)

    assert m["tools"]["edgepack"] == edgepack.__version__
    for tool in ("numpy", "onnx", "onnxruntime"):
        assert m["tools"][tool] == importlib.metadata.version(tool)
    assert m["default_backend"] == "onnxruntime"
    assert m["backends"] == {
        "reference": {"artifact": "graph.json", "tolerance": pipeline.REFERENCE_FLOAT_TOLERANCE},
        "onnxruntime": {"artifact": "model.onnx", "tolerance": pipeline.FLOAT_TOLERANCE},
    }
    roles = {a["path"]: a["role"] for a in m["artifacts"]}
    assert roles == {"golden.npz": "golden", "graph.json": "graph", "weights.npz": "weights", "model.onnx": "onnx"}
    onnx_entry = next(a for a in m["artifacts"] if a["role"] == "onnx")
    assert onnx_entry["sha256"] == m["model"]["source_sha256"]  # the source model is stored unchanged
    assert m["golden"] == {"artifact": "golden.npz", "count": 16}
    inputs, outputs = _golden(result.path)
    assert inputs["x"].shape == (16, 1, 3, 12, 10) and outputs["probs"].shape == (16, 1, 10)
    assert _only_files(tmp_path) == ["cnn.edgepack", "cnn.onnx"]


def test_int8_tflite_manifest(tmp_path: Path) -> None:
    model = _shared("kws_ref_model.tflite")
    m = package(model, tmp_path / "kws.edgepack", golden_count=4).manifest
    assert m["model"]["source_sha256"] == hashlib.sha256(model.read_bytes()).hexdigest()
    assert m["model"]["source_format"] == "tflite"
    (inp,), (out,) = m["inputs"], m["outputs"]
    assert (inp["name"], inp["shape"], inp["dtype"]) == ("input_1", [1, 49, 10, 1], "int8")
    assert inp["quant"] == {"scale": [pytest.approx(0.5847029089927673)], "zero_point": [83], "axis": None, "bits": 8}
    assert out["quant"] == {"scale": [0.00390625], "zero_point": [-128], "axis": None, "bits": 8}
    assert sum(row["macs"] for row in m["layers"]) == 2_656_768  # MLPerf Tiny quotes 2.66 M for KWS
    assert {row["weight_bits"] for row in m["layers"] if row["weight_bits"]} == {8}
    assert m["backends"]["reference"]["tolerance"] == {"max_abs": 0, "unit": "lsb"}
    assert m["default_backend"] == "litert"
    litert = m["backends"]["litert"]["tolerance"]
    assert litert["unit"] == "lsb" and isinstance(litert["max_abs"], int) and litert["max_abs"] >= 0


# -- golden inputs ----------------------------------------------------------------------------------------------


def test_golden_from_npz_named_after_the_inputs(tmp_path: Path) -> None:
    model = _save(onnx_models.gemm_bn_3d(), tmp_path / "m.onnx")
    rng = np.random.default_rng(5)
    arrays = {"x": rng.standard_normal((5, 1, 6)), "seq": rng.standard_normal((5, 1, 7, 3)),
              "img": rng.standard_normal((5, 1, 2, 5, 4)), "ignored": np.zeros(3)}
    np.savez(tmp_path / "g.npz", **arrays)
    result = package(model, tmp_path / "m.edgepack", golden=tmp_path / "g.npz", golden_count=3)
    assert result.manifest["golden"]["count"] == 3
    inputs, outputs = _golden(result.path)
    for name in ("x", "seq", "img"):  # float64 data stored as the model's float32
        assert inputs[name].dtype == np.float32
        np.testing.assert_array_equal(inputs[name], arrays[name][:3].astype(np.float32))
    assert {k: v.shape[0] for k, v in outputs.items()} == {"y1": 3, "y2": 3, "y3": 3}


def test_golden_from_first_array_and_quantized_floats(tmp_path: Path) -> None:
    model = _shared("kws_ref_model.tflite")
    test_set = _shared("../data/kws01_test.npz")
    with np.load(test_set) as data:
        assert data.files[0] == "x_int8"
        x_int8, x_float = data["x_int8"][:6], data["x_float"][:6]
    # The test set's first array (x_int8) is used when no array is named after the input.
    inputs, _ = _golden(package(model, tmp_path / "a.edgepack", golden=test_set, golden_count=6).path)
    np.testing.assert_array_equal(inputs["input_1"], x_int8)
    # Real values for the int8 input are quantized with the input's scale and zero point.
    np.savez(tmp_path / "float.npz", input_1=x_float)
    inputs, _ = _golden(package(model, tmp_path / "b.edgepack", golden=tmp_path / "float.npz").path)
    info = TensorInfo("input_1", (1, 49, 10, 1), "int8", 0.5847029089927673, 83)
    np.testing.assert_array_equal(inputs["input_1"], info.quantize(x_float))
    np.testing.assert_array_equal(inputs["input_1"], x_int8)  # x_float is dequantized x_int8: exact round trip
    # A .npy of samples without the batch axis ([N, 49, 10, 1]) is accepted for a batch-1 model.
    np.save(tmp_path / "nobatch.npy", x_int8[:, 0])
    inputs, _ = _golden(package(model, tmp_path / "c.edgepack", golden=tmp_path / "nobatch.npy").path)
    np.testing.assert_array_equal(inputs["input_1"], x_int8)


def test_golden_count_and_seeded_random_inputs(tmp_path: Path) -> None:
    model = _save(onnx_models.mlp(), tmp_path / "mlp.onnx")
    a = _golden(package(model, tmp_path / "a.edgepack", golden_count=3).path)
    b = _golden(package(model, tmp_path / "b.edgepack", golden_count=5).path)
    assert a[0]["x"].shape == (3, 1, 20) and b[0]["x"].shape == (5, 1, 20)
    np.testing.assert_array_equal(a[0]["x"], b[0]["x"][:3])  # seeded: the same values every time


@pytest.mark.parametrize(("arrays", "message"), [
    ({"x": np.zeros((4, 1, 21), np.float32)}, r"array 'x' has shape \[4, 1, 21\]; expected a stack \[N, 1, 20\]"),
    ({"x": np.zeros((0, 1, 20), np.float32)}, "no samples"),
    ({"x": np.zeros((2, 1, 20), np.complex64)}, "expected float32"),
])
def test_bad_golden_file(tmp_path: Path, arrays: dict[str, np.ndarray], message: str) -> None:
    model = _save(onnx_models.mlp(), tmp_path / "mlp.onnx")
    np.savez(tmp_path / "g.npz", **arrays)
    with pytest.raises(EdgepackError, match=message):
        package(model, tmp_path / "mlp.edgepack", golden=tmp_path / "g.npz")
    assert _only_files(tmp_path) == ["g.npz", "mlp.onnx"]


def test_missing_golden_file(tmp_path: Path) -> None:
    model = _save(onnx_models.mlp(), tmp_path / "mlp.onnx")
    with pytest.raises(InputError, match="nope.npz: no such file"):
        package(model, tmp_path / "mlp.edgepack", golden=tmp_path / "nope.npz")


def test_graph_that_cannot_run_as_one_batch(tmp_path: Path) -> None:
    """A Concat with a constant cannot take N samples merged on the batch axis; golden pairs are per sample."""
    model = _save(onnx_models.concat(), tmp_path / "concat.onnx")
    result = package(model, tmp_path / "concat.edgepack", golden_count=3)
    inputs, outputs = _golden(result.path)
    assert outputs["y"].shape == (3, *result.manifest["outputs"][0]["shape"])


# -- backends ---------------------------------------------------------------------------------------------------


def test_backend_subset(tmp_path: Path) -> None:
    model = _save(onnx_models.cnn(), tmp_path / "cnn.onnx")
    m = package(model, tmp_path / "cnn.edgepack", backends=["reference"]).manifest
    assert list(m["backends"]) == ["reference"] and m["default_backend"] == "reference"
    assert "model.onnx" in [a["path"] for a in m["artifacts"]]  # the source model is kept either way


@pytest.mark.parametrize("backends", [["litert"], ["reference", "tvm"]])
def test_impossible_backend(tmp_path: Path, backends: list[str]) -> None:
    model = _save(onnx_models.cnn(), tmp_path / "cnn.onnx")
    with pytest.raises(EdgepackError, match=r"target host cannot offer backend\(s\) .* for a onnx model "
                                            r"\(available: reference, onnxruntime\)"):
        package(model, tmp_path / "cnn.edgepack", backends=backends)
    assert _only_files(tmp_path) == ["cnn.onnx"]


def test_unknown_target(tmp_path: Path) -> None:
    model = _save(onnx_models.cnn(), tmp_path / "cnn.onnx")
    with pytest.raises(EdgepackError, match="unknown target 'cortex-m99'; known targets: host") as info:
        package(model, tmp_path / "cnn.edgepack", target="cortex-m99")
    assert "edgepack targets" in info.value.hint
    assert _only_files(tmp_path) == ["cnn.onnx"]


def test_unsupported_ops_write_nothing(tmp_path: Path) -> None:
    model = _save(onnx_models.unsupported(), tmp_path / "u.onnx")
    with pytest.raises(UnsupportedOpsError) as info:
        package(model, tmp_path / "u.edgepack")
    assert sorted(op for op, *_ in info.value.problems) == ["Conv", "Erf", "Resize"]
    assert "Resize x2 (first: up1)" in info.value.message
    assert _only_files(tmp_path) == ["u.onnx"]


def test_backend_that_disagrees_leaves_no_bundle(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    if not backend_module("onnxruntime").available():
        pytest.skip("onnxruntime is not installed")
    ort_backend = backend_module("onnxruntime")
    real_run = ort_backend.OrtSession.run

    def wrong(self: Any, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        return {k: v + np.float32(0.01) for k, v in real_run(self, inputs).items()}

    monkeypatch.setattr(ort_backend.OrtSession, "run", wrong)
    model = _save(onnx_models.cnn(), tmp_path / "cnn.onnx")
    out = tmp_path / "cnn.edgepack"
    with pytest.raises(EdgepackError, match=r"backend onnxruntime disagrees with the golden model on output "
                                            r"'probs': max \|diff\| 0\.01 exceeds atol 0\.001") as info:
        package(model, out)
    assert "--backend" in info.value.hint
    assert not out.exists() and not (tmp_path / ".cnn.edgepack.unverified").exists()
    assert _only_files(tmp_path) == ["cnn.onnx"]
    # An existing bundle at the destination is left as it was.
    out.write_bytes(b"previous bundle")
    with pytest.raises(EdgepackError, match="disagrees"):
        package(model, out)
    assert out.read_bytes() == b"previous bundle"
    assert _only_files(tmp_path) == ["cnn.edgepack", "cnn.onnx"]


def test_backend_library_missing_at_package_time(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(backend_module("onnxruntime"), "available", lambda: False)
    model = _save(onnx_models.cnn(), tmp_path / "cnn.onnx")
    with pytest.raises(EdgepackError, match="cannot verify backend 'onnxruntime': pip install onnxruntime"):
        package(model, tmp_path / "cnn.edgepack")
    assert _only_files(tmp_path) == ["cnn.onnx"]
    assert package(model, tmp_path / "cnn.edgepack", backends=["reference"]).path.is_file()


def test_progress_messages(tmp_path: Path) -> None:
    model = _save(onnx_models.mlp(), tmp_path / "mlp.onnx")
    said: list[str] = []
    package(model, tmp_path / "mlp.edgepack", golden_count=2, progress=said.append)
    assert said[0].startswith("importing mlp.onnx (onnx, ")
    assert "computing 2 golden pairs with the reference interpreter" in said
    assert "verifying backend onnxruntime on the golden pairs" in said


def test_int8_graph_with_float_io_states_tolerance_in_real_units(tmp_path: Path) -> None:
    """QUANTIZE -> int8 FULLY_CONNECTED -> DEQUANTIZE: the outputs are float, so tolerances are in "abs"."""
    import edgepack.ir.tflite_writer as builder
    rng = np.random.default_rng(0)
    tensors = [
        builder.tensor("x", [1, 32], "float32"),
        builder.tensor("xq", [1, 32], "int8", scale=0.05, zero_point=-3),
        builder.tensor("w", [16, 32], "int8", rng.integers(-127, 128, (16, 32)).astype(np.int8),
                       scale=[0.01] * 16, zero_point=[0] * 16, axis=0),
        builder.tensor("b", [16], "int32", rng.integers(-500, 500, 16).astype(np.int32),
                       scale=[0.0005] * 16, zero_point=[0] * 16, axis=0),
        builder.tensor("yq", [1, 16], "int8", scale=0.02, zero_point=4),
        builder.tensor("y", [1, 16], "float32"),
    ]
    ops = [("QUANTIZE", [0], [1], None, {}), ("FULLY_CONNECTED", [1, 2, 3], [4], "FullyConnectedOptions", {}),
           ("DEQUANTIZE", [4], [5], None, {})]
    model = builder.write_tflite(tmp_path / "qdq.tflite", tensors, ops, [0], [5])
    m = package(model, tmp_path / "qdq.edgepack", golden_count=4).manifest
    assert m["outputs"][0]["dtype"] == "float32" and m["outputs"][0]["quant"] is None
    assert m["backends"]["reference"]["tolerance"] == {"max_abs": 0, "unit": "abs"}
    if "litert" in m["backends"]:
        assert m["backends"]["litert"]["tolerance"]["unit"] == "abs"
