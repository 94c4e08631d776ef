/*
 * ep_maxpool_s8: MAX_POOL_2D, int8, equal input and output quantization (TFLM MaxPool).
 *
 * Layout: NHWC in and out, same C. Padding never wins. out = clamp(max, act_min, act_max).
 * Scratch: none.
 */
#include "ep_pool_s8_common.h"

ep_status_t ep_maxpool_s8(const ep_pool_params_t *p, const ep_dims_t *in_dims, const int8_t *input,
                          const ep_dims_t *out_dims, int8_t *output)
{
    int32_t b, oy, ox, c, y, x;
    ep_status_t status = ep_pool_check(p, in_dims, out_dims);
    if (status != EP_OK) {
        return status;
    }
    for (b = 0; b < out_dims->n; ++b) {
        for (oy = 0; oy < out_dims->h; ++oy) {
            for (ox = 0; ox < out_dims->w; ++ox) {
                ep_window_t win = ep_pool_window(p, in_dims, oy, ox);
                int8_t *out = output + (((int64_t)b * out_dims->h + oy) * out_dims->w + ox) * out_dims->c;
                for (c = 0; c < out_dims->c; ++c) {
                    int32_t best = -128;
                    for (y = win.y0; y < win.y1; ++y) {
                        for (x = win.x0; x < win.x1; ++x) {
                            best = ep_max(best, input[(((int64_t)b * in_dims->h + y) * in_dims->w + x) * in_dims->c + c]);
                        }
                    }
                    out[c] = (int8_t)ep_clamp(best, p->act_min, p->act_max);
                }
            }
        }
    }
    return EP_OK;
}
