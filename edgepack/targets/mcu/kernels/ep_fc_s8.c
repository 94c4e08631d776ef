/*
 * ep_fc_s8: FULLY_CONNECTED (and 1x1 stride-1 unpadded CONV_2D), int8 activations, int8 weights
 * (TFLM FullyConnected with per-channel requantization).
 *
 * Layout: input [rows, depth] (in_dims {rows, 1, 1, depth}), weights [out, depth],
 * output [rows, out] (out_dims {rows, 1, 1, out}).
 * The input offset is folded into the bias at pack time:
 *   bias[o] = b[o] - input_zp * sum_i w[o][i]   (required, never NULL)
 * so acc = bias[o] + sum_i x[i] * w[o][i] equals TFLM's b[o] + sum_i (x[i] - input_zp) * w[o][i]
 * exactly (int32 arithmetic, modulo 2^32). quant->input_zp is not read.
 * out = clamp(ep_requantize(acc, multiplier[o], shift[o]) + output_zp, act_min, act_max).
 * DSP path: 2 rows x 2 output channels per step, 4 MACs per weight load pair, 2 per SMLAD.
 * A single row (rows == 1, a dense layer) meets 4 weight rows at a time: per 4 depth LDR + 2 SXTB16
 * of the row and per channel LDR + 2 SXTB16 + 2 SMLAD (16 MACs in 23 instructions).
 * Scratch: none.
 */
#include "ep_kernels.h"

int32_t ep_fc_s8_scratch_bytes(const ep_dims_t *filter_dims)
{
    (void)filter_dims;
    return 0;
}

static int8_t finish(int32_t acc, const ep_quant_t *quant, int32_t o)
{
    const int32_t m = quant->multiplier[o], shift = quant->shift[o];
    if (quant->act_min <= -128 && quant->act_max >= 127 && ep_requant_zp_ok(m, shift)) {
        const ep_requant_zp_t rq = ep_requant_zp_prepare(m, shift, quant->output_zp);
        return (int8_t)EP_SSAT8(ep_requant_zp_apply(acc, rq.multiplier, rq.hi_base, rq.right_m1));
    }
    acc = ep_requantize(acc, m, shift) + quant->output_zp;
    return (int8_t)ep_clamp(acc, quant->act_min, quant->act_max);
}

#if EP_DSP
/* True when every channel takes ep_requant_zp_apply and the clamp is the whole int8 range. */
static int all_fast(const ep_quant_t *quant, int32_t outs)
{
    int32_t o;
    if (quant->act_min > -128 || quant->act_max < 127) {
        return 0;
    }
    for (o = 0; o < outs; ++o) {
        if (!ep_requant_zp_ok(quant->multiplier[o], quant->shift[o])) {
            return 0;
        }
    }
    return 1;
}

/* y[i] for i = 0..3 from acc[i], channels' requantization in the five-instruction form. */
EP_INLINE void finish4_fast(const int32_t *acc, const int32_t *mult, const int32_t *shift, int32_t zp, int8_t *y)
{
    int32_t i;
    for (i = 0; i < 4; ++i) {
        const ep_requant_zp_t rq = ep_requant_zp_prepare(mult[i], shift[i], zp);
        y[i] = (int8_t)EP_SSAT8(ep_requant_zp_apply(acc[i], rq.multiplier, rq.hi_base, rq.right_m1));
    }
}

/* Sums of 2 input rows x 2 weight rows over depth, 2 MACs per SMLAD. Rows of x and w are both
 * `depth` apart, so one stride register serves the four streams (no spills on Cortex-M4). */
static void dot_2x2(const int8_t *x0, const int8_t *w0, int32_t depth, int32_t *acc)
{
    int32_t a00 = acc[0], a01 = acc[1], a10 = acc[2], a11 = acc[3];
    const int8_t *end = x0 + (depth & ~3);
    int32_t k;
    for (; x0 < end; x0 += 4, w0 += 4) {
        const int32_t xv0 = ep_read_s8x4(x0), xv1 = ep_read_s8x4(x0 + depth);
        const int32_t wv0 = ep_read_s8x4(w0), wv1 = ep_read_s8x4(w0 + depth);
        const int32_t x0e = EP_SXTB16(xv0), x0o = EP_SXTB16_ROR8(xv0);
        const int32_t w0e = EP_SXTB16(wv0), w0o = EP_SXTB16_ROR8(wv0);
        const int32_t x1e = EP_SXTB16(xv1), x1o = EP_SXTB16_ROR8(xv1);
        const int32_t w1e = EP_SXTB16(wv1), w1o = EP_SXTB16_ROR8(wv1);
        a00 = EP_SMLAD(x0e, w0e, a00);
        a00 = EP_SMLAD(x0o, w0o, a00);
        a10 = EP_SMLAD(x1e, w0e, a10);
        a10 = EP_SMLAD(x1o, w0o, a10);
        a01 = EP_SMLAD(x0e, w1e, a01);
        a01 = EP_SMLAD(x0o, w1o, a01);
        a11 = EP_SMLAD(x1e, w1e, a11);
        a11 = EP_SMLAD(x1o, w1o, a11);
    }
    for (k = 0; k < (depth & 3); ++k) {
        a00 += x0[k] * w0[k];
        a01 += x0[k] * w0[k + depth];
        a10 += x0[k + depth] * w0[k];
        a11 += x0[k + depth] * w0[k + depth];
    }
    acc[0] = a00;
    acc[1] = a01;
    acc[2] = a10;
    acc[3] = a11;
}

/* One depth quad of four weight rows against the input row: w0 = row 0, w2 = row 2 (rows 1 and
 * 3 at + depth). */
#define EP_FC_QUAD(x, w0, w2, depth)                                       \
    do {                                                                   \
        const int32_t xv_ = ep_read_s8x4(x);                               \
        const int32_t xe_ = EP_SXTB16(xv_), xo_ = EP_SXTB16_ROR8(xv_);     \
        int32_t t_ = ep_read_s8x4((w0) + (depth));                         \
        a1 = EP_SMLAD(xe_, EP_SXTB16(t_), a1);                             \
        a1 = EP_SMLAD(xo_, EP_SXTB16_ROR8(t_), a1);                        \
        t_ = ep_read_s8x4((w2) + (depth));                                 \
        a3 = EP_SMLAD(xe_, EP_SXTB16(t_), a3);                             \
        a3 = EP_SMLAD(xo_, EP_SXTB16_ROR8(t_), a3);                        \
        t_ = ep_read_s8x4(w2);                                             \
        a2 = EP_SMLAD(xe_, EP_SXTB16(t_), a2);                             \
        a2 = EP_SMLAD(xo_, EP_SXTB16_ROR8(t_), a2);                        \
        t_ = ep_read_s8x4(w0);                                             \
        a0 = EP_SMLAD(xe_, EP_SXTB16(t_), a0);                             \
        a0 = EP_SMLAD(xo_, EP_SXTB16_ROR8(t_), a0);                        \
    } while (0)

#if defined(__ARM_FEATURE_DSP) && !defined(EP_NO_DSP) && defined(__GNUC__)
/* EP_FC_QUAD in Thumb-2 with post-incremented pointers and register-offset loads for rows 1 and 3:
 * 13 live registers, which GCC 12 does not manage without spills. */
#define EP_FC_ASM_QUAD                             \
    "ldr %[xo], [%[x]], #4\n\t"                 \
    "sxtb16 %[xe], %[xo]\n\t"                   \
    "sxtb16 %[xo], %[xo], ror #8\n\t"           \
    "ldr %[t], [%[w0], %[d]]\n\t"               \
    "sxtb16 %[u], %[t]\n\t"                     \
    "sxtb16 %[t], %[t], ror #8\n\t"             \
    "smlad %[a1], %[xe], %[u], %[a1]\n\t"       \
    "smlad %[a1], %[xo], %[t], %[a1]\n\t"       \
    "ldr %[t], [%[w2], %[d]]\n\t"               \
    "sxtb16 %[u], %[t]\n\t"                     \
    "sxtb16 %[t], %[t], ror #8\n\t"             \
    "smlad %[a3], %[xe], %[u], %[a3]\n\t"       \
    "smlad %[a3], %[xo], %[t], %[a3]\n\t"       \
    "ldr %[t], [%[w2]], #4\n\t"                 \
    "sxtb16 %[u], %[t]\n\t"                     \
    "sxtb16 %[t], %[t], ror #8\n\t"             \
    "smlad %[a2], %[xe], %[u], %[a2]\n\t"       \
    "smlad %[a2], %[xo], %[t], %[a2]\n\t"       \
    "ldr %[t], [%[w0]], #4\n\t"                 \
    "sxtb16 %[u], %[t]\n\t"                     \
    "sxtb16 %[t], %[t], ror #8\n\t"             \
    "smlad %[a0], %[xe], %[u], %[a0]\n\t"       \
    "smlad %[a0], %[xo], %[t], %[a0]\n\t"
#endif

/* acc[0..3] += x . weight rows w, w + depth, w + 2 depth, w + 3 depth over the first 4 * quads
 * values. Not inlined: the assembly needs 13 free registers. */
#if defined(__GNUC__) || defined(__clang__)
__attribute__((noinline))
#endif
static void dot_1x4_quads(const int8_t *xr, const int8_t *w, int32_t depth, int32_t quads, int32_t *acc)
{
    int32_t a0 = acc[0], a1 = acc[1], a2 = acc[2], a3 = acc[3];
    const int8_t *w0 = w, *w2 = w + 2 * depth;
#if defined(__ARM_FEATURE_DSP) && !defined(EP_NO_DSP) && defined(__GNUC__)
    const int8_t *x = xr, *end = xr + 4 * (quads & ~1);
    int32_t xe, xo, t, u;
    if (quads >= 2) {
        __asm__("1:\n\t" EP_FC_ASM_QUAD EP_FC_ASM_QUAD
                "cmp %[x], %[end]\n\t"
                "bne 1b\n\t"
                : [a0] "+r"(a0), [a1] "+r"(a1), [a2] "+r"(a2), [a3] "+r"(a3), [x] "+r"(x), [w0] "+r"(w0),
                  [w2] "+r"(w2), [xe] "=&r"(xe), [xo] "=&r"(xo), [t] "=&r"(t), [u] "=&r"(u)
                : [d] "r"(depth), [end] "r"(end)
                : "cc", "memory");
    }
    if (quads & 1) {
        EP_FC_QUAD(x, w0, w2, depth);
    }
#else
    int32_t q;
    for (q = 0; q < quads; ++q, xr += 4, w0 += 4, w2 += 4) {
        EP_FC_QUAD(xr, w0, w2, depth);
    }
#endif
    acc[0] = a0;
    acc[1] = a1;
    acc[2] = a2;
    acc[3] = a3;
}

#endif

/* Portable dot product of one input row with one weight row. */
static int32_t dot_1x1(const int8_t *x, const int8_t *w, int32_t depth)
{
    int32_t acc = 0, k;
    for (k = 0; k < depth; ++k) {
        acc += x[k] * w[k];
    }
    return acc;
}

ep_status_t ep_fc_s8(const ep_quant_t *quant, const ep_dims_t *in_dims, const int8_t *input,
                     const ep_dims_t *filter_dims, const int8_t *filter, const int32_t *bias,
                     const ep_dims_t *out_dims, int8_t *output, void *scratch)
{
    const int32_t rows = in_dims->n, depth = in_dims->c, outs = out_dims->c;
    int32_t r = 0, o;
    (void)scratch;
    if (bias == NULL || quant->multiplier == NULL || quant->shift == NULL) {
        return EP_ERR_BAD_ARG;
    }
    if (filter_dims->c != depth || filter_dims->n != outs || out_dims->n != rows) {
        return EP_ERR_SHAPE;
    }
#if EP_DSP
    for (; r + 2 <= rows; r += 2) {
        const int8_t *x0 = input + (int64_t)r * depth, *x1 = x0 + depth;
        int8_t *y0 = output + (int64_t)r * outs, *y1 = y0 + outs;
        for (o = 0; o + 2 <= outs; o += 2) {
            int32_t acc[4];
            acc[0] = acc[2] = bias[o];
            acc[1] = acc[3] = bias[o + 1];
            dot_2x2(x0, filter + (int64_t)o * depth, depth, acc);
            y0[o] = finish(acc[0], quant, o);
            y0[o + 1] = finish(acc[1], quant, o + 1);
            y1[o] = finish(acc[2], quant, o);
            y1[o + 1] = finish(acc[3], quant, o + 1);
        }
        for (; o < outs; ++o) {
            const int8_t *w = filter + (int64_t)o * depth;
            y0[o] = finish(bias[o] + dot_1x1(x0, w, depth), quant, o);
            y1[o] = finish(bias[o] + dot_1x1(x1, w, depth), quant, o);
        }
    }
    for (; r < rows; ++r) {
        const int8_t *x = input + (int64_t)r * depth;
        int8_t *y = output + (int64_t)r * outs;
        const int fast = all_fast(quant, outs);
        for (o = 0; o + 4 <= outs; o += 4) {
            const int8_t *w = filter + (int64_t)o * depth;
            int32_t acc[4], k;
            acc[0] = bias[o];
            acc[1] = bias[o + 1];
            acc[2] = bias[o + 2];
            acc[3] = bias[o + 3];
            dot_1x4_quads(x, w, depth, depth >> 2, acc);
            for (k = depth & ~3; k < depth; ++k) {
                acc[0] += x[k] * w[k];
                acc[1] += x[k] * w[k + depth];
                acc[2] += x[k] * w[k + 2 * depth];
                acc[3] += x[k] * w[k + 3 * depth];
            }
            if (fast) {
                finish4_fast(acc, quant->multiplier + o, quant->shift + o, quant->output_zp, y + o);
            } else {
                y[o] = finish(acc[0], quant, o);
                y[o + 1] = finish(acc[1], quant, o + 1);
                y[o + 2] = finish(acc[2], quant, o + 2);
                y[o + 3] = finish(acc[3], quant, o + 3);
            }
        }
        for (; o < outs; ++o) {
            y[o] = finish(bias[o] + dot_1x1(x, filter + (int64_t)o * depth, depth), quant, o);
        }
    }
#else
    for (; r < rows; ++r) {
        const int8_t *x = input + (int64_t)r * depth;
        int8_t *y = output + (int64_t)r * outs;
        for (o = 0; o < outs; ++o) {
            y[o] = finish(bias[o] + dot_1x1(x, filter + (int64_t)o * depth, depth), quant, o);
        }
    }
#endif
    return EP_OK;
}
