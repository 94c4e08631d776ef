/*
 * ep_fc_s8_w4: FULLY_CONNECTED, int8 activations, packed int4 weights. Same contract as ep_fc_s8.c,
 * including the input offset folded into the (required) bias:
 *   bias[o] = b[o] - input_zp * sum_i w[o][i];   acc = bias[o] + sum_i x[i] * w[o][i].
 * Weights: int4 values in [-8, 7], packed two per byte per output row (ep_gemm_w4.h: element 2k of a
 * row in the low nibble, every row starting on a byte boundary, a zero nibble padding odd rows; for
 * an even depth this is TFLite's flat packing).
 * DSP path (depth <= EP_W4_DSP_MAX_DEPTH): each input row is widened once into a one-row int16 panel
 * (ep_gemm_w4.h) and every output channel's packed weights are unpacked in registers against it.
 * Scratch: one row, 2 * round_up(depth, 8) bytes on DSP builds, 0 otherwise (ep_fc_s8_w4_scratch_bytes;
 * Python twin kernel_lib.scratch_bytes). 1x1 convolutions over many pixels use ep_conv2d_1x1_s8_w4.
 */
#include "ep_gemm_w4.h"

int32_t ep_fc_s8_w4_scratch_bytes(const ep_dims_t *filter_dims)
{
#if EP_DSP
    return 2 * EP_W4_DEPTH(filter_dims->h * filter_dims->w * filter_dims->c);
#else
    (void)filter_dims;
    return 0;
#endif
}

static int8_t finish(int32_t acc, const ep_quant_t *quant, int32_t o)
{
    const int32_t m = quant->multiplier[o], shift = quant->shift[o];
    if (quant->act_min <= -128 && quant->act_max >= 127 && ep_requant_zp_ok(m, shift)) {
        const ep_requant_zp_t rq = ep_requant_zp_prepare(m, shift, quant->output_zp);
        return (int8_t)EP_SSAT8(ep_requant_zp_apply(acc, rq.multiplier, rq.hi_base, rq.right_m1));
    }
    acc = ep_requantize(acc, m, shift) + quant->output_zp;
    return (int8_t)ep_clamp(acc, quant->act_min, quant->act_max);
}

ep_status_t ep_fc_s8_w4(const ep_quant_t *quant, const ep_dims_t *in_dims, const int8_t *input,
                        const ep_dims_t *filter_dims, const int8_t *filter, const int32_t *bias,
                        const ep_dims_t *out_dims, int8_t *output, void *scratch)
{
    const int32_t rows = in_dims->n, depth = in_dims->c, outs = out_dims->c, row_bytes = EP_W4_ROW_BYTES(depth);
    int32_t r, o, k;
    if (bias == NULL || quant->multiplier == NULL || quant->shift == NULL) {
        return EP_ERR_BAD_ARG;
    }
    if (filter_dims->c != depth || filter_dims->n != outs || out_dims->n != rows) {
        return EP_ERR_SHAPE;
    }
#if EP_DSP
    if (depth <= EP_W4_DSP_MAX_DEPTH) {
        int16_t *row = (int16_t *)scratch;
        if (scratch == NULL) {
            return EP_ERR_BAD_ARG;
        }
        for (r = 0; r < rows; ++r) {
            const int8_t *w = filter;
            int8_t *y = output + (int64_t)r * outs;
            ep_w4_panel_put(row, 1, 0, input + (int64_t)r * depth, depth, 0);
            for (o = 0; o < outs; ++o, w += row_bytes) {
                const int32_t acc = ep_w4_sum(bias[o], ep_w4_dot1(row, w, depth));
                y[o] = finish(acc, quant, o);
            }
        }
        return EP_OK;
    }
#endif
    (void)scratch;
    for (r = 0; r < rows; ++r) {
        const int8_t *x = input + (int64_t)r * depth;
        int8_t *y = output + (int64_t)r * outs;
        for (o = 0; o < outs; ++o) {
            const int8_t *w = filter + (int64_t)o * row_bytes;
            int32_t acc = bias[o];
            for (k = 0; k < depth; ++k) {
                acc += x[k] * ep_int4_at(w, k);
            }
            y[o] = finish(acc, quant, o);
        }
    }
    return EP_OK;
}
