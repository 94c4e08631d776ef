/*
 * ep_conv2d_s8_w4 and ep_conv2d_1x1_s8_w4: CONV_2D, int8 activations, packed int4 weights, int32 bias
 * (TFLM int4 ConvPerChannel).
 *
 * Weights: int4 values in [-8, 7], packed two per byte per output channel row (ep_gemm_w4.h: element
 * 2k of a row in the low nibble, each row of KH*KW*C_in values starting on a byte boundary, a zero
 * nibble padding odd rows; for an even row length this is TFLite's flat packing).
 * ep_conv2d_s8_w4: layout and arithmetic as ep_conv2d_s8: input [N, H, W, C_in], filter
 *   [C_out, KH, KW, C_in] (OHWI), output [N, OH, OW, C_out];
 *   acc = bias[o] + sum((x - input_zp) * w) over in-bounds taps (bias may be NULL);
 *   out = clamp(ep_requantize(acc, multiplier[o], shift[o]) + output_zp, act_min, act_max).
 * ep_conv2d_1x1_s8_w4: a 1x1 stride-1 unpadded CONV_2D as a matrix product, arguments as
 *   ep_conv2d_1x1_s8 (input [rows, depth], input offset folded into the required bias, quant->input_zp
 *   not read), filter the packed [outs, depth] rows.
 * DSP path (depth <= EP_W4_DSP_MAX_DEPTH): four output pixels at a time are widened into an int16
 * panel (ep_conv2d_s8_w4: each pixel's receptive field is first gathered as int8 with input_zp in the
 * padding, then widened with the input offset added), and every channel's packed weights are
 * unpacked in registers against all four (ep_gemm_w4.h).
 * Scratch (DSP builds, 0 otherwise; D = round_up(KH * KW * C_in, 8)): ep_conv2d_s8_w4 one panel plus
 * one gathered row, 9 * D bytes; ep_conv2d_1x1_s8_w4 one panel, 8 * D bytes (*_scratch_bytes; Python
 * twin kernel_lib.scratch_bytes).
 */
#include "ep_gemm_w4.h"

int32_t ep_conv2d_s8_w4_scratch_bytes(const ep_dims_t *filter_dims)
{
#if EP_DSP
    return (2 * EP_W4_ROWS + 1) * EP_W4_DEPTH(filter_dims->h * filter_dims->w * filter_dims->c);
#else
    (void)filter_dims;
    return 0;
#endif
}

int32_t ep_conv2d_1x1_s8_w4_scratch_bytes(const ep_dims_t *filter_dims)
{
#if EP_DSP
    return 2 * EP_W4_ROWS * EP_W4_DEPTH(filter_dims->h * filter_dims->w * filter_dims->c);
#else
    (void)filter_dims;
    return 0;
#endif
}

#if EP_DSP
/* One output pixel's receptive field as int8 in depth order (KH, KW, C_in), input_zp in the padding
 * (which the panel's offset then widens to 0). */
static void gather_row(const ep_conv_params_t *conv, const ep_dims_t *in_dims, const int8_t *image, int32_t in_y0,
                       int32_t in_x0, int32_t kh, int32_t kw, int32_t zp, int8_t *dst)
{
    const int32_t cin = in_dims->c, width = in_dims->w, run = kw * cin;
    int32_t ky, kx;
    for (ky = 0; ky < kh; ++ky, dst += run) {
        const int32_t iy = in_y0 + ky * conv->dilation_h;
        const int8_t *line = image + (int64_t)iy * width * cin;
        if (iy < 0 || iy >= in_dims->h) {
            memset(dst, zp, (size_t)run);
        } else if (conv->dilation_w == 1) {
            const int32_t kx0 = ep_min(kw, ep_max(0, -in_x0)), kx1 = ep_max(kx0, ep_min(kw, width - in_x0));
            memset(dst, zp, (size_t)(kx0 * cin));
            memcpy(dst + kx0 * cin, line + (int64_t)(in_x0 + kx0) * cin, (size_t)((kx1 - kx0) * cin));
            memset(dst + kx1 * cin, zp, (size_t)((kw - kx1) * cin));
        } else {
            for (kx = 0; kx < kw; ++kx) {
                const int32_t ix = in_x0 + kx * conv->dilation_w;
                if (ix < 0 || ix >= width) {
                    memset(dst + kx * cin, zp, (size_t)cin);
                } else {
                    memcpy(dst + kx * cin, line + (int64_t)ix * cin, (size_t)cin);
                }
            }
        }
    }
}
#endif

ep_status_t ep_conv2d_s8_w4(const ep_conv_params_t *conv, const ep_quant_t *quant,
                            const ep_dims_t *in_dims, const int8_t *input,
                            const ep_dims_t *filter_dims, const int8_t *filter, const int32_t *bias,
                            const ep_dims_t *out_dims, int8_t *output, void *scratch)
{
    const int32_t offset = -quant->input_zp;
    const int32_t kh = filter_dims->h, kw = filter_dims->w, cin = in_dims->c, cout = out_dims->c;
    const int32_t depth = kh * kw * cin, row_bytes = EP_W4_ROW_BYTES(depth);
    int32_t b, oy, ox, oc;
    if (conv->stride_h < 1 || conv->stride_w < 1 || conv->dilation_h < 1 || conv->dilation_w < 1 ||
        quant->multiplier == NULL || quant->shift == NULL) {
        return EP_ERR_BAD_ARG;
    }
    if (filter_dims->c != cin || filter_dims->n != cout || in_dims->n != out_dims->n) {
        return EP_ERR_SHAPE;
    }
#if EP_DSP
    if (depth <= EP_W4_DSP_MAX_DEPTH) {
        int16_t *panel = (int16_t *)scratch;
        int8_t *gathered = (int8_t *)scratch + 2 * EP_W4_ROWS * EP_W4_DEPTH(depth);
        const int32_t pixels = out_dims->h * out_dims->w;
        const int fast = ep_w4_all_fast(quant, cout);
        if (scratch == NULL) {
            return EP_ERR_BAD_ARG;
        }
        for (b = 0; b < in_dims->n; ++b) {
            const int8_t *image = input + (int64_t)b * in_dims->h * in_dims->w * cin;
            int32_t p;
            oy = ox = 0;
            for (p = 0; p < pixels; p += EP_W4_ROWS) {
                const int32_t count = pixels - p < EP_W4_ROWS ? pixels - p : EP_W4_ROWS;
                int32_t i;
                for (i = 0; i < EP_W4_ROWS; ++i) {
                    if (i < count) {
                        gather_row(conv, in_dims, image, oy * conv->stride_h - conv->pad_top,
                                   ox * conv->stride_w - conv->pad_left, kh, kw, quant->input_zp, gathered);
                        ep_w4_panel_put(panel, EP_W4_ROWS, i, gathered, depth, offset);
                        if (++ox == out_dims->w) {
                            ox = 0;
                            ++oy;
                        }
                    } else {
                        ep_w4_panel_zero(panel, EP_W4_ROWS, i, 0, depth);
                    }
                }
                ep_w4_gemm(panel, filter, bias, depth, cout, quant, output + ((int64_t)b * pixels + p) * cout, cout,
                           count, fast);
            }
        }
        return EP_OK;
    }
#endif
    (void)scratch;
    for (b = 0; b < in_dims->n; ++b) {
        for (oy = 0; oy < out_dims->h; ++oy) {
            for (ox = 0; ox < out_dims->w; ++ox) {
                const int32_t y0 = oy * conv->stride_h - conv->pad_top;
                const int32_t x0 = ox * conv->stride_w - conv->pad_left;
                int8_t *out = output + (((int64_t)b * out_dims->h + oy) * out_dims->w + ox) * cout;
                for (oc = 0; oc < cout; ++oc) {
                    const int8_t *w = filter + (int64_t)oc * row_bytes;
                    int32_t acc = 0, ky, kx, ic;
                    for (ky = 0; ky < kh; ++ky) {
                        const int32_t iy = y0 + ky * conv->dilation_h;
                        if (iy < 0 || iy >= in_dims->h) {
                            continue;
                        }
                        for (kx = 0; kx < kw; ++kx) {
                            const int32_t ix = x0 + kx * conv->dilation_w;
                            const int8_t *px;
                            int32_t k0;
                            if (ix < 0 || ix >= in_dims->w) {
                                continue;
                            }
                            px = input + (((int64_t)b * in_dims->h + iy) * in_dims->w + ix) * cin;
                            k0 = (ky * kw + kx) * cin;
                            for (ic = 0; ic < cin; ++ic) {
                                acc += (px[ic] + offset) * ep_int4_at(w, k0 + ic);
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

ep_status_t ep_conv2d_1x1_s8_w4(const ep_quant_t *quant, const ep_dims_t *in_dims, const int8_t *input,
                                const ep_dims_t *filter_dims, const int8_t *filter, const int32_t *bias,
                                const ep_dims_t *out_dims, int8_t *output, void *scratch)
{
    const int32_t rows = in_dims->n, depth = in_dims->c, outs = out_dims->c, row_bytes = EP_W4_ROW_BYTES(depth);
    int32_t r;
    if (bias == NULL || quant->multiplier == NULL || quant->shift == NULL) {
        return EP_ERR_BAD_ARG;
    }
    if (filter_dims->h * filter_dims->w * filter_dims->c != depth || filter_dims->n != outs || out_dims->n != rows) {
        return EP_ERR_SHAPE;
    }
#if EP_DSP
    if (depth <= EP_W4_DSP_MAX_DEPTH) {
        int16_t *panel = (int16_t *)scratch;
        const int fast = ep_w4_all_fast(quant, outs);
        if (scratch == NULL) {
            return EP_ERR_BAD_ARG;
        }
        for (r = 0; r < rows; r += EP_W4_ROWS) {
            const int32_t count = rows - r < EP_W4_ROWS ? rows - r : EP_W4_ROWS;
            int32_t i;
            for (i = 0; i < EP_W4_ROWS; ++i) {
                if (i < count) {
                    ep_w4_panel_put(panel, EP_W4_ROWS, i, input + (int64_t)(r + i) * depth, depth, 0);
                } else {
                    ep_w4_panel_zero(panel, EP_W4_ROWS, i, 0, depth);
                }
            }
            ep_w4_gemm(panel, filter, bias, depth, outs, quant, output + (int64_t)r * outs, outs, count, fast);
        }
        return EP_OK;
    }
#endif
    (void)scratch;
    for (r = 0; r < rows; ++r) {
        const int8_t *x = input + (int64_t)r * depth;
        int32_t o, k;
        for (o = 0; o < outs; ++o) {
            const int8_t *w = filter + (int64_t)o * row_bytes;
            int32_t acc = bias[o];
            for (k = 0; k < depth; ++k) {
                acc += x[k] * ep_int4_at(w, k);
            }
            acc = ep_requantize(acc, quant->multiplier[o], quant->shift[o]) + quant->output_zp;
            output[(int64_t)r * outs + o] = (int8_t)ep_clamp(acc, quant->act_min, quant->act_max);
        }
    }
    return EP_OK;
}
