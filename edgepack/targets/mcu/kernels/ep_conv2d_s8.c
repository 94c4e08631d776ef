/*
 * ep_conv2d_s8: CONV_2D, int8 activations, int8 weights, int32 bias (TFLM ConvPerChannel).
 *
 * Layout: input [N, H, W, C_in], filter [C_out, KH, KW, C_in] (OHWI), output [N, OH, OW, C_out].
 * acc = bias[o] + sum((x + (-input_zp)) * w) over in-bounds taps (padding contributes nothing);
 * out = clamp(ep_requantize(acc, multiplier[o], shift[o]) + output_zp, act_min, act_max).
 * Ranges: input_zp, output_zp in [-128, 127]; bias may be NULL; weight zero point must be 0.
 * Scratch: ep_conv2d_s8_scratch_bytes() bytes: on DSP builds one int16 panel (ep_gemm_s8.h), the
 * im2col of four output pixels with the input offset added, 8 * round_up(KH*KW*C_in, 4) bytes;
 * 0 for the portable path.
 */
#include "ep_gemm_s8.h"

int32_t ep_conv2d_s8_scratch_bytes(const ep_dims_t *filter_dims)
{
#if EP_DSP
    return 2 * EP_PANEL_ROWS * EP_PANEL_DEPTH(filter_dims->h * filter_dims->w * filter_dims->c);
#else
    (void)filter_dims;
    return 0;
#endif
}

static ep_status_t check(const ep_conv_params_t *conv, const ep_quant_t *quant, const ep_dims_t *in_dims,
                         const ep_dims_t *filter_dims, const ep_dims_t *out_dims)
{
    if (conv->stride_h < 1 || conv->stride_w < 1 || conv->dilation_h < 1 || conv->dilation_w < 1 ||
        conv->pad_top < 0 || conv->pad_left < 0 || quant->multiplier == NULL || quant->shift == NULL) {
        return EP_ERR_BAD_ARG;
    }
    if (filter_dims->c != in_dims->c || filter_dims->n != out_dims->c || in_dims->n != out_dims->n) {
        return EP_ERR_SHAPE;
    }
    return EP_OK;
}

#if EP_DSP
/* Row `row` of a panel: one output pixel's receptive field as int16 (x - input_zp, 0 for padding). */
static void im2col_row(const ep_conv_params_t *conv, const ep_dims_t *in_dims, const int8_t *image, int32_t in_y0,
                       int32_t in_x0, int32_t kh, int32_t kw, int32_t offset, int32_t depth, int16_t *panel,
                       int32_t row)
{
    const int32_t cin = in_dims->c;
    int32_t ky, kx, ic, k = 0;
    for (ky = 0; ky < kh; ++ky) {
        const int32_t iy = in_y0 + ky * conv->dilation_h;
        for (kx = 0; kx < kw; ++kx, k += cin) {
            const int32_t ix = in_x0 + kx * conv->dilation_w;
            const int8_t *px = image + ((int64_t)iy * in_dims->w + ix) * cin;
            if (iy < 0 || iy >= in_dims->h || ix < 0 || ix >= in_dims->w) {
                for (ic = 0; ic < cin; ++ic) {
                    panel[ep_panel_index(row, k + ic)] = 0;
                }
            } else {
                for (ic = 0; ic < cin; ++ic) {
                    panel[ep_panel_index(row, k + ic)] = (int16_t)(px[ic] + offset);
                }
            }
        }
    }
    for (; k < EP_PANEL_DEPTH(depth); ++k) {
        panel[ep_panel_index(row, k)] = 0;
    }
}
#endif

ep_status_t ep_conv2d_s8(const ep_conv_params_t *conv, const ep_quant_t *quant,
                         const ep_dims_t *in_dims, const int8_t *input,
                         const ep_dims_t *filter_dims, const int8_t *filter, const int32_t *bias,
                         const ep_dims_t *out_dims, int8_t *output, void *scratch)
{
    const int32_t offset = -quant->input_zp;
    const int32_t kh = filter_dims->h, kw = filter_dims->w, cin = in_dims->c, cout = out_dims->c;
    const int32_t depth = kh * kw * cin;
    int32_t b;
    ep_status_t status = check(conv, quant, in_dims, filter_dims, out_dims);
    if (status != EP_OK) {
        return status;
    }
#if EP_DSP
    {
        int16_t *panel = (int16_t *)scratch;
        const int32_t pixels = out_dims->h * out_dims->w;
        if (scratch == NULL) {
            return EP_ERR_BAD_ARG;
        }
        for (b = 0; b < in_dims->n; ++b) {
            const int8_t *image = input + (int64_t)b * in_dims->h * in_dims->w * cin;
            int32_t p;
            for (p = 0; p < pixels; p += EP_PANEL_ROWS) {
                const int32_t count = pixels - p < EP_PANEL_ROWS ? pixels - p : EP_PANEL_ROWS;
                int32_t i;
                for (i = 0; i < EP_PANEL_ROWS; ++i) {
                    if (i < count) {
                        const int32_t q = p + i;
                        im2col_row(conv, in_dims, image, (q / out_dims->w) * conv->stride_h - conv->pad_top,
                                   (q % out_dims->w) * conv->stride_w - conv->pad_left, kh, kw, offset, depth, panel,
                                   i);
                    } else {
                        ep_panel_zero(panel, i, depth);
                    }
                }
                ep_panel_gemm(panel, filter, bias, depth, cout, quant, output + ((int64_t)b * pixels + p) * cout, cout,
                              count);
            }
        }
        return EP_OK;
    }
#else
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
                    const int8_t *w = filter + (int64_t)oc * depth;
                    for (ky = 0; ky < kh; ++ky) {
                        const int32_t iy = y0 + ky * conv->dilation_h;
                        if (iy < 0 || iy >= in_dims->h) {
                            continue;
                        }
                        for (kx = 0; kx < kw; ++kx) {
                            const int32_t ix = x0 + kx * conv->dilation_w;
                            const int8_t *px;
                            const int8_t *wk;
                            if (ix < 0 || ix >= in_dims->w) {
                                continue;
                            }
                            px = input + (((int64_t)b * in_dims->h + iy) * in_dims->w + ix) * cin;
                            wk = w + (ky * kw + kx) * cin;
                            for (ic = 0; ic < cin; ++ic) {
                                acc += (px[ic] + offset) * wk[ic];
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
#endif
}
