/*
 * ep_fc_s16: FULLY_CONNECTED, int16 activations, int8 weights, int64 bias (TFLite 16x8).
 *
 * Layout: input [rows, depth], weights [out, depth], output [rows, out] (dims as in ep_fc_s8.c).
 * acc (int64) = bias[o] + sum_i (x[i] - input_zp) * w[o][i]   (bias may be NULL; not folded);
 * out = clamp(ep_requantize_int64(acc, multiplier[o], shift[o]) + output_zp, act_min, act_max).
 * Scratch: none.
 */
#include "ep_kernels.h"

int32_t ep_fc_s16_scratch_bytes(const ep_dims_t *filter_dims)
{
    (void)filter_dims;
    return 0;
}

ep_status_t ep_fc_s16(const ep_quant_t *quant, const ep_dims_t *in_dims, const int16_t *input,
                      const ep_dims_t *filter_dims, const int8_t *filter, const int64_t *bias,
                      const ep_dims_t *out_dims, int16_t *output, void *scratch)
{
    const int32_t rows = in_dims->n, depth = in_dims->c, outs = out_dims->c;
    int32_t r, o, k;
    (void)scratch;
    if (quant->multiplier == NULL || quant->shift == NULL) {
        return EP_ERR_BAD_ARG;
    }
    if (filter_dims->c != depth || filter_dims->n != outs || out_dims->n != rows) {
        return EP_ERR_SHAPE;
    }
    for (r = 0; r < rows; ++r) {
        const int16_t *x = input + (int64_t)r * depth;
        int16_t *y = output + (int64_t)r * outs;
        for (o = 0; o < outs; ++o) {
            const int8_t *w = filter + (int64_t)o * depth;
            int64_t acc = bias != NULL ? bias[o] : 0;
            for (k = 0; k < depth; ++k) {
                acc += (int64_t)((x[k] - quant->input_zp) * w[k]);
            }
            acc = ep_requantize_int64(acc, quant->multiplier[o], quant->shift[o]) + quant->output_zp;
            y[o] = (int16_t)(acc < quant->act_min ? quant->act_min : (acc > quant->act_max ? quant->act_max : acc));
        }
    }
    return EP_OK;
}
