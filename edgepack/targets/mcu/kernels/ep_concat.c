/*
 * ep_concat: CONCATENATION of any dtype (inputs with the output's quantization), and plain copies.
 * Every input is viewed as [outer, inner_bytes[i]]; the output as [outer, sum(inner_bytes)].
 * The output must not overlap any input. Scratch: none.
 */
#include "ep_kernels.h"

ep_status_t ep_concat(const ep_concat_params_t *p, const void *const *inputs, void *output)
{
    int32_t o, i, row = 0;
    uint8_t *out = (uint8_t *)output;
    if (p->count < 1 || p->outer < 0 || p->inner_bytes == NULL || inputs == NULL) {
        return EP_ERR_BAD_ARG;
    }
    for (i = 0; i < p->count; ++i) {
        row += p->inner_bytes[i];
    }
    for (o = 0; o < p->outer; ++o) {
        for (i = 0; i < p->count; ++i) {
            const uint8_t *in = (const uint8_t *)inputs[i] + (int64_t)o * p->inner_bytes[i];
            memcpy(out, in, (size_t)p->inner_bytes[i]);
            out += p->inner_bytes[i];
        }
    }
    (void)row;
    return EP_OK;
}
