/*
 * ep_fc_s8_w4: FULLY_CONNECTED (and 1x1 stride-1 unpadded CONV_2D), int8 activations, packed int4
 * weights. Same contract as ep_fc_s8.c, including the input offset folded into the (required) bias:
 *   bias[o] = b[o] - input_zp * sum_i w[o][i];   acc = bias[o] + sum_i x[i] * w[o][i].
 * Same contract as the int8-weight kernel (ep_fc_s8.c) except the weights: int4 values in [-8, 7]
 * packed two per byte in flattened [out, depth] order, element 2k in the low nibble (TFLite order).
 * Scratch: none.
 */
#include "ep_kernels.h"

int32_t ep_fc_s8_w4_scratch_bytes(const ep_dims_t *filter_dims)
{
    (void)filter_dims;
    return 0;
}

ep_status_t ep_fc_s8_w4(const ep_quant_t *quant, const ep_dims_t *in_dims, const int8_t *input,
                        const ep_dims_t *filter_dims, const int8_t *filter, const int32_t *bias,
                        const ep_dims_t *out_dims, int8_t *output, void *scratch)
{
    const int32_t rows = in_dims->n, depth = in_dims->c, outs = out_dims->c;
    int32_t r, o, k;
    (void)scratch;
    if (bias == NULL || quant->multiplier == NULL || quant->shift == NULL) {
        return EP_ERR_BAD_ARG;
    }
    if (filter_dims->c != depth || filter_dims->n != outs || out_dims->n != rows) {
        return EP_ERR_SHAPE;
    }
    for (r = 0; r < rows; ++r) {
        const int8_t *x = input + (int64_t)r * depth;
        int8_t *y = output + (int64_t)r * outs;
        for (o = 0; o < outs; ++o) {
            int32_t acc = bias[o];
            const int32_t k0 = o * depth;
            for (k = 0; k < depth; ++k) {
                acc += x[k] * ep_int4_at(filter, k0 + k);
            }
            acc = ep_requantize(acc, quant->multiplier[o], quant->shift[o]) + quant->output_zp;
            y[o] = (int8_t)ep_clamp(acc, quant->act_min, quant->act_max);
        }
    }
    return EP_OK;
}
