/*
 * ep_conv2d_s8_w16 and ep_conv2d_1x1_s8_w16: CONV_2D with int8 activations and int8 weights that
 * were pre-widened to int16 and packed at pack time (ep_gemm_w16.h: channel pairs, depth groups
 * of 4, zero-padded). The code generator picks these on Cortex-M cores with the DSP extension:
 * the weight table doubles in flash, and the inner loop loses its sign extensions (32 MACs in
 * 6 LDRD + 16 SMLAD, 4 output pixels x 2 output channels per pass).
 *
 * ep_conv2d_s8_w16: arguments and arithmetic as ep_conv2d_s8 (input offset added in the im2col,
 * padding contributes nothing, bias may be NULL), except `filter`: the packed int16 table of the
 * [C_out, KH * KW * C_in] (OHWI) weights. filter_dims stays {C_out, KH, KW, C_in}.
 * ep_conv2d_1x1_s8_w16: arguments and arithmetic as ep_conv2d_1x1_s8 (input offset folded into
 * the required bias, quant->input_zp not read), `filter` the packed table of [outs, depth].
 * Both compute out = clamp(ep_requantize(acc, multiplier[o], shift[o]) + output_zp, act_min, act_max).
 * Portable builds (no DSP) run plain loops over the same packed table.
 * Scratch (DSP builds): one panel, 8 * round_up(KH * KW * C_in, 4) bytes; 0 otherwise
 * (ep_conv2d_s8_w16_scratch_bytes / ep_conv2d_1x1_s8_w16_scratch_bytes; Python twin kernel_lib.scratch_bytes).
 */
#include "ep_gemm_w16.h"

int32_t ep_conv2d_s8_w16_scratch_bytes(const ep_dims_t *filter_dims)
{
#if EP_DSP
    return 2 * EP_W16_ROWS * EP_W16_DEPTH(filter_dims->h * filter_dims->w * filter_dims->c);
#else
    (void)filter_dims;
    return 0;
#endif
}

int32_t ep_conv2d_1x1_s8_w16_scratch_bytes(const ep_dims_t *filter_dims)
{
    return ep_conv2d_s8_w16_scratch_bytes(filter_dims);
}

#if !EP_DSP
/* Portable paths: weight (o, k) of the packed table. */
static int32_t w16_at(const int16_t *filter, int32_t o, int32_t k, int32_t dpad)
{
    return filter[ep_w16_weight_index(o, k, dpad)];
}
#endif

ep_status_t ep_conv2d_1x1_s8_w16(const ep_quant_t *quant, const ep_dims_t *in_dims, const int8_t *input,
                                 const ep_dims_t *filter_dims, const int16_t *filter, const int32_t *bias,
                                 const ep_dims_t *out_dims, int8_t *output, void *scratch)
{
    const int32_t rows = in_dims->n, depth = in_dims->c, outs = out_dims->c;
    int32_t r;
#if EP_DSP
    int fast;
#endif
    if (bias == NULL || quant->multiplier == NULL || quant->shift == NULL) {
        return EP_ERR_BAD_ARG;
    }
    if (filter_dims->h * filter_dims->w * filter_dims->c != depth || filter_dims->n != outs || out_dims->n != rows) {
        return EP_ERR_SHAPE;
    }
#if EP_DSP
    if (scratch == NULL) {
        return EP_ERR_BAD_ARG;
    }
    fast = ep_w16_all_fast(quant, outs);
    for (r = 0; r < rows; r += EP_W16_ROWS) {
        int16_t *panel = (int16_t *)scratch;
        const int32_t count = rows - r < EP_W16_ROWS ? rows - r : EP_W16_ROWS;
        int32_t i;
        for (i = 0; i < EP_W16_ROWS; ++i) {
            if (i < count) {
                ep_w16_panel_put_s8(panel, i, input + (int64_t)(r + i) * depth, depth);
            } else {
                ep_w16_panel_zero(panel, i, 0, EP_W16_DEPTH(depth));
            }
        }
        ep_w16_gemm(panel, filter, bias, depth, outs, quant, output + (int64_t)r * outs, outs, count, fast);
    }
#else
    (void)scratch;
    for (r = 0; r < rows; ++r) {
        const int8_t *x = input + (int64_t)r * depth;
        int32_t o;
        for (o = 0; o < outs; ++o) {
            int32_t acc = bias[o], k;
            for (k = 0; k < depth; ++k) {
                acc += x[k] * w16_at(filter, o, k, EP_W16_DEPTH(depth));
            }
            acc = ep_requantize(acc, quant->multiplier[o], quant->shift[o]) + quant->output_zp;
            output[(int64_t)r * outs + o] = (int8_t)ep_clamp(acc, quant->act_min, quant->act_max);
        }
    }
#endif
    return EP_OK;
}

#if EP_DSP
#define EP_W16_RUN_MAX 64 /* longest filter row (KW * C_in) widened through the local copy */

/* Row `row` of a panel: one output pixel's receptive field (x - input_zp, 0 for padding).
 * Fast form (dilation_w 1, KW * C_in a multiple of 4, at most EP_W16_RUN_MAX): each filter row is
 * one run of KW * C_in depth positions starting at a multiple of 4, widened four values per word;
 * a run that crosses the left or right edge is first copied with input_zp in the padding (which
 * widens to 0). Other shapes go value by value. */
static void im2col_row(const ep_conv_params_t *conv, const ep_dims_t *in_dims, const int8_t *image, int32_t in_y0,
                       int32_t in_x0, int32_t kh, int32_t kw, int32_t offset, int32_t depth, int16_t *panel,
                       int32_t row)
{
    const int32_t cin = in_dims->c, run = kw * cin, width = in_dims->w;
    int32_t ky, kx, ic, k = 0;
    if (conv->dilation_w == 1 && (run & 3) == 0 && run <= EP_W16_RUN_MAX) {
        const int32_t offset2 = ep_pack_s16x2(offset, offset);
        const int32_t lo = in_x0 < 0 ? -in_x0 * cin : 0;                               /* first valid byte */
        const int32_t hi = in_x0 + kw > width ? (width - in_x0) * cin : run;           /* past the last */
        const int edge = lo > 0 || hi < run;
        int8_t copy[EP_W16_RUN_MAX];
        ep_word_alias_t *dst = (ep_word_alias_t *)(void *)panel + row;
        int32_t i;
        if (edge) {
            memset(copy, (int)(int8_t)(-offset), (size_t)run);
        }
        for (ky = 0; ky < kh; ++ky) {
            const int32_t iy = in_y0 + ky * conv->dilation_h;
            if (iy < 0 || iy >= in_dims->h) {
                for (i = 0; i < run; i += 4, dst += 8) {
                    dst[0] = 0;
                    dst[4] = 0;
                }
                continue;
            } else {
                const int8_t *src = image + ((int64_t)iy * width + in_x0) * cin;
                if (edge) {
                    for (i = lo; i < hi; ++i) {
                        copy[i] = image[((int64_t)iy * width + in_x0) * cin + i];
                    }
                    src = copy;
                }
                for (i = 0; i < run; i += 4, dst += 8) {
                    const int32_t xv = ep_read_s8x4(src + i);
                    dst[0] = EP_SADD16(EP_SXTB16(xv), offset2);
                    dst[4] = EP_SADD16(EP_SXTB16_ROR8(xv), offset2);
                }
            }
        }
        return; /* kh * run is a multiple of 4: no depth padding */
    }
    for (ky = 0; ky < kh; ++ky) {
        const int32_t iy = in_y0 + ky * conv->dilation_h;
        for (kx = 0; kx < kw; ++kx, k += cin) {
            const int32_t ix = in_x0 + kx * conv->dilation_w;
            if (iy < 0 || iy >= in_dims->h || ix < 0 || ix >= width) {
                ep_w16_panel_zero(panel, row, k, k + cin);
            } else {
                const int8_t *px = image + ((int64_t)iy * width + ix) * cin;
                for (ic = 0; ic < cin; ++ic) {
                    panel[ep_w16_panel_index(row, k + ic)] = (int16_t)(px[ic] + offset);
                }
            }
        }
    }
    ep_w16_panel_zero(panel, row, depth, EP_W16_DEPTH(depth));
}
#endif

ep_status_t ep_conv2d_s8_w16(const ep_conv_params_t *conv, const ep_quant_t *quant,
                             const ep_dims_t *in_dims, const int8_t *input,
                             const ep_dims_t *filter_dims, const int16_t *filter, const int32_t *bias,
                             const ep_dims_t *out_dims, int8_t *output, void *scratch)
{
    const int32_t offset = -quant->input_zp;
    const int32_t kh = filter_dims->h, kw = filter_dims->w, cin = in_dims->c, cout = out_dims->c;
    const int32_t depth = kh * kw * cin;
    int32_t b;
    if (conv->stride_h < 1 || conv->stride_w < 1 || conv->dilation_h < 1 || conv->dilation_w < 1 ||
        conv->pad_top < 0 || conv->pad_left < 0 || quant->multiplier == NULL || quant->shift == NULL) {
        return EP_ERR_BAD_ARG;
    }
    if (filter_dims->c != in_dims->c || filter_dims->n != out_dims->c || in_dims->n != out_dims->n) {
        return EP_ERR_SHAPE;
    }
#if EP_DSP
    {
        int16_t *panel = (int16_t *)scratch;
        const int32_t pixels = out_dims->h * out_dims->w;
        const int fast = ep_w16_all_fast(quant, cout);
        if (scratch == NULL) {
            return EP_ERR_BAD_ARG;
        }
        for (b = 0; b < in_dims->n; ++b) {
            const int8_t *image = input + (int64_t)b * in_dims->h * in_dims->w * cin;
            int32_t p, oy = 0, ox = 0;
            for (p = 0; p < pixels; p += EP_W16_ROWS) {
                const int32_t count = pixels - p < EP_W16_ROWS ? pixels - p : EP_W16_ROWS;
                int32_t i;
                for (i = 0; i < EP_W16_ROWS; ++i) {
                    if (i < count) {
                        im2col_row(conv, in_dims, image, oy * conv->stride_h - conv->pad_top,
                                   ox * conv->stride_w - conv->pad_left, kh, kw, offset, depth, panel, i);
                        if (++ox == out_dims->w) {
                            ox = 0;
                            ++oy;
                        }
                    } else {
                        ep_w16_panel_zero(panel, i, 0, EP_W16_DEPTH(depth));
                    }
                }
                ep_w16_gemm(panel, filter, bias, depth, cout, quant, output + ((int64_t)b * pixels + p) * cout, cout,
                            count, fast);
            }
        }
        return EP_OK;
    }
#else
    {
        const int32_t dpad = EP_W16_DEPTH(depth);
        int32_t oy, ox, oc;
        (void)scratch;
        for (b = 0; b < in_dims->n; ++b) {
            for (oy = 0; oy < out_dims->h; ++oy) {
                for (ox = 0; ox < out_dims->w; ++ox) {
                    const int32_t y0 = oy * conv->stride_h - conv->pad_top;
                    const int32_t x0 = ox * conv->stride_w - conv->pad_left;
                    int8_t *out = output + (((int64_t)b * out_dims->h + oy) * out_dims->w + ox) * cout;
                    for (oc = 0; oc < cout; ++oc) {
                        int32_t acc = 0, ky, kx, ic;
                        for (ky = 0; ky < kh; ++ky) {
                            const int32_t iy = y0 + ky * conv->dilation_h;
                            if (iy < 0 || iy >= in_dims->h) {
                                continue;
                            }
                            for (kx = 0; kx < kw; ++kx) {
                                const int32_t ix = x0 + kx * conv->dilation_w;
                                const int8_t *px;
                                if (ix < 0 || ix >= in_dims->w) {
                                    continue;
                                }
                                px = input + (((int64_t)b * in_dims->h + iy) * in_dims->w + ix) * cin;
                                for (ic = 0; ic < cin; ++ic) {
                                    acc += (px[ic] + offset) * w16_at(filter, oc, (ky * kw + kx) * cin + ic, dpad);
                                }
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
        return EP_OK;
    }
#endif
}
