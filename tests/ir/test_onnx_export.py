"""The ONNX QDQ exporter against the golden interpreter, run by onnxruntime (CPU).

onnxruntime's integer kernels (QLinearConv, QGemm, ...) requantize in float and its Softmax is float,
so it is not TFLM-exact. Stated tolerances: on the tiny graph at most 8 LSB of the int8 output (1/256
for the softmax) with top-1 agreement >= 95 %; on KWS (1000 inputs) at most 32 LSB and >= 99 % top-1
agreement (measured: int8 26 LSB, 99.4 %; LiteRT with XNNPACK is in the same range, FIELD-NOTES).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

ort = pytest.importorskip("onnxruntime")
pytest.importorskip("onnx")

from edgepack.errors import ModelError  # noqa: E402
from edgepack.ir.graph import QuantParams  # noqa: E402
from edgepack.ir.onnx_export import to_onnx  # noqa: E402
from edgepack.ir.reference import Interpreter  # noqa: E402
from edgepack.quantize import QuantConfig, quantize_graph  # noqa: E402
from edgepack.quantize.scheme import quantize_values  # noqa: E402

SHARED = Path(__file__).resolve().parents[2].parent / "shared"
# The quantizer tests' tiny float graph (tests/quantize/conftest.py; both folders have a conftest module).
_spec = importlib.util.spec_from_file_location("quantize_conftest",
                                               Path(__file__).resolve().parents[1] / "quantize" / "conftest.py")
_mod = importlib.util.module_from_spec(_spec)  # type: ignore[arg-type]
_spec.loader.exec_module(_mod)  # type: ignore[union-attr]
tiny_graph = _mod.tiny_graph


def ort_run(model: bytes, name: str, xs: np.ndarray) -> np.ndarray:
    """One sample at a time (the exported graph has batch 1), stacked."""
    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    sess = ort.InferenceSession(model, sess_options=opts, providers=["CPUExecutionProvider"])
    return np.concatenate([sess.run(None, {name: xs[i:i + 1]})[0] for i in range(len(xs))])


def lsb_report(got: np.ndarray, want: np.ndarray) -> tuple[int, float]:
    """(max |diff| in LSB, top-1 agreement)."""
    assert got.dtype == want.dtype and got.shape == want.shape, (got.dtype, got.shape, want.dtype, want.shape)
    diff = np.abs(got.astype(np.int64) - want.astype(np.int64))
    return int(diff.max()), float((got.reshape(len(got), -1).argmax(1) == want.reshape(len(want), -1).argmax(1)).mean())


@pytest.fixture(scope="module")
def calib() -> np.ndarray:
    return np.random.default_rng(2).normal(0, 1, (64, 8, 8, 3)).astype(np.float32)


@pytest.mark.parametrize("config", [QuantConfig(), QuantConfig(w_bits=4), QuantConfig(layer_bits={"dw": (8, 16)}),
                                    QuantConfig(layer_bits={"conv": (4, 8), "fc": (4, 8)})],
                         ids=["w8a8", "w4a8", "dw-16x8", "mixed-w4"])
def test_quantized_tiny_graph_matches_golden(config: QuantConfig, calib: np.ndarray) -> None:
    q = quantize_graph(tiny_graph(), {"x": calib}, config)
    xq = quantize_values(calib, q.tensor("x").quant, "int8")
    want = Interpreter(q).run({"x": xq})["y"]
    got = ort_run(to_onnx(q), "x", xq)
    max_lsb, agree = lsb_report(got, want)
    print(f"\nORT vs golden, tiny graph: max {max_lsb} LSB, top-1 agreement {agree:.1%}")
    assert max_lsb <= 8 and agree >= 0.95


def test_float_io_and_float_graph(calib: np.ndarray) -> None:
    g = tiny_graph()
    np.testing.assert_allclose(ort_run(to_onnx(g), "x", calib[:8]), Interpreter(g).run({"x": calib[:8]})["y"],
                               rtol=1e-4, atol=1e-5)
    q = quantize_graph(g, {"x": calib}, QuantConfig(io="float"))
    got, want = ort_run(to_onnx(q), "x", calib), Interpreter(q).run({"x": calib})["y"]
    assert got.dtype == np.float32
    assert np.abs(got - want).max() <= 8 / 256  # 8 LSB of the 1/256 softmax scale, in real units


def test_qdq_structure(calib: np.ndarray) -> None:
    import onnx

    q = quantize_graph(tiny_graph(), {"x": calib}, QuantConfig(layer_bits={"conv": (4, 8)}))
    model = onnx.load_from_string(to_onnx(q))
    assert model.opset_import[0].version == 21
    ops = [n.op_type for n in model.graph.node]
    assert {"QuantizeLinear", "DequantizeLinear", "Conv", "Gemm", "Transpose"} <= set(ops)
    inits = {t.name: t for t in model.graph.initializer}
    assert inits["conv/w/q"].data_type == onnx.TensorProto.INT4
    assert inits["fc/b/q"].data_type == onnx.TensorProto.INT32
    dq_w = next(n for n in model.graph.node if n.input[0] == "dw/w/q")
    assert [a.i for a in dq_w.attribute if a.name == "axis"] == [0]  # per channel, (C*M)1HW
    assert model.graph.input[0].type.tensor_type.elem_type == onnx.TensorProto.INT8


def test_unexportable_graph_lists_every_problem(calib: np.ndarray) -> None:
    q = quantize_graph(tiny_graph(), {"x": calib})
    q.tensors["c1"].quant = QuantParams(np.ones(6, np.float32), np.zeros(6), 3, 8)  # per-channel activation
    q.tensors["fc/w"].quant.bits = 2
    with pytest.raises(ModelError) as exc:
        to_onnx(q)
    assert "'c1'" in exc.value.message and "2-bit" in exc.value.message and exc.value.hint


@pytest.mark.slow
def test_kws_int8_in_onnxruntime() -> None:
    if not (SHARED / "models/kws_ref_model_float.onnx").exists() or not (SHARED / "data/kws01_test.npz").exists():
        pytest.skip(f"shared KWS model or data absent under {SHARED}")
    from edgepack.ir.loader import load_model

    d = np.load(SHARED / "data/kws01_test.npz")
    x, y = d["x_float"].reshape(-1, 49, 10, 1), d["y"]
    q = quantize_graph(load_model(SHARED / "models/kws_ref_model_float.onnx"), {"input_1": x[:100]})
    xq = quantize_values(x, q.tensor("input_1").quant, "int8")
    want = Interpreter(q).run({"input_1": xq})["Identity"]
    got = ort_run(to_onnx(q), "input_1", xq)
    max_lsb, agree = lsb_report(got, want)
    print(f"\nKWS int8 QDQ in onnxruntime vs golden (1000 inputs): max {max_lsb} LSB, top-1 agreement {agree:.1%}, "
          f"accuracy ORT {(got.argmax(1) == y).mean():.1%} golden {(want.argmax(1) == y).mean():.1%}")
    assert max_lsb <= 32 and agree >= 0.99
