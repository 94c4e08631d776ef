/*
 * ep_pad_s8: PAD a 4-D NHWC int8 tensor with one value (the output zero point).
 * out[n, h, w, c] = in[n - before[0], h - before[1], w - before[2], c - before[3]] where in bounds,
 * else value. Scratch: none.
 */
#include "ep_kernels.h"

ep_status_t ep_pad_s8(const ep_pad_params_t *p, const ep_dims_t *in_dims, const int8_t *input,
                      const ep_dims_t *out_dims, int8_t *output)
{
    int32_t n, h, w;
    int64_t i = 0;
    if (p->before[0] < 0 || p->before[1] < 0 || p->before[2] < 0 || p->before[3] < 0) {
        return EP_ERR_BAD_ARG;
    }
    if (in_dims->n + p->before[0] > out_dims->n || in_dims->h + p->before[1] > out_dims->h ||
        in_dims->w + p->before[2] > out_dims->w || in_dims->c + p->before[3] > out_dims->c) {
        return EP_ERR_SHAPE;
    }
    for (n = 0; n < out_dims->n; ++n) {
        const int32_t in_n = n - p->before[0];
        for (h = 0; h < out_dims->h; ++h) {
            const int32_t in_h = h - p->before[1];
            for (w = 0; w < out_dims->w; ++w, i += out_dims->c) {
                const int32_t in_w = w - p->before[2];
                int8_t *out = output + i;
                if (in_n < 0 || in_n >= in_dims->n || in_h < 0 || in_h >= in_dims->h || in_w < 0 || in_w >= in_dims->w) {
                    memset(out, (int)(int8_t)p->value, (size_t)out_dims->c);
                } else {
                    const int8_t *in = input + (((int64_t)in_n * in_dims->h + in_h) * in_dims->w + in_w) * in_dims->c;
                    int32_t after = out_dims->c - in_dims->c - p->before[3];
                    memset(out, (int)(int8_t)p->value, (size_t)p->before[3]);
                    memcpy(out + p->before[3], in, (size_t)in_dims->c);
                    memset(out + p->before[3] + in_dims->c, (int)(int8_t)p->value, (size_t)after);
                }
            }
        }
    }
    return EP_OK;
}
