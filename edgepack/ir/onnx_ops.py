"""ONNX op converters: one function per ONNX op, named after it, with the spec's attribute defaults as keyword
defaults (https://onnx.ai/onnx/operators/, opset 13-21).

To add an op: write `def OpType(ctx, node, *, attr=default, ...)` that reads inputs through `ctx.get` (asking
for NHWC where the IR op needs it), raises `UnsupportedVariantError(reason)` for variants it cannot map
*before* emitting anything, emits IR nodes with `ctx.emit`, and register it in `CONVERTERS`.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from edgepack.ir.onnx_context import NHWC_AXIS, TO_NHWC, Context, UnsupportedVariantError
from edgepack.ir.ops import Op

INF = float(np.finfo(np.float32).max)
LINEAR_OPS = frozenset({Op.CONV_2D, Op.DEPTHWISE_CONV_2D, Op.FULLY_CONNECTED})
ACTIVATION_PRODUCERS = LINEAR_OPS | {Op.ADD}


@dataclass
class OnnxNode:
    """An ONNX node reduced to plain Python values (attributes decoded, name filled in)."""

    op_type: str
    name: str
    inputs: list[str]
    outputs: list[str]
    attrs: dict[str, Any] = field(default_factory=dict)
    domain: str = ""
    proto: Any = None


def _const_input(ctx: Context, node: OnnxNode, index: int, what: str) -> np.ndarray | None:
    """Constant value of optional input `index` (None when absent); UnsupportedVariantError when it is an activation."""
    name = node.inputs[index] if index < len(node.inputs) else ""
    if not name:
        return None
    value = ctx.const(name)
    if value is None:
        raise UnsupportedVariantError(f"{what} ({name!r}) must be a constant")
    return value


def _explicit_pads(auto_pad: str, pads: list[int] | None, in_hw: tuple[int, ...], kernel: list[int],
                   strides: list[int], dilations: list[int]) -> list[int]:
    """ONNX padding -> [top, left, bottom, right] (ONNX's own pads order for 2-D)."""
    if auto_pad == "NOTSET":
        return [int(p) for p in (pads or [0, 0, 0, 0])]
    if auto_pad == "VALID":
        return [0, 0, 0, 0]
    if auto_pad not in ("SAME_UPPER", "SAME_LOWER"):
        raise UnsupportedVariantError(f"auto_pad={auto_pad!r} is not supported")
    begin, end = [], []
    for size, k, s, d in zip(in_hw, kernel, strides, dilations, strict=True):
        total = max((math.ceil(size / s) - 1) * s + (k - 1) * d + 1 - size, 0)
        small, big = total // 2, total - total // 2  # SAME_UPPER puts the odd pixel at the end
        begin.append(small if auto_pad == "SAME_UPPER" else big)
        end.append(big if auto_pad == "SAME_UPPER" else small)
    return begin + end


# -- linear layers --------------------------------------------------------------------------------------------

def Conv(ctx: Context, node: OnnxNode, *, auto_pad: str = "NOTSET", dilations: list[int] | None = None,
         group: int = 1, kernel_shape: list[int] | None = None, pads: list[int] | None = None,
         strides: list[int] | None = None) -> None:
    x = node.inputs[0]
    w = _const_input(ctx, node, 1, "weights")
    if w is None or w.ndim != 4:
        rank = None if w is None else w.ndim
        raise UnsupportedVariantError(f"only 2-D convolution is supported (weights of rank {rank})")
    bias = _const_input(ctx, node, 2, "bias")
    out_c, _, kh, kw = w.shape
    _, c_in, h, wd = ctx.shape(x)
    strides, dilations = list(strides or [1, 1]), list(dilations or [1, 1])
    attrs: dict[str, Any] = {"strides": strides, "dilations": dilations, "activation": "NONE",
                             "pads": _explicit_pads(auto_pad, pads, (h, wd), [kh, kw], strides, dilations)}
    if group == 1:
        op, weights = Op.CONV_2D, w.transpose(0, 2, 3, 1)  # OIHW -> OHWI
    elif group == c_in and out_c % c_in == 0:
        # output channel o reads input channel o // M, as in TFLite's [1, KH, KW, C*M] layout
        op, weights = Op.DEPTHWISE_CONV_2D, w.reshape(out_c, kh, kw).transpose(1, 2, 0)[None]
        attrs["depth_multiplier"] = out_c // c_in
    else:
        raise UnsupportedVariantError(f"grouped convolution (group={group}, {c_in} input channels) is not supported; "
                          "only group=1 or depthwise (group = input channels)")
    bias = np.zeros(out_c, np.float32) if bias is None else bias.reshape(-1)
    inputs = [ctx.get(x, nhwc=True), ctx.add_const("weights", weights), ctx.add_const("bias", bias)]
    ctx.emit(op, inputs, node.outputs[0], nhwc=True, attrs=attrs)


def Gemm(ctx: Context, node: OnnxNode, *, alpha: float = 1.0, beta: float = 1.0, transA: int = 0,
         transB: int = 0) -> None:
    if transA:
        raise UnsupportedVariantError("transA=1 is not supported")
    b = _const_input(ctx, node, 1, "B")
    c = _const_input(ctx, node, 2, "C")
    weights = (b if transB else b.T) * alpha  # FULLY_CONNECTED wants [O, I]
    out_c = weights.shape[0]
    if c is not None and not (c.size == 1 or (c.shape[-1] == out_c and c.size == out_c)):
        raise UnsupportedVariantError(f"bias C of shape {list(c.shape)} is not a per-output vector of {out_c}")
    bias = np.zeros(out_c, np.float32) if c is None else beta * np.broadcast_to(c.reshape(-1), (out_c,))
    inputs = [ctx.get(node.inputs[0]), ctx.add_const("weights", weights), ctx.add_const("bias", bias)]
    ctx.emit(Op.FULLY_CONNECTED, inputs, node.outputs[0], attrs={"activation": "NONE"})


def MatMul(ctx: Context, node: OnnxNode) -> None:
    b = ctx.const(node.inputs[1])
    if b is None or b.ndim != 2:
        raise UnsupportedVariantError("only x @ B with a constant 2-D B is supported (B is an activation or not 2-D)")
    if len(ctx.shape(node.inputs[0])) < 2:
        raise UnsupportedVariantError("a 1-D first operand is not supported")
    inputs = [ctx.get(node.inputs[0]), ctx.add_const("weights", b.T), ctx.add_const("bias", np.zeros(b.shape[1]))]
    ctx.emit(Op.FULLY_CONNECTED, inputs, node.outputs[0], attrs={"activation": "NONE"})


def _per_channel(value: np.ndarray, out_shape: tuple[int, ...], axis: int) -> np.ndarray | None:
    """`value` as a vector along `axis` of `out_shape` when it broadcasts only along that axis, else None."""
    rank = len(out_shape)
    axis %= rank
    if value.ndim > rank:
        return None
    full = value.reshape((1,) * (rank - value.ndim) + value.shape)
    if any(d != 1 for i, d in enumerate(full.shape) if i != axis) or full.shape[axis] not in (1, out_shape[axis]):
        return None
    return np.broadcast_to(full.reshape(-1), (out_shape[axis],)).astype(np.float32)


def _fold_channel_affine(ctx: Context, src: str, dst: str, scale: np.ndarray | None, shift: np.ndarray) -> bool:
    """Fold y = x * scale + shift (per output channel) into the linear op writing `src`; True when done."""
    producer = ctx.fusable_producer(src, LINEAR_OPS)
    if producer is None:
        return False
    if scale is not None:
        w = ctx.tensors[producer.inputs[1]]
        # output channels are the last weight axis for depthwise ([1, KH, KW, C*M]), the first otherwise
        per_out = scale if producer.op is Op.DEPTHWISE_CONV_2D else scale.reshape(-1, *[1] * (w.data.ndim - 1))
        w.data = (w.data * per_out).astype(np.float32)
    b = ctx.tensors[producer.inputs[2]]
    b.data = ((b.data if scale is None else b.data * scale) + shift).astype(np.float32)
    ctx.rename_output(src, dst)
    return True


def _channel_axis(ctx: Context, name: str) -> int:
    """ONNX channel axis of the output of the linear op writing `name`: 1 for conv, last for FULLY_CONNECTED."""
    producer = ctx.producers.get(ctx.held[name][0]) if name in ctx.held else None
    return -1 if producer is not None and producer.op is Op.FULLY_CONNECTED else 1


def BatchNormalization(ctx: Context, node: OnnxNode, *, epsilon: float = 1e-5, momentum: float = 0.9,
                       training_mode: int = 0) -> None:
    if training_mode or len([o for o in node.outputs if o]) > 1:
        raise UnsupportedVariantError("training mode (running mean/var outputs) is not supported")
    gamma, beta, mean, var = (_const_input(ctx, node, i, what) for i, what in enumerate(
        ("scale", "B", "mean", "var"), start=1))
    scale = (gamma / np.sqrt(var + np.float32(epsilon))).astype(np.float32)
    shift = (beta - mean * scale).astype(np.float32)
    x, out = node.inputs[0], node.outputs[0]
    shape = ctx.shape(x)
    producer_is_fc = _channel_axis(ctx, x) == -1
    if (not producer_is_fc or len(shape) == 2) and _fold_channel_affine(ctx, x, out, scale, shift):
        return
    nhwc = ctx.is_nhwc(x)
    vec_shape = (1, 1, 1, -1) if nhwc else (1, -1) + (1,) * (len(shape) - 2)
    scaled = ctx.unique(f"{out}__scaled")
    x_ir = ctx.get(x, nhwc)
    ctx.node(Op.MUL, [x_ir, ctx.add_const("scale", scale.reshape(vec_shape))], scaled, ctx.tensors[x_ir].shape,
             {"activation": "NONE"})
    ctx.emit(Op.ADD, [scaled, ctx.add_const("shift", shift.reshape(vec_shape))], out, nhwc=nhwc,
             attrs={"activation": "NONE"})


# -- elementwise ----------------------------------------------------------------------------------------------

def _binary(ctx: Context, node: OnnxNode, op: Op, a: str, b: str, b_value: np.ndarray | None = None) -> None:
    """Emit a broadcasting ADD/MUL; works in NHWC when a 4-D operand is held so and every activation is 4-D."""
    out = node.outputs[0]
    names = [a, b]
    acts = [n for n in names if ctx.const(n) is None]
    if not acts:
        raise UnsupportedVariantError("both operands are constants")  # folded before conversion; reaching here is a bug
    nhwc = (len(ctx.shape(out)) == 4 and any(ctx.is_nhwc(n) for n in acts)
            and all(len(ctx.shape(n)) == 4 for n in acts))
    inputs = []
    for name, override in ((a, None), (b, b_value)):
        value = override if override is not None else ctx.const(name)
        if value is None:
            inputs.append(ctx.get(name, nhwc))
            continue
        data = value.astype(np.float32)
        if nhwc:
            data = data.reshape((1,) * (4 - data.ndim) + data.shape).transpose(TO_NHWC)
        inputs.append(ctx.add_const("operand", data) if override is not None or nhwc else ctx.get(name))
    if ctx.const(a) is not None:  # keep the activation first, as TFLite does
        inputs.reverse()
    ctx.emit(op, inputs, out, nhwc=nhwc, attrs={"activation": "NONE"})


def Add(ctx: Context, node: OnnxNode) -> None:
    a, b = node.inputs
    for x, c in ((a, b), (b, a)):
        value = ctx.const(c)
        if value is not None and ctx.const(x) is None and ctx.shape(x) == ctx.shape(node.outputs[0]):
            shift = _per_channel(value, ctx.shape(x), _channel_axis(ctx, x))
            if shift is not None and _fold_channel_affine(ctx, x, node.outputs[0], None, shift):
                return
    _binary(ctx, node, Op.ADD, a, b)


def Sub(ctx: Context, node: OnnxNode) -> None:
    a, b = node.inputs
    value = ctx.const(b)
    if value is None or ctx.const(a) is not None:
        raise UnsupportedVariantError("only activation - constant is supported")
    _binary(ctx, node, Op.ADD, a, b, -value.astype(np.float32))


def Mul(ctx: Context, node: OnnxNode) -> None:
    _binary(ctx, node, Op.MUL, *node.inputs)


def Div(ctx: Context, node: OnnxNode) -> None:
    a, b = node.inputs
    value = ctx.const(b)
    if value is None or ctx.const(a) is not None:
        raise UnsupportedVariantError("only activation / constant is supported")
    _binary(ctx, node, Op.MUL, a, b, (1.0 / value.astype(np.float64)).astype(np.float32))


def _unary(ctx: Context, node: OnnxNode, op: Op, attrs: dict[str, Any] | None = None) -> None:
    """An op that keeps the layout of its input."""
    x = node.inputs[0]
    nhwc = ctx.is_nhwc(x)
    ctx.emit(op, [ctx.get(x, nhwc)], node.outputs[0], nhwc=nhwc, attrs=attrs)


def _activation(ctx: Context, node: OnnxNode, op: Op, fused: str | None) -> None:
    """Fuse into the producer's `activation` when allowed (`fused` names it), else emit `op`."""
    producer = ctx.fusable_producer(node.inputs[0], ACTIVATION_PRODUCERS) if fused else None
    if producer is not None:
        producer.attrs["activation"] = fused
        ctx.rename_output(node.inputs[0], node.outputs[0])
    else:
        _unary(ctx, node, op)


def Relu(ctx: Context, node: OnnxNode) -> None:
    _activation(ctx, node, Op.RELU, "RELU")


def Clip(ctx: Context, node: OnnxNode, *, min: float = -INF, max: float = INF) -> None:
    lo, hi = _const_input(ctx, node, 1, "min"), _const_input(ctx, node, 2, "max")
    lo = float(min if lo is None else lo.reshape(-1)[0])
    hi = float(max if hi is None else hi.reshape(-1)[0])
    if (lo, hi) == (0.0, 6.0):
        _activation(ctx, node, Op.RELU6, "RELU6")
    elif lo == 0.0 and hi >= INF:
        _activation(ctx, node, Op.RELU, "RELU")
    elif (lo, hi) == (-1.0, 1.0) and ctx.fusable_producer(node.inputs[0], ACTIVATION_PRODUCERS) is not None:
        _activation(ctx, node, Op.CLIP, "RELU_N1_TO_1")
    else:
        _unary(ctx, node, Op.CLIP, {"min": float(np.clip(lo, -INF, INF)), "max": float(np.clip(hi, -INF, INF))})


def Sigmoid(ctx: Context, node: OnnxNode) -> None:
    _unary(ctx, node, Op.LOGISTIC)


def Tanh(ctx: Context, node: OnnxNode) -> None:
    _unary(ctx, node, Op.TANH)


def Softmax(ctx: Context, node: OnnxNode, *, axis: int = -1) -> None:
    rank = len(ctx.shape(node.inputs[0]))
    if axis % rank != rank - 1:
        raise UnsupportedVariantError(f"softmax over axis {axis} of a {rank}-D tensor; only the last axis is supported")
    ctx.emit(Op.SOFTMAX, [ctx.get(node.inputs[0])], node.outputs[0], attrs={"beta": 1.0})


# -- pooling and reductions -----------------------------------------------------------------------------------

def _pool(ctx: Context, node: OnnxNode, op: Op, auto_pad: str, ceil_mode: int, dilations: list[int] | None,
          kernel_shape: list[int], pads: list[int] | None, strides: list[int] | None) -> None:
    if len([o for o in node.outputs if o]) > 1:
        raise UnsupportedVariantError("the Indices output is not supported")
    if len(kernel_shape) != 2:
        raise UnsupportedVariantError(f"only 2-D pooling is supported (kernel {list(kernel_shape)})")
    if dilations and any(d != 1 for d in dilations):
        raise UnsupportedVariantError(f"dilations {list(dilations)} are not supported")
    x, out = node.inputs[0], node.outputs[0]
    strides = list(strides or [1, 1])
    in_hw = ctx.shape(x)[2:]
    explicit = _explicit_pads(auto_pad, pads, in_hw, list(kernel_shape), strides, [1, 1])
    floor_hw = tuple((n + explicit[i] + explicit[i + 2] - k) // s + 1
                     for i, (n, k, s) in enumerate(zip(in_hw, kernel_shape, strides, strict=True)))
    if ceil_mode and floor_hw != ctx.shape(out)[2:]:
        raise UnsupportedVariantError("ceil_mode=1 is not supported where it changes the output size")
    attrs = {"kernel": list(kernel_shape), "strides": strides, "pads": explicit, "activation": "NONE"}
    ctx.emit(op, [ctx.get(x, nhwc=True)], out, nhwc=True, attrs=attrs)


def MaxPool(ctx: Context, node: OnnxNode, *, auto_pad: str = "NOTSET", ceil_mode: int = 0,
            dilations: list[int] | None = None, kernel_shape: list[int] = (), pads: list[int] | None = None,
            storage_order: int = 0, strides: list[int] | None = None) -> None:
    _pool(ctx, node, Op.MAX_POOL_2D, auto_pad, ceil_mode, dilations, kernel_shape, pads, strides)


def AveragePool(ctx: Context, node: OnnxNode, *, auto_pad: str = "NOTSET", ceil_mode: int = 0,
                count_include_pad: int = 0, dilations: list[int] | None = None, kernel_shape: list[int] = (),
                pads: list[int] | None = None, strides: list[int] | None = None) -> None:
    if count_include_pad and (auto_pad.startswith("SAME") or any(pads or [])):
        raise UnsupportedVariantError("count_include_pad=1 with padding is not supported (the IR excludes padding)")
    _pool(ctx, node, Op.AVERAGE_POOL_2D, auto_pad, ceil_mode, dilations, kernel_shape, pads, strides)


def GlobalAveragePool(ctx: Context, node: OnnxNode) -> None:
    if len(ctx.shape(node.inputs[0])) != 4:
        raise UnsupportedVariantError("only 4-D (2-D spatial) input is supported")
    ctx.emit(Op.MEAN, [ctx.get(node.inputs[0], nhwc=True)], node.outputs[0], nhwc=True,
             attrs={"axes": [1, 2], "keepdims": True})


def GlobalMaxPool(ctx: Context, node: OnnxNode) -> None:
    shape = ctx.shape(node.inputs[0])
    if len(shape) != 4:
        raise UnsupportedVariantError("only 4-D (2-D spatial) input is supported")
    attrs = {"kernel": list(shape[2:]), "strides": [1, 1], "pads": [0, 0, 0, 0], "activation": "NONE"}
    ctx.emit(Op.MAX_POOL_2D, [ctx.get(node.inputs[0], nhwc=True)], node.outputs[0], nhwc=True, attrs=attrs)


def ReduceMean(ctx: Context, node: OnnxNode, *, axes: list[int] | None = None, keepdims: int = 1,
               noop_with_empty_axes: int = 0) -> None:
    x = node.inputs[0]
    rank = len(ctx.shape(x))
    given = _const_input(ctx, node, 1, "axes")
    axes = list(given.reshape(-1)) if given is not None else list(axes or [])
    if not axes and noop_with_empty_axes:
        raise UnsupportedVariantError("noop_with_empty_axes=1 is not supported")
    axes = sorted(int(a) % rank for a in axes) if axes else list(range(rank))
    nhwc = ctx.is_nhwc(x)
    if nhwc and not keepdims:  # the kept axes must come out in ONNX order
        kept = [NHWC_AXIS[a] for a in range(4) if a not in axes]
        nhwc = kept == sorted(kept)
    ir_axes = sorted(NHWC_AXIS[a] for a in axes) if nhwc else axes
    ctx.emit(Op.MEAN, [ctx.get(x, nhwc)], node.outputs[0], nhwc=nhwc and bool(keepdims),
             attrs={"axes": ir_axes, "keepdims": bool(keepdims)})


# -- data movement --------------------------------------------------------------------------------------------

def _reshape(ctx: Context, node: OnnxNode) -> None:
    """Any op that only changes the shape: RESHAPE of the ONNX-ordered data to the inferred output shape."""
    ctx.emit(Op.RESHAPE, [ctx.get(node.inputs[0])], node.outputs[0])


def Reshape(ctx: Context, node: OnnxNode, *, allowzero: int = 0) -> None:
    _const_input(ctx, node, 1, "shape")
    _reshape(ctx, node)


def Flatten(ctx: Context, node: OnnxNode, *, axis: int = 1) -> None:
    _reshape(ctx, node)


def Squeeze(ctx: Context, node: OnnxNode) -> None:
    _const_input(ctx, node, 1, "axes")
    _reshape(ctx, node)


def Unsqueeze(ctx: Context, node: OnnxNode) -> None:
    _const_input(ctx, node, 1, "axes")
    _reshape(ctx, node)


def Identity(ctx: Context, node: OnnxNode) -> None:
    """Only reached when the copy cannot be renamed away (graph input or output on both sides)."""
    nhwc = ctx.is_nhwc(node.inputs[0])
    ctx.emit(Op.RESHAPE, [ctx.get(node.inputs[0], nhwc)], node.outputs[0], nhwc=nhwc)


def Dropout(ctx: Context, node: OnnxNode, *, seed: int = 0) -> None:
    if len([o for o in node.outputs if o]) > 1:
        raise UnsupportedVariantError("the mask output is not supported")
    Identity(ctx, node)


def Concat(ctx: Context, node: OnnxNode, *, axis: int) -> None:
    names = [n for n in node.inputs if n]
    rank = len(ctx.shape(node.outputs[0]))
    nhwc = rank == 4 and any(ctx.is_nhwc(n) for n in names)
    axis %= rank
    ctx.emit(Op.CONCATENATION, [ctx.get(n, nhwc) for n in names], node.outputs[0], nhwc=nhwc,
             attrs={"axis": NHWC_AXIS[axis] if nhwc else axis, "activation": "NONE"})


def Pad(ctx: Context, node: OnnxNode, *, mode: str = "constant") -> None:
    if mode != "constant":
        raise UnsupportedVariantError(f"mode={mode!r} is not supported; only 'constant'")
    pads = _const_input(ctx, node, 1, "pads")
    value = _const_input(ctx, node, 2, "constant_value")
    axes = _const_input(ctx, node, 3, "axes")
    if value is not None and value.size and float(value.reshape(-1)[0]) != 0.0:
        raise UnsupportedVariantError(f"constant_value {float(value.reshape(-1)[0])} is not supported; only 0")
    x = node.inputs[0]
    rank = len(ctx.shape(x))
    axes = [int(a) % rank for a in (axes.reshape(-1) if axes is not None else range(rank))]
    pads = [int(p) for p in pads.reshape(-1)]
    if any(p < 0 for p in pads):
        raise UnsupportedVariantError("negative pads (cropping) are not supported")
    per_dim = [[0, 0] for _ in range(rank)]
    for i, a in enumerate(axes):
        per_dim[a] = [pads[i], pads[i + len(axes)]]
    nhwc = ctx.is_nhwc(x)
    if nhwc:
        per_dim = [per_dim[i] for i in TO_NHWC]
    ctx.emit(Op.PAD, [ctx.get(x, nhwc)], node.outputs[0], nhwc=nhwc, attrs={"pads": per_dim})


def Transpose(ctx: Context, node: OnnxNode, *, perm: list[int] | None = None) -> None:
    x, out = node.inputs[0], node.outputs[0]
    rank = len(ctx.shape(x))
    perm = list(perm) if perm is not None else list(range(rank))[::-1]
    # IR input = ONNX input permuted by in_perm; choose the output layout that makes the IR perm an identity
    in_perm = TO_NHWC if ctx.is_nhwc(x) else tuple(range(rank))
    from_ir = [in_perm.index(i) for i in range(rank)]  # inverse of in_perm
    onnx_out = [from_ir[p] for p in perm]
    nhwc = rank == 4 and [onnx_out[p] for p in TO_NHWC] == list(range(4))
    ir_perm = [onnx_out[p] for p in TO_NHWC] if nhwc else onnx_out
    ctx.emit(Op.TRANSPOSE, [ctx.get(x, ctx.is_nhwc(x))], out, nhwc=nhwc, attrs={"perm": ir_perm})


Converter = Callable[..., None]

CONVERTERS: dict[str, Converter] = {
    fn.__name__: fn for fn in (
        Conv, Gemm, MatMul, BatchNormalization,
        Add, Sub, Mul, Div, Relu, Clip, Sigmoid, Tanh, Softmax,
        MaxPool, AveragePool, GlobalAveragePool, GlobalMaxPool, ReduceMean,
        Reshape, Flatten, Squeeze, Unsqueeze, Identity, Dropout, Concat, Pad, Transpose,
    )
}
