"""The C kernel library as seen from Python: where the sources are, the C struct layouts, which
files each kernel needs, and the Python twins of the `*_scratch_bytes()` sizing functions.

The struct layouts here must match `kernels/ep_common.h` field for field; the code generator uses
them to write initializers and the host tests use them to build ctypes structures, so a mismatch
fails the kernel tests. Usage: `sources_for(["ep_fc_s8"])`.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

KERNEL_DIR = Path(__file__).with_name("kernels")

# Headers every kernel build needs.
HEADERS = ("ep_common.h", "ep_kernels.h", "ep_gemm_s8.h", "ep_gemm_w16.h", "ep_gemm_w4.h", "ep_pool_s8_common.h")
# Sources every kernel build links (fixed-point helpers are small and shared).
COMMON_SOURCES = ("ep_fixedpoint.c",)

# C struct name -> ordered (field, C type). Pointer fields point at `static const` tables.
STRUCTS: dict[str, list[tuple[str, str]]] = {
    "ep_dims_t": [("n", "int32_t"), ("h", "int32_t"), ("w", "int32_t"), ("c", "int32_t")],
    "ep_quant_t": [("input_zp", "int32_t"), ("output_zp", "int32_t"), ("act_min", "int32_t"),
                   ("act_max", "int32_t"), ("multiplier", "const int32_t *"), ("shift", "const int32_t *")],
    "ep_conv_params_t": [("stride_h", "int32_t"), ("stride_w", "int32_t"), ("dilation_h", "int32_t"),
                         ("dilation_w", "int32_t"), ("pad_top", "int32_t"), ("pad_left", "int32_t"),
                         ("depth_multiplier", "int32_t")],
    "ep_pool_params_t": [("kernel_h", "int32_t"), ("kernel_w", "int32_t"), ("stride_h", "int32_t"),
                         ("stride_w", "int32_t"), ("pad_top", "int32_t"), ("pad_left", "int32_t"),
                         ("act_min", "int32_t"), ("act_max", "int32_t")],
    "ep_add_params_t": [("a_zp", "int32_t"), ("b_zp", "int32_t"), ("output_zp", "int32_t"),
                        ("left_shift", "int32_t"), ("a_multiplier", "int32_t"), ("a_shift", "int32_t"),
                        ("b_multiplier", "int32_t"), ("b_shift", "int32_t"), ("output_multiplier", "int32_t"),
                        ("output_shift", "int32_t"), ("act_min", "int32_t"), ("act_max", "int32_t")],
    "ep_mul_params_t": [("a_zp", "int32_t"), ("b_zp", "int32_t"), ("output_zp", "int32_t"),
                        ("multiplier", "int32_t"), ("shift", "int32_t"), ("act_min", "int32_t"),
                        ("act_max", "int32_t")],
    "ep_softmax_params_t": [("input_multiplier", "int32_t"), ("input_left_shift", "int32_t"),
                            ("diff_min", "int32_t")],
    "ep_sigmoid_params_t": [("input_zp", "int32_t"), ("input_multiplier", "int32_t"),
                            ("input_left_shift", "int32_t"), ("input_radius", "int32_t")],
    "ep_requantize_params_t": [("input_zp", "int32_t"), ("output_zp", "int32_t"), ("multiplier", "int32_t"),
                               ("shift", "int32_t"), ("act_min", "int32_t"), ("act_max", "int32_t")],
    "ep_pad_params_t": [("before", "int32_t[4]"), ("value", "int32_t")],
    "ep_concat_params_t": [("outer", "int32_t"), ("count", "int32_t"), ("inner_bytes", "const int32_t *")],
}

# Kernel function -> the source file that defines it (besides COMMON_SOURCES).
KERNEL_SOURCES: dict[str, str] = {
    "ep_conv2d_s8": "ep_conv2d_s8.c",
    "ep_dwconv2d_s8": "ep_dwconv2d_s8.c",
    "ep_fc_s8": "ep_fc_s8.c",
    "ep_conv2d_1x1_s8": "ep_conv2d_1x1_s8.c",
    "ep_conv2d_s8_w16": "ep_conv2d_s8_w16.c",
    "ep_conv2d_1x1_s8_w16": "ep_conv2d_s8_w16.c",
    "ep_conv2d_s8_w4": "ep_conv2d_s8_w4.c",
    "ep_conv2d_1x1_s8_w4": "ep_conv2d_s8_w4.c",
    "ep_dwconv2d_s8_w4": "ep_dwconv2d_s8.c",
    "ep_fc_s8_w4": "ep_fc_s8_w4.c",
    "ep_conv2d_s16": "ep_conv2d_s16.c",
    "ep_dwconv2d_s16": "ep_dwconv2d_s16.c",
    "ep_fc_s16": "ep_fc_s16.c",
    "ep_add_s8": "ep_add_s8.c",
    "ep_mul_s8": "ep_mul_s8.c",
    "ep_avgpool_s8": "ep_avgpool_s8.c",
    "ep_maxpool_s8": "ep_maxpool_s8.c",
    "ep_mean_s8": "ep_mean_s8.c",
    "ep_softmax_s8": "ep_softmax_s8.c",
    "ep_logistic_s8": "ep_logistic_s8.c",
    "ep_tanh_s8": "ep_logistic_s8.c",
    "ep_requantize_s8_s8": "ep_requantize_s8_s16.c",
    "ep_requantize_s8_s16": "ep_requantize_s8_s16.c",
    "ep_requantize_s16_s8": "ep_requantize_s8_s16.c",
    "ep_requantize_s16_s16": "ep_requantize_s8_s16.c",
    "ep_clamp_s8": "ep_requantize_s8_s16.c",
    "ep_clamp_s16": "ep_requantize_s8_s16.c",
    "ep_pad_s8": "ep_pad_s8.c",
    "ep_concat": "ep_concat.c",
}
# Sources whose functions other kernels call (ep_mul_s8 uses ep_broadcast_ok from ep_add_s8.c).
_DEPENDS: dict[str, tuple[str, ...]] = {"ep_mul_s8.c": ("ep_add_s8.c",)}

# CPUs the generator knows, and whether they have the DSP extension (SMLAD, SXTB16).
CPU_DSP: dict[str, bool] = {
    "cortex-m0plus": False, "cortex-m3": False, "cortex-m4": True, "cortex-m7": True,
    "cortex-m33": True, "cortex-m55": True, "host": False,
}


def all_sources() -> list[Path]:
    """Every C source of the library (for building it whole, e.g. as a host shared library)."""
    return sorted(KERNEL_DIR.glob("ep_*.c"))


def sources_for(kernels: list[str] | set[str]) -> list[str]:
    """File names (sources then headers) needed to link the given kernel functions."""
    files = set(COMMON_SOURCES)
    for k in kernels:
        src = KERNEL_SOURCES[k]
        files.add(src)
        files.update(_DEPENDS.get(src, ()))
    return sorted(files) + list(HEADERS)


def _round4(n: int) -> int:
    return (n + 3) & ~3


def _round8(n: int) -> int:
    return (n + 7) & ~7


def scratch_bytes(kernel: str, filter_dims: tuple[int, int, int, int] | None, dsp: bool,
                  out_dims: tuple[int, int, int, int] | None = None, conv: dict[str, int] | None = None) -> int:
    """Python twin of `<kernel>_scratch_bytes(...)` for a build with (dsp) or without DSP.

    Most kernels size scratch from `filter_dims` alone; ep_dwconv2d_s8 also needs the output dims
    and the conv params (an ep_conv_params_t as a dict). Usage: `scratch_bytes("ep_fc_s8", (12, 1, 1, 64), True)`.
    """
    if kernel in ("ep_conv2d_s8", "ep_conv2d_1x1_s8", "ep_conv2d_s8_w16", "ep_conv2d_1x1_s8_w16") and dsp:
        assert filter_dims is not None
        _, kh, kw, cin = filter_dims
        return 2 * 4 * _round4(kh * kw * cin)  # one int16 panel of 4 rows (kernels/ep_gemm_s8.h, ep_gemm_w16.h)
    if kernel in ("ep_conv2d_s8_w4", "ep_conv2d_1x1_s8_w4") and dsp:
        assert filter_dims is not None
        # one 4-row int16 panel (kernels/ep_gemm_w4.h); the im2col kernel also gathers one int8 row
        return (2 * 4 + (kernel == "ep_conv2d_s8_w4")) * _round8(math.prod(filter_dims[1:]))
    if kernel == "ep_fc_s8_w4" and dsp:
        assert filter_dims is not None
        return 2 * _round8(math.prod(filter_dims[1:]))  # one int16 row (kernels/ep_gemm_w4.h)
    if kernel in ("ep_dwconv2d_s8", "ep_dwconv2d_s8_w4") and dsp:
        assert filter_dims is not None and out_dims is not None and conv is not None
        plane = (filter_dims[1:3] == (3, 3) and conv["stride_h"] == conv["stride_w"] == 1
                 and conv["dilation_h"] == conv["dilation_w"] == 1 and conv["depth_multiplier"] == 1)
        # one int16 input plane, column-major: round_up(OH, 4) + 2 rows by OW + 2 columns
        return 2 * (_round4(out_dims[1]) + 2) * (out_dims[2] + 2) if plane else 0
    return 0


def pack_w4_rows(w2d: np.ndarray) -> np.ndarray:
    """int4 weights [outs, depth] (int8 values in [-8, 7]) as the *_w4 linear kernels' table
    (kernels/ep_gemm_w4.h): two per byte, element 2k of a row in the low nibble, each row starting on a
    byte boundary (a zero nibble pads odd rows). For an even depth this is TFLite's flat packing."""
    w = np.asarray(w2d, np.int64)
    if w.size and (w.min() < -8 or w.max() > 7):
        raise ValueError("int4 weights hold values outside [-8, 7]")
    outs, depth = w.shape
    if depth % 2:
        w = np.concatenate([w, np.zeros((outs, 1), np.int64)], axis=1)
    nib = w.reshape(outs, -1, 2) & 0xF
    return (nib[:, :, 0] | (nib[:, :, 1] << 4)).astype(np.uint8).ravel().view(np.int8)


def w16_weight_index(o: np.ndarray, k: np.ndarray, dpad: int) -> np.ndarray:
    """Python twin of ep_w16_weight_index (kernels/ep_gemm_w16.h): halfword of weight (o, k)."""
    return (((o >> 1) * (dpad >> 2) + (k >> 2)) * 2 + (k & 1)) * 4 + (o & 1) * 2 + ((k >> 1) & 1)


def pack_w16(w2d: np.ndarray) -> np.ndarray:
    """int8 weights [outs, depth] as the packed int16 table of the *_w16 kernels (ep_gemm_w16.h):
    channel pairs, depth groups of four, zero-padded to round_up(outs, 2) x round_up(depth, 4)."""
    outs, depth = w2d.shape
    dpad = _round4(depth)
    table = np.zeros(((outs + 1) & ~1) * dpad, np.int16)
    o, k = np.meshgrid(np.arange(outs), np.arange(depth), indexing="ij")
    table[w16_weight_index(o, k, dpad)] = w2d.astype(np.int16)
    return table
