/*
 * edgepack C kernel library: every kernel's prototype. Each kernel's source file documents its
 * layout, dtypes and argument ranges; the shared types and arithmetic are in ep_common.h.
 *
 * Conventions: NHWC; int8 activations are `int8_t`, int16 activations `int16_t`; int4 weights are
 * packed two per byte (low nibble first); biases are int32 (int64 for int16 activations).
 * Kernels write only `output` (and `scratch`), never allocate, and return EP_OK or an error.
 * `*_scratch_bytes()` gives the scratch a kernel needs in this build; the host planner uses its
 * Python twin in edgepack/targets/mcu/kernel_lib.py.
 */
#ifndef EP_KERNELS_H
#define EP_KERNELS_H

#include "ep_common.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- linear layers ---- */
ep_status_t ep_conv2d_s8(const ep_conv_params_t *conv, const ep_quant_t *quant,
                         const ep_dims_t *in_dims, const int8_t *input,
                         const ep_dims_t *filter_dims, const int8_t *filter, const int32_t *bias,
                         const ep_dims_t *out_dims, int8_t *output, void *scratch);
int32_t ep_conv2d_s8_scratch_bytes(const ep_dims_t *filter_dims);

ep_status_t ep_dwconv2d_s8(const ep_conv_params_t *conv, const ep_quant_t *quant,
                           const ep_dims_t *in_dims, const int8_t *input,
                           const ep_dims_t *filter_dims, const int8_t *filter, const int32_t *bias,
                           const ep_dims_t *out_dims, int8_t *output, void *scratch);
int32_t ep_dwconv2d_s8_scratch_bytes(const ep_conv_params_t *conv, const ep_dims_t *filter_dims,
                                     const ep_dims_t *out_dims);

ep_status_t ep_fc_s8(const ep_quant_t *quant, const ep_dims_t *in_dims, const int8_t *input,
                     const ep_dims_t *filter_dims, const int8_t *filter, const int32_t *bias,
                     const ep_dims_t *out_dims, int8_t *output, void *scratch);
int32_t ep_fc_s8_scratch_bytes(const ep_dims_t *filter_dims);

/* 1x1, stride 1, unpadded CONV_2D as a matrix product (arguments as ep_fc_s8) */
ep_status_t ep_conv2d_1x1_s8(const ep_quant_t *quant, const ep_dims_t *in_dims, const int8_t *input,
                             const ep_dims_t *filter_dims, const int8_t *filter, const int32_t *bias,
                             const ep_dims_t *out_dims, int8_t *output, void *scratch);
int32_t ep_conv2d_1x1_s8_scratch_bytes(const ep_dims_t *filter_dims);

/* int8 activations, int8 weights pre-widened to int16 and packed (ep_gemm_w16.h); the DSP-core
 * choice of the code generator. Arguments as ep_conv2d_s8 / ep_conv2d_1x1_s8 but the filter table. */
ep_status_t ep_conv2d_s8_w16(const ep_conv_params_t *conv, const ep_quant_t *quant,
                             const ep_dims_t *in_dims, const int8_t *input,
                             const ep_dims_t *filter_dims, const int16_t *filter, const int32_t *bias,
                             const ep_dims_t *out_dims, int8_t *output, void *scratch);
int32_t ep_conv2d_s8_w16_scratch_bytes(const ep_dims_t *filter_dims);

ep_status_t ep_conv2d_1x1_s8_w16(const ep_quant_t *quant, const ep_dims_t *in_dims, const int8_t *input,
                                 const ep_dims_t *filter_dims, const int16_t *filter, const int32_t *bias,
                                 const ep_dims_t *out_dims, int8_t *output, void *scratch);
int32_t ep_conv2d_1x1_s8_w16_scratch_bytes(const ep_dims_t *filter_dims);

/* int8 activations, packed int4 weights (one byte-aligned row per output channel, ep_gemm_w4.h;
 * depthwise: TFLite's flat order) */
ep_status_t ep_conv2d_s8_w4(const ep_conv_params_t *conv, const ep_quant_t *quant,
                            const ep_dims_t *in_dims, const int8_t *input,
                            const ep_dims_t *filter_dims, const int8_t *filter, const int32_t *bias,
                            const ep_dims_t *out_dims, int8_t *output, void *scratch);
int32_t ep_conv2d_s8_w4_scratch_bytes(const ep_dims_t *filter_dims);

ep_status_t ep_conv2d_1x1_s8_w4(const ep_quant_t *quant, const ep_dims_t *in_dims, const int8_t *input,
                                const ep_dims_t *filter_dims, const int8_t *filter, const int32_t *bias,
                                const ep_dims_t *out_dims, int8_t *output, void *scratch);
int32_t ep_conv2d_1x1_s8_w4_scratch_bytes(const ep_dims_t *filter_dims);

ep_status_t ep_dwconv2d_s8_w4(const ep_conv_params_t *conv, const ep_quant_t *quant,
                              const ep_dims_t *in_dims, const int8_t *input,
                              const ep_dims_t *filter_dims, const int8_t *filter, const int32_t *bias,
                              const ep_dims_t *out_dims, int8_t *output, void *scratch);
int32_t ep_dwconv2d_s8_w4_scratch_bytes(const ep_conv_params_t *conv, const ep_dims_t *filter_dims,
                                        const ep_dims_t *out_dims);

ep_status_t ep_fc_s8_w4(const ep_quant_t *quant, const ep_dims_t *in_dims, const int8_t *input,
                        const ep_dims_t *filter_dims, const int8_t *filter, const int32_t *bias,
                        const ep_dims_t *out_dims, int8_t *output, void *scratch);
int32_t ep_fc_s8_w4_scratch_bytes(const ep_dims_t *filter_dims);

/* int16 activations, int8 weights, int64 bias (TFLite 16x8) */
ep_status_t ep_conv2d_s16(const ep_conv_params_t *conv, const ep_quant_t *quant,
                          const ep_dims_t *in_dims, const int16_t *input,
                          const ep_dims_t *filter_dims, const int8_t *filter, const int64_t *bias,
                          const ep_dims_t *out_dims, int16_t *output, void *scratch);
int32_t ep_conv2d_s16_scratch_bytes(const ep_dims_t *filter_dims);

ep_status_t ep_dwconv2d_s16(const ep_conv_params_t *conv, const ep_quant_t *quant,
                            const ep_dims_t *in_dims, const int16_t *input,
                            const ep_dims_t *filter_dims, const int8_t *filter, const int64_t *bias,
                            const ep_dims_t *out_dims, int16_t *output, void *scratch);
int32_t ep_dwconv2d_s16_scratch_bytes(const ep_dims_t *filter_dims);

ep_status_t ep_fc_s16(const ep_quant_t *quant, const ep_dims_t *in_dims, const int16_t *input,
                      const ep_dims_t *filter_dims, const int8_t *filter, const int64_t *bias,
                      const ep_dims_t *out_dims, int16_t *output, void *scratch);
int32_t ep_fc_s16_scratch_bytes(const ep_dims_t *filter_dims);

/* ---- elementwise ---- */
int ep_broadcast_ok(const ep_dims_t *in, const ep_dims_t *out);
ep_status_t ep_add_s8(const ep_add_params_t *p, const ep_dims_t *a_dims, const int8_t *a,
                      const ep_dims_t *b_dims, const int8_t *b, const ep_dims_t *out_dims, int8_t *output);
ep_status_t ep_mul_s8(const ep_mul_params_t *p, const ep_dims_t *a_dims, const int8_t *a,
                      const ep_dims_t *b_dims, const int8_t *b, const ep_dims_t *out_dims, int8_t *output);
ep_status_t ep_logistic_s8(const ep_sigmoid_params_t *p, int32_t count, const int8_t *input, int8_t *output);
ep_status_t ep_tanh_s8(const ep_sigmoid_params_t *p, int32_t count, const int8_t *input, int8_t *output);

/* QUANTIZE int -> int, RELU, CLIP (ep_requantize_s8_s16.c); RELU6 is a clamp in the input quantization */
ep_status_t ep_requantize_s8_s8(const ep_requantize_params_t *p, int32_t count, const int8_t *input, int8_t *output);
ep_status_t ep_requantize_s8_s16(const ep_requantize_params_t *p, int32_t count, const int8_t *input,
                                 int16_t *output);
ep_status_t ep_requantize_s16_s8(const ep_requantize_params_t *p, int32_t count, const int16_t *input,
                                 int8_t *output);
ep_status_t ep_requantize_s16_s16(const ep_requantize_params_t *p, int32_t count, const int16_t *input,
                                  int16_t *output);
ep_status_t ep_clamp_s8(int32_t act_min, int32_t act_max, int32_t count, const int8_t *input, int8_t *output);
ep_status_t ep_clamp_s16(int32_t act_min, int32_t act_max, int32_t count, const int16_t *input, int16_t *output);

/* ---- pooling and reductions ---- */
ep_status_t ep_avgpool_s8(const ep_pool_params_t *p, const ep_dims_t *in_dims, const int8_t *input,
                          const ep_dims_t *out_dims, int8_t *output);
ep_status_t ep_maxpool_s8(const ep_pool_params_t *p, const ep_dims_t *in_dims, const int8_t *input,
                          const ep_dims_t *out_dims, int8_t *output);
ep_status_t ep_mean_s8(const ep_quant_t *quant, const ep_dims_t *in_dims, const int8_t *input,
                       const ep_dims_t *out_dims, int8_t *output);
ep_status_t ep_softmax_s8(const ep_softmax_params_t *p, const ep_dims_t *in_dims, const int8_t *input,
                          int8_t *output);

/* ---- data movement ---- */
ep_status_t ep_pad_s8(const ep_pad_params_t *p, const ep_dims_t *in_dims, const int8_t *input,
                      const ep_dims_t *out_dims, int8_t *output);
ep_status_t ep_concat(const ep_concat_params_t *p, const void *const *inputs, void *output);

#ifdef __cplusplus
}
#endif

#endif /* EP_KERNELS_H */
