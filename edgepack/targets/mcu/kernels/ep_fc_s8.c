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

/* One input row against four weight rows (the rows == 1 case, e.g. a plain dense layer). */
static void dot_1x4(const int8_t *x, const int8_t *w, int32_t depth, int32_t *acc)
{
    const int8_t *w0 = w, *w1 = w + depth, *w2 = w + 2 * depth, *w3 = w + 3 * depth;
    int32_t a0 = acc[0], a1 = acc[1], a2 = acc[2], a3 = acc[3];
    int32_t k;
    for (k = 0; k + 4 <= depth; k += 4) {
        const int32_t xv = ep_read_s8x4(x + k);
        const int32_t xe = EP_SXTB16(xv), xo = EP_SXTB16_ROR8(xv);
        int32_t wv = ep_read_s8x4(w0 + k);
        a0 = EP_SMLAD(xe, EP_SXTB16(wv), a0);
        a0 = EP_SMLAD(xo, EP_SXTB16_ROR8(wv), a0);
        wv = ep_read_s8x4(w1 + k);
        a1 = EP_SMLAD(xe, EP_SXTB16(wv), a1);
        a1 = EP_SMLAD(xo, EP_SXTB16_ROR8(wv), a1);
        wv = ep_read_s8x4(w2 + k);
        a2 = EP_SMLAD(xe, EP_SXTB16(wv), a2);
        a2 = EP_SMLAD(xo, EP_SXTB16_ROR8(wv), a2);
        wv = ep_read_s8x4(w3 + k);
        a3 = EP_SMLAD(xe, EP_SXTB16(wv), a3);
        a3 = EP_SMLAD(xo, EP_SXTB16_ROR8(wv), a3);
    }
    for (; k < depth; ++k) {
        a0 += x[k] * w0[k];
        a1 += x[k] * w1[k];
        a2 += x[k] * w2[k];
        a3 += x[k] * w3[k];
    }
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
        for (o = 0; o + 4 <= outs; o += 4) {
            int32_t acc[4];
            acc[0] = bias[o];
            acc[1] = bias[o + 1];
            acc[2] = bias[o + 2];
            acc[3] = bias[o + 3];
            dot_1x4(x, filter + (int64_t)o * depth, depth, acc);
            y[o] = finish(acc[0], quant, o);
            y[o + 1] = finish(acc[1], quant, o + 1);
            y[o + 2] = finish(acc[2], quant, o + 2);
            y[o + 3] = finish(acc[3], quant, o + 3);
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
