/* Shared by ep_avgpool_s8.c and ep_maxpool_s8.c: the in-bounds window of one output pixel. */
#ifndef EP_POOL_S8_COMMON_H
#define EP_POOL_S8_COMMON_H
#include "ep_kernels.h"

typedef struct {
    int32_t y0, y1, x0, x1; /* half-open input window, clipped to the image */
} ep_window_t;

static inline ep_window_t ep_pool_window(const ep_pool_params_t *p, const ep_dims_t *in_dims, int32_t oy, int32_t ox)
{
    ep_window_t win;
    int32_t ys = oy * p->stride_h - p->pad_top, xs = ox * p->stride_w - p->pad_left;
    win.y0 = ep_max(ys, 0);
    win.y1 = ep_min(ys + p->kernel_h, in_dims->h);
    win.x0 = ep_max(xs, 0);
    win.x1 = ep_min(xs + p->kernel_w, in_dims->w);
    return win;
}

static inline ep_status_t ep_pool_check(const ep_pool_params_t *p, const ep_dims_t *in_dims, const ep_dims_t *out_dims)
{
    if (p->kernel_h < 1 || p->kernel_w < 1 || p->stride_h < 1 || p->stride_w < 1) {
        return EP_ERR_BAD_ARG;
    }
    if (in_dims->n != out_dims->n || in_dims->c != out_dims->c) {
        return EP_ERR_SHAPE;
    }
    return EP_OK;
}
#endif
