/*
 * ep_logistic_s8 / ep_tanh_s8: int8 LOGISTIC (output 1/256, -128) and TANH (output 1/128, 0),
 * TFLM's Q4.27 input rescale then gemmlowp fixed point (edgepack/ir/reference/elementwise.py).
 * Layout: any, `count` elements. Scratch: none.
 */
#include "ep_kernels.h"

#define EP_IN_INTEGER_BITS 4

static void sigmoid_tanh(const ep_sigmoid_params_t *p, int32_t count, const int8_t *input, int8_t *output,
                         int is_tanh)
{
    int32_t i;
    for (i = 0; i < count; ++i) {
        int32_t xi = input[i] - p->input_zp;
        int32_t out;
        if (xi <= -p->input_radius) {
            out = -128;
        } else if (xi >= p->input_radius) {
            out = 127;
        } else {
            int32_t q4 = ep_requantize(xi, p->input_multiplier, p->input_left_shift);
            if (is_tanh) {
                out = ep_rounding_divide_by_pot(ep_tanh_q(q4, EP_IN_INTEGER_BITS), 31 - 7);
            } else {
                out = ep_rounding_divide_by_pot(ep_logistic_q(q4, EP_IN_INTEGER_BITS), 31 - 8) - 128;
            }
            out = ep_clamp(out, -128, 127);
        }
        output[i] = (int8_t)out;
    }
}

ep_status_t ep_logistic_s8(const ep_sigmoid_params_t *p, int32_t count, const int8_t *input, int8_t *output)
{
    sigmoid_tanh(p, count, input, output, 0);
    return EP_OK;
}

ep_status_t ep_tanh_s8(const ep_sigmoid_params_t *p, int32_t count, const int8_t *input, int8_t *output)
{
    sigmoid_tanh(p, count, input, output, 1);
    return EP_OK;
}
