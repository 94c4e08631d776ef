/*
 * ep_conv2d_s16: CONV_2D, int16 activations, int8 weights, int64 bias (TFLite 16x8, TFLM
 * ConvPerChannel int16 path).
 *
 * Layout: input [N, H, W, C_in], filter [C_out, KH, KW, C_in] (OHWI), output [N, OH, OW, C_out].
 * acc (int64) = bias[o] + sum((x - input_zp) * w) over in-bounds taps;
 * out = clamp(ep_requantize_int64(acc, multiplier[o], shift[o]) + output_zp, act_min, act_max).
 * Ranges: input_zp and output_zp are 0 in TFLite 16x8 models (any int16 value works); bias may be
 * NULL; weight zero point 0. Scratch: none.
 */
#include "ep_kernels.h"

int32_t ep_conv2d_s16_scratch_bytes(const ep_dims_t *filter_dims)
{
    (void)filter_dims;
    return 0;
}

ep_status_t ep_conv2d_s16(const ep_conv_params_t *conv, const ep_quant_t *quant,
                            const ep_dims_t *in_dims, const int16_t *input,
                            const ep_dims_t *filter_dims, const int8_t *filter, const int64_t *bias,
                            const ep_dims_t *out_dims, int16_t *output, void *scratch)
{
    const int32_t offset = -quant->input_zp;
    const int32_t kh = filter_dims->h, kw = filter_dims->w, cin = in_dims->c, cout = out_dims->c;
    const int32_t depth = kh * kw * cin;
    int32_t b, oy, ox, oc;
    (void)scratch;
    if (conv->stride_h < 1 || conv->stride_w < 1 || conv->dilation_h < 1 || conv->dilation_w < 1 ||
        quant->multiplier == NULL || quant->shift == NULL) {
        return EP_ERR_BAD_ARG;
    }
    if (filter_dims->c != cin || filter_dims->n != cout || in_dims->n != out_dims->n) {
        return EP_ERR_SHAPE;
    }
    for (b = 0; b < in_dims->n; ++b) {
        for (oy = 0; oy < out_dims->h; ++oy) {
            for (ox = 0; ox < out_dims->w; ++ox) {
                const int32_t y0 = oy * conv->stride_h - conv->pad_top;
                const int32_t x0 = ox * conv->stride_w - conv->pad_left;
                int16_t *out = output + (((int64_t)b * out_dims->h + oy) * out_dims->w + ox) * cout;
                for (oc = 0; oc < cout; ++oc) {
                    int64_t acc = 0;
                    int32_t ky, kx, ic;
                    for (ky = 0; ky < kh; ++ky) {
                        const int32_t iy = y0 + ky * conv->dilation_h;
                        if (iy < 0 || iy >= in_dims->h) {
                            continue;
                        }
                        for (kx = 0; kx < kw; ++kx) {
                            const int32_t ix = x0 + kx * conv->dilation_w;
                            const int16_t *px;
                            int32_t k0;
                            if (ix < 0 || ix >= in_dims->w) {
                                continue;
                            }
                            px = input + (((int64_t)b * in_dims->h + iy) * in_dims->w + ix) * cin;
                            k0 = oc * depth + (ky * kw + kx) * cin;
                            for (ic = 0; ic < cin; ++ic) {
                                acc += (int64_t)((px[ic] + offset) * filter[k0 + ic]);
                            }
                        }
                    }
                    if (bias != NULL) {
                        acc += bias[oc];
                    }
                    acc = ep_requantize_int64(acc, quant->multiplier[oc], quant->shift[oc]) + quant->output_zp;
                    out[oc] = (int16_t)(acc < quant->act_min ? quant->act_min : (acc > quant->act_max ? quant->act_max : acc));
                }
            }
        }
    }
    return EP_OK;
}
