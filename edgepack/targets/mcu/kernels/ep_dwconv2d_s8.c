/*
 * ep_dwconv2d_s8: DEPTHWISE_CONV_2D, int8 activations, int8 weights, int32 bias
 * (TFLM DepthwiseConvPerChannel).
 *
 * Layout: input [N, H, W, C], filter [1, KH, KW, C * M] (M = depth_multiplier),
 * output [N, OH, OW, C * M]; output channel c * M + m convolves input channel c with filter m.
 * acc = bias[o] + sum((x - input_zp) * w) over in-bounds taps;
 * out = clamp(ep_requantize(acc, multiplier[o], shift[o]) + output_zp, act_min, act_max).
 * Ranges: input_zp, output_zp in [-128, 127]; bias may be NULL; weight zero point must be 0;
 * pads >= 0.
 * Order: channel outer, pixels inner (per-channel constants derived once).
 *
 * DSP path for 3x3, stride 1, dilation 1, M = 1 (ep_dwconv2d_s8_scratch_bytes() > 0): per channel
 * the zero-padded input plane is widened once into int16 scratch, column-major (one column of
 * `plane_rows` halfwords per padded input column, x - input_zp inside, 0 in the padding), so two
 * vertically neighbouring inputs form one SMLAD operand. Four vertically neighbouring outputs
 * share three such words per filter column; with the column's taps w0, w1, w2 held as the pairs
 * (w0, w1), (w2, 0), (0, w0), (w1, w2) they take 8 SMLAD (36 MACs in 24 SMLAD per group).
 * The padding is written once per call: it is the same for every channel.
 * Scratch: ep_dwconv2d_s8_scratch_bytes(conv, filter_dims, out_dims) =
 *   2 * (round_up(OH, 4) + 2) * (OW + 2) bytes on the DSP path, 0 otherwise (Python twin:
 *   kernel_lib.scratch_bytes).
 *
 * ep_dwconv2d_s8_w4: the same with packed int4 weights (values in [-8, 7], two per byte in flattened
 * 1HW(C*M) order, element 2k in the low nibble: TFLite order) and the same scratch
 * (ep_dwconv2d_s8_w4_scratch_bytes). Every path is shared: a channel's KH*KW taps are unpacked once per
 * channel (into the SMLAD pairs of the 3x3 plane path, or a 64-tap local array), never the whole table.
 */
#include "ep_kernels.h"

#if EP_DSP
static int use_plane_path(const ep_conv_params_t *conv, const ep_dims_t *filter_dims)
{
    return filter_dims->h == 3 && filter_dims->w == 3 && conv->stride_h == 1 && conv->stride_w == 1 &&
           conv->dilation_h == 1 && conv->dilation_w == 1 && conv->depth_multiplier == 1;
}

/* Rows of one plane column: every row a group of four outputs reads (even, so columns stay word-aligned). */
static int32_t plane_rows(int32_t out_h)
{
    return ((out_h + 3) & ~3) + 2;
}
#endif

/* Weight `index` of the filter table: int8, or packed int4 (four_bit). */
EP_INLINE int32_t tap_at(const int8_t *filter, int32_t index, int four_bit)
{
    return four_bit ? ep_int4_at(filter, index) : filter[index];
}

int32_t ep_dwconv2d_s8_w4_scratch_bytes(const ep_conv_params_t *conv, const ep_dims_t *filter_dims,
                                        const ep_dims_t *out_dims)
{
    return ep_dwconv2d_s8_scratch_bytes(conv, filter_dims, out_dims);
}

int32_t ep_dwconv2d_s8_scratch_bytes(const ep_conv_params_t *conv, const ep_dims_t *filter_dims,
                                     const ep_dims_t *out_dims)
{
#if EP_DSP
    if (use_plane_path(conv, filter_dims)) {
        return 2 * plane_rows(out_dims->h) * (out_dims->w + 2);
    }
#endif
    (void)conv;
    (void)filter_dims;
    (void)out_dims;
    return 0;
}

#if EP_DSP
/* One filter column of a group of four outputs: plane words a = rows (0, 1), b = (2, 3), c = (4, 5)
 * of the column; wt = the column's pairs (w0, w1), (w2, 0), (0, w0), (w1, w2). */
#define EP_DW_COLUMN(col, wt)                 \
    do {                                      \
        const int32_t a_ = (col)[0], b_ = (col)[1], c_ = (col)[2]; \
        const int32_t w01_ = (wt)[0], w20_ = (wt)[1];              \
        a0 = EP_SMLAD(a_, w01_, a0);          \
        a0 = EP_SMLAD(b_, w20_, a0);          \
        a2 = EP_SMLAD(b_, w01_, a2);          \
        a2 = EP_SMLAD(c_, w20_, a2);          \
        {                                     \
            const int32_t w00_ = (wt)[2], w12_ = (wt)[3];          \
            a1 = EP_SMLAD(a_, w00_, a1);      \
            a1 = EP_SMLAD(b_, w12_, a1);      \
            a3 = EP_SMLAD(b_, w00_, a3);      \
            a3 = EP_SMLAD(c_, w12_, a3);      \
        }                                     \
    } while (0)

/* acc[0..3] = bias + the 3x3 window sums of four vertically neighbouring outputs (c0, c1, c2: the
 * group's first plane word in the window's three input columns). */
EP_INLINE void group4(const ep_word_alias_t *c0, const ep_word_alias_t *c1, const ep_word_alias_t *c2,
                      const int32_t *wt, int32_t bias, int32_t *acc)
{
    int32_t a0 = bias, a1 = bias, a2 = bias, a3 = bias;
    EP_DW_COLUMN(c0, wt);
    EP_DW_COLUMN(c1, wt + 4);
    EP_DW_COLUMN(c2, wt + 8);
    acc[0] = a0;
    acc[1] = a1;
    acc[2] = a2;
    acc[3] = a3;
}

EP_INLINE int8_t out_fast(int32_t acc, const ep_requant_zp_t *rq)
{
    return (int8_t)EP_SSAT8(ep_requant_zp_apply(acc, rq->multiplier, rq->hi_base, rq->right_m1));
}

/* All outputs of one channel from its plane when ep_requant_zp_ok() and the clamp is the whole int8 range.
 * Not inlined: it keeps its own register allocation (the group's four sums, three plane words and
 * two weight pairs fit the Cortex-M4's registers without spills). */
#if defined(__GNUC__) || defined(__clang__)
__attribute__((noinline))
#endif
static void plane_channel_fast(const int16_t *plane, int32_t rows, const int32_t *wt, int32_t bias,
                               const ep_requant_zp_t *rq_in, int32_t out_h, int32_t out_w, int32_t cout,
                               int8_t *out)
{
    const int32_t column_words = rows / 2, row_stride = out_w * cout;
    const ep_requant_zp_t rq = *rq_in;
    int32_t ox, n, i;
    for (ox = 0; ox < out_w; ++ox, out += cout) {
        const ep_word_alias_t *c0 = (const ep_word_alias_t *)(const void *)(plane + ox * rows);
        const ep_word_alias_t *c1 = c0 + column_words, *c2 = c1 + column_words;
        int8_t *o = out;
        for (n = out_h; n >= 4; n -= 4, c0 += 2, c1 += 2, c2 += 2) {
            int32_t acc[4]; /* constant indices only, so it lives in registers */
            group4(c0, c1, c2, wt, bias, acc);
            o[0] = out_fast(acc[0], &rq);
            o += row_stride;
            o[0] = out_fast(acc[1], &rq);
            o += row_stride;
            o[0] = out_fast(acc[2], &rq);
            o += row_stride;
            o[0] = out_fast(acc[3], &rq);
            o += row_stride;
        }
        if (n > 0) {
            int32_t tail[4];
            group4(c0, c1, c2, wt, bias, tail);
            for (i = 0; i < n; ++i, o += row_stride) {
                *o = out_fast(tail[i], &rq);
            }
        }
    }
}

/* The same for any shift and clamp. */
static void plane_channel(const int16_t *plane, int32_t rows, const int32_t *wt, int32_t bias,
                          const ep_requant_t *rq, const ep_quant_t *quant, int32_t out_h, int32_t out_w,
                          int32_t cout, int8_t *out)
{
    const int32_t column_words = rows / 2, row_stride = out_w * cout;
    int32_t ox, oy, i;
    for (ox = 0; ox < out_w; ++ox, out += cout) {
        const ep_word_alias_t *col = (const ep_word_alias_t *)(const void *)(plane + ox * rows);
        for (oy = 0; oy < out_h; oy += 4, col += 2) {
            int32_t acc[4];
            group4(col, col + column_words, col + 2 * column_words, wt, bias, acc);
            for (i = 0; i < 4 && oy + i < out_h; ++i) {
                const int32_t v = ep_requant_apply(acc[i], rq) + quant->output_zp;
                out[(oy + i) * row_stride] = (int8_t)ep_clamp(v, quant->act_min, quant->act_max);
            }
        }
    }
}

/* dst[y] = src[y * step] + offset for y < n: one input column of one channel into the plane. */
#if defined(__GNUC__) || defined(__clang__)
__attribute__((noinline))
#endif
static void widen_column(int16_t *dst, const int8_t *src, int32_t n, int32_t step, int32_t offset)
{
    for (; n >= 2; n -= 2, dst += 2, src += 2 * step) {
        const int32_t a = src[0], b = src[step];
        dst[0] = (int16_t)(a + offset);
        dst[1] = (int16_t)(b + offset);
    }
    if (n > 0) {
        dst[0] = (int16_t)(src[0] + offset);
    }
}

/* Inlined into each entry point, so that four_bit is a constant there (no per-tap test for int8). */
EP_INLINE void dw3x3_plane(const ep_conv_params_t *conv, const ep_quant_t *quant, const ep_dims_t *in_dims,
                        const int8_t *input, const int8_t *filter, int four_bit, const int32_t *bias,
                        const ep_dims_t *out_dims, int8_t *output, int16_t *plane)
{
    const int32_t cin = in_dims->c, rows = plane_rows(out_dims->h), cols = out_dims->w + 2;
    const int32_t in_rows = ep_min(in_dims->h, rows - conv->pad_top);
    const int32_t in_cols = ep_min(in_dims->w, cols - conv->pad_left);
    const int32_t offset = -quant->input_zp, y_step = in_dims->w * cin;
    const int full_range = quant->act_min <= -128 && quant->act_max >= 127;
    int32_t b, c, x;
    memset(plane, 0, (size_t)(2 * rows * cols));
    for (b = 0; b < in_dims->n; ++b) {
        const int8_t *image = input + (int64_t)b * in_dims->h * in_dims->w * cin;
        int8_t *out_image = output + (int64_t)b * out_dims->h * out_dims->w * cin;
        for (c = 0; c < cin; ++c) {
            int32_t wt[12];
            for (x = 0; x < in_cols; ++x) {
                widen_column(plane + (x + conv->pad_left) * rows + conv->pad_top, image + x * cin + c, in_rows,
                             y_step, offset);
            }
            for (x = 0; x < 3; ++x) {
                const int32_t w0 = tap_at(filter, x * cin + c, four_bit);
                const int32_t w1 = tap_at(filter, (3 + x) * cin + c, four_bit);
                const int32_t w2 = tap_at(filter, (6 + x) * cin + c, four_bit);
                wt[4 * x] = ep_pack_s16x2(w0, w1);
                wt[4 * x + 1] = ep_pack_s16x2(w2, 0);
                wt[4 * x + 2] = ep_pack_s16x2(0, w0);
                wt[4 * x + 3] = ep_pack_s16x2(w1, w2);
            }
            if (full_range && ep_requant_zp_ok(quant->multiplier[c], quant->shift[c])) {
                const ep_requant_zp_t rq = ep_requant_zp_prepare(quant->multiplier[c], quant->shift[c],
                                                                 quant->output_zp);
                plane_channel_fast(plane, rows, wt, bias != NULL ? bias[c] : 0, &rq, out_dims->h, out_dims->w, cin,
                                   out_image + c);
            } else {
                const ep_requant_t rq = ep_requant_prepare(quant->multiplier[c], quant->shift[c]);
                plane_channel(plane, rows, wt, bias != NULL ? bias[c] : 0, &rq, quant, out_dims->h, out_dims->w, cin,
                              out_image + c);
            }
        }
    }
}
#endif

#define EP_DW_W4_TAPS 64 /* largest KH * KW whose int4 taps are unpacked per channel into a local array */

/* int4 filters with more than EP_DW_W4_TAPS taps: every tap read from the packed table (slow, rare). */
static ep_status_t dw_w4_large(const ep_conv_params_t *conv, const ep_quant_t *quant, const ep_dims_t *in_dims,
                               const int8_t *input, const ep_dims_t *filter_dims, const int8_t *filter,
                               const int32_t *bias, const ep_dims_t *out_dims, int8_t *output)
{
    const int32_t offset = -quant->input_zp;
    const int32_t mult = conv->depth_multiplier;
    const int32_t cin = in_dims->c, cout = out_dims->c, kh = filter_dims->h, kw = filter_dims->w;
    int32_t b, oy, ox, c, m;
    for (b = 0; b < in_dims->n; ++b) {
        for (oy = 0; oy < out_dims->h; ++oy) {
            const int32_t y0 = oy * conv->stride_h - conv->pad_top;
            for (ox = 0; ox < out_dims->w; ++ox) {
                const int32_t x0 = ox * conv->stride_w - conv->pad_left;
                int8_t *out = output + (((int64_t)b * out_dims->h + oy) * out_dims->w + ox) * cout;
                for (c = 0; c < cin; ++c) {
                    for (m = 0; m < mult; ++m) {
                        const int32_t oc = c * mult + m;
                        int32_t acc = 0, ky, kx;
                        for (ky = 0; ky < kh; ++ky) {
                            const int32_t iy = y0 + ky * conv->dilation_h;
                            if (iy < 0 || iy >= in_dims->h) {
                                continue;
                            }
                            for (kx = 0; kx < kw; ++kx) {
                                const int32_t ix = x0 + kx * conv->dilation_w;
                                if (ix < 0 || ix >= in_dims->w) {
                                    continue;
                                }
                                acc += (input[(((int64_t)b * in_dims->h + iy) * in_dims->w + ix) * cin + c] + offset) *
                                       ep_int4_at(filter, (ky * kw + kx) * cout + oc);
                            }
                        }
                        if (bias != NULL) {
                            acc += bias[oc];
                        }
                        acc = ep_requantize(acc, quant->multiplier[oc], quant->shift[oc]) + quant->output_zp;
                        out[oc] = (int8_t)ep_clamp(acc, quant->act_min, quant->act_max);
                    }
                }
            }
        }
    }
    return EP_OK;
}

EP_INLINE ep_status_t dwconv(const ep_conv_params_t *conv, const ep_quant_t *quant, const ep_dims_t *in_dims,
                          const int8_t *input, const ep_dims_t *filter_dims, const int8_t *filter, int four_bit,
                          const int32_t *bias, const ep_dims_t *out_dims, int8_t *output, void *scratch)
{
    const int32_t offset = -quant->input_zp;
    const int32_t mult = conv->depth_multiplier;
    const int32_t cin = in_dims->c, cout = out_dims->c, kh = filter_dims->h, kw = filter_dims->w;
    int32_t b, oy, ox, c, m;
    if (conv->stride_h < 1 || conv->stride_w < 1 || conv->dilation_h < 1 || conv->dilation_w < 1 || mult < 1 ||
        conv->pad_top < 0 || conv->pad_left < 0 || quant->multiplier == NULL || quant->shift == NULL) {
        return EP_ERR_BAD_ARG;
    }
    if (cin * mult != cout || filter_dims->c != cout || in_dims->n != out_dims->n) {
        return EP_ERR_SHAPE;
    }
#if EP_DSP
    if (use_plane_path(conv, filter_dims)) {
        if (scratch == NULL) {
            return EP_ERR_BAD_ARG;
        }
        dw3x3_plane(conv, quant, in_dims, input, filter, four_bit, bias, out_dims, output, (int16_t *)scratch);
        return EP_OK;
    }
#endif
    (void)scratch;
    if (four_bit && kh * kw > EP_DW_W4_TAPS) {
        return dw_w4_large(conv, quant, in_dims, input, filter_dims, filter, bias, out_dims, output);
    }
    /* Channel-outer order: each channel's requantization constants, bias and zero point are derived
     * once, and every pixel clips its tap window once instead of testing every tap. */
    for (b = 0; b < in_dims->n; ++b) {
        const int8_t *image = input + (int64_t)b * in_dims->h * in_dims->w * cin;
        int8_t *out_image = output + (int64_t)b * out_dims->h * out_dims->w * cout;
        for (c = 0; c < cin; ++c) {
            for (m = 0; m < mult; ++m) {
                const int32_t oc = c * mult + m;
                const ep_requant_t rq = ep_requant_prepare(quant->multiplier[oc], quant->shift[oc]);
                const int32_t bias_oc = bias != NULL ? bias[oc] : 0;
                const int32_t x_step = conv->dilation_w * cin;
                const int8_t *w_oc = filter + oc;
                int32_t w_step = cout; /* between taps of this channel */
                int8_t taps[EP_DW_W4_TAPS];
                if (four_bit) {
                    int32_t t;
                    for (t = 0; t < kh * kw; ++t) {
                        taps[t] = (int8_t)ep_int4_at(filter, t * cout + oc);
                    }
                    w_oc = taps;
                    w_step = 1;
                }
                int8_t *out = out_image + oc;
                for (oy = 0; oy < out_dims->h; ++oy) {
                    const int32_t y0 = oy * conv->stride_h - conv->pad_top;
                    const int32_t ky0 = y0 >= 0 ? 0 : (-y0 + conv->dilation_h - 1) / conv->dilation_h;
                    const int32_t ky1 = ep_min(kh, (in_dims->h - y0 + conv->dilation_h - 1) / conv->dilation_h);
                    for (ox = 0; ox < out_dims->w; ++ox, out += cout) {
                        const int32_t x0 = ox * conv->stride_w - conv->pad_left;
                        const int32_t kx0 = x0 >= 0 ? 0 : (-x0 + conv->dilation_w - 1) / conv->dilation_w;
                        const int32_t kx1 = ep_min(kw, (in_dims->w - x0 + conv->dilation_w - 1) / conv->dilation_w);
                        int32_t acc = bias_oc, ky, kx;
                        for (ky = ky0; ky < ky1; ++ky) {
                            const int8_t *px = image + ((y0 + ky * conv->dilation_h) * in_dims->w + x0 + kx0 * conv->dilation_w) * cin + c;
                            const int8_t *pw = w_oc + (ky * kw + kx0) * w_step;
                            for (kx = kx0; kx < kx1; ++kx, px += x_step, pw += w_step) {
                                acc += (*px + offset) * *pw;
                            }
                        }
                        acc = ep_requant_apply(acc, &rq) + quant->output_zp;
                        *out = (int8_t)ep_clamp(acc, quant->act_min, quant->act_max);
                    }
                }
            }
        }
    }
    return EP_OK;
}

ep_status_t ep_dwconv2d_s8(const ep_conv_params_t *conv, const ep_quant_t *quant,
                           const ep_dims_t *in_dims, const int8_t *input,
                           const ep_dims_t *filter_dims, const int8_t *filter, const int32_t *bias,
                           const ep_dims_t *out_dims, int8_t *output, void *scratch)
{
    return dwconv(conv, quant, in_dims, input, filter_dims, filter, 0, bias, out_dims, output, scratch);
}

ep_status_t ep_dwconv2d_s8_w4(const ep_conv_params_t *conv, const ep_quant_t *quant,
                              const ep_dims_t *in_dims, const int8_t *input,
                              const ep_dims_t *filter_dims, const int8_t *filter, const int32_t *bias,
                              const ep_dims_t *out_dims, int8_t *output, void *scratch)
{
    return dwconv(conv, quant, in_dims, input, filter_dims, filter, 1, bias, out_dims, output, scratch);
}
