/*
 * ep_mean_s8: MEAN over H and W of a 4-D NHWC int8 tensor (global average pooling), as TFLM's
 * reduce kernel QuantizedMeanOrSum (edgepack/ir/reference/pool.py: mean).
 *
 * acc = sum over h, w of x - input_zp * count; 1/count is folded into multiplier[0]/shift[0] at pack
 * time (prepare_mean); out = clamp(requantize(acc) + output_zp, act_min, act_max), act = [-128, 127].
 * shift[0] may be below -31 here, so the final rounding shift is the 64-bit one.
 * Output dims {N, 1, 1, C}. Scratch: none.
 */
#include "ep_kernels.h"

static int32_t requantize_any_shift(int32_t acc, int32_t multiplier, int32_t shift)
{
    int32_t left = shift > 0 ? shift : 0;
    int32_t right = shift > 0 ? 0 : -shift;
    int32_t shifted = (int32_t)((uint32_t)acc << left);
    return ep_rounding_divide_by_pot_wide(ep_srdhm(shifted, multiplier), right);
}

ep_status_t ep_mean_s8(const ep_quant_t *quant, const ep_dims_t *in_dims, const int8_t *input,
                       const ep_dims_t *out_dims, int8_t *output)
{
    const int32_t count = in_dims->h * in_dims->w;
    int32_t b, c, i;
    if (quant->multiplier == NULL || quant->shift == NULL || count < 1 || quant->shift[0] < -62) {
        return EP_ERR_BAD_ARG;
    }
    if (out_dims->n != in_dims->n || out_dims->c != in_dims->c || out_dims->h * out_dims->w != 1) {
        return EP_ERR_SHAPE;
    }
    for (b = 0; b < in_dims->n; ++b) {
        const int8_t *image = input + (int64_t)b * count * in_dims->c;
        for (c = 0; c < in_dims->c; ++c) {
            int32_t acc = -quant->input_zp * count;
            for (i = 0; i < count; ++i) {
                acc += image[(int64_t)i * in_dims->c + c];
            }
            acc = requantize_any_shift(acc, quant->multiplier[0], quant->shift[0]) + quant->output_zp;
            output[(int64_t)b * in_dims->c + c] = (int8_t)ep_clamp(acc, quant->act_min, quant->act_max);
        }
    }
    return EP_OK;
}
