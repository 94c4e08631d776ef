/*
 * ep_requantize_<in>_<out> (in, out in {s8, s16}) and ep_clamp_s8 / ep_clamp_s16: integer QUANTIZE
 * (TFLM Requantize) and the standalone RELU, RELU_N1_TO_1 / CLIP and RELU6 (TFLM ReluQuantized /
 * Relu6Quantized), as edgepack/ir/reference/movement.py (quantize) and elementwise.py (clip) define them.
 *
 * ep_requantize_*: out[i] = clamp(ep_requantize(x[i] - input_zp, multiplier, shift) + output_zp,
 *   act_min, act_max). QUANTIZE clamps to the output dtype's range; RELU and CLIP to their bounds in
 *   output units. multiplier = input scale / output scale as a quantized multiplier (0 or in
 *   [2^30, 2^31)), shift in [-31, 30]; act_min <= act_max within the output dtype. Anything else is
 *   EP_ERR_BAD_ARG.
 * ep_clamp_*: out[i] = clamp(x[i], act_min, act_max), RELU6 (clamped in the input quantization,
 *   which TFLM requires to equal the output's).
 * Layout: any, `count` elements. In place (output == input) is allowed when the dtypes are equal.
 * Scratch: none.
 */
#include "ep_kernels.h"

static int params_ok(const ep_requantize_params_t *p, int32_t count, int32_t lo, int32_t hi)
{
    return count >= 0 && (p->multiplier == 0 || p->multiplier >= (1 << 30)) && p->shift >= -31 && p->shift <= 30 &&
           p->act_min >= lo && p->act_min <= p->act_max && p->act_max <= hi;
}

/* The whole loop for one pair of element types (one requantization prepared per call). The zero point
 * is added in 64 bits: a requantized value near INT32_MAX (shift 30) must saturate, not wrap. */
#define EP_REQUANTIZE_LOOP(out_t, out_lo, out_hi)                                                             \
    do {                                                                                                      \
        ep_requant_t rq;                                                                                      \
        int32_t i;                                                                                            \
        if (input == NULL || output == NULL || !params_ok(p, count, (out_lo), (out_hi))) {                    \
            return EP_ERR_BAD_ARG;                                                                            \
        }                                                                                                     \
        rq = ep_requant_prepare(p->multiplier, p->shift);                                                     \
        for (i = 0; i < count; ++i) {                                                                         \
            const int64_t v = (int64_t)ep_requant_apply((int32_t)input[i] - p->input_zp, &rq) + p->output_zp; \
            output[i] = (out_t)(v < p->act_min ? p->act_min : (v > p->act_max ? p->act_max : v));             \
        }                                                                                                     \
        return EP_OK;                                                                                         \
    } while (0)

ep_status_t ep_requantize_s8_s8(const ep_requantize_params_t *p, int32_t count, const int8_t *input, int8_t *output)
{
    EP_REQUANTIZE_LOOP(int8_t, -128, 127);
}

ep_status_t ep_requantize_s8_s16(const ep_requantize_params_t *p, int32_t count, const int8_t *input,
                                 int16_t *output)
{
    EP_REQUANTIZE_LOOP(int16_t, -32768, 32767);
}

ep_status_t ep_requantize_s16_s8(const ep_requantize_params_t *p, int32_t count, const int16_t *input,
                                 int8_t *output)
{
    EP_REQUANTIZE_LOOP(int8_t, -128, 127);
}

ep_status_t ep_requantize_s16_s16(const ep_requantize_params_t *p, int32_t count, const int16_t *input,
                                  int16_t *output)
{
    EP_REQUANTIZE_LOOP(int16_t, -32768, 32767);
}

ep_status_t ep_clamp_s8(int32_t act_min, int32_t act_max, int32_t count, const int8_t *input, int8_t *output)
{
    int32_t i;
    if (input == NULL || output == NULL || count < 0 || act_min > act_max || act_min < -128 || act_max > 127) {
        return EP_ERR_BAD_ARG;
    }
    for (i = 0; i < count; ++i) {
        output[i] = (int8_t)ep_clamp(input[i], act_min, act_max);
    }
    return EP_OK;
}

ep_status_t ep_clamp_s16(int32_t act_min, int32_t act_max, int32_t count, const int16_t *input, int16_t *output)
{
    int32_t i;
    if (input == NULL || output == NULL || count < 0 || act_min > act_max || act_min < -32768 || act_max > 32767) {
        return EP_ERR_BAD_ARG;
    }
    for (i = 0; i < count; ++i) {
        output[i] = (int16_t)ep_clamp(input[i], act_min, act_max);
    }
    return EP_OK;
}
