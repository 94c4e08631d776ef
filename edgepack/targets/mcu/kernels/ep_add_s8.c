/*
 * ep_add_s8: ADD with numpy broadcasting over 4-D NHWC tensors, int8 (TFLM add.cc).
 *
 * Each dim of a and b equals the output's or is 1 (broadcast).
 * sa = ep_requantize((a - a_zp) << left_shift, a_multiplier, a_shift), likewise sb;
 * out = clamp(ep_requantize(sa + sb, output_multiplier, output_shift) + output_zp, act_min, act_max).
 * Ranges: zero points in [-128, 127]; left_shift 20. May run in place (output == a or b when the
 * aliased input has the output's dims). Scratch: none.
 */
#include "ep_kernels.h"

/* Offset of output coordinate (n, h, w, c) in a tensor broadcast to the output. */
static int64_t broadcast_offset(const ep_dims_t *d, int32_t n, int32_t h, int32_t w, int32_t c)
{
    n = d->n == 1 ? 0 : n;
    h = d->h == 1 ? 0 : h;
    w = d->w == 1 ? 0 : w;
    c = d->c == 1 ? 0 : c;
    return (((int64_t)n * d->h + h) * d->w + w) * d->c + c;
}

int ep_broadcast_ok(const ep_dims_t *in, const ep_dims_t *out)
{
    return (in->n == out->n || in->n == 1) && (in->h == out->h || in->h == 1) &&
           (in->w == out->w || in->w == 1) && (in->c == out->c || in->c == 1);
}

ep_status_t ep_add_s8(const ep_add_params_t *p, const ep_dims_t *a_dims, const int8_t *a,
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
                    int32_t xa = a[broadcast_offset(a_dims, n, h, w, c)] - p->a_zp;
                    int32_t xb = b[broadcast_offset(b_dims, n, h, w, c)] - p->b_zp;
                    int32_t sa = ep_requantize((int32_t)((uint32_t)xa << p->left_shift), p->a_multiplier, p->a_shift);
                    int32_t sb = ep_requantize((int32_t)((uint32_t)xb << p->left_shift), p->b_multiplier, p->b_shift);
                    int32_t y = ep_requantize(sa + sb, p->output_multiplier, p->output_shift) + p->output_zp;
                    output[i] = (int8_t)ep_clamp(y, p->act_min, p->act_max);
                }
            }
        }
    }
    return EP_OK;
}

