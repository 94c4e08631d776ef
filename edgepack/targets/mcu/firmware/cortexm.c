/* SysTick as a 64-bit cycle counter and FPU enable, for any ARMv7-M / ARMv8-M core.
 * Under QEMU with -icount shift=0 SysTick advances EP_CLOCK_HZ ticks per 1e9 instructions. QEMU anchors
 * its tick grid at the instant the counter is enabled, so restarting the counter right before an invoke
 * makes the invoke's tick count a function of its instructions alone (not of how long the firmware
 * polled the UART before), hence deterministic. */
#include "cortexm.h"

#define SYST_RELOAD     0x00FFFFFFu
#define ICSR_PENDSTSET  (1u << 26)

static volatile uint32_t systick_wraps;

void SysTick_Handler(void) { systick_wraps++; }

void ep_cortexm_fpu_enable(void)
{
#if defined(__ARM_FP) || defined(__ARM_FEATURE_MVE)
    EP_SCB_CPACR |= (0xFu << 20);
    __asm volatile("dsb\n\tisb" ::: "memory");
#endif
}

void ep_cortexm_systick_start(void)
{
    EP_SYST_CSR = 0;
    systick_wraps = 0;
    EP_SYST_RVR = SYST_RELOAD;
    EP_SYST_CVR = 0;
    EP_SYST_CSR = 0x7u; /* ENABLE | TICKINT | CLKSOURCE=core clock */
    /* The counter holds 0 until the first clock edge reloads it; wait so that cycles() starts from 0. */
    while (EP_SYST_CVR == 0u) {
    }
}

uint64_t ep_cortexm_cycles(void)
{
    uint32_t primask;
    __asm volatile("mrs %0, primask\n\tcpsid i" : "=r"(primask) :: "memory");
    uint32_t hi = systick_wraps;
    uint32_t val = EP_SYST_CVR;
    /* The counter wrapped but its interrupt is still pending: count that wrap, re-read the value. */
    if (EP_SCB_ICSR & ICSR_PENDSTSET) {
        hi++;
        val = EP_SYST_CVR;
    }
    __asm volatile("msr primask, %0" :: "r"(primask) : "memory");
    return ((uint64_t)hi << 24) + (SYST_RELOAD - val);
}
