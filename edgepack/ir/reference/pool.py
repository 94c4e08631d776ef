"""AVERAGE_POOL_2D, MAX_POOL_2D and MEAN (float and TFLM-exact integer).

Padding never counts: an average divides by the number of in-bounds elements, with TFLM's integer
rounding (acc +/- count/2) / count truncated toward zero. Integer pools require equal input and
output quantization, as TFLM does. Integer MEAN follows TFLM's reduce kernels (see `prepare_mean`).
"""

from __future__ import annotations

import math

import numpy as np

from edgepack.errors import ModelError
from edgepack.ir.graph import INT_RANGES
from edgepack.ir.reference.fixedpoint import quantize_multiplier, requantize
from edgepack.ir.reference.linear import extract_patches
from edgepack.ir.reference.prepare import NodeContext, activation_range, scalar_quant


def _same_quant(ctx: NodeContext) -> None:
    if ctx.quantized and scalar_quant(ctx, ctx.ins[0]) != scalar_quant(ctx, ctx.out):
        raise ModelError(f"node {ctx.node.name!r} ({ctx.node.op.value}): integer pooling needs equal input and "
                         "output quantization")


def prepare_pool(ctx: NodeContext) -> None:
    """Activation range; checks that integer pools keep their quantization."""
    _same_quant(ctx)
    ctx.data["act"] = activation_range(ctx)


def _geometry(ctx: NodeContext) -> dict:
    return {
        "kernel": tuple(ctx.attr("kernel")),
        "strides": tuple(ctx.attr("strides", [1, 1])),
        "dilations": (1, 1),
        "pads": list(ctx.attr("pads", [0, 0, 0, 0])),
        "out_hw": (ctx.out.shape[1], ctx.out.shape[2]),
    }


def _c_div(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """C integer division (truncates toward zero)."""
    q = np.abs(a) // b
    return np.where(a < 0, -q, q)


def average_pool_2d(ctx: NodeContext, x: np.ndarray) -> np.ndarray:
    """AVERAGE_POOL_2D; the count excludes padding."""
    g = _geometry(ctx)
    ones = np.ones((1, *x.shape[1:3], 1), dtype=np.int64)
    count = extract_patches(ones, pad_value=0, **g).sum(axis=(3, 4))  # [1, OH, OW, 1]
    if not ctx.quantized:
        s = extract_patches(x.astype(np.float32), pad_value=0.0, **g).sum(axis=(3, 4), dtype=np.float32)
        y = s / count.astype(np.float32)
    else:
        s = extract_patches(x.astype(np.int64), pad_value=0, **g).sum(axis=(3, 4))
        y = np.where(s > 0, _c_div(s + count // 2, count), _c_div(s - count // 2, count))
    lo, hi = ctx.data["act"]
    return np.clip(y, lo, hi).astype(ctx.out.dtype)


def max_pool_2d(ctx: NodeContext, x: np.ndarray) -> np.ndarray:
    """MAX_POOL_2D; padding never wins."""
    g = _geometry(ctx)
    low = -np.inf if not ctx.quantized else INT_RANGES[ctx.out.dtype][0]
    y = extract_patches(x, pad_value=low, **g).max(axis=(3, 4))
    lo, hi = ctx.data["act"]
    return np.clip(y, lo, hi).astype(ctx.out.dtype)


def prepare_mean(ctx: NodeContext) -> None:
    """MEAN over any axes, as TFLM's reduce kernels (QuantizedMeanOrSum) for int8 and int16.

    The sum of (q - input zero point) is requantized with 1/count folded into the multiplier:
    multiplier * 2**s // count with s = floor(log2(count)), capped at 32 and at 31 + shift. The
    tflite-micro we verify against takes this path even when input and output quantization are equal
    (some older versions then divided the raw sum by the count, truncating).
    """
    x = ctx.ins[0]
    axes = sorted(int(a) % len(x.shape) for a in ctx.attr("axes"))  # type: ignore[union-attr]
    ctx.data["axes"] = tuple(axes)
    if not ctx.quantized:
        return
    si, zi = scalar_quant(ctx, x)
    so, zo = scalar_quant(ctx, ctx.out)
    count = math.prod(x.shape[a] for a in axes)  # type: ignore[union-attr]
    multiplier, shift = quantize_multiplier(si / so)
    s = min(count.bit_length() - 1, 32, 31 + shift)
    ctx.data.update(zi=zi, zo=zo, count=count, m=((multiplier << s) // count, shift - s))


def mean(ctx: NodeContext, x: np.ndarray) -> np.ndarray:
    """MEAN over `axes`; keepdims follows the output tensor's rank."""
    axes = ctx.data["axes"]
    keep = bool(ctx.attr("keepdims", True))
    if not ctx.quantized:
        return x.astype(np.float32).mean(axis=axes, keepdims=keep, dtype=np.float32)
    d = ctx.data
    total = x.astype(np.int64).sum(axis=axes, keepdims=keep)
    y = requantize(total - d["zi"] * d["count"], *d["m"]) + d["zo"]
    lo, hi = INT_RANGES[ctx.out.dtype]
    return np.clip(y, lo, hi).astype(ctx.out.dtype)
