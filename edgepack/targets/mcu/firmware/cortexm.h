/* Core peripherals shared by every Cortex-M port: SysTick cycle counter, FPU enable, fault registers. */
#ifndef EP_CORTEXM_H
#define EP_CORTEXM_H

#include <stdint.h>

#define EP_REG(addr) (*(volatile uint32_t *)(addr))
#define EP_SYST_CSR  EP_REG(0xE000E010u)
#define EP_SYST_RVR  EP_REG(0xE000E014u)
#define EP_SYST_CVR  EP_REG(0xE000E018u)
#define EP_SCB_ICSR  EP_REG(0xE000ED04u)
#define EP_SCB_CPACR EP_REG(0xE000ED88u)
#define EP_SCB_CFSR  EP_REG(0xE000ED28u)
#define EP_SCB_HFSR  EP_REG(0xE000ED2Cu)

/* CP10/CP11 full access; needed before the first FP (or MVE) instruction. No-op without an FPU. */
void ep_cortexm_fpu_enable(void);

/* (Re)start SysTick from zero on the core clock: 24-bit reload, wrap interrupt counting the high bits. */
void ep_cortexm_systick_start(void);

/* Core cycles since ep_cortexm_systick_start (64-bit). */
uint64_t ep_cortexm_cycles(void);

#endif
