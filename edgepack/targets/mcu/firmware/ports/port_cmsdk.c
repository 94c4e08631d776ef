/* Board port for Arm MPS2/MPS3 FPGA images (and QEMU's models of them): CMSDK APB UART, polled.
 * EP_UART_BASE is UART0 as the core sees it (secure alias on AN505/AN547), EP_CLOCK_HZ the UART and core clock.
 * Register layout: Arm CMSDK Technical Reference Manual (DDI 0479), APB UART. */
#include "cortexm.h"
#include "ep_port.h"

#define UART_DATA    EP_REG(EP_UART_BASE + 0x00u)
#define UART_STATE   EP_REG(EP_UART_BASE + 0x04u) /* bit0 TX full, bit1 RX full */
#define UART_CTRL    EP_REG(EP_UART_BASE + 0x08u) /* bit0 TX enable, bit1 RX enable */
#define UART_BAUDDIV EP_REG(EP_UART_BASE + 0x10u) /* must be >= 16 */

#ifndef EP_BAUD
#define EP_BAUD 115200u
#endif

void ep_port_init(void)
{
    ep_cortexm_systick_start();
    UART_CTRL = 0;
    UART_BAUDDIV = EP_CLOCK_HZ / EP_BAUD;
    UART_CTRL = 0x3u;
    /* Reading DATA makes QEMU's UART model call qemu_chr_fe_accept_input(), which wakes QEMU's main loop.
     * Without it, bytes the host sent before RX was enabled leave the main loop asleep and the board deaf. */
    (void)UART_DATA;
}

void ep_port_uart_write(const uint8_t *data, uint32_t len)
{
    while (len--) {
        while (UART_STATE & 0x1u) {
        }
        UART_DATA = *data++;
    }
}

int ep_port_uart_read(uint8_t *byte, uint32_t timeout_ms)
{
    uint64_t deadline = ep_cortexm_cycles() + (uint64_t)timeout_ms * (EP_CLOCK_HZ / 1000u);
    while (!(UART_STATE & 0x2u)) {
        if (timeout_ms != 0u && ep_cortexm_cycles() >= deadline) {
            return 0;
        }
    }
    *byte = (uint8_t)UART_DATA;
    return 1;
}

void ep_port_cycles_start(void)
{
    ep_cortexm_systick_start();
}

uint64_t ep_port_cycles(void)
{
    return ep_cortexm_cycles();
}

void ep_port_abort(uint32_t code)
{
    (void)code;
    __asm volatile("cpsid i" ::: "memory");
    for (;;) {
    }
}
