/*
 * ep_avgpool_s8: AVERAGE_POOL_2D, int8, equal input and output quantization (TFLM AveragePool).
 *
 * Layout: NHWC in and out, same C. The count excludes padding; the average rounds half away from
 * zero: (sum +/- count / 2) / count, C division. out = clamp(avg, act_min, act_max). Scratch: none.
 */
#include "ep_pool_s8_common.h"

ep_status_t ep_avgpool_s8(const ep_pool_params_t *p, const ep_dims_t *in_dims, const int8_t *input,
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
                const int32_t count = (win.y1 - win.y0) * (win.x1 - win.x0), cols = win.x1 - win.x0;
                const int32_t chans = out_dims->c, row_step = in_dims->w * in_dims->c;
                const int8_t *base = input + (((int64_t)b * in_dims->h + win.y0) * in_dims->w + win.x0) * in_dims->c;
                int8_t *out = output + (((int64_t)b * out_dims->h + oy) * out_dims->w + ox) * out_dims->c;
                if (count <= 0) {
                    return EP_ERR_SHAPE;
                }
                /* channel outer, window inner: pointer steps instead of index arithmetic */
                for (c = 0; c < chans; ++c) {
                    const int8_t *row = base + c;
                    int32_t sum = 0, avg;
                    for (y = win.y0; y < win.y1; ++y, row += row_step) {
                        const int8_t *px = row;
                        for (x = 0; x < cols; ++x, px += chans) {
                            sum += *px;
                        }
                    }
                    avg = sum > 0 ? (sum + count / 2) / count : (sum - count / 2) / count;
                    out[c] = (int8_t)ep_clamp(avg, p->act_min, p->act_max);
                }
            }
        }
    }
    return EP_OK;
}
