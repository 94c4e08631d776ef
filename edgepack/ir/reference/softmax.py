"""SOFTMAX over the last axis: float, and int8 -> int8 exactly as TFLM's reference kernel.

The int8 path (TFLM softmax_common.cc + reference_ops::Softmax): differences to the row maximum are
scaled by beta * input_scale into Q5.26, exponentiated with gemmlowp's exp_on_negative_values, summed
in Q12.19, inverted with GetReciprocal, and written with the fixed output quantization 1/256, -128.
"""

from __future__ import annotations

import math

import numpy as np

from edgepack.errors import ModelError
from edgepack.ir.reference.fixedpoint import (
    exp_on_negative_values,
    get_reciprocal,
    multiply_by_quantized_multiplier_gt_one,
    quantize_multiplier,
    rounding_divide_by_pot,
    srdhm,
)
from edgepack.ir.reference.prepare import NodeContext, scalar_quant

_SCALED_DIFF_INTEGER_BITS = 5
_ACCUMULATION_INTEGER_BITS = 12


def prepare(ctx: NodeContext) -> None:
    """TFLM PreprocessSoftmaxScaling and CalculateInputRadius."""
    beta = float(np.float32(ctx.attr("beta", 1.0)))
    if not ctx.quantized:
        ctx.data["beta"] = beta
        return
    if ctx.ins[0].dtype != "int8" or ctx.out.dtype != "int8":  # type: ignore[union-attr]
        raise ModelError(f"node {ctx.node.name!r} (SOFTMAX): only int8 -> int8 is supported in integer mode, got "
                         f"{ctx.ins[0].dtype} -> {ctx.out.dtype} (TFLM's int16 softmax uses exp and reciprocal "  # type: ignore[union-attr]
                         "lookup tables edgepack does not implement)")
    si, _ = scalar_quant(ctx, ctx.ins[0])
    so, zo = scalar_quant(ctx, ctx.out)
    if (np.float32(so), zo) != (np.float32(1 / 256), -128):
        raise ModelError(f"node {ctx.node.name!r} (SOFTMAX): int8 output must have scale 1/256 and zero point "
                         f"-128 (as in TFLite), got {so} and {zo}")
    real = min(beta * si * (1 << (31 - _SCALED_DIFF_INTEGER_BITS)), (1 << 31) - 1.0)
    mult, left_shift = quantize_multiplier(real)
    if left_shift < 0:
        raise ModelError(f"node {ctx.node.name!r} (SOFTMAX): input scale {si} is too small for TFLM's softmax")
    radius = ((1 << _SCALED_DIFF_INTEGER_BITS) - 1) * (1 << (31 - _SCALED_DIFF_INTEGER_BITS)) / (1 << left_shift)
    ctx.data.update(mult=mult, left_shift=left_shift, diff_min=-int(math.floor(radius)))


def softmax(ctx: NodeContext, x: np.ndarray) -> np.ndarray:
    """SOFTMAX."""
    if not ctx.quantized:
        z = x.astype(np.float32) * np.float32(ctx.data["beta"])
        e = np.exp(z - z.max(axis=-1, keepdims=True))
        return (e / e.sum(axis=-1, keepdims=True)).astype(np.float32)
    d = ctx.data
    xi = x.astype(np.int64)
    diff = xi - xi.max(axis=-1, keepdims=True)
    valid = diff >= d["diff_min"]
    scaled = multiply_by_quantized_multiplier_gt_one(diff, d["mult"], d["left_shift"])
    exps = np.where(valid, exp_on_negative_values(scaled, _SCALED_DIFF_INTEGER_BITS), 0)
    # Rescale<12> of each Q0.31 exp, then sum in Q12.19.
    sum_of_exps = np.where(valid, rounding_divide_by_pot(exps, _ACCUMULATION_INTEGER_BITS), 0).sum(
        axis=-1, keepdims=True)
    shifted_scale, num_bits_over_unit = get_reciprocal(sum_of_exps, _ACCUMULATION_INTEGER_BITS)
    unsat = rounding_divide_by_pot(srdhm(shifted_scale, exps), num_bits_over_unit + 31 - 8)
    out = np.clip(unsat - 128, -128, 127)
    return np.where(valid, out, -128).astype(np.int8)
