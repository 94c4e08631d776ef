/*
 * Internal to the kernel library (not a kernel): the packed int16-weight ("w16") GEMM core of
 * ep_conv2d_s8_w16 and ep_conv2d_1x1_s8_w16 (ep_conv2d_s8_w16.c).
 *
 * Packed weights (built at pack time by edgepack/targets/mcu/lowering.py, pack_w16): the int8
 * weights [outs, depth] pre-widened to int16 and reordered so that the inner loop needs no
 * sign extension. Output channels go in pairs (2p, 2p + 1; a zero channel pads an odd count), the
 * depth is zero-padded to D = round_up(depth, 4). Pair p, depth group g (depth 4g .. 4g+3), half h:
 *   halfwords [((p * D/4 + g) * 2 + h) * 4 ..] = wA[4g+h], wA[4g+h+2], wB[4g+h], wB[4g+h+2]
 * (A = channel 2p, B = 2p + 1), so one LDRD gives both channels' SMLAD operands.
 * ep_w16_weight_index() is the same map; the table holds round_up(outs, 2) * D halfwords.
 *
 * Panel: EP_PANEL_ROWS (4) input rows as int16 with the same depth order (SXTB16 of one input
 * word gives half 0, SXTB16 ROR 8 gives half 1):
 *   group g, half h, row r: halfwords [((g * 2 + h) * 4 + r) * 2 ..] = x[4g+h], x[4g+h+2]
 * One panel is 8 * D bytes, as in ep_gemm_s8.h. Per depth group and channel pair the core spends
 * 6 LDRD + 16 SMLAD on 32 MACs (4 rows x 2 channels x 4 depth).
 */
#ifndef EP_GEMM_W16_H
#define EP_GEMM_W16_H

#include "ep_kernels.h"

#define EP_W16_ROWS 4
#define EP_W16_DEPTH(depth) (((depth) + 3) & ~3)

/* Halfword index of weight (o, k) in the packed table (dpad = EP_W16_DEPTH(depth)). */
EP_INLINE int32_t ep_w16_weight_index(int32_t o, int32_t k, int32_t dpad)
{
    return ((((o >> 1) * (dpad >> 2) + (k >> 2)) * 2 + (k & 1)) * 4) + (o & 1) * 2 + ((k >> 1) & 1);
}

/* Halfword index of depth position k of row r in a panel. */
EP_INLINE int32_t ep_w16_panel_index(int32_t row, int32_t k)
{
    return ((((k >> 2) * 2 + (k & 1)) * 4 + row) * 2) + ((k >> 1) & 1);
}

#if EP_DSP
/* Row r of a panel from `depth` int8 values without offset (the 1x1 path), zero-padded to D. */
EP_INLINE void ep_w16_panel_put_s8(int16_t *panel, int32_t row, const int8_t *x, int32_t depth)
{
    ep_word_alias_t *dst = (ep_word_alias_t *)(void *)panel + row;
    int32_t g, k;
    for (g = 0; g + 4 <= depth; g += 4, dst += 8) {
        const int32_t xv = ep_read_s8x4(x + g);
        dst[0] = EP_SXTB16(xv);
        dst[4] = EP_SXTB16_ROR8(xv);
    }
    for (k = g; k < EP_W16_DEPTH(depth); ++k) {
        panel[ep_w16_panel_index(row, k)] = (int16_t)(k < depth ? x[k] : 0);
    }
}

/* Zero depth positions [k0, k1) of row r. */
EP_INLINE void ep_w16_panel_zero(int16_t *panel, int32_t row, int32_t k0, int32_t k1)
{
    int32_t k = k0;
    for (; k < k1 && (k & 3); ++k) {
        panel[ep_w16_panel_index(row, k)] = 0;
    }
    for (; k + 4 <= k1; k += 4) {
        ep_word_alias_t *dst = (ep_word_alias_t *)(void *)panel + (k >> 2) * 8 + row;
        dst[0] = 0;
        dst[4] = 0;
    }
    for (; k < k1; ++k) {
        panel[ep_w16_panel_index(row, k)] = 0;
    }
}

/* One depth group: 32 MACs (x: the group's 8 panel words, w: its 4 weight words). */
#define EP_W16_GROUP(x, w)                     \
    do {                                       \
        int32_t wa_, wb_, x0_, x1_;            \
        EP_LOAD_PAIR(w, 0, wa_, wb_);          \
        EP_LOAD_PAIR(x, 0, x0_, x1_);          \
        a0 = EP_SMLAD(x0_, wa_, a0);           \
        b0 = EP_SMLAD(x0_, wb_, b0);           \
        a1 = EP_SMLAD(x1_, wa_, a1);           \
        b1 = EP_SMLAD(x1_, wb_, b1);           \
        EP_LOAD_PAIR(x, 2, x0_, x1_);          \
        a2 = EP_SMLAD(x0_, wa_, a2);           \
        b2 = EP_SMLAD(x0_, wb_, b2);           \
        a3 = EP_SMLAD(x1_, wa_, a3);           \
        b3 = EP_SMLAD(x1_, wb_, b3);           \
        EP_LOAD_PAIR(w, 2, wa_, wb_);          \
        EP_LOAD_PAIR(x, 4, x0_, x1_);          \
        a0 = EP_SMLAD(x0_, wa_, a0);           \
        b0 = EP_SMLAD(x0_, wb_, b0);           \
        a1 = EP_SMLAD(x1_, wa_, a1);           \
        b1 = EP_SMLAD(x1_, wb_, b1);           \
        EP_LOAD_PAIR(x, 6, x0_, x1_);          \
        a2 = EP_SMLAD(x0_, wa_, a2);           \
        b2 = EP_SMLAD(x0_, wb_, b2);           \
        a3 = EP_SMLAD(x1_, wa_, a3);           \
        b3 = EP_SMLAD(x1_, wb_, b3);           \
    } while (0)

#if defined(__ARM_FEATURE_DSP) && !defined(EP_NO_DSP) && defined(__GNUC__)
/* The same group in Thumb-2, pointers post-incremented. The 4 rows x 2 channels core needs all 14
 * allocatable registers (8 sums, 2 pointers, 4 operands), more than GCC 12 schedules without
 * spilling, hence assembly. */
#define EP_W16_ASM_GROUP                                        \
    "ldrd %[wa], %[wb], [%[w]], #8\n\t"                      \
    "ldrd %[x0], %[x1], [%[x]], #8\n\t"                      \
    "smlad %[a0], %[x0], %[wa], %[a0]\n\t"                   \
    "smlad %[b0], %[x0], %[wb], %[b0]\n\t"                   \
    "smlad %[a1], %[x1], %[wa], %[a1]\n\t"                   \
    "smlad %[b1], %[x1], %[wb], %[b1]\n\t"                   \
    "ldrd %[x0], %[x1], [%[x]], #8\n\t"                      \
    "smlad %[a2], %[x0], %[wa], %[a2]\n\t"                   \
    "smlad %[b2], %[x0], %[wb], %[b2]\n\t"                   \
    "smlad %[a3], %[x1], %[wa], %[a3]\n\t"                   \
    "smlad %[b3], %[x1], %[wb], %[b3]\n\t"                   \
    "ldrd %[wa], %[wb], [%[w]], #8\n\t"                      \
    "ldrd %[x0], %[x1], [%[x]], #8\n\t"                      \
    "smlad %[a0], %[x0], %[wa], %[a0]\n\t"                   \
    "smlad %[b0], %[x0], %[wb], %[b0]\n\t"                   \
    "smlad %[a1], %[x1], %[wa], %[a1]\n\t"                   \
    "smlad %[b1], %[x1], %[wb], %[b1]\n\t"                   \
    "ldrd %[x0], %[x1], [%[x]], #8\n\t"                      \
    "smlad %[a2], %[x0], %[wa], %[a2]\n\t"                   \
    "smlad %[b2], %[x0], %[wb], %[b2]\n\t"                   \
    "smlad %[a3], %[x1], %[wa], %[a3]\n\t"                   \
    "smlad %[b3], %[x1], %[wb], %[b3]\n\t"
#define EP_W16_ASM_OPERANDS                                                                      \
    [a0] "+r"(a0), [a1] "+r"(a1), [a2] "+r"(a2), [a3] "+r"(a3), [b0] "+r"(b0), [b1] "+r"(b1), \
        [b2] "+r"(b2), [b3] "+r"(b3), [x] "+r"(x), [w] "+r"(w), [wa] "=&r"(wa), [wb] "=&r"(wb), \
        [x0] "=&r"(x0), [x1] "=&r"(x1)
#endif

/* acc[r] (channel A) and acc[4 + r] (channel B) += panel row r . weights, r = 0..3, over
 * `groups` depth groups. Two groups per iteration. */
EP_INLINE void ep_w16_dot(const int16_t *panel, const int16_t *weights, int32_t groups, int32_t *acc)
{
    int32_t a0 = acc[0], a1 = acc[1], a2 = acc[2], a3 = acc[3];
    int32_t b0 = acc[4], b1 = acc[5], b2 = acc[6], b3 = acc[7];
#if defined(__ARM_FEATURE_DSP) && !defined(EP_NO_DSP) && defined(__GNUC__)
    const int16_t *x = panel, *w = weights;
    const int16_t *end = weights + 8 * groups;
    int32_t wa, wb, x0, x1;
    if (groups & 1) {
        __asm__(EP_W16_ASM_GROUP : EP_W16_ASM_OPERANDS : : "memory");
    }
    if (groups >= 2) {
        __asm__("1:\n\t" EP_W16_ASM_GROUP EP_W16_ASM_GROUP
                "ldr %[x0], %[end]\n\t"
                "cmp %[w], %[x0]\n\t"
                "bne 1b\n\t"
                : EP_W16_ASM_OPERANDS
                : [end] "m"(end)
                : "cc", "memory");
    }
#else
    const ep_word_alias_t *x = (const ep_word_alias_t *)(const void *)panel;
    const ep_word_alias_t *w = (const ep_word_alias_t *)(const void *)weights;
    const ep_word_alias_t *end = w + 4 * (groups & ~1);
    for (; w < end; w += 8, x += 16) {
        EP_W16_GROUP(x, w);
        EP_W16_GROUP(x + 8, w + 4);
    }
    if (groups & 1) {
        EP_W16_GROUP(x, w);
    }
#endif
    acc[0] = a0;
    acc[1] = a1;
    acc[2] = a2;
    acc[3] = a3;
    acc[4] = b0;
    acc[5] = b1;
    acc[6] = b2;
    acc[7] = b3;
}

/* Requantized outputs of one channel, rows 0..rows-1, out[r * stride] (any shift and clamp). */
EP_INLINE void ep_w16_out4(const int32_t *acc, int32_t m, int32_t shift, const ep_quant_t *quant, int8_t *out,
                           int32_t stride, int32_t rows)
{
    const ep_requant_t rq = ep_requant_prepare(m, shift);
    int32_t r;
    for (r = 0; r < rows; ++r) {
        out[r * stride] =
            (int8_t)ep_clamp(ep_requant_apply(acc[r], &rq) + quant->output_zp, quant->act_min, quant->act_max);
    }
}

/* True when every channel's requantization takes ep_requant_zp_apply and the clamp is the whole
 * int8 range (checked once per call). */
EP_INLINE int ep_w16_all_fast(const ep_quant_t *quant, int32_t outs)
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

/* out[r * stride] for r = 0..3 from acc[0..3], channel requantization (m, shift) in the
 * five-instruction form. */
EP_INLINE void ep_w16_out4_fast(const int32_t *acc, int32_t m, int32_t shift, int32_t zp, int8_t *out,
                                int32_t stride)
{
    const ep_requant_zp_t rq = ep_requant_zp_prepare(m, shift, zp);
    out[0] = (int8_t)EP_SSAT8(ep_requant_zp_apply(acc[0], rq.multiplier, rq.hi_base, rq.right_m1));
    out[stride] = (int8_t)EP_SSAT8(ep_requant_zp_apply(acc[1], rq.multiplier, rq.hi_base, rq.right_m1));
    out[2 * stride] = (int8_t)EP_SSAT8(ep_requant_zp_apply(acc[2], rq.multiplier, rq.hi_base, rq.right_m1));
    out[3 * stride] = (int8_t)EP_SSAT8(ep_requant_zp_apply(acc[3], rq.multiplier, rq.hi_base, rq.right_m1));
}

/* One channel pair of a full panel, fast requantization: out[r * stride + {0, 1}], r = 0..3.
 * Not inlined: with its own register allocation the eight sums stay in registers from the dot
 * product to the requantization. */
#if defined(__GNUC__) || defined(__clang__)
__attribute__((noinline))
#endif
static void ep_w16_pair_fast(const int16_t *panel, const int16_t *weights, int32_t groups, const int32_t *bias,
                             const int32_t *mult, const int32_t *shift, int32_t zp, int8_t *out, int32_t stride)
{
    int32_t acc[8];
    acc[0] = acc[1] = acc[2] = acc[3] = bias[0];
    acc[4] = acc[5] = acc[6] = acc[7] = bias[1];
    ep_w16_dot(panel, weights, groups, acc);
    ep_w16_out4_fast(acc, mult[0], shift[0], zp, out, stride);
    ep_w16_out4_fast(acc + 4, mult[1], shift[1], zp, out + 1, stride);
}

/* All output channels of one panel: out[r * out_stride + o] for r < rows (<= 4). bias may be NULL.
 * fast: ep_w16_all_fast(quant, outs), hoisted out of the caller's panel loop. */
EP_INLINE void ep_w16_gemm(const int16_t *panel, const int16_t *weights, const int32_t *bias, int32_t depth,
                           int32_t outs, const ep_quant_t *quant, int8_t *out, int32_t out_stride, int32_t rows,
                           int fast)
{
    const int32_t dpad = EP_W16_DEPTH(depth), groups = dpad >> 2;
    const int32_t *mult = quant->multiplier, *shift = quant->shift;
    int32_t o = 0;
    if (fast && rows == EP_W16_ROWS && bias != NULL) {
        for (; o + 2 <= outs; o += 2, out += 2, weights += 2 * dpad) {
            ep_w16_pair_fast(panel, weights, groups, bias + o, mult + o, shift + o, quant->output_zp, out,
                             out_stride);
        }
    }
    for (; o < outs; o += 2, out += 2, weights += 2 * dpad) {
        const int has_b = o + 1 < outs;
        int32_t acc[8];
        const int32_t ba = bias != NULL ? bias[o] : 0;
        const int32_t bb = bias != NULL && has_b ? bias[o + 1] : 0;
        acc[0] = acc[1] = acc[2] = acc[3] = ba;
        acc[4] = acc[5] = acc[6] = acc[7] = bb;
        ep_w16_dot(panel, weights, groups, acc);
        ep_w16_out4(acc, mult[o], shift[o], quant, out, out_stride, rows);
        if (has_b) {
            ep_w16_out4(acc + 4, mult[o + 1], shift[o + 1], quant, out + 1, out_stride, rows);
        }
    }
}
#endif /* EP_DSP */

#endif /* EP_GEMM_W16_H */
