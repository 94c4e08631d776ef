/*
 * ep_conv2d_s8: CONV_2D, int8 activations, int8 weights, int32 bias (TFLM ConvPerChannel).
 *
 * Layout: input [N, H, W, C_in], filter [C_out, KH, KW, C_in] (OHWI), output [N, OH, OW, C_out].
 * acc = bias[o] + sum((x + (-input_zp)) * w) over in-bounds taps (padding contributes nothing);
 * out = clamp(ep_requantize(acc, multiplier[o], shift[o]) + output_zp, act_min, act_max).
 * Ranges: input_zp, output_zp in [-128, 127]; bias may be NULL; weight zero point must be 0.
 * Scratch: ep_conv2d_s8_scratch_bytes() bytes (the DSP path's im2col of two output pixels as
 * int16, with the input offset already added; 0 for the portable path).
 */
#include "ep_kernels.h"

int32_t ep_conv2d_s8_scratch_bytes(const ep_dims_t *filter_dims)
{
#if EP_DSP
    return 2 * 2 * ((filter_dims->h * filter_dims->w * filter_dims->c + 3) & ~3);
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
/* One output pixel's receptive field as int16 (x - input_zp, 0 for padding), in [x0, x2, x1, x3]
 * order per group of four so that 32-bit loads pair with EP_SXTB16 / EP_SXTB16_ROR8 of the weights. */
static void im2col_q15(const ep_conv_params_t *conv, const ep_dims_t *in_dims, const int8_t *image,
                       int32_t in_y0, int32_t in_x0, int32_t kh, int32_t kw, int32_t offset, int32_t padded,
                       int16_t *col)
{
    int32_t ky, kx, ic, k = 0;
    for (ky = 0; ky < kh; ++ky) {
        int32_t iy = in_y0 + ky * conv->dilation_h;
        for (kx = 0; kx < kw; ++kx) {
            int32_t ix = in_x0 + kx * conv->dilation_w;
            int32_t inside = iy >= 0 && iy < in_dims->h && ix >= 0 && ix < in_dims->w;
            const int8_t *px = image + ((int64_t)iy * in_dims->w + ix) * in_dims->c;
            for (ic = 0; ic < in_dims->c; ++ic, ++k) {
                /* position k of group g = k & ~3 goes to slot {0, 2, 1, 3}[k & 3] */
                static const int8_t slot[4] = {0, 2, 1, 3};
                col[(k & ~3) + slot[k & 3]] = (int16_t)(inside ? px[ic] + offset : 0);
            }
        }
    }
    for (; k < padded; ++k) {
        static const int8_t slot_tail[4] = {0, 2, 1, 3};
        col[(k & ~3) + slot_tail[k & 3]] = 0;
    }
}

/* Dot product of one weight row (int8, natural order, 4-byte groups) with two im2col columns. */
static void dot2_q15(const int8_t *w, const int16_t *col0, const int16_t *col1, int32_t depth, int32_t padded,
                     int32_t *acc0, int32_t *acc1)
{
    int32_t k, s0 = *acc0, s1 = *acc1;
    for (k = 0; k + 4 <= depth; k += 4) {
        int32_t wv = ep_read_s8x4(w + k);
        int32_t w02 = EP_SXTB16(wv);
        int32_t w13 = EP_SXTB16_ROR8(wv);
        s0 = EP_SMLAD(w02, ep_read_s16x2(col0 + k), s0);
        s0 = EP_SMLAD(w13, ep_read_s16x2(col0 + k + 2), s0);
        s1 = EP_SMLAD(w02, ep_read_s16x2(col1 + k), s1);
        s1 = EP_SMLAD(w13, ep_read_s16x2(col1 + k + 2), s1);
    }
    for (; k < depth; ++k) {
        static const int8_t slot[4] = {0, 2, 1, 3};
        int32_t j = (k & ~3) + slot[k & 3];
        s0 += w[k] * col0[j];
        s1 += w[k] * col1[j];
    }
    (void)padded;
    *acc0 = s0;
    *acc1 = s1;
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
    int32_t b, oc;
    ep_status_t status = check(conv, quant, in_dims, filter_dims, out_dims);
    if (status != EP_OK) {
        return status;
    }
#if EP_DSP
    {
        const int32_t padded = (depth + 3) & ~3;
        int16_t *col0 = (int16_t *)scratch;
        int16_t *col1 = col0 + padded;
        const int32_t pixels = out_dims->h * out_dims->w;
        if (scratch == NULL) {
            return EP_ERR_BAD_ARG;
        }
        for (b = 0; b < in_dims->n; ++b) {
            const int8_t *image = input + (int64_t)b * in_dims->h * in_dims->w * cin;
            int32_t p;
            for (p = 0; p < pixels; p += 2) {
                int32_t two = p + 1 < pixels;
                int32_t q = two ? p + 1 : p;
                int8_t *out0 = output + ((int64_t)b * pixels + p) * cout;
                int8_t *out1 = output + ((int64_t)b * pixels + q) * cout;
                im2col_q15(conv, in_dims, image, (p / out_dims->w) * conv->stride_h - conv->pad_top,
                           (p % out_dims->w) * conv->stride_w - conv->pad_left, kh, kw, offset, padded, col0);
                im2col_q15(conv, in_dims, image, (q / out_dims->w) * conv->stride_h - conv->pad_top,
                           (q % out_dims->w) * conv->stride_w - conv->pad_left, kh, kw, offset, padded, col1);
                for (oc = 0; oc < cout; ++oc) {
                    int32_t acc0 = bias != NULL ? bias[oc] : 0;
                    int32_t acc1 = acc0;
                    dot2_q15(filter + (int64_t)oc * depth, col0, col1, depth, padded, &acc0, &acc1);
                    acc0 = ep_requantize(acc0, quant->multiplier[oc], quant->shift[oc]) + quant->output_zp;
                    out0[oc] = (int8_t)ep_clamp(acc0, quant->act_min, quant->act_max);
                    if (two) {
                        acc1 = ep_requantize(acc1, quant->multiplier[oc], quant->shift[oc]) + quant->output_zp;
                        out1[oc] = (int8_t)ep_clamp(acc1, quant->act_min, quant->act_max);
                    }
                }
            }
        }
        return EP_OK;
    }
#else
    int32_t oy, ox;
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
