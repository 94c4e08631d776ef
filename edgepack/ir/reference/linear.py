"""CONV_2D, DEPTHWISE_CONV_2D and FULLY_CONNECTED: float and TFLM-exact integer kernels.

Integer kernels follow TFLM's reference integer_ops (ConvPerChannel, DepthwiseConvPerChannel,
FullyConnected): acc = sum((x - x_zp) * (w - w_zp)) + bias; requantize per output channel; add the
output zero point; clamp to the activation range. int8 activations use the 32-bit double-rounding
requantizer, int16 activations (16x8) the 64-bit one, as TFLM does (except CONV_2D with an int32 bias).

Integer dot products are computed with float64 BLAS: every partial sum is an integer below 2**53
(|x - zp| <= 65535, |w| <= 127, fewer than 2**30 terms), so the result is exact.
"""

from __future__ import annotations

import numpy as np

from edgepack.errors import ModelError
from edgepack.ir.graph import Tensor
from edgepack.ir.ops import Op
from edgepack.ir.reference.fixedpoint import quantize_multipliers, requantize, requantize_int64
from edgepack.ir.reference.prepare import NodeContext, activation_range, scalar_quant


def extract_patches(x: np.ndarray, kernel: tuple[int, int], strides: tuple[int, int], dilations: tuple[int, int],
                    pads: list[int], out_hw: tuple[int, int], pad_value: float | int) -> np.ndarray:
    """Sliding windows of an NHWC tensor: [N, OH, OW, KH, KW, C], padded with `pad_value`."""
    kh, kw = kernel
    sh, sw = strides
    dh, dw = dilations
    oh, ow = out_hw
    top, left = pads[0], pads[1]
    need_h = (oh - 1) * sh + (kh - 1) * dh + 1
    need_w = (ow - 1) * sw + (kw - 1) * dw + 1
    bottom = max(0, need_h - x.shape[1] - top)
    right = max(0, need_w - x.shape[2] - left)
    xp = np.pad(x, ((0, 0), (top, bottom), (left, right), (0, 0)), constant_values=pad_value)
    win = np.lib.stride_tricks.sliding_window_view(xp, ((kh - 1) * dh + 1, (kw - 1) * dw + 1), axis=(1, 2))
    win = win[:, : (oh - 1) * sh + 1 : sh, : (ow - 1) * sw + 1 : sw, :, ::dh, ::dw]
    return win.transpose(0, 1, 2, 4, 5, 3)


def _geometry(ctx: NodeContext, x: np.ndarray, w_shape: tuple[int, ...]) -> dict:
    return {
        "kernel": (w_shape[1], w_shape[2]),
        "strides": tuple(ctx.attr("strides", [1, 1])),
        "dilations": tuple(ctx.attr("dilations", [1, 1])),
        "pads": list(ctx.attr("pads", [0, 0, 0, 0])),
        "out_hw": (ctx.out.shape[1], ctx.out.shape[2]),
    }


def prepare(ctx: NodeContext) -> None:
    """Per-channel output multipliers and shifts (TFLM PopulateConvolutionQuantizationParams)."""
    if not ctx.quantized:
        ctx.data["act"] = activation_range(ctx)
        return
    x, w, b = ctx.ins[0], ctx.ins[1], ctx.ins[2] if len(ctx.ins) > 2 else None
    in_scale, in_zp = scalar_quant(ctx, x)
    out_scale, out_zp = scalar_quant(ctx, ctx.out)
    wq = ctx.require_quant(w)
    channels = w.shape[0] if ctx.node.op is not Op.DEPTHWISE_CONV_2D else w.shape[3]  # type: ignore[union-attr]
    w_scales = np.broadcast_to(wq.scale.astype(np.float64), (channels,))
    real = np.float64(in_scale) * w_scales / np.float64(out_scale)
    mult, shift = quantize_multipliers(real)
    if x.dtype not in ("int8", "int16") or w.dtype != "int8":  # type: ignore[union-attr]
        raise ModelError(f"node {ctx.node.name!r} ({ctx.node.op.value}): {x.dtype} activations with "  # type: ignore[union-attr]
                         f"{w.dtype} weights are not supported (int8 or int16 activations, int8/int4 weights)")  # type: ignore[union-attr]
    ctx.data.update(
        in_zp=in_zp, out_zp=out_zp, w_zp=np.broadcast_to(wq.zero_point, (channels,)).astype(np.int64),
        multiplier=mult, shift=shift, act=activation_range(ctx), wide=_wide_accumulator(ctx, x, b),  # type: ignore[arg-type]
        has_bias=b is not None,
    )


def _wide_accumulator(ctx: NodeContext, x: Tensor, bias: Tensor | None) -> bool:
    """True when TFLM accumulates in int64 and requantizes with the 64-bit multiplier (16x8 kernels).

    TFLM's 16x8 CONV_2D picks its accumulator from the bias type: an int32 bias keeps the 32-bit
    accumulator and requantizer of the int8 kernels; an int64 bias, or none, takes the 64-bit ones.
    Its 16x8 DEPTHWISE_CONV_2D and FULLY_CONNECTED always read an int64 bias.
    """
    bias_dtype = bias.dtype if bias is not None else None
    expected = ("int64", None) if x.dtype == "int16" else ("int32", None)
    if x.dtype == "int16" and ctx.node.op is Op.CONV_2D:
        expected = ("int64", "int32", None)
    if bias_dtype not in expected:
        raise ModelError(f"node {ctx.node.name!r} ({ctx.node.op.value}): {bias_dtype} bias with {x.dtype} "
                         f"activations (expected {' or '.join(e for e in expected if e)})")
    return x.dtype == "int16" and bias_dtype != "int32"


def _finish(ctx: NodeContext, acc: np.ndarray, bias: np.ndarray | None) -> np.ndarray:
    """Add bias, requantize, offset and clamp an integer accumulator whose last axis is channels."""
    d = ctx.data
    if bias is not None:
        acc = acc + bias.astype(np.int64)
    scaled = requantize_int64(acc, d["multiplier"], d["shift"]) if d["wide"] else \
        requantize(acc, d["multiplier"], d["shift"])
    lo, hi = d["act"]
    return np.clip(scaled + d["out_zp"], lo, hi).astype(ctx.out.dtype)


def _float_finish(ctx: NodeContext, y: np.ndarray, bias: np.ndarray | None) -> np.ndarray:
    if bias is not None:
        y = y + bias.astype(np.float32)
    lo, hi = ctx.data["act"]
    return np.clip(y, lo, hi).astype(np.float32)


def _int_dot(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Exact integer matrix product of small integers via float64 BLAS."""
    return np.rint(a.astype(np.float64) @ b.astype(np.float64)).astype(np.int64)


def conv_2d(ctx: NodeContext, x: np.ndarray, w: np.ndarray, bias: np.ndarray | None = None) -> np.ndarray:
    """CONV_2D on NHWC input with OHWI weights."""
    g = _geometry(ctx, x, w.shape)
    n = x.shape[0]
    oh, ow = g["out_hw"]
    if not ctx.quantized:
        p = extract_patches(x, pad_value=0.0, **g).reshape(n * oh * ow, -1)
        y = (p @ w.reshape(w.shape[0], -1).T.astype(np.float32)).reshape(n, oh, ow, -1)
        return _float_finish(ctx, y, bias)
    d = ctx.data
    p = extract_patches(x, pad_value=d["in_zp"], **g).reshape(n * oh * ow, -1).astype(np.int64) - d["in_zp"]
    wm = w.reshape(w.shape[0], -1).astype(np.int64) - d["w_zp"][:, None]
    acc = _int_dot(p, wm.T).reshape(n, oh, ow, -1)
    return _finish(ctx, acc, bias)


def depthwise_conv_2d(ctx: NodeContext, x: np.ndarray, w: np.ndarray, bias: np.ndarray | None = None) -> np.ndarray:
    """DEPTHWISE_CONV_2D: output channel c*M+m convolves input channel c with filter m."""
    g = _geometry(ctx, x, w.shape)
    c = x.shape[3]
    m = w.shape[3] // c
    if m * c != w.shape[3]:
        raise ModelError(f"node {ctx.node.name!r}: {w.shape[3]} filter channels is not a multiple of {c} inputs")
    kh, kw = g["kernel"]
    wk = w.reshape(kh, kw, c, m)
    if not ctx.quantized:
        p = extract_patches(x, pad_value=0.0, **g)
        y = np.einsum("nhwijc,ijcm->nhwcm", p, wk.astype(np.float32), optimize=True)
        return _float_finish(ctx, y.reshape(*y.shape[:3], c * m), bias)
    d = ctx.data
    p = extract_patches(x, pad_value=d["in_zp"], **g).astype(np.float64) - d["in_zp"]
    wz = wk.astype(np.float64) - d["w_zp"].reshape(c, m)
    acc = np.rint(np.einsum("nhwijc,ijcm->nhwcm", p, wz, optimize=True)).astype(np.int64)
    return _finish(ctx, acc.reshape(*acc.shape[:3], c * m), bias)


def fully_connected(ctx: NodeContext, x: np.ndarray, w: np.ndarray, bias: np.ndarray | None = None) -> np.ndarray:
    """FULLY_CONNECTED: y = x.reshape(-1, I) @ w.T + bias, shaped like the output tensor."""
    rows = x.reshape(-1, w.shape[1])
    out_shape = (-1, *ctx.out.shape[1:])
    if not ctx.quantized:
        y = rows.astype(np.float32) @ w.T.astype(np.float32)
        return _float_finish(ctx, y, bias).reshape(out_shape)
    d = ctx.data
    acc = _int_dot(rows.astype(np.int64) - d["in_zp"], (w.astype(np.int64) - d["w_zp"][:, None]).T)
    return _finish(ctx, acc, bias).reshape(out_shape)
