/*
 * Internal to the kernel library (not a kernel): the int8 GEMM core of the DSP builds, shared by
 * ep_conv2d_s8 (after im2col) and ep_conv2d_1x1_s8.
 *
 * A "panel" holds EP_PANEL_ROWS (4) input rows as int16, interleaved so that one weight word
 * w = [w0 w1 w2 w3] (4 int8 of one output channel) meets every row with the same two operands
 * SXTB16(w) = (w0, w2) and SXTB16_ROR8(w) = (w1, w3):
 *   group g (depth 4g .. 4g+3), row r: halfwords [16g + 4r ..] = x[4g], x[4g+2], x[4g+1], x[4g+3]
 * Depth is zero-padded to a multiple of 4 (EP_PANEL_DEPTH). One panel is 8 * EP_PANEL_DEPTH(depth)
 * bytes. Per group and output channel the core spends 1 load + 2 SXTB16 on the weights and
 * 4 loads + 8 SMLAD on the rows: 16 MACs in about 15 instructions.
 */
#ifndef EP_GEMM_S8_H
#define EP_GEMM_S8_H

#include "ep_kernels.h"

#define EP_PANEL_ROWS 4
#define EP_PANEL_DEPTH(depth) (((depth) + 3) & ~3)

#if EP_DSP
/* Halfword index of depth position k of row r in a panel. */
EP_INLINE int32_t ep_panel_index(int32_t row, int32_t k)
{
    static const int8_t slot[4] = {0, 2, 1, 3};
    return 16 * (k >> 2) + 4 * row + slot[k & 3];
}

/* Row r of a panel from `depth` int8 values (no offset): SXTB16 gives the interleaved pairs directly. */
EP_INLINE void ep_panel_put_s8(int16_t *panel, int32_t row, const int8_t *x, int32_t depth)
{
    int32_t g, k;
    int16_t *dst = panel + 4 * row;
    for (g = 0; g + 4 <= depth; g += 4, dst += 16) {
        const int32_t xv = ep_read_s8x4(x + g);
        const int32_t even = EP_SXTB16(xv), odd = EP_SXTB16_ROR8(xv);
        memcpy(dst, &even, 4);
        memcpy(dst + 2, &odd, 4);
    }
    for (k = g; k < EP_PANEL_DEPTH(depth); ++k) {
        panel[ep_panel_index(row, k)] = (int16_t)(k < depth ? x[k] : 0);
    }
}

/* Zero row r (rows past the end of the matrix). */
EP_INLINE void ep_panel_zero(int16_t *panel, int32_t row, int32_t depth)
{
    int32_t g;
    for (g = 0; g < EP_PANEL_DEPTH(depth); g += 4) {
        memset(panel + 4 * g + 4 * row, 0, 8);
    }
}

/* 16 MACs: one weight word against one depth group of the four rows (x: the group's 8 words). */
#define EP_PANEL_STEP(x, wv)                   \
    do {                                       \
        const int32_t we_ = EP_SXTB16(wv), wo_ = EP_SXTB16_ROR8(wv); \
        int32_t p0_, p1_;                      \
        EP_LOAD_PAIR(x, 0, p0_, p1_);          \
        a0 = EP_SMLAD(we_, p0_, a0);           \
        a0 = EP_SMLAD(wo_, p1_, a0);           \
        EP_LOAD_PAIR(x, 2, p0_, p1_);          \
        a1 = EP_SMLAD(we_, p0_, a1);           \
        a1 = EP_SMLAD(wo_, p1_, a1);           \
        EP_LOAD_PAIR(x, 4, p0_, p1_);          \
        a2 = EP_SMLAD(we_, p0_, a2);           \
        a2 = EP_SMLAD(wo_, p1_, a2);           \
        EP_LOAD_PAIR(x, 6, p0_, p1_);          \
        a3 = EP_SMLAD(we_, p0_, a3);           \
        a3 = EP_SMLAD(wo_, p1_, a3);           \
    } while (0)

/* acc[r] += sum_k panel_r[k] * w[k], r = 0..3, for one output channel's int8 weight row.
 * The panel is read as word pairs (4-byte aligned, one LDRD each), two depth groups per iteration. */
EP_INLINE void ep_panel_dot(const int16_t *panel, const int8_t *w, int32_t depth, int32_t *acc)
{
    const ep_word_alias_t *x = (const ep_word_alias_t *)(const void *)panel;
    int32_t a0 = acc[0], a1 = acc[1], a2 = acc[2], a3 = acc[3];
    const int8_t *end = w + (depth & ~7);
    uint32_t wv;
    int32_t i;
    for (; w < end; w += 8, x += 16) {
        const int32_t w0 = ep_read_s8x4(w), w1 = ep_read_s8x4(w + 4);
        EP_PANEL_STEP(x, w0);
        EP_PANEL_STEP(x + 8, w1);
    }
    if (depth & 4) {
        wv = (uint32_t)ep_read_s8x4(w);
        EP_PANEL_STEP(x, wv);
        w += 4;
        x += 8;
    }
    if (depth & 3) {
        /* the last 1-3 weights, zero-filled: the panel's padding is zero too */
        wv = 0;
        for (i = 0; i < (depth & 3); ++i) {
            wv |= (uint32_t)(uint8_t)w[i] << (8 * i);
        }
        EP_PANEL_STEP(x, wv);
    }
    acc[0] = a0;
    acc[1] = a1;
    acc[2] = a2;
    acc[3] = a3;
}

/* One requantized, clamped output value. */
EP_INLINE int8_t ep_panel_out(int32_t acc, const ep_requant_t *rq, int32_t zp, int32_t lo, int32_t hi)
{
    return (int8_t)ep_clamp(ep_requant_apply(acc, rq) + zp, lo, hi);
}

/* All output channels of one panel: out[r * out_stride + o] for r < rows (<= 4).
 * bias may be NULL. weights [outs, depth], natural order. Channels whose requantization fits
 * ep_requant_zp_apply (and a clamp to the whole int8 range) take the five-instruction form. */
EP_INLINE void ep_panel_gemm(const int16_t *panel, const int8_t *weights, const int32_t *bias, int32_t depth,
                             int32_t outs, const ep_quant_t *quant, int8_t *out, int32_t out_stride, int32_t rows)
{
    const int32_t zp = quant->output_zp, lo = quant->act_min, hi = quant->act_max;
    const int full_range = lo <= -128 && hi >= 127;
    int32_t o;
    for (o = 0; o < outs; ++o, ++out) {
        const int32_t m = quant->multiplier[o], shift = quant->shift[o];
        int32_t acc[EP_PANEL_ROWS];
        acc[0] = acc[1] = acc[2] = acc[3] = bias != NULL ? bias[o] : 0;
        ep_panel_dot(panel, weights + (int64_t)o * depth, depth, acc);
        if (rows == EP_PANEL_ROWS && full_range && ep_requant_zp_ok(m, shift)) {
            const ep_requant_zp_t rq = ep_requant_zp_prepare(m, shift, zp);
            out[0] = (int8_t)EP_SSAT8(ep_requant_zp_apply(acc[0], rq.multiplier, rq.hi_base, rq.right_m1));
            out[out_stride] = (int8_t)EP_SSAT8(ep_requant_zp_apply(acc[1], rq.multiplier, rq.hi_base, rq.right_m1));
            out[2 * out_stride] =
                (int8_t)EP_SSAT8(ep_requant_zp_apply(acc[2], rq.multiplier, rq.hi_base, rq.right_m1));
            out[3 * out_stride] =
                (int8_t)EP_SSAT8(ep_requant_zp_apply(acc[3], rq.multiplier, rq.hi_base, rq.right_m1));
        } else {
            const ep_requant_t rq = ep_requant_prepare(m, shift);
            int32_t r;
            for (r = 0; r < rows; ++r) {
                out[r * out_stride] = ep_panel_out(acc[r], &rq, zp, lo, hi);
            }
        }
    }
}
#endif /* EP_DSP */

#endif /* EP_GEMM_S8_H */
