/* The benchmark's board interface: a monotonic instruction clock, text output and exit.
 * bench_port_qemu.c implements it for QEMU mps2-an386 (SysTick + semihosting), bench_port_host.c
 * for the host build that checks the same program's output bytes. */
#ifndef BENCH_PORT_H
#define BENCH_PORT_H

#include <stdint.h>

void bench_port_init(void);
/* SysTick ticks since bench_port_init (the caller converts ticks to instructions by calibration). */
uint32_t bench_port_ticks(void);
void bench_port_write(const char *text);
void bench_port_exit(int status);
/* Runs `iterations` of a two-instruction loop (subs + bne): the calibration workload. */
void bench_port_spin(uint32_t iterations);

#endif
