/*
 * edgepack C kernel library: shared types, status codes and fixed-point arithmetic.
 *
 * Portable C99. Every kernel is NHWC, takes small parameter structs, writes only caller buffers,
 * never allocates and returns an ep_status_t. The integer arithmetic below copies
 * edgepack/ir/reference/fixedpoint.py name for name; that file is the definition, this one must
 * stay bit-identical to it (tests/targets/mcu/test_kernels.py checks every kernel against it).
 *
 * Signed right shifts are arithmetic and int32 conversions wrap on every compiler we build with
 * (gcc, clang, arm-none-eabi-gcc), exactly as in TensorFlow Lite Micro.
 *
 * DSP fast paths: EP_DSP is 1 when compiling for a Cortex-M with the DSP extension
 * (__ARM_FEATURE_DSP, ACLE intrinsics) or when EP_EMULATE_DSP is defined (portable C emulation of
 * the same intrinsics, so the fast-path code can be compiled and tested on a PC). Define
 * EP_NO_DSP to force the portable loops.
 */
#ifndef EP_COMMON_H
#define EP_COMMON_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- status codes: stable numbers in the model group (0x2x) of the serial protocol, after the
 * protocol's own 0x21-0x25 (firmware/ep_status.h), so every code means one thing project-wide ---- */
typedef enum {
    EP_OK = 0x00,
    EP_ERR_BAD_ARG = 0x26,     /* a NULL pointer or a parameter outside its documented range */
    EP_ERR_SHAPE = 0x27,       /* tensor dimensions that do not fit together */
    EP_ERR_UNSUPPORTED = 0x28  /* a valid configuration this build does not implement */
} ep_status_t;

/* Fail fast inside generated code: return the first non-OK status of a kernel call. */
#define EP_CHECK(call)                          \
    do {                                        \
        ep_status_t ep_check_status_ = (call);  \
        if (ep_check_status_ != EP_OK) {        \
            return (int)ep_check_status_;       \
        }                                       \
    } while (0)

/* Alignment of static buffers (the arena, weight tables). */
#if defined(__GNUC__) || defined(__clang__) || defined(__CC_ARM) || defined(__ICCARM__)
#define EP_ALIGNED(n) __attribute__((aligned(n)))
#elif defined(_MSC_VER)
#define EP_ALIGNED(n) __declspec(align(n))
#else
#define EP_ALIGNED(n)
#endif

#if defined(__GNUC__) || defined(__clang__)
#define EP_INLINE static inline __attribute__((always_inline))
#else
#define EP_INLINE static inline
#endif

/* ---- parameter structs ---- */

/* Tensor dimensions, NHWC. A [rows, depth] matrix is {rows, 1, 1, depth}. */
typedef struct {
    int32_t n, h, w, c;
} ep_dims_t;

/* Requantization of a linear op (conv, depthwise conv, fully connected, mean).
 * multiplier/shift: one pair per output channel (per-tensor ops repeat the pair or use index 0);
 * multiplier in [2^30, 2^31) or 0, shift in [-31, 30]. act_min <= act_max within the output dtype. */
typedef struct {
    int32_t input_zp;   /* input zero point: [-128, 127] for int8, usually 0 for int16 */
    int32_t output_zp;  /* output zero point: [-128, 127] for int8, usually 0 for int16 */
    int32_t act_min;    /* fused-activation clamp, already in output units */
    int32_t act_max;
    const int32_t *multiplier;
    const int32_t *shift;
} ep_quant_t;

/* Convolution geometry. Strides and dilations >= 1; pads >= 0 (bottom/right follow from the dims). */
typedef struct {
    int32_t stride_h, stride_w;
    int32_t dilation_h, dilation_w;
    int32_t pad_top, pad_left;
    int32_t depth_multiplier; /* depthwise only: output channels per input channel, >= 1 */
} ep_conv_params_t;

/* Pooling geometry and clamp. */
typedef struct {
    int32_t kernel_h, kernel_w;
    int32_t stride_h, stride_w;
    int32_t pad_top, pad_left;
    int32_t act_min, act_max;
} ep_pool_params_t;

/* ADD: TFLM add.cc parameters (inputs rescaled onto a shared grid, then requantized). */
typedef struct {
    int32_t a_zp, b_zp, output_zp;
    int32_t left_shift;           /* 20 for int8 */
    int32_t a_multiplier, a_shift;
    int32_t b_multiplier, b_shift;
    int32_t output_multiplier, output_shift;
    int32_t act_min, act_max;
} ep_add_params_t;

/* MUL: one multiplier s_a * s_b / s_out. */
typedef struct {
    int32_t a_zp, b_zp, output_zp;
    int32_t multiplier, shift;
    int32_t act_min, act_max;
} ep_mul_params_t;

/* SOFTMAX (int8 -> int8, output scale 1/256, zero point -128), TFLM softmax_common.cc. */
typedef struct {
    int32_t input_multiplier;  /* beta * input_scale * 2^26 as a quantized multiplier */
    int32_t input_left_shift;  /* >= 0 */
    int32_t diff_min;          /* differences below this give exp == 0 */
} ep_softmax_params_t;

/* LOGISTIC / TANH (int8), TFLM's Q4.27 input rescale. */
typedef struct {
    int32_t input_zp;
    int32_t input_multiplier;
    int32_t input_left_shift;
    int32_t input_radius;
} ep_sigmoid_params_t;

/* Integer QUANTIZE (requantize) and standalone RELU / CLIP: one input -> output rescale, then a clamp. */
typedef struct {
    int32_t input_zp, output_zp;
    int32_t multiplier, shift; /* input scale / output scale: multiplier 0 or in [2^30, 2^31), shift in [-31, 30] */
    int32_t act_min, act_max;  /* the output dtype's range (QUANTIZE) or the activation's bounds */
} ep_requantize_params_t;

/* PAD of a 4-D tensor with one constant value. */
typedef struct {
    int32_t before[4]; /* per dim N, H, W, C */
    int32_t value;     /* the output zero point */
} ep_pad_params_t;

/* CONCATENATION (and plain copies): inputs viewed as [outer, inner_bytes[i]]. */
typedef struct {
    int32_t outer;
    int32_t count;
    const int32_t *inner_bytes;
} ep_concat_params_t;

/* ---- saturating helpers ---- */

EP_INLINE int32_t ep_clamp(int32_t x, int32_t lo, int32_t hi)
{
    return x < lo ? lo : (x > hi ? hi : x);
}

EP_INLINE int32_t ep_max(int32_t a, int32_t b)
{
    return a > b ? a : b;
}

EP_INLINE int32_t ep_min(int32_t a, int32_t b)
{
    return a < b ? a : b;
}

/* ---- fixed-point arithmetic (fixedpoint.py) ---- */

/* gemmlowp::SaturatingRoundingDoublingHighMul (fixedpoint.srdhm). */
EP_INLINE int32_t ep_srdhm(int32_t a, int32_t b)
{
    if (a == INT32_MIN && b == INT32_MIN) {
        return INT32_MAX;
    }
    int64_t ab = (int64_t)a * (int64_t)b;
    int64_t nudge = ab >= 0 ? (1LL << 30) : (1 - (1LL << 30));
    /* C division truncates toward zero, as gemmlowp relies on. */
    return (int32_t)((ab + nudge) / (1LL << 31));
}

/* gemmlowp::RoundingDivideByPOT: x / 2^exponent, half away from zero (fixedpoint.rounding_divide_by_pot). */
EP_INLINE int32_t ep_rounding_divide_by_pot(int32_t x, int32_t exponent)
{
    int32_t mask = (int32_t)((1LL << exponent) - 1);
    int32_t remainder = x & mask;
    int32_t threshold = (mask >> 1) + (x < 0 ? 1 : 0);
    return (x >> exponent) + (remainder > threshold ? 1 : 0);
}

/* ep_rounding_divide_by_pot for any exponent in [0, 62] (softmax's final shift can exceed 31). */
EP_INLINE int32_t ep_rounding_divide_by_pot_wide(int32_t x, int32_t exponent)
{
    int64_t mask = (int64_t)((1ULL << exponent) - 1);
    int64_t remainder = (int64_t)x & mask;
    int64_t threshold = (mask >> 1) + (x < 0 ? 1 : 0);
    return (int32_t)(((int64_t)x >> exponent) + (remainder > threshold ? 1 : 0));
}

/* gemmlowp::SaturatingRoundingMultiplyByPOT for exponent > 0 (fixedpoint.saturating_left_shift). */
EP_INLINE int32_t ep_saturating_left_shift(int32_t x, int32_t exponent)
{
    int32_t threshold = (int32_t)((1LL << (31 - exponent)) - 1);
    if (x > threshold) {
        return INT32_MAX;
    }
    if (x < -threshold) {
        return INT32_MIN;
    }
    return (int32_t)((uint32_t)x << exponent);
}

/* tflite::MultiplyByQuantizedMultiplier, double rounding (fixedpoint.requantize). */
EP_INLINE int32_t ep_requantize(int32_t acc, int32_t multiplier, int32_t shift)
{
    int32_t left = shift > 0 ? shift : 0;
    int32_t right = shift > 0 ? 0 : -shift;
    int32_t shifted = (int32_t)((uint32_t)acc << left); /* wraps like fixedpoint.wrap_int32 */
    return ep_rounding_divide_by_pot(ep_srdhm(shifted, multiplier), right);
}

/* ep_requantize with the shift's constants derived once per output channel (ep_requant_prepare)
 * and one 64-bit multiply-accumulate per value: the same result as ep_requantize for every acc when
 * multiplier is 0 or in [2^30, 2^31) (the documented ep_quant_t range), in about a third of the
 * instructions. Derivation, with s = acc << left (wrapped) and x = s * multiplier:
 *   SRDHM(s, m) = trunc((x + nudge) / 2^31) with nudge = +-2^30 equals floor((x + 2^30) / 2^31)
 *     (for x < 0, trunc((x + 1 - 2^30) / 2^31) = ceil(..) = floor((x + 2^30) / 2^31));
 *     the INT32_MIN * INT32_MIN saturation cannot occur because m != INT32_MIN.
 *   RDBP(y, e) for e >= 1 (half away from zero) = floor((y + 2^(e-1) - [y < 0]) / 2^e), and adding
 *     an integer inside the floor of y = floor(P / 2^31) gives
 *     floor((x + 2^30 + 2^(30+e) - [y < 0] 2^31) / 2^(31+e)): the high word shifted by e - 1.
 *   [y < 0] may be replaced by [s < 0]: they differ only for x = -2^30 (s = -1, m = 2^30) or
 *     m = 0 with s < 0, where both forms give 0. */
typedef struct {
    int32_t multiplier;
    int32_t left;          /* max(shift, 0) */
    int32_t right;         /* max(-shift, 0) */
    int64_t round_pos;     /* 2^30 + (right > 0 ? 2^(30 + right) : 0), added when s >= 0 */
    int64_t round_neg;     /* round_pos - (right > 0 ? 2^31 : 0), added when s < 0 */
} ep_requant_t;

EP_INLINE ep_requant_t ep_requant_prepare(int32_t multiplier, int32_t shift)
{
    ep_requant_t r;
    r.multiplier = multiplier;
    r.left = shift > 0 ? shift : 0;
    r.right = shift > 0 ? 0 : -shift;
    r.round_pos = ((int64_t)1 << 30) + (r.right > 0 ? ((int64_t)1 << (30 + r.right)) : 0);
    r.round_neg = r.round_pos - (r.right > 0 ? ((int64_t)1 << 31) : 0);
    return r;
}

EP_INLINE int32_t ep_requant_apply(int32_t acc, const ep_requant_t *r)
{
    const int32_t s = (int32_t)((uint32_t)acc << r->left);
    const int64_t p = (s < 0 ? r->round_neg : r->round_pos) + (int64_t)s * r->multiplier;
    return r->right == 0 ? (int32_t)(p >> 31) : (int32_t)(p >> 32) >> (r->right - 1);
}

/* ep_requantize for shift <= -1 (right = -shift >= 1, hence no left shift) in six instructions on
 * Cortex-M4 (ADD, LSL, ORR, ASR, SMLAL, ASR); the same result as ep_requant_apply for every acc.
 * ep_requant_apply adds round_pos = 2^30 + 2^(30+e) or round_neg = round_pos - 2^31 (e = right),
 * i.e. 2^30 + 2^31 K with K = 2^(e-1) - [acc < 0] >= 0, whose 64-bit halves are
 * lo = (K & 1) << 31 | 2^30 and hi = K >> 1, so one SMLAL forms p and the result is
 * high_word(p) >> (e - 1). half = 2^(right - 1), right_m1 = right - 1 (ep_requant_neg_prepare). */
typedef struct {
    int32_t multiplier;
    int32_t half;     /* 2^(right - 1) */
    int32_t right_m1; /* right - 1, in [0, 30] */
} ep_requant_neg_t;

EP_INLINE ep_requant_neg_t ep_requant_neg_prepare(int32_t multiplier, int32_t shift)
{
    ep_requant_neg_t r;
    r.multiplier = multiplier;
    r.right_m1 = -shift - 1;
    r.half = (int32_t)1 << r.right_m1;
    return r;
}

EP_INLINE int32_t ep_requant_neg_apply(int32_t acc, int32_t multiplier, int32_t half, int32_t right_m1)
{
    const int32_t k = half + (acc >> 31);
    const uint32_t lo = ((uint32_t)k << 31) | 0x40000000u;
    const uint64_t round = ((uint64_t)(uint32_t)(k >> 1) << 32) | lo;
    const int64_t p = (int64_t)(round + (uint64_t)((int64_t)acc * multiplier));
    return (int32_t)(p >> 32) >> right_m1;
}

/* ep_requantize(acc, multiplier, shift) + zp for shift in [-23, -2], in five instructions (AND,
 * ORR, ADD, SMLAL, ASR): ep_requant_neg_apply with 2^(right-1) even, so K >> 1 = 2^(right-2) +
 * (acc >> 31) and K & 1 = [acc < 0], and with zp * 2^(right-1) added to the high word before the
 * final shift, which adds exactly zp after it. No wrap: the high word stays below
 * 2^30 + 2^(right-2) + 2^(right+6) < 2^31 in magnitude for right <= 23. */
typedef struct {
    int32_t multiplier;
    int32_t hi_base;  /* 2^(right - 2) + zp * 2^(right - 1) */
    int32_t right_m1; /* right - 1, in [1, 22] */
} ep_requant_zp_t;

EP_INLINE int ep_requant_zp_ok(int32_t multiplier, int32_t shift)
{
    return shift >= -23 && shift <= -2 && multiplier >= 0;
}

EP_INLINE ep_requant_zp_t ep_requant_zp_prepare(int32_t multiplier, int32_t shift, int32_t zp)
{
    ep_requant_zp_t r;
    r.multiplier = multiplier;
    r.right_m1 = ~shift; /* -shift - 1 */
    /* 2^(right-2) + zp * 2^(right-1) = (2 zp + 1) * 2^(right-2), modulo 2^32 */
    r.hi_base = (int32_t)((uint32_t)(2 * zp + 1) << (r.right_m1 - 1));
    return r;
}

EP_INLINE int32_t ep_requant_zp_apply(int32_t acc, int32_t multiplier, int32_t hi_base, int32_t right_m1)
{
    const uint32_t lo = ((uint32_t)acc & 0x80000000u) | 0x40000000u;
    const int32_t hi = hi_base + (acc >> 31);
    const uint64_t round = ((uint64_t)(uint32_t)hi << 32) | lo;
    const int64_t p = (int64_t)(round + (uint64_t)((int64_t)acc * multiplier));
    return (int32_t)(p >> 32) >> right_m1;
}

/* Whole-word access to int16 pairs written through another type (the int16 panels of ep_gemm_s8.h). */
#if defined(__GNUC__) || defined(__clang__)
typedef int32_t ep_word_alias_t __attribute__((may_alias));
#else
typedef int32_t ep_word_alias_t;
#endif

/* tflite::MultiplyByQuantizedMultiplier(int64, ...): the 16x8 path (fixedpoint.requantize_int64). */
EP_INLINE int64_t ep_requantize_int64(int64_t acc, int32_t multiplier, int32_t shift)
{
    int64_t reduced = multiplier < 0x7FFF0000 ? (((int64_t)multiplier + (1 << 15)) >> 16) : 0x7FFF;
    int32_t total_shift = 15 - shift;
    int64_t rounding = (int64_t)1 << (total_shift - 1);
    return (acc * reduced + rounding) >> total_shift;
}

/* tflite::MultiplyByQuantizedMultiplierGreaterThanOne (fixedpoint.multiply_by_quantized_multiplier_gt_one). */
EP_INLINE int32_t ep_multiply_by_quantized_multiplier_gt_one(int32_t x, int32_t multiplier, int32_t left_shift)
{
    return ep_srdhm((int32_t)((uint32_t)x << left_shift), multiplier);
}

/* gemmlowp transcendental functions (defined in ep_fixedpoint.c). */
int32_t ep_exp_on_negative_values(int32_t a, int32_t integer_bits);
int32_t ep_one_over_one_plus_x_for_x_in_0_1(int32_t a);
int32_t ep_one_minus_x_over_one_plus_x_for_x_in_0_1(int32_t a);
int32_t ep_logistic_q(int32_t a, int32_t integer_bits);
int32_t ep_tanh_q(int32_t a, int32_t integer_bits);
int32_t ep_get_reciprocal(int32_t x, int32_t x_integer_digits, int32_t *num_bits_over_unit);

/* ---- packed int4 weights: two per byte, element 2k in the low nibble (TFLite order) ---- */
EP_INLINE int32_t ep_int4_at(const int8_t *packed, int32_t index)
{
    uint8_t byte = (uint8_t)packed[index >> 1];
    uint8_t nibble = (index & 1) ? (uint8_t)(byte >> 4) : (uint8_t)(byte & 0x0F);
    return (int32_t)(nibble ^ 0x08) - 8; /* sign-extend 4 bits */
}

/* ---- DSP intrinsics: ACLE on Cortex-M with DSP, a portable emulation with EP_EMULATE_DSP ---- */
#if defined(__ARM_FEATURE_DSP) && !defined(EP_NO_DSP)
#include <arm_acle.h>
#define EP_DSP 1
#define EP_SMLAD(x, y, acc) __smlad((int16x2_t)(x), (int16x2_t)(y), (acc))
#define EP_SXTB16(x) ((int32_t)__sxtb16((int8x4_t)(x)))
#define EP_SADD16(x, y) ((int32_t)__sadd16((int16x2_t)(x), (int16x2_t)(y)))
#if defined(__GNUC__) && !defined(__clang__)
/* GCC does not fold a rotate into SXTB16's free ROR operand; say it directly (as CMSIS-Core does). */
EP_INLINE int32_t ep_sxtb16_ror8(int32_t x)
{
    int32_t r;
    __asm__("sxtb16 %0, %1, ror #8" : "=r"(r) : "r"(x));
    return r;
}
#define EP_SXTB16_ROR8(x) ep_sxtb16_ror8((int32_t)(x))
#else
#define EP_SXTB16_ROR8(x) ((int32_t)__sxtb16((int8x4_t)(((uint32_t)(x) >> 8) | ((uint32_t)(x) << 24))))
#endif
#elif defined(EP_EMULATE_DSP) && !defined(EP_NO_DSP)
#define EP_DSP 1
/* SMLAD: acc + lo16(x)*lo16(y) + hi16(x)*hi16(y), wrapping like the instruction. */
EP_INLINE int32_t ep_emulated_smlad(int32_t x, int32_t y, int32_t acc)
{
    int32_t lo = (int32_t)(int16_t)(uint16_t)((uint32_t)x & 0xFFFFu) * (int32_t)(int16_t)(uint16_t)((uint32_t)y & 0xFFFFu);
    int32_t hi = (int32_t)(int16_t)(uint16_t)((uint32_t)x >> 16) * (int32_t)(int16_t)(uint16_t)((uint32_t)y >> 16);
    return (int32_t)((uint32_t)acc + (uint32_t)lo + (uint32_t)hi);
}
/* SXTB16: sign-extend bytes 0 and 2 into the two halfwords. */
EP_INLINE int32_t ep_emulated_sxtb16(uint32_t x)
{
    uint32_t lo = (uint32_t)(uint16_t)(int16_t)(int8_t)(uint8_t)(x & 0xFFu);
    uint32_t hi = (uint32_t)(uint16_t)(int16_t)(int8_t)(uint8_t)((x >> 16) & 0xFFu);
    return (int32_t)(lo | (hi << 16));
}
/* SADD16: halfword-wise addition, each half wrapping modulo 2^16. */
EP_INLINE int32_t ep_emulated_sadd16(uint32_t x, uint32_t y)
{
    uint32_t lo = (x + y) & 0xFFFFu;
    uint32_t hi = ((x >> 16) + (y >> 16)) & 0xFFFFu;
    return (int32_t)(lo | (hi << 16));
}
#define EP_SMLAD(x, y, acc) ep_emulated_smlad((int32_t)(x), (int32_t)(y), (acc))
#define EP_SXTB16(x) ep_emulated_sxtb16((uint32_t)(x))
#define EP_SADD16(x, y) ep_emulated_sadd16((uint32_t)(x), (uint32_t)(y))
#define EP_SXTB16_ROR8(x) ep_emulated_sxtb16(((uint32_t)(x) >> 8) | ((uint32_t)(x) << 24))
#else
#define EP_DSP 0
#endif

/* Saturate to int8: one SSAT on Cortex-M3 and up. */
#if defined(__ARM_FEATURE_DSP) && defined(__ARM_FEATURE_SAT) && !defined(EP_NO_DSP)
#define EP_SSAT8(x) __ssat((x), 8)
#else
#define EP_SSAT8(x) ep_clamp((x), -128, 127)
#endif

/* Unaligned little-endian 32-bit loads (one LDR on Cortex-M3 and up). */
EP_INLINE int32_t ep_read_s8x4(const int8_t *p)
{
    int32_t v;
    memcpy(&v, p, 4);
    return v;
}

EP_INLINE int32_t ep_read_s16x2(const int16_t *p)
{
    int32_t v;
    memcpy(&v, p, 4);
    return v;
}

/* Pack two int16 values into one SMLAD operand (a in the low half). */
EP_INLINE int32_t ep_pack_s16x2(int32_t a, int32_t b)
{
    return (int32_t)(((uint32_t)b << 16) | ((uint32_t)a & 0xFFFFu));
}

/* Two consecutive words p[k], p[k + 1] (p 4-byte aligned, k a constant in [0, 254]) in one LDRD.
 * GCC 12 splits 64-bit loads into two LDRs inside SMLAD loops, so the ARM build says LDRD directly;
 * the "m" operand tells the compiler which memory the instruction reads. */
#if defined(__GNUC__) || defined(__clang__)
typedef struct {
    int32_t w[2];
} __attribute__((may_alias)) ep_word_pair_t;
#else
typedef struct {
    int32_t w[2];
} ep_word_pair_t;
#endif

#if defined(__ARM_FEATURE_DSP) && !defined(EP_NO_DSP) && defined(__GNUC__)
#define EP_LOAD_PAIR(p, k, lo, hi)                                                                 \
    __asm__("ldrd %0, %1, [%2, #%c3]"                                                              \
            : "=r"(lo), "=r"(hi)                                                                   \
            : "r"(p), "n"(4 * (k)), "m"(*(const ep_word_pair_t *)(const void *)((p) + (k))))
#else
#define EP_LOAD_PAIR(p, k, lo, hi) \
    do {                           \
        (lo) = (p)[k];             \
        (hi) = (p)[(k) + 1];       \
    } while (0)
#endif

#ifdef __cplusplus
}
#endif

#endif /* EP_COMMON_H */
