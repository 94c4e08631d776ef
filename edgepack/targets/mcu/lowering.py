"""Lowering: each node of a quantized Graph becomes one kernel call of the C library.

`lower(graph, cpu)` returns a `Call` per node, in graph order. A call names the kernel, lists its C
arguments as plain data (`Struct`, `Table`, `Buffer`, `Scratch`, `Null`, `Int`, `PointerList`) and
says which tensors it reads and writes. Every number comes from the golden interpreter's Prepare
step (`edgepack.ir.reference.prepare_all`): multipliers, shifts, zero points and clamp ranges are
read, never recomputed. The only transformations made here are exact ones:

- weights are packed two per byte for int4 (low nibble first, TFLite order); for the CONV_2D and
  FULLY_CONNECTED int4 kernels each output channel's row starts on a byte boundary (kernel_lib.pack_w4_rows:
  a zero nibble pads odd rows, otherwise TFLite's packing), never widened;
- on cores with the DSP extension, int8 CONV_2D weights are pre-widened to int16 and reordered for
  the ep_conv2d_s8_w16 / ep_conv2d_1x1_s8_w16 GEMM core (kernel_lib.pack_w16; twice the flash);
- fully connected layers and 1x1 stride-1 unpadded convolutions (run as matrix products by
  ep_conv2d_1x1_s8, or ep_conv2d_1x1_s8_w4 / ep_fc_s8_w4 for int4 weights) get the
  input offset folded into the bias: bias_eff[o] = bias[o] - input_zp * sum(w[o]), exact in int32;
- RESHAPE becomes an alias (no call) that the memory planner resolves.

The code generator renders these calls as C; the host tests call the same kernels through ctypes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from edgepack.errors import UnsupportedOpsError
from edgepack.ir.graph import INT_RANGES, Graph, Tensor
from edgepack.ir.ops import Activation, Op
from edgepack.ir.reference import prepare_all
from edgepack.ir.reference.prepare import NodeContext, scalar_quant
from edgepack.targets.mcu.kernel_lib import CPU_DSP, pack_w4_rows, pack_w16, scratch_bytes

# Graph edges stay integer on the device: a float32 output (DEQUANTIZE) or input (QUANTIZE from float32) is
# converted by the host, with the scale and zero point model.h states (EDGEPACK_OUTPUTk_SCALE / _ZERO_POINT).
DEQUANTIZE_REASON = ("DEQUANTIZE (a float32 graph output) is not run on cortex-m: keep integer graph outputs "
                     "(QuantConfig io='int8', the default) and dequantize on the host with the output's scale and "
                     "zero point (model.h EDGEPACK_OUTPUTk_SCALE / EDGEPACK_OUTPUTk_ZERO_POINT)")


class LoweringError(Exception):
    """A node this target cannot run; the message says why."""


@dataclass
class Table:
    """A `static const` array; `ctype` is its element type."""

    name: str
    ctype: str
    values: np.ndarray


@dataclass
class Struct:
    """A `static const` parameter struct; values may be ints, int lists or Tables (pointers)."""

    name: str
    ctype: str
    values: dict[str, Any]


@dataclass(frozen=True)
class Buffer:
    """An activation tensor in the arena or the caller's input/output buffer."""

    tensor: str


@dataclass(frozen=True)
class PointerList:
    """A `static const void *const name[]` of activation buffers (concatenation inputs)."""

    name: str
    tensors: tuple[str, ...]


@dataclass(frozen=True)
class Scratch:
    """The call's scratch buffer (planned in the arena)."""


@dataclass(frozen=True)
class Null:
    """A NULL pointer (absent bias)."""


@dataclass(frozen=True)
class Int:
    """A literal int32 argument."""

    value: int


Arg = Table | Struct | Buffer | PointerList | Scratch | Null | Int


@dataclass
class Call:
    """One kernel call (or an alias when `kernel` is None)."""

    index: int
    node: str
    op: Op
    kernel: str | None
    args: list[Arg]
    reads: list[str]
    writes: str
    scratch_bytes: int = 0
    summary: str = ""
    in_place: bool = False  # the output may share the first input's buffer

    @property
    def is_alias(self) -> bool:
        """True for RESHAPE: the output is the input's buffer under another shape."""
        return self.kernel is None


def dims4(shape: tuple[int, ...]) -> list[int]:
    """NHWC dims of a tensor of rank <= 4 (leading ones added)."""
    if len(shape) > 4:
        raise LoweringError(f"rank {len(shape)} tensors are not supported (at most 4)")
    return [1] * (4 - len(shape)) + list(shape)


def matrix_dims(rows: int, depth: int) -> list[int]:
    """ep_dims_t of a [rows, depth] matrix."""
    return [rows, 1, 1, depth]


def pack_int4(values: np.ndarray) -> np.ndarray:
    """Pack int4 values (int8 array in [-8, 7]) two per byte, element 2k in the low nibble."""
    flat = values.astype(np.int64).ravel()
    if flat.size and (flat.min() < -8 or flat.max() > 7):
        raise LoweringError("int4 weights hold values outside [-8, 7]")
    if flat.size % 2:
        flat = np.append(flat, 0)
    nib = flat & 0xF
    return ((nib[0::2] | (nib[1::2] << 4)).astype(np.uint8)).view(np.int8)


def _pack_w4_rows(w2d: np.ndarray) -> np.ndarray:
    """kernel_lib.pack_w4_rows with the lowering's error."""
    try:
        return pack_w4_rows(w2d)
    except ValueError as exc:
        raise LoweringError(str(exc)) from None


def _dims_struct(name: str, dims: list[int]) -> Struct:
    return Struct(name, "ep_dims_t", dict(zip("nhwc", (int(d) for d in dims), strict=True)))


def _i32(name: str, values: Any) -> Table:
    arr = np.asarray(values, dtype=np.int64).ravel()
    if arr.size and (arr.min() < -(2**31) or arr.max() > 2**31 - 1):
        raise LoweringError(f"{name}: value outside int32")
    return Table(name, "int32_t", arr.astype(np.int32))


def _width(t: Tensor) -> str:
    bits = t.quant.bits if t.quant is not None else np.dtype(t.dtype).itemsize * 8
    return str(bits)


class _Lowerer:
    """Builds the calls of one graph; one method per op, named after it."""

    def __init__(self, graph: Graph, dsp: bool) -> None:
        self.graph = graph
        self.dsp = dsp

    def lower(self, index: int, ctx: NodeContext) -> Call:
        node = ctx.node
        if not ctx.quantized and node.op is Op.DEQUANTIZE:
            raise LoweringError(DEQUANTIZE_REASON)
        if not ctx.quantized:
            raise LoweringError("float ops are not supported on cortex-m; quantize the model first")
        method = getattr(self, node.op.value, None)
        if method is None:
            raise LoweringError(f"{node.op.value} has no kernel in the cortex-m library")
        call: Call = method(index, ctx, f"l{index:02d}_")
        call.summary = self._summary(index, ctx)
        return call

    def _summary(self, index: int, ctx: NodeContext) -> str:
        node = ctx.node
        first = self.graph.tensor(node.inputs[0])

        def shape(t: Tensor) -> str:
            s = list(t.shape[1:]) if len(t.shape) > 1 else list(t.shape)
            return "x".join(str(d) for d in s) or "1"

        widths = ""
        if node.op in (Op.CONV_2D, Op.DEPTHWISE_CONV_2D, Op.FULLY_CONNECTED):
            widths = f", w{_width(self.graph.tensor(node.inputs[1]))}"
        name = node.name.replace("*/", "*_").replace("\n", " ")
        if len(name) > 60:
            name = name[:28] + "..." + name[-29:]
        op = node.op.value.lower().replace("_2d", "2d").replace("depthwise_", "dw")
        return (f'{index:02d} {op} "{name}" {shape(first)} -> {shape(ctx.out)}'
                f"{widths} a{_width(ctx.out)}")

    # ---- shared pieces ----

    def _quant(self, p: str, ctx: NodeContext, mult: Any, shift: Any, in_zp: int) -> tuple[Struct, list[Table]]:
        tm, ts = _i32(p + "multiplier", mult), _i32(p + "shift", shift)
        lo, hi = ctx.data["act"]
        q = Struct(p + "quant", "ep_quant_t", {
            "input_zp": int(in_zp), "output_zp": int(ctx.data["out_zp"]), "act_min": int(lo), "act_max": int(hi),
            "multiplier": tm, "shift": ts})
        return q, [tm, ts]

    def _weights(self, p: str, w: Tensor, four_bit: bool, rows: bool = False) -> Table:
        """int8 weights as stored, int4 packed flat (TFLite order) or per output-channel row (`rows`)."""
        data = np.asarray(w.data)
        if four_bit and rows:
            return Table(p + "weights", "int8_t", _pack_w4_rows(data.reshape(data.shape[0], -1)))
        return Table(p + "weights", "int8_t", pack_int4(data) if four_bit else data.astype(np.int8).ravel())

    def _check_weights(self, ctx: NodeContext, w: Tensor) -> bool:
        if np.any(ctx.data["w_zp"] != 0):
            raise LoweringError("weights with a non-zero zero point are not supported")
        bits = w.quant.bits if w.quant is not None else 8
        if bits not in (4, 8):
            raise LoweringError(f"{bits}-bit weights are not supported (8 or 4)")
        x = ctx.ins[0]
        assert x is not None
        if bits == 4 and x.dtype == "int16":
            raise LoweringError("int4 weights with int16 activations are not supported (as in TFLM)")
        if x.dtype == "int16" and not ctx.data["wide"]:
            raise LoweringError("int16 CONV_2D with an int32 bias (TFLM's 32-bit accumulator path) has no kernel yet")
        return bits == 4

    def _bias(self, p: str, ctx: NodeContext, channels: int, wide: bool) -> Table | Null:
        b = ctx.ins[2] if len(ctx.ins) > 2 else None
        if b is None:
            return Null()
        values = np.asarray(b.data).astype(np.int64).ravel()
        if wide:
            return Table(p + "bias", "int64_t", values)
        return _i32(p + "bias", values)

    def _folded_bias(self, p: str, ctx: NodeContext, w2d: np.ndarray) -> Table:
        b = ctx.ins[2] if len(ctx.ins) > 2 else None
        bias = np.zeros(w2d.shape[0], np.int64) if b is None else np.asarray(b.data).astype(np.int64).ravel()
        folded = bias - int(ctx.data["in_zp"]) * w2d.astype(np.int64).sum(axis=1)
        return _i32(p + "bias", folded)

    def _linear_call(self, index: int, ctx: NodeContext, p: str, kernel: str, args: list[Arg],
                     filter_dims: list[int], x: str, conv: Struct | None = None) -> Call:
        nbytes = scratch_bytes(kernel, tuple(filter_dims), self.dsp,  # type: ignore[arg-type]
                               tuple(dims4(ctx.out.shape)), conv.values if conv else None)  # type: ignore[arg-type]
        return Call(index, ctx.node.name, ctx.node.op, kernel, args, [x], ctx.node.outputs[0], nbytes)

    # ---- linear layers ----

    def CONV_2D(self, index: int, ctx: NodeContext, p: str) -> Call:
        x, w = ctx.ins[0], ctx.ins[1]
        assert x is not None and w is not None
        four = self._check_weights(ctx, w)
        if w.shape[3] != x.shape[3]:
            raise LoweringError("grouped convolution is not supported")
        strides, pads = ctx.attr("strides", [1, 1]), ctx.attr("pads", [0, 0, 0, 0])
        pointwise = (w.shape[1:3] == (1, 1) and list(pads) == [0, 0, 0, 0] and list(strides) == [1, 1]
                     and x.shape[1:3] == ctx.out.shape[1:3])
        if pointwise and not ctx.data["wide"]:
            rows = x.size // x.shape[3]
            kernel = "ep_conv2d_1x1_s8_w4" if four else ("ep_conv2d_1x1_s8_w16" if self.dsp else "ep_conv2d_1x1_s8")
            return self._fc(index, ctx, p, rows, x.shape[3], w.shape[0], four, kernel)
        suffix = "_s16" if ctx.data["wide"] else ("_s8_w4" if four else ("_s8_w16" if self.dsp else "_s8"))
        kernel = "ep_conv2d" + suffix
        return self._conv_like(index, ctx, p, kernel, four, 1)

    def DEPTHWISE_CONV_2D(self, index: int, ctx: NodeContext, p: str) -> Call:
        w = ctx.ins[1]
        assert w is not None
        four = self._check_weights(ctx, w)
        suffix = "_s16" if ctx.data["wide"] else ("_s8_w4" if four else "_s8")
        return self._conv_like(index, ctx, p, "ep_dwconv2d" + suffix, four, int(ctx.attr("depth_multiplier", 1)))

    def _conv_like(self, index: int, ctx: NodeContext, p: str, kernel: str, four: bool, mult: int) -> Call:
        x, w = ctx.ins[0], ctx.ins[1]
        assert x is not None and w is not None
        s, d, pads = ctx.attr("strides", [1, 1]), ctx.attr("dilations", [1, 1]), ctx.attr("pads", [0, 0, 0, 0])
        conv = Struct(p + "conv", "ep_conv_params_t", {
            "stride_h": int(s[0]), "stride_w": int(s[1]), "dilation_h": int(d[0]), "dilation_w": int(d[1]),
            "pad_top": int(pads[0]), "pad_left": int(pads[1]), "depth_multiplier": mult})
        channels = ctx.out.shape[3]
        quant, _ = self._quant(p, ctx, ctx.data["multiplier"], ctx.data["shift"], ctx.data["in_zp"])
        fdims = list(w.shape)
        table = Table(p + "weights", "int16_t", pack_w16(np.asarray(w.data).reshape(w.shape[0], -1))) \
            if kernel.endswith("_w16") else self._weights(p, w, four, rows=kernel == "ep_conv2d_s8_w4")
        args: list[Arg] = [conv, quant, _dims_struct(p + "in", dims4(x.shape)), Buffer(ctx.node.inputs[0]),
                           _dims_struct(p + "filter", fdims), table,
                           self._bias(p, ctx, channels, ctx.data["wide"]),
                           _dims_struct(p + "out", dims4(ctx.out.shape)), Buffer(ctx.node.outputs[0]), Scratch()]
        return self._linear_call(index, ctx, p, kernel, args, fdims, ctx.node.inputs[0], conv)

    def FULLY_CONNECTED(self, index: int, ctx: NodeContext, p: str) -> Call:
        x, w = ctx.ins[0], ctx.ins[1]
        assert x is not None and w is not None
        four = self._check_weights(ctx, w)
        depth = w.shape[1]
        return self._fc(index, ctx, p, x.size // depth, depth, w.shape[0], four)

    @staticmethod
    def _fc_weights(p: str, w2d: np.ndarray, four: bool, kernel: str) -> Table:
        if kernel.endswith("_w16"):
            return Table(p + "weights", "int16_t", pack_w16(w2d))
        return Table(p + "weights", "int8_t", _pack_w4_rows(w2d) if four else w2d.astype(np.int8).ravel())

    def _fc(self, index: int, ctx: NodeContext, p: str, rows: int, depth: int, outs: int, four: bool,
            kernel: str | None = None) -> Call:
        w = ctx.ins[1]
        assert w is not None
        w2d = np.asarray(w.data).reshape(outs, depth)
        wide = ctx.data["wide"]
        kernel = kernel or ("ep_fc_s16" if wide else ("ep_fc_s8_w4" if four else "ep_fc_s8"))
        quant, _ = self._quant(p, ctx, ctx.data["multiplier"], ctx.data["shift"], ctx.data["in_zp"])
        bias = self._bias(p, ctx, outs, True) if wide else self._folded_bias(p, ctx, w2d)
        fdims = matrix_dims(outs, depth)
        args: list[Arg] = [quant, _dims_struct(p + "in", matrix_dims(rows, depth)), Buffer(ctx.node.inputs[0]),
                           _dims_struct(p + "filter", fdims),
                           self._fc_weights(p, w2d, four, kernel),
                           bias, _dims_struct(p + "out", matrix_dims(rows, outs)), Buffer(ctx.node.outputs[0]),
                           Scratch()]
        return self._linear_call(index, ctx, p, kernel, args, fdims, ctx.node.inputs[0])

    # ---- elementwise ----

    def _int8_only(self, ctx: NodeContext) -> None:
        for t in [*ctx.ins, ctx.out]:
            if t is not None and t.dtype != "int8":
                raise LoweringError(f"{ctx.node.op.value} is implemented for int8 only, got {t.dtype}")

    def _binary(self, index: int, ctx: NodeContext, p: str, kernel: str, params: Struct) -> Call:
        self._int8_only(ctx)
        a, b = ctx.ins[0], ctx.ins[1]
        assert a is not None and b is not None
        rank = len(ctx.out.shape)
        if a.is_const or b.is_const:
            raise LoweringError("constant operands of ADD/MUL are not supported yet")
        da = dims4((1,) * (rank - len(a.shape)) + a.shape)
        db = dims4((1,) * (rank - len(b.shape)) + b.shape)
        args: list[Arg] = [params, _dims_struct(p + "a", da), Buffer(ctx.node.inputs[0]), _dims_struct(p + "b", db),
                           Buffer(ctx.node.inputs[1]), _dims_struct(p + "out", dims4(ctx.out.shape)),
                           Buffer(ctx.node.outputs[0])]
        in_place = a.shape == ctx.out.shape
        return Call(index, ctx.node.name, ctx.node.op, kernel, args, list(ctx.node.inputs[:2]),
                    ctx.node.outputs[0], in_place=in_place)

    def ADD(self, index: int, ctx: NodeContext, p: str) -> Call:
        d = ctx.data
        lo, hi = d["act"]
        params = Struct(p + "add", "ep_add_params_t", {
            "a_zp": d["z1"], "b_zp": d["z2"], "output_zp": d["zo"], "left_shift": d["left_shift"],
            "a_multiplier": d["m1"][0], "a_shift": d["m1"][1], "b_multiplier": d["m2"][0], "b_shift": d["m2"][1],
            "output_multiplier": d["mo"][0], "output_shift": d["mo"][1], "act_min": int(lo), "act_max": int(hi)})
        return self._binary(index, ctx, p, "ep_add_s8", params)

    def MUL(self, index: int, ctx: NodeContext, p: str) -> Call:
        d = ctx.data
        lo, hi = d["act"]
        params = Struct(p + "mul", "ep_mul_params_t", {
            "a_zp": d["z1"], "b_zp": d["z2"], "output_zp": d["zo"], "multiplier": d["m"][0], "shift": d["m"][1],
            "act_min": int(lo), "act_max": int(hi)})
        return self._binary(index, ctx, p, "ep_mul_s8", params)

    def _unary(self, index: int, ctx: NodeContext, kernel: str, args: list[Arg], in_place: bool = False) -> Call:
        return Call(index, ctx.node.name, ctx.node.op, kernel, args, [ctx.node.inputs[0]], ctx.node.outputs[0],
                    in_place=in_place)

    def _sigmoid(self, index: int, ctx: NodeContext, p: str, kernel: str) -> Call:
        self._int8_only(ctx)
        d = ctx.data
        if not -(2**31) <= d["m"][0] < 2**31:
            raise LoweringError("input scale gives a multiplier of 2^31 (TFLM overflows here too)")
        params = Struct(p + "sigmoid", "ep_sigmoid_params_t", {
            "input_zp": d["zi"], "input_multiplier": d["m"][0], "input_left_shift": d["m"][1],
            "input_radius": d["radius"]})
        args: list[Arg] = [params, Int(ctx.out.size), Buffer(ctx.node.inputs[0]), Buffer(ctx.node.outputs[0])]
        return self._unary(index, ctx, kernel, args, in_place=True)

    def LOGISTIC(self, index: int, ctx: NodeContext, p: str) -> Call:
        return self._sigmoid(index, ctx, p, "ep_logistic_s8")

    def TANH(self, index: int, ctx: NodeContext, p: str) -> Call:
        return self._sigmoid(index, ctx, p, "ep_tanh_s8")

    # ---- requantization and standalone activations (ep_requantize_s8_s16.c) ----

    def _rescale(self, index: int, ctx: NodeContext, p: str, m: tuple[int, int] | None, act: tuple[int, int]) -> Call:
        """out = clamp(requantize(x - zi, m) + zo, act) as ep_requantize_<in>_<out>; m None: a clamp."""
        x = ctx.ins[0]
        assert x is not None
        short = {"int8": "s8", "int16": "s16"}
        src, dst = short.get(x.dtype), short.get(ctx.out.dtype)
        if src is None or dst is None:
            raise LoweringError(f"{ctx.node.op.value} from {x.dtype} to {ctx.out.dtype} is not supported "
                                "(int8 and int16 only)")
        lo, hi = (int(v) for v in act)
        io = [Int(ctx.out.size), Buffer(ctx.node.inputs[0]), Buffer(ctx.node.outputs[0])]
        if m is None:  # RELU6: TFLM clamps in the input quantization
            if src != dst:
                raise LoweringError("RELU6 with different input and output dtypes is not supported")
            return self._unary(index, ctx, f"ep_clamp_{dst}", [Int(lo), Int(hi), *io], in_place=True)
        mult, shift = (int(v) for v in m)
        if not (mult == 0 or 2**30 <= mult < 2**31) or not -31 <= shift <= 30:
            raise LoweringError(f"input/output scale ratio out of range (multiplier {mult}, shift {shift})")
        params = Struct(p + "requant", "ep_requantize_params_t", {
            "input_zp": int(ctx.data["zi"]), "output_zp": int(ctx.data["zo"]), "multiplier": mult, "shift": shift,
            "act_min": lo, "act_max": hi})
        return self._unary(index, ctx, f"ep_requantize_{src}_{dst}", [params, *io], in_place=src == dst)

    def QUANTIZE(self, index: int, ctx: NodeContext, p: str) -> Call:
        x = ctx.ins[0]
        assert x is not None
        if x.dtype == "float32":
            raise LoweringError("QUANTIZE of a float32 tensor (a float32 graph input) is not run on cortex-m: keep "
                                "integer graph inputs (QuantConfig io='int8', the default) and quantize on the "
                                "host with the input's scale and zero point (model.h EDGEPACK_INPUTk_SCALE / "
                                "EDGEPACK_INPUTk_ZERO_POINT)")
        return self._rescale(index, ctx, p, ctx.data["m"], INT_RANGES[ctx.out.dtype])

    def _clip(self, index: int, ctx: NodeContext, p: str) -> Call:
        return self._rescale(index, ctx, p, ctx.data["m"], ctx.data["act"])

    RELU = RELU6 = CLIP = _clip

    # ---- pooling and reductions ----

    def _pool(self, index: int, ctx: NodeContext, p: str, kernel: str) -> Call:
        self._int8_only(ctx)
        x = ctx.ins[0]
        assert x is not None
        k, s, pads = ctx.attr("kernel"), ctx.attr("strides", [1, 1]), ctx.attr("pads", [0, 0, 0, 0])
        lo, hi = ctx.data["act"]
        params = Struct(p + "pool", "ep_pool_params_t", {
            "kernel_h": int(k[0]), "kernel_w": int(k[1]), "stride_h": int(s[0]), "stride_w": int(s[1]),
            "pad_top": int(pads[0]), "pad_left": int(pads[1]), "act_min": int(lo), "act_max": int(hi)})
        args: list[Arg] = [params, _dims_struct(p + "in", dims4(x.shape)), Buffer(ctx.node.inputs[0]),
                           _dims_struct(p + "out", dims4(ctx.out.shape)), Buffer(ctx.node.outputs[0])]
        return self._unary(index, ctx, kernel, args)

    def AVERAGE_POOL_2D(self, index: int, ctx: NodeContext, p: str) -> Call:
        return self._pool(index, ctx, p, "ep_avgpool_s8")

    def MAX_POOL_2D(self, index: int, ctx: NodeContext, p: str) -> Call:
        return self._pool(index, ctx, p, "ep_maxpool_s8")

    def MEAN(self, index: int, ctx: NodeContext, p: str) -> Call:
        self._int8_only(ctx)
        x = ctx.ins[0]
        assert x is not None
        d = ctx.data
        if len(x.shape) != 4 or tuple(d["axes"]) != (1, 2):
            raise LoweringError(f"MEAN is implemented over axes [1, 2] of a 4-D tensor, got axes {list(d['axes'])}")
        tm, ts = _i32(p + "multiplier", [d["m"][0]]), _i32(p + "shift", [d["m"][1]])
        quant = Struct(p + "quant", "ep_quant_t", {"input_zp": d["zi"], "output_zp": d["zo"], "act_min": -128,
                                                   "act_max": 127, "multiplier": tm, "shift": ts})
        out = [x.shape[0], 1, 1, x.shape[3]]
        args: list[Arg] = [quant, _dims_struct(p + "in", list(x.shape)), Buffer(ctx.node.inputs[0]),
                           _dims_struct(p + "out", out), Buffer(ctx.node.outputs[0])]
        return self._unary(index, ctx, "ep_mean_s8", args)

    def SOFTMAX(self, index: int, ctx: NodeContext, p: str) -> Call:
        self._int8_only(ctx)
        d = ctx.data
        depth = ctx.out.shape[-1]
        params = Struct(p + "softmax", "ep_softmax_params_t", {
            "input_multiplier": d["mult"], "input_left_shift": d["left_shift"], "diff_min": d["diff_min"]})
        args: list[Arg] = [params, _dims_struct(p + "in", matrix_dims(ctx.out.size // depth, depth)),
                           Buffer(ctx.node.inputs[0]), Buffer(ctx.node.outputs[0])]
        return self._unary(index, ctx, "ep_softmax_s8", args)

    # ---- data movement ----

    def RESHAPE(self, index: int, ctx: NodeContext, p: str) -> Call:
        return Call(index, ctx.node.name, ctx.node.op, None, [], [ctx.node.inputs[0]], ctx.node.outputs[0])

    def PAD(self, index: int, ctx: NodeContext, p: str) -> Call:
        self._int8_only(ctx)
        x = ctx.ins[0]
        assert x is not None
        pads = [list(map(int, pr)) for pr in ctx.attr("pads")]
        before = [0] * (4 - len(pads)) + [pr[0] for pr in pads]
        params = Struct(p + "pad", "ep_pad_params_t", {"before": before, "value": scalar_quant(ctx, ctx.out)[1]})
        args: list[Arg] = [params, _dims_struct(p + "in", dims4(x.shape)), Buffer(ctx.node.inputs[0]),
                           _dims_struct(p + "out", dims4(ctx.out.shape)), Buffer(ctx.node.outputs[0])]
        return self._unary(index, ctx, "ep_pad_s8", args)

    def CONCATENATION(self, index: int, ctx: NodeContext, p: str) -> Call:
        if Activation(ctx.attr("activation", "NONE")) is not Activation.NONE:
            raise LoweringError("CONCATENATION with a fused activation is not supported")
        axis = int(ctx.attr("axis")) % len(ctx.out.shape)
        item = np.dtype(ctx.out.dtype).itemsize
        ins = [t for t in ctx.ins if t is not None]
        if any(t.is_const for t in ins):
            raise LoweringError("constant inputs of CONCATENATION are not supported yet")
        inner = _i32(p + "inner_bytes", [math.prod(t.shape[axis:]) * item for t in ins])
        params = Struct(p + "concat", "ep_concat_params_t", {
            "outer": math.prod(ctx.out.shape[:axis]), "count": len(ins), "inner_bytes": inner})
        names = tuple(n for n in ctx.node.inputs if n)
        return Call(index, ctx.node.name, ctx.node.op, "ep_concat",
                    [params, PointerList(p + "inputs", names), Buffer(ctx.node.outputs[0])],
                    list(names), ctx.node.outputs[0])


def tables_of(call: Call) -> list[Table]:
    """Every constant table a call refers to (directly or through a struct's pointer fields)."""
    found: list[Table] = []
    for a in call.args:
        if isinstance(a, Table):
            found.append(a)
        elif isinstance(a, Struct):
            found += [v for v in a.values.values() if isinstance(v, Table)]
    return found


def _copy_call(graph: Graph, call: Call) -> Call:
    """A RESHAPE that must copy: one-input ep_concat of the whole tensor."""
    t = graph.tensor(call.writes)
    p = f"l{call.index:02d}_"
    inner = _i32(p + "inner_bytes", [t.size * np.dtype(t.dtype).itemsize])
    params = Struct(p + "copy", "ep_concat_params_t", {"outer": 1, "count": 1, "inner_bytes": inner})
    return Call(call.index, call.node, call.op, "ep_concat",
                [params, PointerList(p + "inputs", (call.reads[0],)), Buffer(call.writes)],
                list(call.reads), call.writes, summary=call.summary + " (copy)")


def _resolve_alias_conflicts(graph: Graph, calls: list[Call]) -> list[Call]:
    """Turn a RESHAPE into a copy where aliasing would merge two graph inputs/outputs into one buffer."""
    io = set(graph.inputs) | set(graph.outputs)
    group: dict[str, set[str]] = {}
    result = []
    for call in calls:
        if call.is_alias:
            src = group.get(call.reads[0], {call.reads[0]})
            if len((src | {call.writes}) & io) > 1:
                call = _copy_call(graph, call)
            else:
                merged = src | {call.writes}
                for t in merged:
                    group[t] = merged
        result.append(call)
    return result


def lower(graph: Graph, cpu: str = "cortex-m4") -> list[Call]:
    """One Call per node (graph order); UnsupportedOpsError listing every node that cannot run."""
    if cpu not in CPU_DSP:
        raise ValueError(f"unknown cpu {cpu!r}; known: {', '.join(CPU_DSP)}")
    contexts, problems = prepare_all(graph)
    lowerer = _Lowerer(graph, CPU_DSP[cpu])
    calls: list[Call] = []
    found: dict[str, list[Any]] = {}
    for name, op, reason in problems:
        found.setdefault(op, [0, name, reason])[0] += 1
    failed = {name for name, _, _ in problems}
    for i, ctx in enumerate(contexts):
        if ctx.node.name in failed:
            continue
        try:
            calls.append(lowerer.lower(i, ctx))
        except LoweringError as exc:
            entry = found.setdefault(ctx.node.op.value, [0, ctx.node.name, str(exc)])
            entry[0] += 1
    if found:
        raise UnsupportedOpsError(graph.name, [(op, c, first, why) for op, (c, first, why) in found.items()])
    return _resolve_alias_conflicts(graph, calls)
