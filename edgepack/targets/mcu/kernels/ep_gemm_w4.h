/*
 * Internal to the kernel library (not a kernel): the packed int4-weight GEMM core of ep_conv2d_s8_w4,
 * ep_conv2d_1x1_s8_w4 (ep_conv2d_s8_w4.c) and ep_fc_s8_w4 (ep_fc_s8_w4.c).
 *
 * Weights stay packed in flash: [outs, depth] int4 values two per byte, element 2k in the low nibble
 * (TFLite order) within each output channel's row, and every row starts on a byte boundary (a zero
 * nibble pads the row when depth is odd; for even depth this is exactly TFLite's flat packing).
 * EP_W4_ROW_BYTES(depth) = (depth + 1) / 2 bytes per row.
 *
 * Inner loop (DSP builds): one word w holds 8 weights n0..n7 (nibble i = element i). Masking puts each
 * nibble in the top half of a byte, where SXTB16 sign-extends it as 16 * n:
 *   even = (w << 4) & 0xF0F0F0F0: SXTB16(even) = 16 (n0, n4), SXTB16_ROR8(even) = 16 (n2, n6)
 *   odd  =  w       & 0xF0F0F0F0: SXTB16(odd)  = 16 (n1, n5), SXTB16_ROR8(odd)  = 16 (n3, n7)
 * so 8 weights cost 1 LDR + 2 AND + 4 SXTB16, no unpacked copy anywhere. The sums are 16 times the
 * true ones and exact (no int32 wrap) while depth <= EP_W4_DSP_MAX_DEPTH (|x| <= 255, |16 w| <= 128);
 * the result is bias + (sum >> 4). Deeper layers take the portable loops.
 *
 * Panel: R (EP_W4_ROWS = 4, or 1) input rows as int16 (x - input_zp) in the matching order. Depth group
 * g (depth 8g .. 8g+7), half h (0: pairs (x0, x4), (x2, x6); 1: pairs (x1, x5), (x3, x7)), row r:
 *   words [(g * 2 + h) * 2R + 2r ..] = the half's two pairs
 * (ep_w4_panel_index). Depth is zero-padded to D = round_up(depth, 8); one 4-row panel is 8 * D bytes,
 * one row 2 * D bytes. Per group and channel the 4-row core spends 1 LDR + 6 unpack + 8 LDRD + 16 SMLAD
 * on 32 MACs.
 */
#ifndef EP_GEMM_W4_H
#define EP_GEMM_W4_H

#include "ep_kernels.h"

#define EP_W4_ROWS 4
#define EP_W4_DEPTH(depth) (((depth) + 7) & ~7)
#define EP_W4_ROW_BYTES(depth) (((depth) + 1) >> 1)
#define EP_W4_DSP_MAX_DEPTH 65536

#if EP_DSP
/* Halfword index of depth position k of row r in a panel of `rows` rows. */
EP_INLINE int32_t ep_w4_panel_index(int32_t rows, int32_t row, int32_t k)
{
    const int32_t i = k & 7;
    return (k >> 3) * 8 * rows + (i & 1) * 4 * rows + row * 4 + ((i >> 1) & 1) * 2 + (i >> 2);
}

/* Row r of a panel of `rows` rows from `depth` int8 values plus `offset` (-input_zp, or 0), zero-padded. */
EP_INLINE void ep_w4_panel_put(int16_t *panel, int32_t rows, int32_t row, const int8_t *x, int32_t depth,
                               int32_t offset)
{
    const int32_t offset2 = ep_pack_s16x2(offset, offset);
    ep_word_alias_t *dst = (ep_word_alias_t *)(void *)panel + 2 * row;
    int32_t g, k;
    for (g = 0; g + 8 <= depth; g += 8, dst += 4 * rows) {
        const int32_t xa = ep_read_s8x4(x + g), xb = ep_read_s8x4(x + g + 4);
        const uint32_t ea = (uint32_t)EP_SXTB16(xa), eb = (uint32_t)EP_SXTB16(xb);       /* (x0 x2) (x4 x6) */
        const uint32_t oa = (uint32_t)EP_SXTB16_ROR8(xa), ob = (uint32_t)EP_SXTB16_ROR8(xb); /* (x1 x3) (x5 x7) */
        dst[0] = EP_SADD16((ea & 0xFFFFu) | (eb << 16), offset2);
        dst[1] = EP_SADD16((ea >> 16) | (eb & 0xFFFF0000u), offset2);
        dst[2 * rows] = EP_SADD16((oa & 0xFFFFu) | (ob << 16), offset2);
        dst[2 * rows + 1] = EP_SADD16((oa >> 16) | (ob & 0xFFFF0000u), offset2);
    }
    for (k = g; k < EP_W4_DEPTH(depth); ++k) {
        panel[ep_w4_panel_index(rows, row, k)] = (int16_t)(k < depth ? x[k] + offset : 0);
    }
}

/* Zero depth positions [k0, EP_W4_DEPTH(depth)) of row r. */
EP_INLINE void ep_w4_panel_zero(int16_t *panel, int32_t rows, int32_t row, int32_t k0, int32_t depth)
{
    int32_t k;
    for (k = k0; k < EP_W4_DEPTH(depth); ++k) {
        panel[ep_w4_panel_index(rows, row, k)] = 0;
    }
}

/* The last (partial) weight word of a row: `bytes` (1..3) bytes, the rest zero. */
EP_INLINE uint32_t ep_w4_tail_word(const int8_t *w, int32_t bytes)
{
    uint32_t wv = 0;
    int32_t i;
    for (i = 0; i < bytes; ++i) {
        wv |= (uint32_t)(uint8_t)w[i] << (8 * i);
    }
    return wv;
}

/* The true sum from a 16-fold one: bias + acc16 / 16 (exact), wrapping like the portable loops. */
EP_INLINE int32_t ep_w4_sum(int32_t bias, int32_t acc16)
{
    return (int32_t)((uint32_t)bias + (uint32_t)(acc16 >> 4));
}

/* 32 MACs: one weight word against one depth group of the four panel rows (x: the group's 16 words). */
#define EP_W4_GROUP4(x, wv)                                                 \
    do {                                                                    \
        const uint32_t w_ = (uint32_t)(wv);                                 \
        const int32_t ev_ = (int32_t)((w_ << 4) & 0xF0F0F0F0u);             \
        const int32_t od_ = (int32_t)(w_ & 0xF0F0F0F0u);                    \
        int32_t p0_, p1_, u0_ = EP_SXTB16(ev_), u1_ = EP_SXTB16_ROR8(ev_);  \
        EP_LOAD_PAIR(x, 0, p0_, p1_);                                       \
        a0 = EP_SMLAD(u0_, p0_, a0);                                        \
        a0 = EP_SMLAD(u1_, p1_, a0);                                        \
        EP_LOAD_PAIR(x, 2, p0_, p1_);                                       \
        a1 = EP_SMLAD(u0_, p0_, a1);                                        \
        a1 = EP_SMLAD(u1_, p1_, a1);                                        \
        EP_LOAD_PAIR(x, 4, p0_, p1_);                                       \
        a2 = EP_SMLAD(u0_, p0_, a2);                                        \
        a2 = EP_SMLAD(u1_, p1_, a2);                                        \
        EP_LOAD_PAIR(x, 6, p0_, p1_);                                       \
        a3 = EP_SMLAD(u0_, p0_, a3);                                        \
        a3 = EP_SMLAD(u1_, p1_, a3);                                        \
        u0_ = EP_SXTB16(od_);                                               \
        u1_ = EP_SXTB16_ROR8(od_);                                          \
        EP_LOAD_PAIR(x, 8, p0_, p1_);                                       \
        a0 = EP_SMLAD(u0_, p0_, a0);                                        \
        a0 = EP_SMLAD(u1_, p1_, a0);                                        \
        EP_LOAD_PAIR(x, 10, p0_, p1_);                                      \
        a1 = EP_SMLAD(u0_, p0_, a1);                                        \
        a1 = EP_SMLAD(u1_, p1_, a1);                                        \
        EP_LOAD_PAIR(x, 12, p0_, p1_);                                      \
        a2 = EP_SMLAD(u0_, p0_, a2);                                        \
        a2 = EP_SMLAD(u1_, p1_, a2);                                        \
        EP_LOAD_PAIR(x, 14, p0_, p1_);                                      \
        a3 = EP_SMLAD(u0_, p0_, a3);                                        \
        a3 = EP_SMLAD(u1_, p1_, a3);                                        \
    } while (0)

/* acc[r] = 16 * (panel row r . w), r = 0..3, for one output channel's packed row. */
EP_INLINE void ep_w4_dot4(const int16_t *panel, const int8_t *w, int32_t depth, int32_t *acc)
{
    const ep_word_alias_t *x = (const ep_word_alias_t *)(const void *)panel;
    int32_t a0 = 0, a1 = 0, a2 = 0, a3 = 0;
    const int8_t *end = w + 4 * (depth >> 3);
    for (; w < end; w += 4, x += 16) {
        EP_W4_GROUP4(x, ep_read_s8x4(w));
    }
    if (depth & 7) {
        EP_W4_GROUP4(x, ep_w4_tail_word(w, EP_W4_ROW_BYTES(depth & 7)));
    }
    acc[0] = a0;
    acc[1] = a1;
    acc[2] = a2;
    acc[3] = a3;
}

/* 16 * (panel row . w) for a one-row panel (x: 4 words per depth group). */
EP_INLINE int32_t ep_w4_dot1(const int16_t *panel, const int8_t *w, int32_t depth)
{
    const ep_word_alias_t *x = (const ep_word_alias_t *)(const void *)panel;
    const int8_t *end = w + 4 * (depth >> 3);
    int32_t a = 0, b = 0;
    uint32_t wv;
    for (;;) {
        int32_t p0, p1, ev, od;
        if (w < end) {
            wv = (uint32_t)ep_read_s8x4(w);
        } else if (w == end && (depth & 7)) {
            wv = ep_w4_tail_word(w, EP_W4_ROW_BYTES(depth & 7));
        } else {
            break;
        }
        w += 4;
        ev = (int32_t)((wv << 4) & 0xF0F0F0F0u);
        od = (int32_t)(wv & 0xF0F0F0F0u);
        EP_LOAD_PAIR(x, 0, p0, p1);
        a = EP_SMLAD(EP_SXTB16(ev), p0, a);
        b = EP_SMLAD(EP_SXTB16_ROR8(ev), p1, b);
        EP_LOAD_PAIR(x, 2, p0, p1);
        a = EP_SMLAD(EP_SXTB16(od), p0, a);
        b = EP_SMLAD(EP_SXTB16_ROR8(od), p1, b);
        x += 4;
    }
    return a + b;
}

/* True when every channel's requantization takes ep_requant_zp_apply and the clamp is the whole int8 range. */
EP_INLINE int ep_w4_all_fast(const ep_quant_t *quant, int32_t outs)
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

/* One channel of a full 4-row panel, fast requantization: out[r * stride], r = 0..3. Not inlined: with its
 * own register allocation the four sums stay in registers from the dot product to the stores. */
#if defined(__GNUC__) || defined(__clang__)
__attribute__((noinline))
#endif
static void ep_w4_channel4_fast(const int16_t *panel, const int8_t *w, int32_t depth, int32_t bias, int32_t m,
                                int32_t shift, int32_t zp, int8_t *out, int32_t stride)
{
    const ep_requant_zp_t rq = ep_requant_zp_prepare(m, shift, zp);
    int32_t acc[EP_W4_ROWS]; /* constant indices only, so it lives in registers */
    ep_w4_dot4(panel, w, depth, acc);
    out[0] = (int8_t)EP_SSAT8(ep_requant_zp_apply(ep_w4_sum(bias, acc[0]), rq.multiplier, rq.hi_base, rq.right_m1));
    out[stride] =
        (int8_t)EP_SSAT8(ep_requant_zp_apply(ep_w4_sum(bias, acc[1]), rq.multiplier, rq.hi_base, rq.right_m1));
    out[2 * stride] =
        (int8_t)EP_SSAT8(ep_requant_zp_apply(ep_w4_sum(bias, acc[2]), rq.multiplier, rq.hi_base, rq.right_m1));
    out[3 * stride] =
        (int8_t)EP_SSAT8(ep_requant_zp_apply(ep_w4_sum(bias, acc[3]), rq.multiplier, rq.hi_base, rq.right_m1));
}

/* All output channels of one 4-row panel: out[r * out_stride + o] for r < rows (<= 4). bias may be NULL.
 * fast: ep_w4_all_fast(quant, outs), hoisted out of the caller's panel loop. Sums are bias + (16-fold
 * sum >> 4) in wrapping int32 arithmetic, as the portable loops. */
EP_INLINE void ep_w4_gemm(const int16_t *panel, const int8_t *weights, const int32_t *bias, int32_t depth,
                          int32_t outs, const ep_quant_t *quant, int8_t *out, int32_t out_stride, int32_t rows,
                          int fast)
{
    const int32_t zp = quant->output_zp, lo = quant->act_min, hi = quant->act_max;
    const int32_t row_bytes = EP_W4_ROW_BYTES(depth);
    int32_t o, r;
    if (fast && rows == EP_W4_ROWS) {
        for (o = 0; o < outs; ++o, ++out, weights += row_bytes) {
            ep_w4_channel4_fast(panel, weights, depth, bias != NULL ? bias[o] : 0, quant->multiplier[o],
                                quant->shift[o], zp, out, out_stride);
        }
        return;
    }
    for (o = 0; o < outs; ++o, ++out, weights += row_bytes) {
        const int32_t b = bias != NULL ? bias[o] : 0;
        const ep_requant_t rq = ep_requant_prepare(quant->multiplier[o], quant->shift[o]);
        int32_t acc[EP_W4_ROWS];
        ep_w4_dot4(panel, weights, depth, acc);
        for (r = 0; r < rows; ++r) {
            const int32_t sum = ep_w4_sum(b, acc[r]);
            out[r * out_stride] = (int8_t)ep_clamp(ep_requant_apply(sum, &rq) + zp, lo, hi);
        }
    }
}
#endif /* EP_DSP */

#endif /* EP_GEMM_W4_H */
