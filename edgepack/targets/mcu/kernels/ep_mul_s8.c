/*
 * ep_mul_s8: MUL with numpy broadcasting over 4-D NHWC tensors, int8 (TFLM mul.cc).
 *
 * out = clamp(ep_requantize((a - a_zp) * (b - b_zp), multiplier, shift) + output_zp, act_min, act_max).
 * Each dim of a and b equals the output's or is 1. May run in place. Scratch: none.
 */
#include "ep_kernels.h"

ep_status_t ep_mul_s8(const ep_mul_params_t *p, const ep_dims_t *a_dims, const int8_t *a,
                      const ep_dims_t *b_dims, const int8_t *b, const ep_dims_t *out_dims, int8_t *output)
{
    int32_t n, h, w, c;
    int64_t i = 0;
    if (!ep_broadcast_ok(a_dims, out_dims) || !ep_broadcast_ok(b_dims, out_dims)) {
        return EP_ERR_SHAPE;
    }
    for (n = 0; n < out_dims->n; ++n) {
        for (h = 0; h < out_dims->h; ++h) {
            for (w = 0; w < out_dims->w; ++w) {
                for (c = 0; c < out_dims->c; ++c, ++i) {
                    int64_t ia = ((((int64_t)(a_dims->n == 1 ? 0 : n) * a_dims->h + (a_dims->h == 1 ? 0 : h)) *
                                   a_dims->w + (a_dims->w == 1 ? 0 : w)) * a_dims->c + (a_dims->c == 1 ? 0 : c));
                    int64_t ib = ((((int64_t)(b_dims->n == 1 ? 0 : n) * b_dims->h + (b_dims->h == 1 ? 0 : h)) *
                                   b_dims->w + (b_dims->w == 1 ? 0 : w)) * b_dims->c + (b_dims->c == 1 ? 0 : c));
                    int32_t prod = (a[ia] - p->a_zp) * (b[ib] - p->b_zp);
                    int32_t y = ep_requantize(prod, p->multiplier, p->shift) + p->output_zp;
                    output[i] = (int8_t)ep_clamp(y, p->act_min, p->act_max);
                }
            }
        }
    }
    return EP_OK;
}
