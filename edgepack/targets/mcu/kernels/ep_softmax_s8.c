/*
 * ep_softmax_s8: SOFTMAX over the last axis, int8 -> int8 with output scale 1/256 and zero point
 * -128 (TFLM softmax_common.cc + reference_ops::Softmax; edgepack/ir/reference/softmax.py).
 *
 * Layout: [rows, depth] (in_dims {rows, 1, 1, depth}), same for the output. Differences to the row
 * maximum are scaled into Q5.26, exponentiated with gemmlowp's exp_on_negative_values, summed in
 * Q12.19 and inverted with ep_get_reciprocal. depth < 4096 (the Q12.19 sum must not overflow).
 * Scratch: none.
 */
#include "ep_kernels.h"

#define EP_SCALED_DIFF_INTEGER_BITS 5
#define EP_ACCUMULATION_INTEGER_BITS 12

ep_status_t ep_softmax_s8(const ep_softmax_params_t *p, const ep_dims_t *in_dims, const int8_t *input,
                          int8_t *output)
{
    const int32_t rows = in_dims->n * in_dims->h * in_dims->w, depth = in_dims->c;
    int32_t r, j;
    if (depth < 1 || depth >= 4096 || p->input_left_shift < 0) {
        return EP_ERR_BAD_ARG;
    }
    for (r = 0; r < rows; ++r) {
        const int8_t *x = input + (int64_t)r * depth;
        int8_t *y = output + (int64_t)r * depth;
        int32_t max = -128, sum = 0, shifted_scale, num_bits_over_unit;
        for (j = 0; j < depth; ++j) {
            max = ep_max(max, x[j]);
        }
        for (j = 0; j < depth; ++j) {
            int32_t diff = x[j] - max;
            if (diff >= p->diff_min) {
                int32_t scaled = ep_multiply_by_quantized_multiplier_gt_one(diff, p->input_multiplier,
                                                                            p->input_left_shift);
                int32_t e = ep_exp_on_negative_values(scaled, EP_SCALED_DIFF_INTEGER_BITS);
                sum += ep_rounding_divide_by_pot(e, EP_ACCUMULATION_INTEGER_BITS);
            }
        }
        shifted_scale = ep_get_reciprocal(sum, EP_ACCUMULATION_INTEGER_BITS, &num_bits_over_unit);
        for (j = 0; j < depth; ++j) {
            int32_t diff = x[j] - max;
            if (diff >= p->diff_min) {
                int32_t scaled = ep_multiply_by_quantized_multiplier_gt_one(diff, p->input_multiplier,
                                                                            p->input_left_shift);
                int32_t e = ep_exp_on_negative_values(scaled, EP_SCALED_DIFF_INTEGER_BITS);
                int32_t unsat = ep_rounding_divide_by_pot_wide(ep_srdhm(shifted_scale, e), num_bits_over_unit + 31 - 8);
                y[j] = (int8_t)ep_clamp(unsat - 128, -128, 127);
            } else {
                y[j] = -128;
            }
        }
    }
    return EP_OK;
}
