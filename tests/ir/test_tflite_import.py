"""Tests for `edgepack.ir.tflite`: the MLPerf Tiny models, hand-built flatbuffers and broken files."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from edgepack.errors import ModelError, UnsupportedOpsError
from edgepack.ir import Graph, Op
from edgepack.ir import tflite as tflite_import
from edgepack.ir.tflite import from_tflite, list_ops
from edgepack.ir.tflite_writer import tensor, write_tflite

MODELS = Path(__file__).resolve().parents[2].parent / "shared" / "models"
DATA = MODELS.parent / "data"
needs_models = pytest.mark.skipif(not MODELS.is_dir(), reason=f"MLPerf Tiny models not found at {MODELS}")

KWS_OPS = ["CONV_2D", "DEPTHWISE_CONV_2D", "CONV_2D", "DEPTHWISE_CONV_2D", "CONV_2D", "DEPTHWISE_CONV_2D",
           "CONV_2D", "DEPTHWISE_CONV_2D", "CONV_2D", "AVERAGE_POOL_2D"]
EXPECTED = {  # file -> (ops, input shape, output shape, dtype)
    "kws_ref_model.tflite": (KWS_OPS + ["RESHAPE", "FULLY_CONNECTED", "SOFTMAX"], (1, 49, 10, 1), (1, 12), "int8"),
    "kws_ref_model_float.tflite": (KWS_OPS + ["FULLY_CONNECTED", "SOFTMAX"], (1, 49, 10, 1), (1, 12), "float32"),
    "ad01_int8.tflite": (["FULLY_CONNECTED"] * 10, (1, 640), (1, 640), "int8"),
    "ad01_fp32.tflite": (["FULLY_CONNECTED"] * 10, (1, 640), (1, 640), "float32"),
}


@functools.cache
def _graph(name: str) -> Graph:
    return from_tflite(MODELS / name)


@functools.cache
def _litert(name: str) -> Any:
    interpreter_mod = pytest.importorskip("ai_edge_litert.interpreter")
    interp = interpreter_mod.Interpreter(model_path=str(MODELS / name))
    interp.allocate_tensors()
    return interp


# ---- the MLPerf Tiny models ----

@needs_models
@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_ops_shapes_dtypes(name: str) -> None:
    ops, in_shape, out_shape, dtype = EXPECTED[name]
    g = _graph(name)
    assert [n.op.value for n in g.nodes] == ops
    assert g.inputs == ["input_1"] and g.outputs == ["Identity"]
    assert g.tensor("input_1").shape == in_shape and g.tensor("Identity").shape == out_shape
    assert g.tensor("input_1").dtype == dtype and g.tensor("Identity").dtype == dtype
    assert g.name == Path(name).stem
    assert g.metadata == {"source_format": "tflite", "source_file": name}
    for node in g.nodes:
        assert node.name == node.outputs[0]


@needs_models
@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_tensors_match_litert(name: str) -> None:
    """Shapes, dtypes, quantization and constant data agree with what LiteRT reports."""
    g = _graph(name)
    interp = _litert(name)
    details = {d["name"]: d for d in interp.get_tensor_details()}
    for t in g.tensors.values():
        d = details[t.name]
        assert t.shape == tuple(d["shape"]), t.name
        assert t.dtype == np.dtype(d["dtype"]).name, t.name
        qp = d["quantization_parameters"]
        if t.quant is None:
            assert t.dtype == "float32" and qp["scales"].size == 0, t.name
        else:
            # LiteRT's FC Prepare widens a per-tensor weight scale to one per output channel in memory.
            widened = t.quant.scale.size == 1 and qp["scales"].size > 1
            n = qp["scales"].size
            for ours, theirs in ((t.quant.scale, qp["scales"].astype(np.float32)), (t.quant.zero_point,
                                                                                  qp["zero_points"])):
                if widened:
                    ours, theirs = np.broadcast_to(ours, n), np.broadcast_to(theirs, n)
                np.testing.assert_array_equal(ours, theirs, err_msg=t.name)
            if not widened:
                assert t.quant.axis == (qp["quantized_dimension"] if qp["scales"].size > 1 else None)
            assert t.quant.bits == np.dtype(t.dtype).itemsize * 8
        if t.is_const:
            np.testing.assert_array_equal(t.data, interp.get_tensor(d["index"]), err_msg=t.name)
            assert t.data.dtype == np.dtype(t.dtype) and t.data.flags.writeable


@needs_models
def test_kws_int8_details() -> None:
    g = _graph("kws_ref_model.tflite")
    q = g.tensor("input_1").quant
    assert q is not None and q.scale[0] == np.float32(0.5847029089927673) and q.zero_point[0] == 83
    conv, dw, pw = g.nodes[0], g.nodes[1], g.nodes[2]
    # 49x10 input, 10x4 kernel, stride 2, SAME: 25x5 output, 9 rows of padding (4 top, 5 bottom), 2 columns.
    assert conv.attrs == {"strides": [2, 2], "dilations": [1, 1], "pads": [4, 1, 5, 1], "activation": "RELU"}
    assert dw.attrs == {"strides": [1, 1], "dilations": [1, 1], "pads": [1, 1, 1, 1], "activation": "RELU",
                        "depth_multiplier": 1}
    assert pw.attrs["pads"] == [0, 0, 0, 0]
    w = g.tensor(conv.inputs[1])
    assert w.shape == (64, 10, 4, 1) and w.quant is not None and w.quant.per_channel and w.quant.axis == 0
    dw_w = g.tensor(dw.inputs[1])
    assert dw_w.shape == (1, 3, 3, 64) and dw_w.quant is not None and dw_w.quant.axis == 3
    bias = g.tensor(conv.inputs[2])
    assert bias.dtype == "int32" and bias.quant is not None and bias.quant.bits == 32
    pool = g.nodes[9]
    assert pool.attrs == {"kernel": [25, 5], "strides": [25, 5], "pads": [0, 0, 0, 0], "activation": "NONE"}
    reshape = g.nodes[10]
    assert reshape.inputs == [pool.outputs[0]] and g.tensor(reshape.outputs[0]).shape == (1, 64)
    assert "functional_1/flatten/Const" not in g.tensors  # the shape constant became the output shape
    assert g.nodes[-1].attrs == {"beta": 1.0}
    assert g.macs(conv) == 25 * 5 * 64 * 10 * 4


@needs_models
def test_list_ops_reports_every_op() -> None:
    rows = list_ops(MODELS / "kws_ref_model.tflite")
    assert [(r["op"], r["count"], r["supported"]) for r in rows] == [
        ("CONV_2D", 5, True), ("DEPTHWISE_CONV_2D", 4, True), ("AVERAGE_POOL_2D", 1, True),
        ("RESHAPE", 1, True), ("FULLY_CONNECTED", 1, True), ("SOFTMAX", 1, True)]


# ---- broken files ----

def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="cannot read"):
        from_tflite(tmp_path / "absent.tflite")


def test_garbage_file(tmp_path: Path) -> None:
    path = tmp_path / "garbage.tflite"
    path.write_bytes(np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes())
    with pytest.raises(ModelError, match="not a valid TFLite flatbuffer"):
        from_tflite(path)
    path.write_bytes(b"\x10\x00\x00\x00TFL3" + b"\xff" * 64)  # right identifier, nonsense offsets
    with pytest.raises(ModelError, match="not a valid TFLite flatbuffer"):
        from_tflite(path)


@needs_models
@pytest.mark.parametrize("keep", [0.02, 0.5, 0.9, 0.9999])
def test_truncated_file(tmp_path: Path, keep: float) -> None:
    data = (MODELS / "kws_ref_model.tflite").read_bytes()
    path = tmp_path / "truncated.tflite"
    path.write_bytes(data[: int(len(data) * keep)])
    with pytest.raises(ModelError, match="not a valid TFLite flatbuffer"):
        from_tflite(path)


def test_file_size_limit(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "big.tflite"
    path.write_bytes(b"\0" * 2048)
    monkeypatch.setattr(tflite_import, "MAX_FILE_BYTES", 1024)
    with pytest.raises(ModelError, match="over the 1,024-byte limit"):
        from_tflite(path)


@needs_models
def test_patched_unsupported_op(tmp_path: Path) -> None:
    """kws_ref_model.tflite with SOFTMAX's operator code byte-patched to RESIZE_BILINEAR."""
    import tflite

    data = bytearray((MODELS / "kws_ref_model.tflite").read_bytes())
    model = tflite.Model.GetRootAsModel(data, 0)
    for i in range(model.OperatorCodesLength()):
        tab = model.OperatorCodes(i)._tab
        if model.OperatorCodes(i).BuiltinCode() == tflite.BuiltinOperator.SOFTMAX:
            for vtable_slot in (4, 10):  # deprecated_builtin_code (int8), builtin_code (int32) when present
                if tab.Offset(vtable_slot):
                    data[tab.Pos + tab.Offset(vtable_slot)] = tflite.BuiltinOperator.RESIZE_BILINEAR
    path = tmp_path / "kws_resize.tflite"
    path.write_bytes(bytes(data))
    with pytest.raises(UnsupportedOpsError) as info:
        from_tflite(path)
    assert info.value.problems == [("RESIZE_BILINEAR", 1, "Identity", "no converter for this op")]
    assert "RESIZE_BILINEAR" in str(info.value) and "Identity" in str(info.value)
    rows = {(r["op"], r["supported"]): r["count"] for r in list_ops(path)}
    assert rows[("RESIZE_BILINEAR", False)] == 1 and rows[("CONV_2D", True)] == 5


# ---- hand-built flatbuffers ----

F32, F16, I32, I8, I4 = "float32", "float16", "int32", "int8", "int4"  # tensor dtypes


def _raw(values: Any, dtype: Any) -> bytes:
    return np.asarray(values, dtype=dtype).tobytes()


ADD, MAX_POOL_2D, CONCATENATION, CONV_2D, DEQUANTIZE, LOGISTIC, RELU_N1_TO_1 = (
    "ADD", "MAX_POOL_2D", "CONCATENATION", "CONV_2D", "DEQUANTIZE", "LOGISTIC", "RELU_N1_TO_1")
PAD, TRANSPOSE, MEAN, FULLY_CONNECTED, RESIZE_BILINEAR, PADV2, QUANTIZE = (
    "PAD", "TRANSPOSE", "MEAN", "FULLY_CONNECTED", "RESIZE_BILINEAR", "PADV2", "QUANTIZE")


def _float_ops_model(path: Path) -> Path:
    """x[1,4,4,2] -> PAD -> MAX_POOL 2x2/2 -> TRANSPOSE(0,3,1,2) -> MEAN(-1, keepdims) -> CONCAT(x, x, axis -1)
    -> ADD(fp16 constant through DEQUANTIZE) -> LOGISTIC -> RELU_N1_TO_1, plus a dynamic batch on the input."""
    tensors = [
        tensor("x", [1, 4, 4, 2], F32, signature=[-1, 4, 4, 2]),  # 0
        tensor("paddings", [4, 2], I32, _raw([[0, 0], [1, 1], [1, 1], [0, 0]], np.int32)),  # 1
        tensor("padded", [1, 6, 6, 2], F32),  # 2
        tensor("pooled", [1, 3, 3, 2], F32),  # 3
        tensor("perm", [4], I32, _raw([0, 3, 1, 2], np.int32)),  # 4
        tensor("transposed", [1, 2, 3, 3], F32),  # 5
        tensor("axes", [1], I32, _raw([-1], np.int32)),  # 6
        tensor("mean", [1, 2, 3, 1], F32),  # 7
        tensor("concat", [1, 2, 3, 2], F32),  # 8
        tensor("bias_f16", [2], F16, _raw([0.5, -1.25], np.float16)),  # 9
        tensor("bias", [2], F32),  # 10
        tensor("sum", [1, 2, 3, 2], F32),  # 11
        tensor("sigmoid", [1, 2, 3, 2], F32),  # 12
        tensor("y", [1, 2, 3, 2], F32),  # 13
    ]
    ops = [
        (PAD, [0, 1], [2], None, {}),
        (MAX_POOL_2D, [2], [3], "Pool2DOptions", dict(Padding=1, StrideW=2, StrideH=2, FilterWidth=2,
                                                       FilterHeight=2)),
        (TRANSPOSE, [3, 4], [5], None, {}),
        (MEAN, [5, 6], [7], "ReducerOptions", dict(KeepDims=True)),
        (CONCATENATION, [7, 7], [8], "ConcatenationOptions", dict(Axis=-1)),
        (DEQUANTIZE, [9], [10], None, {}),
        (ADD, [8, 10], [11], "AddOptions", {}),
        (LOGISTIC, [11], [12], None, {}),
        (RELU_N1_TO_1, [12], [13], None, {}),
    ]
    return write_tflite(path, tensors, ops, [0], [13])


def test_hand_built_float_ops(tmp_path: Path) -> None:
    g = from_tflite(_float_ops_model(tmp_path / "ops.tflite"))
    assert [n.op for n in g.nodes] == [Op.PAD, Op.MAX_POOL_2D, Op.TRANSPOSE, Op.MEAN, Op.CONCATENATION,
                                       Op.ADD, Op.LOGISTIC, Op.CLIP]
    attrs = {n.name: n.attrs for n in g.nodes}
    assert attrs["padded"] == {"pads": [[0, 0], [1, 1], [1, 1], [0, 0]]}
    assert attrs["pooled"] == {"kernel": [2, 2], "strides": [2, 2], "pads": [0, 0, 0, 0], "activation": "NONE"}
    assert attrs["transposed"] == {"perm": [0, 3, 1, 2]}
    assert attrs["mean"] == {"axes": [3], "keepdims": True}
    assert attrs["concat"] == {"axis": 3, "activation": "NONE"}
    assert attrs["y"] == {"min": -1.0, "max": 1.0}
    for node in g.nodes[:4]:  # constants that became attributes are not inputs, nor tensors
        assert len(node.inputs) == 1
    assert not {"paddings", "perm", "axes", "bias_f16"} & set(g.tensors)
    bias = g.tensor("bias")  # DEQUANTIZE of a float16 constant folded into a float32 constant
    assert bias.dtype == "float32" and bias.data is not None and bias.data.tolist() == [0.5, -1.25]
    assert g.tensor("x").shape == (1, 4, 4, 2)


def test_hand_built_matches_litert(tmp_path: Path) -> None:
    reference = pytest.importorskip("edgepack.ir.reference")
    interpreter_mod = pytest.importorskip("ai_edge_litert.interpreter")
    path = _float_ops_model(tmp_path / "ops.tflite")
    interp = interpreter_mod.Interpreter(model_path=str(path))
    interp.allocate_tensors()
    x = np.random.default_rng(1).normal(size=(1, 4, 4, 2)).astype(np.float32)
    interp.set_tensor(interp.get_input_details()[0]["index"], x)
    interp.invoke()
    expected = interp.get_tensor(interp.get_output_details()[0]["index"])
    got = reference.run(from_tflite(path), {"x": x})["y"]
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)


def test_int4_weights_unpacked(tmp_path: Path) -> None:
    weights = np.array([[1, -2, 7, -8], [0, 3, -1, 5]], dtype=np.int8)
    nibbles = (weights.reshape(-1) & 0x0F).astype(np.uint8)
    packed = (nibbles[0::2] | (nibbles[1::2] << 4)).astype(np.uint8).tobytes()  # low nibble first
    tensors = [
        tensor("x", [1, 4], I8, scale=[0.5], zero_point=[-3]),
        tensor("w", [2, 4], I4, packed, scale=[0.25, 0.125], zero_point=[0, 0], axis=0),
        tensor("b", [2], I32, np.asarray([10, -20], np.int32).tobytes(), scale=[0.125, 0.0625], zero_point=[0, 0]),
        tensor("y", [1, 2], I8, scale=[0.75], zero_point=[4]),
    ]
    path = write_tflite(tmp_path / "int4.tflite", tensors,
                         [(FULLY_CONNECTED, [0, 1, 2], [3], "FullyConnectedOptions", {})], [0], [3])
    g = from_tflite(path)
    w = g.tensor("w")
    assert w.dtype == "int8" and w.data is not None and w.quant is not None
    np.testing.assert_array_equal(w.data, weights)
    assert w.quant.bits == 4 and w.quant.axis == 0 and w.nbytes == 4
    assert g.tensor("b").quant.bits == 32 and g.tensor("x").quant.axis is None


def test_every_problem_listed_at_once(tmp_path: Path) -> None:
    tensors = [
        tensor("x", [1, 4, 4, 1], F32),  # 0
        tensor("size", [2], I32, _raw([8, 8], np.int32)),  # 1
        tensor("resized", [1, 8, 8, 1], F32),  # 2
        tensor("paddings", [4, 2], I32, _raw([[0, 0], [1, 1], [1, 1], [0, 0]], np.int32)),  # 3
        tensor("pad_value", [1], F32, _raw([2.0], np.float32)),  # 4
        tensor("padded", [1, 10, 10, 1], F32),  # 5
        tensor("w", [1, 3, 3, 1], F32, _raw(np.ones(9), np.float32)),  # 6
        tensor("conv", [1, 8, 8, 1], F32),  # 7
        tensor("conv2", [1, 6, 6, 1], F32),  # 8
        tensor("resized2", [1, 12, 12, 1], F32),  # 9
    ]
    conv_opts = dict(Padding=1, StrideW=1, StrideH=1, FusedActivationFunction=4)  # TANH: not fusable here
    ops = [
        (RESIZE_BILINEAR, [0, 1], [2], None, {}),
        (PADV2, [2, 3, 4], [5], None, {}),
        (CONV_2D, [5, 6, -1], [7], "Conv2DOptions", conv_opts),
        (CONV_2D, [7, 6, -1], [8], "Conv2DOptions", conv_opts),
        (RESIZE_BILINEAR, [8, 1], [9], None, {}),
    ]
    path = write_tflite(tmp_path / "bad.tflite", tensors, ops, [0], [9])
    with pytest.raises(UnsupportedOpsError) as info:
        from_tflite(path)
    problems = {p[0]: p for p in info.value.problems}
    assert set(problems) == {"RESIZE_BILINEAR", "PADV2", "CONV_2D"}
    assert problems["RESIZE_BILINEAR"][1:3] == (2, "resized")
    assert problems["PADV2"][1:3] == (1, "padded") and "pad value [2.0]" in problems["PADV2"][3]
    assert problems["CONV_2D"][1:3] == (2, "conv") and "fused activation 4" in problems["CONV_2D"][3]
    rows = {(r["op"], r["supported"]): r for r in list_ops(path)}
    assert rows[("CONV_2D", False)]["count"] == 2 and ("CONV_2D", True) not in rows


def test_absent_optional_input_and_hybrid(tmp_path: Path) -> None:
    f32 = np.ones(9, np.float32).tobytes()
    tensors = [tensor("x", [1, 3, 3, 1], F32), tensor("w", [1, 3, 3, 1], F32, f32), tensor("y", [1, 3, 3, 1], F32)]
    ops = [(CONV_2D, [0, 1, -1], [2], "Conv2DOptions", dict(Padding=0, StrideW=1, StrideH=1))]
    g = from_tflite(write_tflite(tmp_path / "conv.tflite", tensors, ops, [0], [2]))
    assert g.nodes[0].inputs == ["x", "w", ""] and g.nodes[0].attrs["pads"] == [1, 1, 1, 1]
    tensors[1] = tensor("w", [1, 3, 3, 1], I8, np.ones(9, np.int8).tobytes(), scale=[0.1], zero_point=[0])
    with pytest.raises(UnsupportedOpsError, match="hybrid"):
        from_tflite(write_tflite(tmp_path / "hybrid.tflite", tensors, ops, [0], [2]))


# ---- execution through the golden reference interpreter ----

@needs_models
def test_kws_int8_bit_exact_vs_tflm() -> None:
    reference = pytest.importorskip("edgepack.ir.reference")
    runtime = pytest.importorskip("tflite_micro.python.tflite_micro.runtime")
    if not (DATA / "kws01_test.npz").is_file():
        pytest.skip(f"KWS test inputs not found at {DATA}")
    x = np.load(DATA / "kws01_test.npz")["x_int8"][:20]
    g = _graph("kws_ref_model.tflite")
    tflm = runtime.Interpreter.from_file(str(MODELS / "kws_ref_model.tflite"))
    for i, sample in enumerate(x):
        tflm.set_input(sample, 0)
        tflm.invoke()
        expected = tflm.get_output(0)
        got = reference.run(g, {"input_1": sample})["Identity"]
        assert got.dtype == expected.dtype
        diff = np.flatnonzero(got.reshape(-1) != expected.reshape(-1))
        assert diff.size == 0, f"input {i}: first difference at {diff[0]}: {got.reshape(-1)[diff[0]]} vs " \
                               f"{expected.reshape(-1)[diff[0]]}"


@needs_models
@pytest.mark.parametrize("name", ["kws_ref_model_float.tflite", "ad01_fp32.tflite"])
def test_float_models_vs_litert(name: str) -> None:
    reference = pytest.importorskip("edgepack.ir.reference")
    interp = _litert(name)
    g = _graph(name)
    shape = g.tensor("input_1").shape
    rng = np.random.default_rng(2)
    for _ in range(5):
        x = rng.uniform(-85, 15, size=shape).astype(np.float32) if "ad01" in name else \
            rng.normal(0, 10, size=shape).astype(np.float32)
        interp.set_tensor(interp.get_input_details()[0]["index"], x)
        interp.invoke()
        expected = interp.get_tensor(interp.get_output_details()[0]["index"])
        got = reference.run(g, {"input_1": x})["Identity"]
        np.testing.assert_allclose(got, expected, rtol=1e-3, atol=1e-3)


def test_quantize_dequantize_and_duplicate_names(tmp_path: Path) -> None:
    """QUANTIZE and DEQUANTIZE of activations stay nodes; DEQUANTIZE of int8 weights folds per channel."""
    w_q = np.array([[10, -20], [30, 40]], dtype=np.int8)
    tensors = [
        tensor("x", [1, 2], F32),  # 0
        tensor("q", [1, 2], I8, scale=[0.1], zero_point=[3]),  # 1
        tensor("q", [1, 2], F32),  # 2: same name as tensor 1
        tensor("w_q", [2, 2], I8, w_q.tobytes(), scale=[0.5, 0.25], zero_point=[0, 0], axis=0),  # 3
        tensor("w", [2, 2], F32),  # 4
        tensor("y", [1, 2], F32),  # 5
    ]
    ops = [(QUANTIZE, [0], [1], None, {}), (DEQUANTIZE, [1], [2], None, {}), (DEQUANTIZE, [3], [4], None, {}),
           (FULLY_CONNECTED, [2, 4, -1], [5], "FullyConnectedOptions", dict(FusedActivationFunction=1))]
    g = from_tflite(write_tflite(tmp_path / "qdq.tflite", tensors, ops, [0], [5]))
    assert [(n.op, n.name, n.inputs) for n in g.nodes] == [
        (Op.QUANTIZE, "q", ["x"]), (Op.DEQUANTIZE, "q_2", ["q"]), (Op.FULLY_CONNECTED, "y", ["q_2", "w", ""])]
    assert g.nodes[2].attrs == {"activation": "RELU"}
    assert g.tensor("q").quant is not None and g.tensor("q_2").dtype == "float32"
    np.testing.assert_array_equal(g.tensor("w").data, np.array([[5.0, -10.0], [7.5, 10.0]], np.float32))
    assert "w_q" not in g.tensors


def test_dynamic_inner_dimension_is_unsupported(tmp_path: Path) -> None:
    tensors = [tensor("x", [1, 1, 3], F32, signature=[1, -1, 3]), tensor("y", [1, 1, 3], F32)]
    path = write_tflite(tmp_path / "dyn.tflite", tensors, [(LOGISTIC, [0], [1], None, {})], [0], [1])
    with pytest.raises(UnsupportedOpsError, match="dynamic dimension"):
        from_tflite(path)
