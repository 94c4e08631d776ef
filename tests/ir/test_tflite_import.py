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
    with pytest.raises(ModelError, match="larger than"):
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

def _tensor(name: str, shape: list[int], type_: int, data: bytes | None = None, scale: list[float] | None = None,
            zero_point: list[int] | None = None, axis: int = 0, signature: list[int] | None = None) -> dict:
    return dict(name=name, shape=shape, type=type_, data=data, scale=scale, zero_point=zero_point, axis=axis,
                signature=signature)


def _write_tflite(path: Path, tensors: list[dict], ops: list[tuple], inputs: list[int], outputs: list[int]) -> Path:
    """The smallest valid .tflite: ops are (builtin code, inputs, outputs, options table name, {field: value})."""
    import flatbuffers
    import tflite

    b = flatbuffers.Builder(1024)

    def ivec(values: list[int]) -> int:
        return b.CreateNumpyVector(np.asarray(values, dtype=np.int32))

    def tables(offsets: list[int]) -> int:
        b.StartVector(4, len(offsets), 4)
        for off in reversed(offsets):
            b.PrependUOffsetTRelative(off)
        return b.EndVector()

    tflite.BufferStart(b)
    buffers = [tflite.BufferEnd(b)]  # buffer 0: the empty sentinel
    tensor_offsets = []
    for t in tensors:
        buffer_index = 0
        if t["data"] is not None:
            data = b.CreateNumpyVector(np.frombuffer(t["data"], dtype=np.uint8))
            tflite.BufferStart(b)
            tflite.BufferAddData(b, data)
            buffers.append(tflite.BufferEnd(b))
            buffer_index = len(buffers) - 1
        quant = None
        if t["scale"] is not None:
            scale = b.CreateNumpyVector(np.asarray(t["scale"], dtype=np.float32))
            zp = b.CreateNumpyVector(np.asarray(t["zero_point"], dtype=np.int64))
            tflite.QuantizationParametersStart(b)
            tflite.QuantizationParametersAddScale(b, scale)
            tflite.QuantizationParametersAddZeroPoint(b, zp)
            tflite.QuantizationParametersAddQuantizedDimension(b, t["axis"])
            quant = tflite.QuantizationParametersEnd(b)
        name, shape = b.CreateString(t["name"]), ivec(t["shape"])
        signature = ivec(t["signature"]) if t["signature"] else None
        tflite.TensorStart(b)
        tflite.TensorAddShape(b, shape)
        if signature is not None:
            tflite.TensorAddShapeSignature(b, signature)
        tflite.TensorAddType(b, t["type"])
        tflite.TensorAddBuffer(b, buffer_index)
        tflite.TensorAddName(b, name)
        if quant is not None:
            tflite.TensorAddQuantization(b, quant)
        tensor_offsets.append(tflite.TensorEnd(b))
    codes = sorted({op[0] for op in ops})
    code_offsets = []
    for code in codes:
        tflite.OperatorCodeStart(b)
        tflite.OperatorCodeAddDeprecatedBuiltinCode(b, min(code, 127))
        tflite.OperatorCodeAddBuiltinCode(b, code)
        tflite.OperatorCodeAddVersion(b, 1)
        code_offsets.append(tflite.OperatorCodeEnd(b))
    op_offsets = []
    for code, op_in, op_out, opt_name, fields in ops:
        opts = None
        if opt_name:
            getattr(tflite, f"{opt_name}Start")(b)
            for key, value in fields.items():
                getattr(tflite, f"{opt_name}Add{key}")(b, value)
            opts = getattr(tflite, f"{opt_name}End")(b)
        vin, vout = ivec(op_in), ivec(op_out)
        tflite.OperatorStart(b)
        tflite.OperatorAddOpcodeIndex(b, codes.index(code))
        tflite.OperatorAddInputs(b, vin)
        tflite.OperatorAddOutputs(b, vout)
        if opts is not None:
            tflite.OperatorAddBuiltinOptionsType(b, getattr(tflite.BuiltinOptions, opt_name))
            tflite.OperatorAddBuiltinOptions(b, opts)
        op_offsets.append(tflite.OperatorEnd(b))
    vt, vi, vo, vops = tables(tensor_offsets), ivec(inputs), ivec(outputs), tables(op_offsets)
    sg_name = b.CreateString("main")
    tflite.SubGraphStart(b)
    tflite.SubGraphAddTensors(b, vt)
    tflite.SubGraphAddInputs(b, vi)
    tflite.SubGraphAddOutputs(b, vo)
    tflite.SubGraphAddOperators(b, vops)
    tflite.SubGraphAddName(b, sg_name)
    subgraph = tflite.SubGraphEnd(b)
    vcodes, vsubgraphs, vbuffers = tables(code_offsets), tables([subgraph]), tables(buffers)
    description = b.CreateString("edgepack test")
    tflite.ModelStart(b)
    tflite.ModelAddVersion(b, 3)
    tflite.ModelAddOperatorCodes(b, vcodes)
    tflite.ModelAddSubgraphs(b, vsubgraphs)
    tflite.ModelAddBuffers(b, vbuffers)
    tflite.ModelAddDescription(b, description)
    b.Finish(tflite.ModelEnd(b), file_identifier=b"TFL3")
    path.write_bytes(bytes(b.Output()))
    return path


F32, F16, I32, I8, I4 = 0, 1, 2, 9, 17  # TensorType


def _raw(values: Any, dtype: Any) -> bytes:
    return np.asarray(values, dtype=dtype).tobytes()

ADD, MAX_POOL_2D, CONCATENATION, CONV_2D, DEQUANTIZE, LOGISTIC, RELU_N1_TO_1 = 0, 17, 2, 3, 6, 14, 20
PAD, TRANSPOSE, MEAN, FULLY_CONNECTED, RESIZE_BILINEAR, PADV2, QUANTIZE = 34, 39, 40, 9, 23, 60, 114


def _float_ops_model(path: Path) -> Path:
    """x[1,4,4,2] -> PAD -> MAX_POOL 2x2/2 -> TRANSPOSE(0,3,1,2) -> MEAN(-1, keepdims) -> CONCAT(x, x, axis -1)
    -> ADD(fp16 constant through DEQUANTIZE) -> LOGISTIC -> RELU_N1_TO_1, plus a dynamic batch on the input."""
    tensors = [
        _tensor("x", [1, 4, 4, 2], F32, signature=[-1, 4, 4, 2]),  # 0
        _tensor("paddings", [4, 2], I32, _raw([[0, 0], [1, 1], [1, 1], [0, 0]], np.int32)),  # 1
        _tensor("padded", [1, 6, 6, 2], F32),  # 2
        _tensor("pooled", [1, 3, 3, 2], F32),  # 3
        _tensor("perm", [4], I32, _raw([0, 3, 1, 2], np.int32)),  # 4
        _tensor("transposed", [1, 2, 3, 3], F32),  # 5
        _tensor("axes", [1], I32, _raw([-1], np.int32)),  # 6
        _tensor("mean", [1, 2, 3, 1], F32),  # 7
        _tensor("concat", [1, 2, 3, 2], F32),  # 8
        _tensor("bias_f16", [2], F16, _raw([0.5, -1.25], np.float16)),  # 9
        _tensor("bias", [2], F32),  # 10
        _tensor("sum", [1, 2, 3, 2], F32),  # 11
        _tensor("sigmoid", [1, 2, 3, 2], F32),  # 12
        _tensor("y", [1, 2, 3, 2], F32),  # 13
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
    return _write_tflite(path, tensors, ops, [0], [13])


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
        _tensor("x", [1, 4], I8, scale=[0.5], zero_point=[-3]),
        _tensor("w", [2, 4], I4, packed, scale=[0.25, 0.125], zero_point=[0, 0], axis=0),
        _tensor("b", [2], I32, np.asarray([10, -20], np.int32).tobytes(), scale=[0.125, 0.0625], zero_point=[0, 0]),
        _tensor("y", [1, 2], I8, scale=[0.75], zero_point=[4]),
    ]
    path = _write_tflite(tmp_path / "int4.tflite", tensors,
                         [(FULLY_CONNECTED, [0, 1, 2], [3], "FullyConnectedOptions", {})], [0], [3])
    g = from_tflite(path)
    w = g.tensor("w")
    assert w.dtype == "int8" and w.data is not None and w.quant is not None
    np.testing.assert_array_equal(w.data, weights)
    assert w.quant.bits == 4 and w.quant.axis == 0 and w.nbytes == 4
    assert g.tensor("b").quant.bits == 32 and g.tensor("x").quant.axis is None


def test_every_problem_listed_at_once(tmp_path: Path) -> None:
    tensors = [
        _tensor("x", [1, 4, 4, 1], F32),  # 0
        _tensor("size", [2], I32, _raw([8, 8], np.int32)),  # 1
        _tensor("resized", [1, 8, 8, 1], F32),  # 2
        _tensor("paddings", [4, 2], I32, _raw([[0, 0], [1, 1], [1, 1], [0, 0]], np.int32)),  # 3
        _tensor("pad_value", [1], F32, _raw([2.0], np.float32)),  # 4
        _tensor("padded", [1, 10, 10, 1], F32),  # 5
        _tensor("w", [1, 3, 3, 1], F32, _raw(np.ones(9), np.float32)),  # 6
        _tensor("conv", [1, 8, 8, 1], F32),  # 7
        _tensor("conv2", [1, 6, 6, 1], F32),  # 8
        _tensor("resized2", [1, 12, 12, 1], F32),  # 9
    ]
    conv_opts = dict(Padding=1, StrideW=1, StrideH=1, FusedActivationFunction=4)  # TANH: not fusable here
    ops = [
        (RESIZE_BILINEAR, [0, 1], [2], None, {}),
        (PADV2, [2, 3, 4], [5], None, {}),
        (CONV_2D, [5, 6, -1], [7], "Conv2DOptions", conv_opts),
        (CONV_2D, [7, 6, -1], [8], "Conv2DOptions", conv_opts),
        (RESIZE_BILINEAR, [8, 1], [9], None, {}),
    ]
    path = _write_tflite(tmp_path / "bad.tflite", tensors, ops, [0], [9])
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
    tensors = [_tensor("x", [1, 3, 3, 1], F32), _tensor("w", [1, 3, 3, 1], F32, f32), _tensor("y", [1, 3, 3, 1], F32)]
    ops = [(CONV_2D, [0, 1, -1], [2], "Conv2DOptions", dict(Padding=0, StrideW=1, StrideH=1))]
    g = from_tflite(_write_tflite(tmp_path / "conv.tflite", tensors, ops, [0], [2]))
    assert g.nodes[0].inputs == ["x", "w", ""] and g.nodes[0].attrs["pads"] == [1, 1, 1, 1]
    tensors[1] = _tensor("w", [1, 3, 3, 1], I8, np.ones(9, np.int8).tobytes(), scale=[0.1], zero_point=[0])
    with pytest.raises(UnsupportedOpsError, match="hybrid"):
        from_tflite(_write_tflite(tmp_path / "hybrid.tflite", tensors, ops, [0], [2]))


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
        _tensor("x", [1, 2], F32),  # 0
        _tensor("q", [1, 2], I8, scale=[0.1], zero_point=[3]),  # 1
        _tensor("q", [1, 2], F32),  # 2: same name as tensor 1
        _tensor("w_q", [2, 2], I8, w_q.tobytes(), scale=[0.5, 0.25], zero_point=[0, 0], axis=0),  # 3
        _tensor("w", [2, 2], F32),  # 4
        _tensor("y", [1, 2], F32),  # 5
    ]
    ops = [(QUANTIZE, [0], [1], None, {}), (DEQUANTIZE, [1], [2], None, {}), (DEQUANTIZE, [3], [4], None, {}),
           (FULLY_CONNECTED, [2, 4, -1], [5], "FullyConnectedOptions", dict(FusedActivationFunction=1))]
    g = from_tflite(_write_tflite(tmp_path / "qdq.tflite", tensors, ops, [0], [5]))
    assert [(n.op, n.name, n.inputs) for n in g.nodes] == [
        (Op.QUANTIZE, "q", ["x"]), (Op.DEQUANTIZE, "q_2", ["q"]), (Op.FULLY_CONNECTED, "y", ["q_2", "w", ""])]
    assert g.nodes[2].attrs == {"activation": "RELU"}
    assert g.tensor("q").quant is not None and g.tensor("q_2").dtype == "float32"
    np.testing.assert_array_equal(g.tensor("w").data, np.array([[5.0, -10.0], [7.5, 10.0]], np.float32))
    assert "w_q" not in g.tensors


def test_dynamic_inner_dimension_is_unsupported(tmp_path: Path) -> None:
    tensors = [_tensor("x", [1, 1, 3], F32, signature=[1, -1, 3]), _tensor("y", [1, 1, 3], F32)]
    path = _write_tflite(tmp_path / "dyn.tflite", tensors, [(LOGISTIC, [0], [1], None, {})], [0], [1])
    with pytest.raises(UnsupportedOpsError, match="dynamic dimension"):
        from_tflite(path)
