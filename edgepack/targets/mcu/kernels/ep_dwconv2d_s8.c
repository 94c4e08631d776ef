/*
 * ep_dwconv2d_s8: DEPTHWISE_CONV_2D, int8 activations, int8 weights, int32 bias
 * (TFLM DepthwiseConvPerChannel).
 *
 * Layout: input [N, H, W, C], filter [1, KH, KW, C * M] (M = depth_multiplier),
 * output [N, OH, OW, C * M]; output channel c * M + m convolves input channel c with filter m.
 * acc = bias[o] + sum((x - input_zp) * w) over in-bounds taps;
 * out = clamp(ep_requantize(acc, multiplier[o], shift[o]) + output_zp, act_min, act_max).
 * Ranges: input_zp, output_zp in [-128, 127]; bias may be NULL; weight zero point must be 0.
 * Order: channel outer, pixels inner (per-channel constants derived once).
 * Scratch: none.
 */
#include "ep_kernels.h"

int32_t ep_dwconv2d_s8_scratch_bytes(const ep_dims_t *filter_dims)
{
    (void)filter_dims;
    return 0;
}

ep_status_t ep_dwconv2d_s8(const ep_conv_params_t *conv, const ep_quant_t *quant,
                           const ep_dims_t *in_dims, const int8_t *input,
                           const ep_dims_t *filter_dims, const int8_t *filter, const int32_t *bias,
                           const ep_dims_t *out_dims, int8_t *output, void *scratch)
{
    const int32_t offset = -quant->input_zp;
    const int32_t mult = conv->depth_multiplier;
    const int32_t cin = in_dims->c, cout = out_dims->c, kh = filter_dims->h, kw = filter_dims->w;
    int32_t b, oy, ox, c, m;
    (void)scratch;
    if (conv->stride_h < 1 || conv->stride_w < 1 || conv->dilation_h < 1 || conv->dilation_w < 1 || mult < 1 ||
        quant->multiplier == NULL || quant->shift == NULL) {
        return EP_ERR_BAD_ARG;
    }
    if (cin * mult != cout || filter_dims->c != cout || in_dims->n != out_dims->n) {
        return EP_ERR_SHAPE;
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
                const int8_t *w_oc = filter + oc;
                const int32_t x_step = conv->dilation_w * cin;
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
                            const int8_t *pw = w_oc + (ky * kw + kx0) * cout;
                            for (kx = kx0; kx < kx1; ++kx, px += x_step, pw += cout) {
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
