"""TFLite importer: `from_tflite(path) -> Graph` and `list_ops(path)` for `edgepack check`.

The flatbuffer is read eagerly into plain Python records first (`_read_model`), so that a truncated or
garbage file fails in one place with a ModelError. Conversion then runs one function per TFLite op,
named after the op (`CONV_2D`, ...) and listed in `CONVERTERS`. A converter raises `_UnsupportedError(reason)`
for a variant it cannot import; every problem of every op is collected before anything is returned.

To add an op: write `def OPNAME(ctx, op) -> Node | None` (None when the op folds into a constant) and
add it to `CONVERTERS`. Schema: https://github.com/tensorflow/tensorflow/blob/master/tensorflow/compiler/mlir/lite/schema/schema.fbs
"""

from __future__ import annotations

import math
import struct
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from edgepack.errors import ModelError, UnsupportedOpsError
from edgepack.ir.graph import Graph, Node, QuantParams, Tensor
from edgepack.ir.loader import read_model_file
from edgepack.ir.ops import Activation, Op

MAX_FILE_BYTES = 512 * 1024 * 1024

# TFLite TensorType -> (name, numpy storage dtype of the raw buffer, IR dtype or None if unsupported)
_TYPES: dict[int, tuple[str, str | None, str | None]] = {
    0: ("FLOAT32", "<f4", "float32"), 1: ("FLOAT16", "<f2", None), 2: ("INT32", "<i4", "int32"),
    3: ("UINT8", "u1", "uint8"), 4: ("INT64", "<i8", "int64"), 5: ("STRING", None, None),
    6: ("BOOL", "u1", None), 7: ("INT16", "<i2", "int16"), 9: ("INT8", "i1", "int8"),
    10: ("FLOAT64", "<f8", None), 17: ("INT4", None, "int8"),
}
_INT4 = 17
_FLOAT32 = 0
# fused_activation_function: NONE, RELU, RELU_N1_TO_1, RELU6 (TANH = 4 and SIGN_BIT = 5 are not supported)
_ACTIVATIONS = {0: Activation.NONE, 1: Activation.RELU, 2: Activation.RELU_N1_TO_1, 3: Activation.RELU6}
_PADDING_SAME, _PADDING_VALID = 0, 1
# Builtins that run another subgraph; only subgraph 0 is imported.
_CONTROL_FLOW = {"CALL", "IF", "WHILE", "CALL_ONCE", "STABLEHLO_CASE", "STABLEHLO_WHILE"}


class _UnsupportedError(Exception):
    """Raised by a converter for an op variant edgepack cannot import; the message is the reason."""


@dataclass
class _TfTensor:
    name: str  # already deduplicated
    shape: list[int]
    signature: list[int] | None
    type: int
    buffer: int
    scale: np.ndarray | None
    zero_point: np.ndarray | None
    quantized_dimension: int
    sparse: bool


@dataclass
class _TfOp:
    index: int
    code: str  # builtin name, or the custom code for CUSTOM ops
    inputs: list[int]
    outputs: list[int]
    options_type: str  # name of the builtin options table ('' when absent)
    options: dict[str, Any]


@dataclass
class _TfModel:
    tensors: list[_TfTensor]
    ops: list[_TfOp]
    inputs: list[int]
    outputs: list[int]
    buffers: list[memoryview]


def _vector(obj: Any, name: str) -> list:
    """A flatbuffer vector field as a list ([] when absent)."""
    if getattr(obj, name + "IsNone")():
        return []
    return [int(v) for v in getattr(obj, name + "AsNumpy")()]


def _read_options(tflite: Any, op: Any) -> tuple[str, dict[str, Any]]:
    """The name and every field of an operator's builtin options table, read eagerly."""
    table = op.BuiltinOptions()
    if table is None or op.BuiltinOptionsType() == 0:
        return "", {}
    type_names = {v: k for k, v in vars(tflite.BuiltinOptions).items() if isinstance(v, int)}
    type_name = type_names[op.BuiltinOptionsType()]
    opts = getattr(tflite, type_name)()
    opts.Init(table.Bytes, table.Pos)
    fields: dict[str, Any] = {}
    for name in dir(type(opts)):
        if name[0] == "_" or name == "Init" or name.startswith("GetRootAs") or name.endswith(
                ("BufferHasIdentifier", "Length", "IsNone", "AsNumpy")):
            continue
        getter = getattr(opts, name)
        if hasattr(opts, name + "Length"):
            fields[name] = [getter(j) for j in range(getattr(opts, name + "Length")())]
        else:
            fields[name] = getter()
    return type_name, fields


def _read_model(tflite: Any, buf: bytes) -> _TfModel:
    """Subgraph 0 of a TFLite flatbuffer as plain records (raises struct.error etc. on corrupt files)."""
    from tflite.utils import BUILTIN_OPCODE2NAME

    model = tflite.Model.GetRootAsModel(buf, 0)
    if model.Version() != 3:
        raise ValueError(f"schema version {model.Version()}, expected 3")
    if model.SubgraphsLength() < 1:
        raise ValueError("the model has no subgraph")
    # Touch the fields edgepack does not use too, so that most truncations fail here rather than later.
    model.Description()
    [(model.Metadata(i).Name(), model.Metadata(i).Buffer()) for i in range(model.MetadataLength())]
    codes = []
    for i in range(model.OperatorCodesLength()):
        oc = model.OperatorCodes(i)
        oc.Version()
        builtin = max(oc.DeprecatedBuiltinCode(), oc.BuiltinCode())  # the schema's rule for the two fields
        if builtin == 32:  # CUSTOM: named by its custom code
            codes.append("CUSTOM:" + (oc.CustomCode() or b"").decode("utf-8", "replace"))
        else:
            codes.append(BUILTIN_OPCODE2NAME.get(builtin, f"BUILTIN_{builtin}"))
    buffers: list[memoryview] = []  # views into `buf`; Tensor data is copied out of them
    for i in range(model.BuffersLength()):
        b = model.Buffers(i)
        if b.Offset() > 1:  # large models keep buffers after the flatbuffer, addressed from the file start
            if b.Offset() + b.Size() > len(buf):
                raise ValueError(f"buffer {i} lies outside the file")
            buffers.append(memoryview(buf)[b.Offset():b.Offset() + b.Size()])
        else:
            buffers.append(memoryview(b.DataAsNumpy() if b.DataLength() else b""))
    sg = model.Subgraphs(0)
    tensors: list[_TfTensor] = []
    seen: set[str] = set()
    for i in range(sg.TensorsLength()):
        t = sg.Tensors(i)
        name = (t.Name() or b"").decode("utf-8", "replace")
        if not name or name in seen:
            name = f"{name}_{i}"
        seen.add(name)
        q = t.Quantization()
        scale = zp = None
        qdim = 0
        if q is not None and q.ScaleLength() > 0:
            scale = q.ScaleAsNumpy().astype(np.float32)
            zp = q.ZeroPointAsNumpy().astype(np.int64) if q.ZeroPointLength() else np.zeros(scale.shape, np.int64)
            qdim = q.QuantizedDimension()
        tensors.append(_TfTensor(name, _vector(t, "Shape"), _vector(t, "ShapeSignature") or None, t.Type(),
                                 t.Buffer(), scale, zp, qdim, t.Sparsity() is not None))
    ops = []
    for i in range(sg.OperatorsLength()):
        op = sg.Operators(i)
        ops.append(_TfOp(i, codes[op.OpcodeIndex()], _vector(op, "Inputs"), _vector(op, "Outputs"),
                         *_read_options(tflite, op)))
        if not ops[-1].outputs or not all(-1 <= t < len(tensors) for t in ops[-1].inputs + ops[-1].outputs):
            raise ValueError(f"operator {i} has no outputs or refers to a missing tensor")
    inputs, outputs = _vector(sg, "Inputs"), _vector(sg, "Outputs")
    if not all(0 <= t < len(tensors) for t in inputs + outputs):
        raise ValueError("subgraph inputs or outputs refer to a missing tensor")
    return _TfModel(tensors, ops, inputs, outputs, buffers)


def _unpack_int4(raw: bytes, count: int) -> np.ndarray:
    """Packed two's complement nibbles, low nibble first (TFLite's UnpackDenseInt4IntoInt8)."""
    b = np.frombuffer(raw, dtype=np.uint8)
    nibbles = np.stack([b & 0x0F, b >> 4], axis=1).reshape(-1)[:count].astype(np.int8)
    return np.where(nibbles >= 8, nibbles - 16, nibbles).astype(np.int8)


@dataclass
class _Context:
    """Conversion state: the parsed model and the IR tensors registered so far."""

    model: _TfModel
    tensors: dict[str, Tensor] = field(default_factory=dict)

    def tf(self, index: int) -> _TfTensor:
        """The TFLite tensor at `index` (ModelError for -1, an absent input where one is required)."""
        if index < 0:
            raise ModelError("a required operator input is absent (tensor index -1)")
        return self.model.tensors[index]

    def data(self, index: int) -> np.ndarray | None:
        """The constant contents of a tensor in its TFLite dtype (float16 included), or None."""
        t = self.tf(index)
        raw = self.model.buffers[t.buffer] if 0 <= t.buffer < len(self.model.buffers) else memoryview(b"")
        if not raw.nbytes:
            return None
        count = math.prod(t.shape)
        if t.type == _INT4:
            if len(raw) != (count + 1) // 2:
                raise ModelError(f"tensor {t.name!r}: {len(raw)} bytes of data for {count} int4 values")
            return _unpack_int4(raw, count).reshape(t.shape)
        type_name, np_dtype, _ = _TYPES.get(t.type, (f"type {t.type}", None, None))
        if np_dtype is None:
            raise _UnsupportedError(f"constant {t.name!r} has dtype {type_name}")
        dtype = np.dtype(np_dtype)
        if len(raw) != count * dtype.itemsize:
            raise ModelError(f"tensor {t.name!r}: {len(raw)} bytes of data, expected {count * dtype.itemsize} "
                             f"for shape {t.shape} {type_name}")
        return np.frombuffer(raw, dtype=dtype).reshape(t.shape).astype(dtype.newbyteorder("="))

    def const(self, op: _TfOp, i: int) -> np.ndarray:
        """Input `i` of `op`, which must be a constant (it becomes an attribute, not a node input)."""
        if i >= len(op.inputs) or op.inputs[i] < 0:
            raise _UnsupportedError(f"input {i} is missing")
        value = self.data(op.inputs[i])
        if value is None:
            raise _UnsupportedError(f"input {i} ({self.tf(op.inputs[i]).name!r}) must be a constant")
        return value

    def shape(self, index: int) -> tuple[int, ...]:
        """Static shape of a tensor with a dynamic batch fixed to 1."""
        t = self.tf(index)
        shape = list(t.shape)
        dims = t.signature if t.signature and len(t.signature) == len(shape) else shape
        if any(d < 0 for d in dims[1:]) or any(d < 0 for d in shape[1:]):
            raise _UnsupportedError(f"tensor {t.name!r} has a dynamic dimension {t.signature or shape}")
        if shape and (shape[0] < 0 or dims[0] < 0):
            shape[0] = 1
        return tuple(shape)

    def name(self, index: int) -> str:
        """Register the tensor at `index` in the IR (once) and return its name; '' for an absent input."""
        if index < 0:
            return ""
        t = self.tf(index)
        if t.name in self.tensors:
            return t.name
        type_name, _, dtype = _TYPES.get(t.type, (f"type {t.type}", None, None))
        if dtype is None:
            raise _UnsupportedError(f"tensor {t.name!r} has dtype {type_name}")
        if t.sparse:
            raise _UnsupportedError(f"tensor {t.name!r} is sparse")
        quant = None
        if t.scale is not None and dtype != "float32":  # float tensors may carry calibration ranges only
            bits = 4 if t.type == _INT4 else np.dtype(dtype).itemsize * 8
            axis = t.quantized_dimension if t.scale.size > 1 else None
            quant = QuantParams(t.scale, t.zero_point, axis, bits)
            if axis is not None and not (0 <= axis < len(t.shape) and t.shape[axis] == t.scale.size):
                raise ModelError(f"tensor {t.name!r}: {t.scale.size} scales along axis {axis} of shape {t.shape}")
        self.tensors[t.name] = Tensor(t.name, self.shape(index), dtype, quant, self.data(index))
        return t.name


def _inputs(ctx: _Context, op: _TfOp, count: int | None = None) -> list[str]:
    """IR names of the first `count` inputs (all when None); absent optional inputs become ''."""
    indices = op.inputs if count is None else (op.inputs + [-1] * count)[:count]
    return [ctx.name(i) for i in indices]


def _node(ctx: _Context, op: _TfOp, kind: Op, inputs: list[str], **attrs: Any) -> Node:
    """A Node named after its first output tensor."""
    outputs = [ctx.name(i) for i in op.outputs]
    return Node(kind, outputs[0], inputs, outputs, attrs)


def _activation(options: dict[str, Any]) -> str:
    code = options.get("FusedActivationFunction", 0)
    if code not in _ACTIVATIONS:
        raise _UnsupportedError(f"fused activation {code} (only NONE, RELU, RELU6, RELU_N1_TO_1)")
    return _ACTIVATIONS[code].value


def _options(op: _TfOp, expected: str, required: bool = True) -> dict[str, Any]:
    """The op's builtin options, checked to be the `expected` table; {} when optional and absent."""
    if op.options_type == expected or (not op.options_type and not required):
        return op.options
    raise ModelError(f"operator {op.index} ({op.code}) has builtin options {op.options_type or 'absent'}, "
                     f"expected {expected}")


def _axis(axis: int, rank: int) -> int:
    """`axis` made non-negative (ModelError when out of range for `rank`)."""
    if not -rank <= axis < rank:
        raise ModelError(f"axis {axis} is out of range for a rank-{rank} tensor")
    return int(axis) % rank


def _same_pads(in_hw: tuple[int, int], k_hw: tuple[int, int], strides: list[int], dilations: list[int],
               padding: int) -> list[int]:
    """[top, left, bottom, right] exactly as TFLite's ComputePaddingHeightWidth (extra pixel at the end)."""
    if min(strides + dilations + list(k_hw)) < 1:
        raise ModelError(f"strides {strides}, dilations {dilations} and kernel {list(k_hw)} must be positive")
    if padding == _PADDING_VALID:
        return [0, 0, 0, 0]
    if padding != _PADDING_SAME:
        raise _UnsupportedError(f"padding mode {padding}")
    before, after = [], []
    for size, k, s, d in zip(in_hw, k_hw, strides, dilations, strict=True):
        out = -(-size // s)
        total = max((out - 1) * s + (k - 1) * d + 1 - size, 0)
        before.append(total // 2)
        after.append(total - total // 2)
    return [before[0], before[1], after[0], after[1]]


def _check_not_hybrid(ctx: _Context, op: _TfOp) -> None:
    x, w = ctx.tf(op.inputs[0]), ctx.tf(op.inputs[1])
    if x.type == _FLOAT32 and w.type != _FLOAT32:
        raise _UnsupportedError(f"hybrid op (float activations with {_TYPES.get(w.type, ('?',))[0]} weights)")


def _conv_attrs(ctx: _Context, op: _TfOp, options: str) -> dict[str, Any]:
    o = _options(op, options)
    _check_not_hybrid(ctx, op)
    x, w = ctx.shape(op.inputs[0]), ctx.shape(op.inputs[1])
    if len(x) != 4 or len(w) != 4:
        raise _UnsupportedError(f"expected 4-D input and weights, got {list(x)} and {list(w)}")
    strides = [o["StrideH"], o["StrideW"]]
    dilations = [o["DilationHFactor"], o["DilationWFactor"]]
    pads = _same_pads((x[1], x[2]), (w[1], w[2]), strides, dilations, o["Padding"])
    return {"strides": strides, "dilations": dilations, "pads": pads, "activation": _activation(o)}


# ---- converters: one per TFLite builtin, named after it ----

def CONV_2D(ctx: _Context, op: _TfOp) -> Node:
    """in [x NHWC, w OHWI, bias?]."""
    attrs = _conv_attrs(ctx, op, "Conv2DOptions")
    return _node(ctx, op, Op.CONV_2D, _inputs(ctx, op, 3), **attrs)


def DEPTHWISE_CONV_2D(ctx: _Context, op: _TfOp) -> Node:
    """in [x NHWC, w 1HW(C*M), bias?]; depth_multiplier derived from the shapes when the option is 0."""
    attrs = _conv_attrs(ctx, op, "DepthwiseConv2DOptions")
    in_c, w_c = ctx.shape(op.inputs[0])[3], ctx.shape(op.inputs[1])[3]
    multiplier = op.options.get("DepthMultiplier", 0) or w_c // max(in_c, 1)
    if multiplier * in_c != w_c:
        raise _UnsupportedError(f"depth_multiplier {multiplier} x {in_c} input channels != {w_c} weight channels")
    return _node(ctx, op, Op.DEPTHWISE_CONV_2D, _inputs(ctx, op, 3), depth_multiplier=multiplier, **attrs)


def FULLY_CONNECTED(ctx: _Context, op: _TfOp) -> Node:
    """in [x (..., I), w [O, I], bias?]; keep_num_dims shows in the output tensor's shape."""
    o = _options(op, "FullyConnectedOptions")
    if o.get("WeightsFormat", 0) != 0:
        raise _UnsupportedError(f"weights_format {o['WeightsFormat']} (only DEFAULT)")
    _check_not_hybrid(ctx, op)
    if len(ctx.shape(op.inputs[1])) != 2:
        raise _UnsupportedError(f"weights of shape {list(ctx.shape(op.inputs[1]))}, expected [O, I]")
    return _node(ctx, op, Op.FULLY_CONNECTED, _inputs(ctx, op, 3), activation=_activation(o))


def ADD(ctx: _Context, op: _TfOp) -> Node:
    """in [a, b] with broadcasting."""
    return _node(ctx, op, Op.ADD, _inputs(ctx, op, 2), activation=_activation(_options(op, "AddOptions", False)))


def MUL(ctx: _Context, op: _TfOp) -> Node:
    """in [a, b] with broadcasting."""
    return _node(ctx, op, Op.MUL, _inputs(ctx, op, 2), activation=_activation(_options(op, "MulOptions", False)))


def _pool(ctx: _Context, op: _TfOp, kind: Op) -> Node:
    o = _options(op, "Pool2DOptions")
    x = ctx.shape(op.inputs[0])
    if len(x) != 4:
        raise _UnsupportedError(f"expected a 4-D input, got {list(x)}")
    kernel, strides = [o["FilterHeight"], o["FilterWidth"]], [o["StrideH"], o["StrideW"]]
    pads = _same_pads((x[1], x[2]), (kernel[0], kernel[1]), strides, [1, 1], o["Padding"])
    return _node(ctx, op, kind, _inputs(ctx, op, 1), kernel=kernel, strides=strides, pads=pads,
                 activation=_activation(o))


def AVERAGE_POOL_2D(ctx: _Context, op: _TfOp) -> Node:
    """in [x]; padding is excluded from the count."""
    return _pool(ctx, op, Op.AVERAGE_POOL_2D)


def MAX_POOL_2D(ctx: _Context, op: _TfOp) -> Node:
    """in [x]."""
    return _pool(ctx, op, Op.MAX_POOL_2D)


def MEAN(ctx: _Context, op: _TfOp) -> Node:
    """in [x, axes const] -> in [x]; axes non-negative and sorted."""
    rank = len(ctx.shape(op.inputs[0]))
    axes = sorted({_axis(int(a), rank) for a in np.atleast_1d(ctx.const(op, 1))})
    keepdims = bool(_options(op, "ReducerOptions", False).get("KeepDims", False))
    return _node(ctx, op, Op.MEAN, _inputs(ctx, op, 1), axes=axes, keepdims=keepdims)


def RESHAPE(ctx: _Context, op: _TfOp) -> Node:
    """in [x, shape?] -> in [x]; the output tensor's shape is the new shape."""
    return _node(ctx, op, Op.RESHAPE, _inputs(ctx, op, 1))


def SQUEEZE(ctx: _Context, op: _TfOp) -> Node:
    """A RESHAPE to the output tensor's shape."""
    return _node(ctx, op, Op.RESHAPE, _inputs(ctx, op, 1))


def CONCATENATION(ctx: _Context, op: _TfOp) -> Node:
    """in [x0, x1, ...]; axis non-negative."""
    o = _options(op, "ConcatenationOptions")
    rank = len(ctx.shape(op.outputs[0]))
    return _node(ctx, op, Op.CONCATENATION, _inputs(ctx, op), axis=_axis(o["Axis"], rank),
                 activation=_activation(o))


def _pads_attr(ctx: _Context, op: _TfOp) -> list[list[int]]:
    pads = ctx.const(op, 1)
    rank = len(ctx.shape(op.inputs[0]))
    if pads.shape != (rank, 2):
        raise _UnsupportedError(f"paddings of shape {list(pads.shape)}, expected [{rank}, 2]")
    return [[int(b), int(a)] for b, a in pads]


def PAD(ctx: _Context, op: _TfOp) -> Node:
    """in [x, paddings const] -> in [x]; pads [[before, after], ...]."""
    return _node(ctx, op, Op.PAD, _inputs(ctx, op, 1), pads=_pads_attr(ctx, op))


def PADV2(ctx: _Context, op: _TfOp) -> Node:
    """PAD with an explicit value, which must be real 0 (the zero point of a quantized tensor)."""
    value = ctx.const(op, 2).reshape(-1)
    out = ctx.tf(op.outputs[0])
    zero = int(out.zero_point[0]) if out.scale is not None and out.type != _FLOAT32 else 0
    if value.size != 1 or value[0] != zero:
        raise _UnsupportedError(f"pad value {value.tolist()} is not real 0 (expected {zero})")
    return _node(ctx, op, Op.PAD, _inputs(ctx, op, 1), pads=_pads_attr(ctx, op))


def TRANSPOSE(ctx: _Context, op: _TfOp) -> Node:
    """in [x, perm const] -> in [x]; perm in numpy.transpose order."""
    rank = len(ctx.shape(op.inputs[0]))
    perm = [_axis(int(p), rank) for p in np.atleast_1d(ctx.const(op, 1))]
    return _node(ctx, op, Op.TRANSPOSE, _inputs(ctx, op, 1), perm=perm)


def SOFTMAX(ctx: _Context, op: _TfOp) -> Node:
    """in [x]; beta; over the last axis."""
    beta = float(_options(op, "SoftmaxOptions", False).get("Beta", 1.0))
    return _node(ctx, op, Op.SOFTMAX, _inputs(ctx, op, 1), beta=beta)


def RELU(ctx: _Context, op: _TfOp) -> Node:
    """in [x]."""
    return _node(ctx, op, Op.RELU, _inputs(ctx, op, 1))


def RELU6(ctx: _Context, op: _TfOp) -> Node:
    """in [x]."""
    return _node(ctx, op, Op.RELU6, _inputs(ctx, op, 1))


def RELU_N1_TO_1(ctx: _Context, op: _TfOp) -> Node:
    """A CLIP to [-1, 1]."""
    return _node(ctx, op, Op.CLIP, _inputs(ctx, op, 1), min=-1.0, max=1.0)


def LOGISTIC(ctx: _Context, op: _TfOp) -> Node:
    """in [x]."""
    return _node(ctx, op, Op.LOGISTIC, _inputs(ctx, op, 1))


def TANH(ctx: _Context, op: _TfOp) -> Node:
    """in [x]."""
    return _node(ctx, op, Op.TANH, _inputs(ctx, op, 1))


def QUANTIZE(ctx: _Context, op: _TfOp) -> Node:
    """in [x]; the output quantization comes from the output tensor."""
    return _node(ctx, op, Op.QUANTIZE, _inputs(ctx, op, 1))


def DEQUANTIZE(ctx: _Context, op: _TfOp) -> Node | None:
    """in [x int]; a constant input (float16 or quantized weights) folds into a float32 constant."""
    src = ctx.tf(op.inputs[0])
    data = ctx.data(op.inputs[0])
    if data is None:
        return _node(ctx, op, Op.DEQUANTIZE, _inputs(ctx, op, 1))
    if src.type == 1:  # FLOAT16
        real = data.astype(np.float32)
    elif src.scale is not None:
        shape = [1] * data.ndim
        if src.scale.size > 1:
            if not 0 <= src.quantized_dimension < data.ndim:
                raise ModelError(f"tensor {src.name!r}: quantized_dimension {src.quantized_dimension} out of range")
            shape[src.quantized_dimension] = -1
        real = ((data.astype(np.float64) - src.zero_point.reshape(shape)) * src.scale.reshape(shape)).astype(np.float32)
    else:
        raise _UnsupportedError(f"constant {src.name!r} has no quantization to dequantize with")
    out = ctx.tf(op.outputs[0])
    ctx.tensors[out.name] = Tensor(out.name, ctx.shape(op.outputs[0]), "float32", None, real.reshape(out.shape))
    return None


CONVERTERS: dict[str, Callable[[_Context, _TfOp], Node | None]] = {
    "CONV_2D": CONV_2D, "DEPTHWISE_CONV_2D": DEPTHWISE_CONV_2D, "FULLY_CONNECTED": FULLY_CONNECTED,
    "ADD": ADD, "MUL": MUL, "AVERAGE_POOL_2D": AVERAGE_POOL_2D, "MAX_POOL_2D": MAX_POOL_2D, "MEAN": MEAN,
    "RESHAPE": RESHAPE, "SQUEEZE": SQUEEZE, "CONCATENATION": CONCATENATION, "PAD": PAD, "PADV2": PADV2,
    "TRANSPOSE": TRANSPOSE, "SOFTMAX": SOFTMAX, "RELU": RELU, "RELU6": RELU6, "RELU_N1_TO_1": RELU_N1_TO_1,
    "LOGISTIC": LOGISTIC, "TANH": TANH, "QUANTIZE": QUANTIZE, "DEQUANTIZE": DEQUANTIZE,
}
# Inputs every op needs (default 1), checked before its converter runs.
_MIN_INPUTS = {"CONV_2D": 2, "DEPTHWISE_CONV_2D": 2, "FULLY_CONNECTED": 2, "ADD": 2, "MUL": 2, "MEAN": 2,
               "PAD": 2, "PADV2": 3, "TRANSPOSE": 2}


# ---- driver ----

def _load(path: Path) -> _TfModel:
    try:
        import tflite
    except ImportError:
        raise ModelError("reading .tflite files needs the 'tflite' package",
                         hint="install it with: pip install tflite") from None
    buf = read_model_file(path, MAX_FILE_BYTES, "TFLite")
    if len(buf) < 8 or not tflite.Model.ModelBufferHasIdentifier(buf, 0):
        raise ModelError(f"{path}: not a valid TFLite flatbuffer (no 'TFL3' file identifier)")
    try:
        return _read_model(tflite, buf)
    except (struct.error, IndexError, ValueError, TypeError, KeyError, OverflowError, MemoryError) as exc:
        raise ModelError(f"{path}: not a valid TFLite flatbuffer (truncated or corrupt: {exc})") from None


def _convert(model: _TfModel) -> tuple[_Context, list[Node], list[tuple[str, str, str]]]:
    """Convert every op; returns the nodes and one (op, node, reason) per op that failed, '' reason if ok."""
    ctx = _Context(model)
    nodes: list[Node] = []
    results = []
    for op in model.ops:
        node_name = model.tensors[op.outputs[0]].name if op.outputs else f"op{op.index}"
        try:
            if op.code in _CONTROL_FLOW:
                raise _UnsupportedError("calls another subgraph (only subgraph 0 is imported)")
            if op.code not in CONVERTERS:
                raise _UnsupportedError("custom op" if op.code.startswith("CUSTOM:") else "no converter for this op")
            if len(op.inputs) < _MIN_INPUTS.get(op.code, 1):
                raise ModelError(f"operator {op.index} ({op.code}) has {len(op.inputs)} inputs, expected at least "
                                 f"{_MIN_INPUTS.get(op.code, 1)}")
            node = CONVERTERS[op.code](ctx, op)
        except _UnsupportedError as exc:
            results.append((op.code, node_name, str(exc)))
            continue
        results.append((op.code, node_name, ""))
        if node is not None:
            nodes.append(node)
    for index in model.inputs + model.outputs:
        try:
            ctx.name(index)
        except _UnsupportedError as exc:
            results.append(("graph input/output", model.tensors[index].name, str(exc)))
    return ctx, nodes, results


def _group(results: list[tuple[str, str, str]]) -> dict[tuple[str, str], list[str]]:
    """(op, reason) -> node names, in first-seen order; reason '' means supported."""
    groups: dict[tuple[str, str], list[str]] = {}
    for op, node, reason in results:
        groups.setdefault((op, reason), []).append(node)
    return groups


def list_ops(path: str | Path) -> list[dict[str, Any]]:
    """Every op of a .tflite file with count, support and reason, without raising for unsupported ops.

    Usage: `for row in list_ops("kws.tflite"): print(row["op"], row["count"], row["supported"], row["reason"])`
    Rows have keys op, count, supported, reason and first_node; an op appears once per distinct reason.
    """
    _, _, results = _convert(_load(Path(path)))
    return [{"op": op, "count": len(names), "supported": not why, "reason": why, "first_node": names[0]}
            for (op, why), names in _group(results).items()]


def from_tflite(path: str | Path) -> Graph:
    """Import subgraph 0 of a .tflite file into a validated Graph (UnsupportedOpsError lists every problem).

    Usage: `graph = from_tflite("kws_ref_model.tflite")`
    """
    path = Path(path)
    model = _load(path)
    ctx, nodes, results = _convert(model)
    problems = [(op, len(names), names[0], why) for (op, why), names in _group(results).items() if why]
    if problems:
        raise UnsupportedOpsError(str(path), problems)
    graph = Graph(path.stem, ctx.tensors, nodes, [ctx.name(i) for i in model.inputs],
                  [ctx.name(i) for i in model.outputs],
                  {"source_format": "tflite", "source_file": path.name})
    graph.validate()
    return graph
