/* Minimal Cortex-M startup: vector table, reset handler (.data copy, .bss zero, FPU on), fault entry.
 * Linker symbols come from ld/sections.ld. No libc initialisation is needed (no C++ or constructors). */
#include <stdint.h>

#include "cortexm.h"

extern uint32_t __stack_top;
extern uint32_t __data_load, __data_start, __data_end, __bss_start, __bss_end;

int main(void);
void SysTick_Handler(void);
void ep_fault_report(const uint32_t *stacked, uint32_t exc_return); /* main.c */

void Reset_Handler(void) __attribute__((noreturn));
void Fault_Handler(void) __attribute__((naked));
void Default_Handler(void);

void Reset_Handler(void)
{
    ep_cortexm_fpu_enable(); /* first: the copy loops below may be compiled to FP/MVE moves */
    uint32_t *src = &__data_load;
    for (uint32_t *dst = &__data_start; dst < &__data_end;) {
        *dst++ = *src++;
    }
    for (uint32_t *dst = &__bss_start; dst < &__bss_end;) {
        *dst++ = 0;
    }
    main();
    for (;;) {
    }
}

/* Hand the stacked exception frame (r0-r3, r12, lr, pc, xpsr) of whichever stack was active to C. */
void Fault_Handler(void)
{
    __asm volatile(
        "tst lr, #4\n\t"
        "ite eq\n\t"
        "mrseq r0, msp\n\t"
        "mrsne r0, psp\n\t"
        "mov r1, lr\n\t"
        "b ep_fault_report\n\t");
}

void Default_Handler(void)
{
    Fault_Handler();
}

typedef void (*ep_vector_t)(void);

/* 16 core exceptions; no external interrupt is enabled, so none are listed. */
__attribute__((section(".vectors"), used)) static const ep_vector_t ep_vectors[16] = {
    (ep_vector_t)(uintptr_t)&__stack_top,
    Reset_Handler,
    Fault_Handler,   /* NMI */
    Fault_Handler,   /* HardFault */
    Fault_Handler,   /* MemManage */
    Fault_Handler,   /* BusFault */
    Fault_Handler,   /* UsageFault */
    Fault_Handler,   /* SecureFault (ARMv8-M) */
    0, 0, 0,
    Default_Handler, /* SVCall */
    Default_Handler, /* DebugMonitor */
    0,
    Default_Handler, /* PendSV */
    SysTick_Handler,
};
