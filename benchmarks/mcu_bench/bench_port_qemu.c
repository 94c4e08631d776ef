/* QEMU mps2-an386 port of the benchmark: vector table, reset handler, SysTick clock, semihosting.
 *
 * SysTick counts the CPU clock (CLKSOURCE = 1) down from 0xFFFFFF; with `-icount shift=0` QEMU
 * advances virtual time by 1 ns per instruction, so ticks * (instructions per tick) = instructions.
 * The ratio (40 at QEMU's 25 MHz mps2 CPU clock) is measured at run time by bench_port_spin, never
 * assumed. A 24-bit counter wraps after 0x1000000 ticks: the clock below extends it in software,
 * which is exact as long as it is read at least once per wrap (every ~671 M instructions). */
#include <stdint.h>

#include "bench_port.h"

#define SYST_CSR (*(volatile uint32_t *)0xE000E010u)
#define SYST_RVR (*(volatile uint32_t *)0xE000E014u)
#define SYST_CVR (*(volatile uint32_t *)0xE000E018u)
#define CPACR (*(volatile uint32_t *)0xE000ED88u)

extern uint32_t bench_stack_top, bench_data_load, bench_data_start, bench_data_end, bench_bss_start, bench_bss_end;
int main(void);
void bench_reset(void) __attribute__((noreturn));
void bench_fault(void);

static uint32_t last_value;
static uint32_t elapsed;

static int semihost(int op, const void *arg)
{
    register int r0 __asm__("r0") = op;
    register const void *r1 __asm__("r1") = arg;
    __asm__ volatile("bkpt 0xab" : "+r"(r0) : "r"(r1) : "memory");
    return r0;
}

void bench_port_init(void)
{
    SYST_RVR = 0x00FFFFFFu;
    SYST_CVR = 0;
    SYST_CSR = 5u; /* enable, processor clock, no interrupt */
    last_value = SYST_CVR;
    elapsed = 0;
}

uint32_t bench_port_ticks(void)
{
    uint32_t now = SYST_CVR;
    elapsed += (last_value - now) & 0x00FFFFFFu; /* down-counter */
    last_value = now;
    return elapsed;
}

void bench_port_write(const char *text)
{
    semihost(0x04, text); /* SYS_WRITE0 */
}

void bench_port_exit(int status)
{
    /* SYS_EXIT with ADP_Stopped_ApplicationExit (exit code 0) or ADP_Stopped_InternalError (1). */
    semihost(0x18, (const void *)(uintptr_t)(status == 0 ? 0x20026u : 0x20024u));
    for (;;) {
    }
}

void bench_port_spin(uint32_t iterations)
{
    __asm__ volatile("1: subs %0, %0, #1\n\tbne 1b" : "+r"(iterations) : : "cc");
}

void bench_fault(void)
{
    bench_port_write("FAULT\n");
    bench_port_exit(1);
}

void bench_reset(void)
{
    uint32_t *src = &bench_data_load, *dst;
    CPACR |= 0xFu << 20; /* CP10 and CP11 full access: the FPU, before any float code */
    __asm__ volatile("dsb\n\tisb" ::: "memory");
    for (dst = &bench_data_start; dst < &bench_data_end;) {
        *dst++ = *src++;
    }
    for (dst = &bench_bss_start; dst < &bench_bss_end;) {
        *dst++ = 0;
    }
    bench_port_exit(main());
}

typedef void (*bench_vector_t)(void);

__attribute__((section(".vectors"), used)) static const bench_vector_t bench_vectors[16] = {
    (bench_vector_t)(uintptr_t)&bench_stack_top, bench_reset, bench_fault, bench_fault, bench_fault,
    bench_fault, bench_fault, 0, 0, 0, 0, bench_fault, bench_fault, 0, bench_fault, bench_fault,
};
