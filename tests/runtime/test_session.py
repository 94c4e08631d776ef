"""`Session`: input forms, quantization at the edges, input errors, backend choice and `verify`, on bundles
packaged in the test from tiny ONNX models and from the MLPerf Tiny models (skipped when those are absent)."""

from __future__ import annotations

import hashlib
import io
import json
import math
import sys
import zipfile
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "ir"))  # onnx_models, the in-code ONNX builders

import edgepack.runtime as rt  # noqa: E402
from edgepack.errors import BackendUnavailableError, BundleIncompatibleError, InputError  # noqa: E402
from edgepack.runtime import session as session_mod  # noqa: E402
from edgepack.runtime.backends import BACKENDS, backend_module  # noqa: E402
from edgepack.runtime.tensors import TensorInfo  # noqa: E402

MODELS = Path(__file__).resolve().parents[2].parent / "shared" / "models"
DATA = MODELS.parent / "data"
FLOAT_RTOL = FLOAT_ATOL = 1e-3


def _package(model: Path, out: Path, **kwargs: Any) -> Path:
    from edgepack.packager.pipeline import package

    return package(model, out, **kwargs).path


def _shared(name: str) -> Path:
    path = MODELS / name
    if not path.is_file():
        pytest.skip(f"shared model {name} not found at {path}")
    return path


@pytest.fixture(scope="module")
def tmp(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("session")


@pytest.fixture(scope="module")
def multi_bundle(tmp: Path) -> Path:
    """Three float inputs (x [1,6], seq [1,7,3], img [1,2,5,4]) and three outputs; reference + onnxruntime."""
    onnx = pytest.importorskip("onnx")
    import onnx_models

    onnx.save(onnx_models.gemm_bn_3d(), tmp / "multi.onnx")
    return _package(tmp / "multi.onnx", tmp / "multi.edgepack", golden_count=4)


@pytest.fixture(scope="module")
def kws_bundle(tmp: Path) -> Path:
    """The int8 KWS model (int8 input scale 0.5847 zp 83, int8 softmax output 1/256, zp -128)."""
    return _package(_shared("kws_ref_model.tflite"), tmp / "kws.edgepack", golden_count=8)


@pytest.fixture(scope="module")
def kws(kws_bundle: Path) -> rt.Session:
    return rt.load(kws_bundle, backend="reference")


def _rng_inputs(sess: rt.Session, count: int | None = None, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    lead = () if count is None else (count,)
    out = {}
    for t in sess.inputs:
        if t.dtype == "float32":
            out[t.name] = rng.standard_normal(lead + t.shape).astype(np.float32)
        else:
            out[t.name] = rng.integers(-128, 128, lead + t.shape).astype(t.dtype)
    return out


def _assert_close(got: dict[str, np.ndarray], want: dict[str, np.ndarray], what: str) -> None:
    for name in want:
        g, w = got[name].astype(np.float64), want[name].astype(np.float64)
        err = np.abs(g - w)
        rel = err / np.maximum(np.abs(w), 1e-12)
        assert np.all(err <= FLOAT_ATOL + FLOAT_RTOL * np.abs(w)), (
            f"{what}: output {name!r}: max abs error {err.max():.3g}, max rel error {rel.max():.3g} "
            f"(allowed atol {FLOAT_ATOL} + rtol {FLOAT_RTOL})")


# -- input forms -----------------------------------------------------------------------------------------------


def test_array_list_and_dict_give_the_same_result(kws: rt.Session) -> None:
    x = _rng_inputs(kws)["input_1"]
    by_array = kws.run(x)
    assert list(by_array) == ["Identity"] and by_array["Identity"].shape == (1, 12)
    assert by_array["Identity"].dtype == np.int8
    for other in (kws.run([x]), kws.run((x,)), kws.run({"input_1": x})):
        np.testing.assert_array_equal(other["Identity"], by_array["Identity"])


def test_multi_input_list_in_order_equals_dict(multi_bundle: Path) -> None:
    sess = rt.load(multi_bundle, backend="reference")
    assert [t.name for t in sess.inputs] == ["x", "seq", "img"]
    x = _rng_inputs(sess)
    by_dict = sess.run(x)
    by_list = sess.run([x["x"], x["seq"], x["img"]])
    reordered = sess.run({k: x[k] for k in ("img", "x", "seq")})
    assert list(by_dict) == [t.name for t in sess.outputs] == ["y1", "y2", "y3"]
    for name in by_dict:
        np.testing.assert_array_equal(by_list[name], by_dict[name])
        np.testing.assert_array_equal(reordered[name], by_dict[name])


@pytest.mark.parametrize("backend", ["reference", "onnxruntime"])
def test_single_samples_and_a_stack_agree(multi_bundle: Path, backend: str) -> None:
    if not backend_module(backend).available():
        pytest.skip(f"{backend} is not installed")
    sess = rt.load(multi_bundle, backend=backend)
    stack = _rng_inputs(sess, count=3, seed=1)
    stacked = sess.run(stack)
    for t in sess.outputs:
        assert stacked[t.name].shape == (3, *t.shape) and stacked[t.name].dtype == np.dtype(t.dtype)
    for i in range(3):
        single = sess.run({k: v[i] for k, v in stack.items()})
        for name, value in single.items():
            np.testing.assert_array_equal(value, stacked[name][i], err_msg=f"sample {i} output {name}")


def test_empty_stack_gives_empty_outputs(kws: rt.Session) -> None:
    out = kws.run(np.zeros((0, 1, 49, 10, 1), np.int8))
    assert out["Identity"].shape == (0, 1, 12) and out["Identity"].dtype == np.int8


def test_int_inputs_to_a_float_model_are_cast(multi_bundle: Path) -> None:
    sess = rt.load(multi_bundle, backend="reference")
    ints = {t.name: np.arange(np.prod(t.shape)).reshape(t.shape) % 3 for t in sess.inputs}
    got = sess.run(ints)
    want = sess.run({k: v.astype(np.float32) for k, v in ints.items()})
    for name in want:
        np.testing.assert_array_equal(got[name], want[name])


# -- quantization at the edges ----------------------------------------------------------------------------------


def _hand_quantize(x: float, scale: float, zero_point: int, lo: int = -128, hi: int = 127) -> int:
    """round half away from zero of x / scale (float32 division, as TFLM), + zero point, saturated."""
    ratio = float(np.float32(x) / np.float32(scale))
    if math.isinf(ratio):
        return hi if ratio > 0 else lo
    rounded = int(Decimal(ratio).to_integral_value(rounding=ROUND_HALF_UP))  # HALF_UP: ties away from zero
    return min(hi, max(lo, rounded + zero_point))


def test_quantize_rounds_half_away_from_zero_and_saturates() -> None:
    t = TensorInfo("x", (12,), "int8", scale=0.5, zero_point=-3)
    x = np.array([0.25, -0.25, 0.75, -0.75, 1.25, -1.25, 0.2, -0.2, 70.0, -70.0, 1e30, -np.inf], np.float32)
    want = [_hand_quantize(v, 0.5, -3) for v in x]
    assert want[:8] == [-2, -4, -1, -5, 0, -6, -3, -3]  # ties go away from zero, not to even
    assert want[8:] == [127, -128, 127, -128]
    np.testing.assert_array_equal(t.quantize(x), np.array(want, np.int8))
    assert t.quantize(x).dtype == np.int8


def test_quantize_refuses_nan() -> None:
    t = TensorInfo("x", (2,), "int8", scale=0.5, zero_point=0)
    with pytest.raises(InputError, match="'x'.*NaN"):
        t.quantize(np.array([1.0, np.nan], np.float32))


def test_float_inputs_to_an_int8_model_are_quantized_like_tensorinfo(kws: rt.Session) -> None:
    info = kws.inputs[0]
    assert (info.dtype, info.scale, info.zero_point) == ("int8", pytest.approx(0.5847029089927673), 83)
    rng = np.random.default_rng(3)
    x = (rng.standard_normal((4, *info.shape)) * 40).astype(np.float32)
    # Exact ties of x / scale, and values beyond the int8 range.
    x.reshape(-1)[:6] = np.float32(info.scale) * np.array([0.5, -0.5, 2.5, -2.5, 300.0, -300.0], np.float32)
    hand = np.array([_hand_quantize(v, info.scale, info.zero_point) for v in x.reshape(-1)], np.int8)
    np.testing.assert_array_equal(info.quantize(x).reshape(-1), hand)
    from_float = kws.run(x)
    from_int = kws.run(hand.reshape(x.shape))
    np.testing.assert_array_equal(from_float["Identity"], from_int["Identity"])


def test_dequantize_returns_float32_scale_times_q_minus_zero_point(kws: rt.Session) -> None:
    x = _rng_inputs(kws, count=3)
    q = kws.run(x)["Identity"]
    real = kws.run(x, dequantize=True)["Identity"]
    out = kws.outputs[0]
    assert real.dtype == np.float32 and real.shape == q.shape
    want = np.array([np.float32(out.scale * (int(v) - out.zero_point)) for v in q.reshape(-1)]).reshape(q.shape)
    np.testing.assert_array_equal(real, want)
    np.testing.assert_allclose(real.sum(axis=-1), 1.0, atol=12 / 256)  # a softmax, in steps of 1/256


def test_dequantize_leaves_float_outputs_alone(multi_bundle: Path) -> None:
    sess = rt.load(multi_bundle, backend="reference")
    x = _rng_inputs(sess)
    plain, deq = sess.run(x), sess.run(x, dequantize=True)
    for name in plain:
        np.testing.assert_array_equal(plain[name], deq[name])


# -- input errors -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("value", "message"), [
    (np.zeros((1, 49, 10), np.int8), r"input 'input_1': expected shape \[1, 49, 10, 1\] .*got \[1, 49, 10\]"),
    (np.zeros((2, 3, 49, 10, 1), np.int8), r"expected shape \[1, 49, 10, 1\] \(or a stack \[N, 1, 49, 10, 1\]\)"),
    (np.zeros((1, 49, 10, 1), np.int32), r"input 'input_1': expected int8 \(or real values to quantize\), got int32"),
    (np.zeros((1, 49, 10, 1), np.bool_), r"expected int8 .*got bool"),
    ({"input_1": np.zeros((1, 49, 10, 1), np.int8), "extra": 1}, r"unknown input name\(s\) \['extra'\]; "
                                                                  r"the model takes \['input_1'\]"),
    ({}, r"the model takes 1 input\(s\) \['input_1'\], got 0"),
    ([np.zeros((1, 49, 10, 1), np.int8)] * 2, r"the model takes 1 input\(s\) \['input_1'\], got 2"),
])
def test_bad_inputs_raise_input_error(kws: rt.Session, value: Any, message: str) -> None:
    with pytest.raises(InputError, match=message):
        kws.run(value)


def test_missing_and_mixed_inputs_of_a_multi_input_model(multi_bundle: Path) -> None:
    sess = rt.load(multi_bundle, backend="reference")
    x = _rng_inputs(sess)
    with pytest.raises(InputError, match=r"takes 3 input\(s\) \['x', 'seq', 'img'\], got 2"):
        sess.run({"x": x["x"], "img": x["img"]})
    with pytest.raises(InputError, match="all be single samples or all stacks of the same length"):
        sess.run(dict(x, seq=x["seq"][None]))
    stacks = _rng_inputs(sess, count=2)
    with pytest.raises(InputError, match="same length"):
        sess.run(dict(stacks, img=np.concatenate([stacks["img"]] * 2)))
    with pytest.raises(InputError, match=r"input 'x': expected float32 .*got complex64"):
        sess.run(dict(x, x=x["x"].astype(np.complex64)))


# -- backend choice ---------------------------------------------------------------------------------------------


def test_requested_default_and_fallback_backends(multi_bundle: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("onnxruntime")
    assert rt.load(multi_bundle).backend == "onnxruntime"  # the bundle's default
    assert rt.load(multi_bundle, backend="reference").backend == "reference"
    monkeypatch.setattr(backend_module("onnxruntime"), "available", lambda: False)
    assert rt.load(multi_bundle).backend == "reference"  # default's library missing: next in BACKENDS order
    with pytest.raises(BackendUnavailableError, match="backend 'onnxruntime' cannot run here") as info:
        rt.load(multi_bundle, backend="onnxruntime")
    assert "pip install onnxruntime" in info.value.hint
    monkeypatch.setattr(backend_module("reference"), "available", lambda: False)
    with pytest.raises(BackendUnavailableError, match="no backend of this bundle can run here") as info:
        rt.load(multi_bundle)
    assert "onnxruntime: pip install onnxruntime" in info.value.message


@pytest.mark.parametrize("name", ["litert", "tvm", "nosuch"])
def test_backend_not_in_the_bundle(multi_bundle: Path, name: str) -> None:
    with pytest.raises(BundleIncompatibleError, match=rf"backend '{name}' is not in this bundle "
                                                      r"\(it offers: onnxruntime, reference\)"):
        rt.load(multi_bundle, backend=name)


def _manifest(default: str, *offered: str) -> dict[str, Any]:
    return {"backends": {name: {} for name in offered}, "default_backend": default}


def test_fallback_follows_backends_order(monkeypatch: pytest.MonkeyPatch) -> None:
    order = list(BACKENDS)
    assert order.index("litert") < order.index("onnxruntime") < order.index("reference")
    available = {"litert": False, "onnxruntime": True, "reference": True}
    for name in BACKENDS:  # backends added later (tvm, device) are unavailable here
        monkeypatch.setattr(backend_module(name), "available", lambda name=name: available.get(name, False))
    choose = session_mod.choose_backend
    assert choose(_manifest("reference", "reference", "onnxruntime", "litert"), None) == "reference"
    assert choose(_manifest("litert", "reference", "onnxruntime", "litert"), None) == "onnxruntime"
    assert choose(_manifest("litert", "reference", "litert"), None) == "reference"
    # A default this reader does not know (written by a newer edgepack) is skipped, not an error.
    assert choose(_manifest("tvm", "tvm", "reference"), None) == "reference"
    available["reference"] = False
    with pytest.raises(BackendUnavailableError, match="litert: pip install ai-edge-litert"):
        choose(_manifest("litert", "reference", "litert"), None)


# -- verify -----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("backend", ["reference", "onnxruntime"])
def test_verify_passes_on_each_backend_of_an_onnx_bundle(multi_bundle: Path, backend: str) -> None:
    if not backend_module(backend).available():
        pytest.skip(f"{backend} is not installed")
    report = rt.verify(rt.load(multi_bundle, backend=backend))
    assert report.passed, report.to_dict()
    assert report.backend == backend and report.samples == 4
    assert [o.name for o in report.outputs] == ["y1", "y2", "y3"] and all(o.unit == "abs" for o in report.outputs)
    assert json.loads(json.dumps(report.to_dict()))["passed"] is True


@pytest.mark.parametrize("backend", ["reference", "litert"])
def test_verify_int8_kws(kws_bundle: Path, backend: str) -> None:
    """Reference: bit-exact with the golden outputs; LiteRT: within the LSB tolerance the bundle states."""
    if not backend_module(backend).available():
        pytest.skip(f"{backend} is not installed")
    sess = rt.load(kws_bundle, backend=backend)
    report = rt.verify(sess)
    (check,) = report.outputs
    assert report.passed, report.to_dict()
    assert check.unit == "lsb" and sess.tolerance["unit"] == "lsb"
    if backend == "reference":
        assert sess.tolerance["max_abs"] == 0 and check.max_abs_diff == 0
        _, golden_out = sess.bundle.golden()
        inputs, _ = sess.bundle.golden()
        np.testing.assert_array_equal(sess.run(inputs)["Identity"], golden_out["Identity"])
    else:
        assert check.max_abs_diff <= sess.tolerance["max_abs"], (check.max_abs_diff, sess.tolerance)


def _tamper_golden(src: Path, dst: Path, change: Any) -> None:
    """Copy a bundle, apply `change` to the golden npz's output_0 array, and fix the manifest's size and sha256:
    a consistent bundle whose golden outputs are wrong."""
    with zipfile.ZipFile(src) as zf:
        members = {info.filename: zf.read(info) for info in zf.infolist()}
    with np.load(io.BytesIO(members["golden.npz"])) as npz:
        arrays = {k: npz[k] for k in npz.files}
    arrays["output_0"] = change(arrays["output_0"].copy())
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    members["golden.npz"] = buffer.getvalue()
    manifest = json.loads(members["manifest.json"])
    (entry,) = [a for a in manifest["artifacts"] if a["path"] == "golden.npz"]
    entry.update(size=len(members["golden.npz"]), sha256=hashlib.sha256(members["golden.npz"]).hexdigest())
    members["manifest.json"] = json.dumps(manifest).encode()
    with zipfile.ZipFile(dst, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in members.items():
            zf.writestr(name, data)


def test_tampered_golden_int8_outputs_fail_verify(kws_bundle: Path, tmp_path: Path) -> None:
    def bump(a: np.ndarray) -> np.ndarray:
        a[2, 0, 5] = a[2, 0, 5] + 3 if a[2, 0, 5] < 120 else a[2, 0, 5] - 3
        return a

    bad = tmp_path / "bad.edgepack"
    _tamper_golden(kws_bundle, bad, bump)
    with rt.Bundle.open(bad) as b:
        b.verify_all()  # checksums are consistent: only the values are wrong
    report = rt.verify(rt.load(bad, backend="reference"))
    (check,) = report.outputs
    assert not report.passed and not check.passed
    assert (check.name, check.max_abs_diff, check.unit, check.mismatched_samples) == ("Identity", 3.0, "lsb", 1)


def test_tampered_golden_float_outputs_fail_verify(multi_bundle: Path, tmp_path: Path) -> None:
    def shift(a: np.ndarray) -> np.ndarray:
        a[1, 0, 2] += 0.25
        return a

    bad = tmp_path / "bad.edgepack"
    _tamper_golden(multi_bundle, bad, shift)
    report = rt.verify(rt.load(bad, backend="reference"))
    by_name = {o.name: o for o in report.outputs}
    assert not report.passed
    assert not by_name["y1"].passed and by_name["y1"].max_abs_diff == pytest.approx(0.25, abs=1e-5)
    assert by_name["y2"].passed and by_name["y3"].passed


# -- the MLPerf Tiny models across backends ---------------------------------------------------------------------


def _float_inputs(sess: rt.Session, count: int) -> dict[str, np.ndarray]:
    """Real KWS test features when the data set is present, else seeded normal values."""
    (info,) = sess.inputs
    if info.shape == (1, 49, 10, 1) and (DATA / "kws01_test.npz").is_file():
        with np.load(DATA / "kws01_test.npz") as data:
            return {info.name: data["x_float"][:count]}
    return {info.name: np.random.default_rng(7).standard_normal((count, *info.shape)).astype(np.float32)}


@pytest.mark.parametrize(("model", "backend"), [
    ("kws_ref_model_float.onnx", "onnxruntime"), ("ad01_fp32.onnx", "onnxruntime"),
    ("kws_ref_model_float.tflite", "litert"), ("ad01_fp32.tflite", "litert"),
])
def test_float_models_reference_vs_runtime(tmp: Path, model: str, backend: str) -> None:
    if not backend_module(backend).available():
        pytest.skip(f"{backend} is not installed")
    bundle = _package(_shared(model), tmp / f"{model}.edgepack", golden_count=2)
    ref, other = rt.load(bundle, backend="reference"), rt.load(bundle, backend=backend)
    x = _float_inputs(ref, 12)
    _assert_close(other.run(x), ref.run(x), f"{model}: {backend} vs reference")
    assert rt.verify(other).passed and rt.verify(ref).passed
