/*
 * ep_conv2d_1x1_s8: CONV_2D with a 1x1 filter, stride 1 and no padding (a pointwise convolution),
 * int8 activations, int8 weights: a matrix product over the H*W pixels.
 *
 * Layout and arguments as ep_fc_s8: input [rows, depth] with rows = N*H*W (in_dims {rows, 1, 1,
 * depth}), weights [out, depth], output [rows, out]; the input offset is folded into the bias at
 * pack time (bias[o] = b[o] - input_zp * sum_i w[o][i], required), quant->input_zp is not read.
 * out = clamp(ep_requantize(acc, multiplier[o], shift[o]) + output_zp, act_min, act_max).
 * DSP path: 4 pixels at a time are widened into an int16 panel (ep_gemm_s8.h) and every output
 * channel's weights meet all four, so each weight word is loaded and sign-extended once per 16 MACs.
 * Scratch: ep_conv2d_1x1_s8_scratch_bytes() = one panel, 8 * round_up(depth, 4) bytes (DSP), 0 else.
 */
#include "ep_gemm_s8.h"

int32_t ep_conv2d_1x1_s8_scratch_bytes(const ep_dims_t *filter_dims)
{
#if EP_DSP
    return 2 * EP_PANEL_ROWS * EP_PANEL_DEPTH(filter_dims->h * filter_dims->w * filter_dims->c);
#else
    (void)filter_dims;
    return 0;
#endif
}

ep_status_t ep_conv2d_1x1_s8(const ep_quant_t *quant, const ep_dims_t *in_dims, const int8_t *input,
                             const ep_dims_t *filter_dims, const int8_t *filter, const int32_t *bias,
                             const ep_dims_t *out_dims, int8_t *output, void *scratch)
{
    const int32_t rows = in_dims->n, depth = in_dims->c, outs = out_dims->c;
    int32_t r;
    if (bias == NULL || quant->multiplier == NULL || quant->shift == NULL) {
        return EP_ERR_BAD_ARG;
    }
    if (filter_dims->c != depth || filter_dims->n != outs || out_dims->n != rows) {
        return EP_ERR_SHAPE;
    }
#if EP_DSP
    if (scratch == NULL) {
        return EP_ERR_BAD_ARG;
    }
    for (r = 0; r < rows; r += EP_PANEL_ROWS) {
        int16_t *panel = (int16_t *)scratch;
        const int32_t count = rows - r < EP_PANEL_ROWS ? rows - r : EP_PANEL_ROWS;
        int32_t i;
        for (i = 0; i < EP_PANEL_ROWS; ++i) {
            if (i < count) {
                ep_panel_put_s8(panel, i, input + (int64_t)(r + i) * depth, depth);
            } else {
                ep_panel_zero(panel, i, depth);
            }
        }
        ep_panel_gemm(panel, filter, bias, depth, outs, quant, output + (int64_t)r * outs, outs, count);
    }
#else
    (void)scratch;
    for (r = 0; r < rows; ++r) {
        const int8_t *x = input + (int64_t)r * depth;
        int32_t o;
        for (o = 0; o < outs; ++o) {
            const int8_t *w = filter + (int64_t)o * depth;
            int32_t acc = bias[o], k;
            for (k = 0; k < depth; ++k) {
                acc += x[k] * w[k];
            }
            acc = ep_requantize(acc, quant->multiplier[o], quant->shift[o]) + quant->output_zp;
            output[(int64_t)r * outs + o] = (int8_t)ep_clamp(acc, quant->act_min, quant->act_max);
        }
    }
#endif
    return EP_OK;
}
