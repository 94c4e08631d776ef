/* Host port of the benchmark: no clock (ticks stay 0), stdout, exit. Used to produce the reference
 * output hashes the QEMU run must reproduce (same sources, EP_EMULATE_DSP for the DSP paths). */
#include <stdio.h>
#include <stdlib.h>

#include "bench_port.h"

void bench_port_init(void) {}

uint32_t bench_port_ticks(void)
{
    return 0;
}

void bench_port_write(const char *text)
{
    fputs(text, stdout);
}

void bench_port_exit(int status)
{
    fflush(stdout);
    exit(status);
}

void bench_port_spin(uint32_t iterations)
{
    (void)iterations;
}
