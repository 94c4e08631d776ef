/* mcu_kernels benchmark: run the generated model twice on one input and print, one record a line,
 *   CAL <instructions> <ticks>       calibration loop (2 instructions per iteration)
 *   L <index> <ticks> <fnv1a>        per layer: SysTick ticks of the kernel call, hash of arena + output
 *   TOTAL <ticks>                    the whole edgepack_model_run, hashing off
 *   OUT <hex bytes>                  the model output
 * benchmarks/mcu_kernels.py parses these lines. */
#include <stdint.h>

#include "bench_input.h"
#include "bench_port.h"
#include "model.h"

#define BENCH_MAX_LAYERS 128
#define BENCH_CAL_ITERATIONS 1000000u

static uint8_t output[EDGEPACK_OUTPUT_BYTES];
static uint32_t layer_ticks[BENCH_MAX_LAYERS];
static uint32_t layer_hash[BENCH_MAX_LAYERS];
static uint32_t layer_count;
static uint32_t layer_start;
static int hashing;

static uint32_t fnv1a(uint32_t h, const uint8_t *p, uint32_t n)
{
    uint32_t i;
    for (i = 0; i < n; ++i) {
        h = (h ^ p[i]) * 16777619u;
    }
    return h;
}

void bench_layer_begin(void)
{
    layer_start = bench_port_ticks();
}

void bench_layer_end(const void *arena, uint32_t arena_bytes, const void *out, uint32_t output_bytes)
{
    uint32_t ticks = bench_port_ticks() - layer_start;
    if (!hashing || layer_count >= BENCH_MAX_LAYERS) {
        return;
    }
    layer_ticks[layer_count] = ticks;
    layer_hash[layer_count] = fnv1a(fnv1a(2166136261u, (const uint8_t *)arena, arena_bytes),
                                    (const uint8_t *)out, output_bytes);
    ++layer_count;
}

static char *put_u32(char *p, uint32_t v, int base)
{
    char tmp[12];
    int n = 0;
    do {
        tmp[n++] = "0123456789abcdef"[v % (uint32_t)base];
        v /= (uint32_t)base;
    } while (v != 0);
    while (n > 0) {
        *p++ = tmp[--n];
    }
    return p;
}

static void print_record(const char *tag, const uint32_t *values, int count, int hex_last)
{
    char line[96], *p = line;
    int i;
    while (*tag) {
        *p++ = *tag++;
    }
    for (i = 0; i < count; ++i) {
        *p++ = ' ';
        p = put_u32(p, values[i], hex_last && i == count - 1 ? 16 : 10);
    }
    *p++ = '\n';
    *p = '\0';
    bench_port_write(line);
}

int main(void)
{
    uint32_t t0, rec[3], i;
    int status;
    char line[8];
    bench_port_init();
    t0 = bench_port_ticks();
    bench_port_spin(BENCH_CAL_ITERATIONS);
    rec[0] = 2u * BENCH_CAL_ITERATIONS;
    rec[1] = bench_port_ticks() - t0;
    print_record("CAL", rec, 2, 0);

    hashing = 1;
    status = edgepack_model_run(bench_input, output);
    hashing = 0;
    if (status != 0) {
        rec[0] = (uint32_t)status;
        print_record("STATUS", rec, 1, 0);
        return 1;
    }
    for (i = 0; i < layer_count; ++i) {
        rec[0] = i;
        rec[1] = layer_ticks[i];
        rec[2] = layer_hash[i];
        print_record("L", rec, 3, 1);
    }
    t0 = bench_port_ticks();
    status = edgepack_model_run(bench_input, output);
    rec[0] = bench_port_ticks() - t0;
    print_record("TOTAL", rec, 1, 0);
    bench_port_write("OUT");
    for (i = 0; i < EDGEPACK_OUTPUT_BYTES; ++i) {
        line[0] = ' ';
        line[1] = "0123456789abcdef"[output[i] >> 4];
        line[2] = "0123456789abcdef"[output[i] & 15];
        line[3] = '\0';
        bench_port_write(line);
    }
    bench_port_write("\n");
    return status;
}
