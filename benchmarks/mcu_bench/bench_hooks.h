/* Force-included into the generated model.c of the benchmark (gcc -include bench_hooks.h), where
 * benchmarks/mcu_kernels.py has renamed each EP_CHECK( layer call to EP_BENCH_LAYER(. The wrapper
 * reads the clock around the kernel call only, then (outside the timed span) hashes the arena and
 * the output buffer so the QEMU run can be compared byte for byte with the host build. */
#ifndef BENCH_HOOKS_H
#define BENCH_HOOKS_H

#include <stdint.h>

void bench_layer_begin(void);
void bench_layer_end(const void *arena, uint32_t arena_bytes, const void *output, uint32_t output_bytes);

#define EP_BENCH_LAYER(call)                                                               \
    do {                                                                                   \
        int bench_status_;                                                                 \
        bench_layer_begin();                                                               \
        bench_status_ = (int)(call);                                                       \
        bench_layer_end(ep_arena, (uint32_t)sizeof ep_arena, out, EDGEPACK_OUTPUT_BYTES); \
        if (bench_status_ != 0) {                                                          \
            return bench_status_;                                                          \
        }                                                                                  \
    } while (0)

#endif
