"""ADD, MUL and the standalone activations (RELU, RELU6, CLIP, LOGISTIC, TANH), float and integer.

Integer arithmetic follows TFLM: ADD rescales both inputs to a common 2*max(scale) grid with
left_shift 20 (int8) / 15 (int16); MUL multiplies offsets and requantizes once; RELU and CLIP
requantize input to output scale then clamp, RELU6 clamps in the input quantization; int8
LOGISTIC/TANH use gemmlowp fixed-point on a Q4.27 input. int16 LOGISTIC/TANH (TFLM: a 256-entry
sigmoid table with interpolation) are not implemented.
"""

from __future__ import annotations

import math

import numpy as np

from edgepack.errors import ModelError
from edgepack.ir.graph import INT_RANGES
from edgepack.ir.reference.fixedpoint import (
    logistic,
    quantize_multiplier,
    requantize,
    round_half_away,
    round_half_away_array,
    rounding_divide_by_pot,
    tanh,
)
from edgepack.ir.reference.prepare import NodeContext, activation_range, scalar_quant

_IN_INTEGER_BITS = 4  # LOGISTIC/TANH input format Q4.27, as in TFLM


def _clamp(ctx: NodeContext, y: np.ndarray) -> np.ndarray:
    lo, hi = ctx.data["act"]
    return np.clip(y, lo, hi).astype(ctx.out.dtype)


def _prepare_binary(ctx: NodeContext) -> tuple[float, float, float] | None:
    """Shared Prepare of ADD/MUL: the clamp range, zero points in ctx.data, and the three scales (None if float)."""
    ctx.data["act"] = activation_range(ctx)
    if not ctx.quantized:
        return None
    (s1, z1), (s2, z2), (so, zo) = (scalar_quant(ctx, t) for t in (ctx.ins[0], ctx.ins[1], ctx.out))
    ctx.data.update(z1=z1, z2=z2, zo=zo)
    return s1, s2, so


def prepare_add(ctx: NodeContext) -> None:
    """TFLM add.cc Prepare: per-input multipliers onto a shared grid, and the output multiplier."""
    scales = _prepare_binary(ctx)
    if scales is None:
        return
    s1, s2, so = scales
    left_shift = 15 if ctx.out.dtype == "int16" else 20
    twice_max = 2 * float(max(np.float32(s1), np.float32(s2)))
    ctx.data.update(
        left_shift=left_shift,
        m1=quantize_multiplier(s1 / twice_max), m2=quantize_multiplier(s2 / twice_max),
        mo=quantize_multiplier(twice_max / ((1 << left_shift) * so)),
    )


def add(ctx: NodeContext, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """ADD with broadcasting and fused activation."""
    if not ctx.quantized:
        return _clamp(ctx, a.astype(np.float32) + b.astype(np.float32))
    d = ctx.data
    sa = requantize((a.astype(np.int64) - d["z1"]) << d["left_shift"], *d["m1"])
    sb = requantize((b.astype(np.int64) - d["z2"]) << d["left_shift"], *d["m2"])
    return _clamp(ctx, requantize(sa + sb, *d["mo"]) + d["zo"])


def prepare_mul(ctx: NodeContext) -> None:
    """TFLM mul.cc Prepare: one multiplier s1*s2/so."""
    scales = _prepare_binary(ctx)
    if scales is not None:
        s1, s2, so = scales
        ctx.data["m"] = quantize_multiplier(s1 * s2 / so)


def mul(ctx: NodeContext, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """MUL with broadcasting and fused activation."""
    if not ctx.quantized:
        return _clamp(ctx, a.astype(np.float32) * b.astype(np.float32))
    d = ctx.data
    prod = (a.astype(np.int64) - d["z1"]) * (b.astype(np.int64) - d["z2"])
    return _clamp(ctx, requantize(prod, *d["m"]) + d["zo"])


def _clip_bounds(ctx: NodeContext) -> tuple[float, float]:
    op = ctx.node.op.value
    if op == "RELU":
        return 0.0, math.inf
    if op == "RELU6":
        return 0.0, 6.0
    return float(ctx.attr("min", -math.inf)), float(ctx.attr("max", math.inf))


def prepare_clip(ctx: NodeContext) -> None:
    """RELU / RELU6 / CLIP: TFLM ReluQuantized parameters (input -> output rescale, clamp range)."""
    lo, hi = _clip_bounds(ctx)
    if not ctx.quantized:
        ctx.data["act"] = (np.float32(lo), np.float32(hi))
        return
    si, zi = scalar_quant(ctx, ctx.ins[0])
    so, zo = scalar_quant(ctx, ctx.out)
    qmin, qmax = INT_RANGES[ctx.out.dtype]
    if ctx.node.op.value == "RELU6":
        # TFLM's RELU6 clamps the raw input to [zero point, 6] in the input quantization and ignores the
        # output quantization (the converter always makes them equal).
        six = zi + int(round_half_away_array(np.float32(6.0) / np.float32(si)))
        ctx.data.update(zi=zi, zo=zi, m=None, act=(max(qmin, zi), min(qmax, six)))
        return

    def q(f: float) -> int:
        return zo + int(round_half_away_array(np.float32(f) / np.float32(so)))

    act = (max(qmin, q(lo)) if math.isfinite(lo) else qmin, min(qmax, q(hi)) if math.isfinite(hi) else qmax)
    ctx.data.update(zi=zi, zo=zo, m=quantize_multiplier(si / so), act=act)


def clip(ctx: NodeContext, x: np.ndarray) -> np.ndarray:
    """RELU, RELU6 and CLIP."""
    if not ctx.quantized:
        return _clamp(ctx, x.astype(np.float32))
    d = ctx.data
    if d["m"] is None:
        return _clamp(ctx, x)
    return _clamp(ctx, d["zo"] + requantize(x.astype(np.int64) - d["zi"], *d["m"]))


def prepare_sigmoid_tanh(ctx: NodeContext) -> None:
    """LOGISTIC / TANH: TFLM's Q4.27 input multiplier and input radius; fixed output quantization."""
    if not ctx.quantized:
        return
    if ctx.out.dtype != "int8":
        raise ModelError(f"node {ctx.node.name!r} ({ctx.node.op.value}): only int8 is supported, got {ctx.out.dtype} "
                         "(TFLM's int16 kernel uses a lookup table edgepack does not implement)")
    si, zi = scalar_quant(ctx, ctx.ins[0])
    so, zo = scalar_quant(ctx, ctx.out)
    expected = (1 / 256, -128) if ctx.node.op.value == "LOGISTIC" else (1 / 128, 0)
    if (np.float32(so), zo) != (np.float32(expected[0]), expected[1]):
        raise ModelError(f"node {ctx.node.name!r} ({ctx.node.op.value}): int8 output must have scale "
                         f"{expected[0]} and zero point {expected[1]}, got {so} and {zo}")
    real = float(np.float64(si) * (1 << (31 - _IN_INTEGER_BITS)))
    q, left_shift = math.frexp(real)
    # TFLM computes this multiplier inline (no 2**31 overflow adjustment).
    mult = round_half_away(q * (1 << 31))
    max_in = ((1 << _IN_INTEGER_BITS) - 1) * (1 << (31 - _IN_INTEGER_BITS)) / (1 << left_shift)
    ctx.data.update(zi=zi, m=(mult, left_shift), radius=int(math.floor(max_in)))


def _sigmoid_tanh(ctx: NodeContext, x: np.ndarray, fn, output_bits: int, offset: int) -> np.ndarray:
    d = ctx.data
    xi = x.astype(np.int64) - d["zi"]
    q4 = requantize(xi, *d["m"])
    out = rounding_divide_by_pot(fn(q4, _IN_INTEGER_BITS), 31 - output_bits) + offset
    out = np.clip(out, -128, 127)
    out = np.where(xi <= -d["radius"], -128, np.where(xi >= d["radius"], 127, out))
    return out.astype(np.int8)


def sigmoid(ctx: NodeContext, x: np.ndarray) -> np.ndarray:
    """LOGISTIC."""
    if not ctx.quantized:
        return (1.0 / (1.0 + np.exp(-x.astype(np.float32)))).astype(np.float32)
    return _sigmoid_tanh(ctx, x, logistic, 8, -128)


def tanh_op(ctx: NodeContext, x: np.ndarray) -> np.ndarray:
    """TANH."""
    if not ctx.quantized:
        return np.tanh(x.astype(np.float32))
    return _sigmoid_tanh(ctx, x, tanh, 7, 0)
