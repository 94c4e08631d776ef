/*
 * ep_conv2d_s8_w4: CONV_2D, int8 activations, packed int4 weights, int32 bias (TFLM int4 ConvPerChannel).
 *
 * Layout: input [N, H, W, C_in], filter [C_out, KH, KW, C_in] (OHWI), output [N, OH, OW, C_out].
 * Same contract as the int8-weight kernel (ep_conv2d_s8.c) except the weights: int4 values in [-8, 7]
 * packed two per byte in flattened OHWI order, element 2k in the low nibble (TFLite order).
 * acc = bias[o] + sum((x - input_zp) * w) over in-bounds taps;
 * out = clamp(ep_requantize(acc, multiplier[o], shift[o]) + output_zp, act_min, act_max).
 * Ranges: zero points in [-128, 127]; bias may be NULL. Scratch: none.
 */
#include "ep_kernels.h"

int32_t ep_conv2d_s8_w4_scratch_bytes(const ep_dims_t *filter_dims)
{
    (void)filter_dims;
    return 0;
}

ep_status_t ep_conv2d_s8_w4(const ep_conv_params_t *conv, const ep_quant_t *quant,
                            const ep_dims_t *in_dims, const int8_t *input,
                            const ep_dims_t *filter_dims, const int8_t *filter, const int32_t *bias,
                            const ep_dims_t *out_dims, int8_t *output, void *scratch)
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
                            int32_t k0;
                            if (ix < 0 || ix >= in_dims->w) {
                                continue;
                            }
                            px = input + (((int64_t)b * in_dims->h + iy) * in_dims->w + ix) * cin;
                            k0 = oc * depth + (ky * kw + kx) * cin;
                            for (ic = 0; ic < cin; ++ic) {
                                acc += (px[ic] + offset) * ep_int4_at(filter, k0 + ic);
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
