"""RESHAPE, CONCATENATION, PAD, TRANSPOSE, QUANTIZE and DEQUANTIZE.

QUANTIZE rounds x / scale in float32 with roundf, as TFLM's AffineQuantize; integer -> integer
QUANTIZE requantizes with one multiplier (TFLM Requantize); DEQUANTIZE computes
float(double(scale) * (q - zero_point)).
"""

from __future__ import annotations

import numpy as np

from edgepack.errors import ModelError
from edgepack.ir.graph import INT_RANGES
from edgepack.ir.reference.fixedpoint import quantize_multiplier, requantize, round_half_away_array
from edgepack.ir.reference.prepare import NodeContext, activation_range, scalar_quant


def reshape(ctx: NodeContext, x: np.ndarray) -> np.ndarray:
    """RESHAPE to the output tensor's shape (the leading batch dimension follows the input)."""
    return x.reshape(-1, *ctx.out.shape[1:]) if ctx.out.shape else x.reshape(())


def transpose(ctx: NodeContext, x: np.ndarray) -> np.ndarray:
    """TRANSPOSE by `perm`."""
    return np.transpose(x, ctx.attr("perm"))


def prepare_concat(ctx: NodeContext) -> None:
    """Integer concatenation needs every input to share the output's quantization (checked here)."""
    ctx.data["act"] = activation_range(ctx)
    if ctx.quantized:
        out_q = scalar_quant(ctx, ctx.out)
        for t in ctx.ins:
            if scalar_quant(ctx, t) != out_q:
                raise ModelError(f"node {ctx.node.name!r} (CONCATENATION): input {t.name!r} is quantized "  # type: ignore[union-attr]
                                 "differently from the output; requantize it first")


def concatenation(ctx: NodeContext, *xs: np.ndarray) -> np.ndarray:
    """CONCATENATION along `axis`."""
    lo, hi = ctx.data["act"]
    return np.clip(np.concatenate(xs, axis=int(ctx.attr("axis"))), lo, hi).astype(ctx.out.dtype)


def pad(ctx: NodeContext, x: np.ndarray) -> np.ndarray:
    """PAD with real zero (the zero point for integer tensors)."""
    value = scalar_quant(ctx, ctx.out)[1] if ctx.quantized else 0.0
    return np.pad(x, [tuple(p) for p in ctx.attr("pads")], constant_values=value)


def prepare_quantize(ctx: NodeContext) -> None:
    """QUANTIZE parameters: float -> int rounding or an int -> int requantization multiplier."""
    so, zo = scalar_quant(ctx, ctx.out)
    ctx.data.update(so=so, zo=zo)
    if ctx.ins[0].dtype != "float32":  # type: ignore[union-attr]
        si, zi = scalar_quant(ctx, ctx.ins[0])
        ctx.data.update(zi=zi, m=quantize_multiplier(si / so))


def quantize(ctx: NodeContext, x: np.ndarray) -> np.ndarray:
    """QUANTIZE (float -> int, or int -> int requantize)."""
    d = ctx.data
    lo, hi = INT_RANGES[ctx.out.dtype]
    if x.dtype == np.float32:
        q = round_half_away_array(x / np.float32(d["so"])).astype(np.int64) + d["zo"]
    else:
        q = requantize(x.astype(np.int64) - d["zi"], *d["m"]) + d["zo"]
    return np.clip(q, lo, hi).astype(ctx.out.dtype)


def dequantize(ctx: NodeContext, x: np.ndarray) -> np.ndarray:
    """DEQUANTIZE (int -> float32)."""
    q = ctx.require_quant(ctx.ins[0])
    scale = q.scale.astype(np.float64)
    zp = q.zero_point
    if q.per_channel:
        shape = [1] * x.ndim
        shape[q.axis] = -1  # type: ignore[index]
        scale, zp = scale.reshape(shape), zp.reshape(shape)
    return (scale * (x.astype(np.int64) - zp)).astype(np.float32)
