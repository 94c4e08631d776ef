/* A board port: the few functions the firmware needs from a board family (one file per family in ports/).
 * Board constants come from the build as -D flags (edgepack/targets/mcu/boards.py):
 * EP_BOARD_NAME, EP_CPU_NAME, EP_CLOCK_HZ, EP_UART_BASE, EP_BAUD. */
#ifndef EP_PORT_H
#define EP_PORT_H

#include <stdint.h>

/* Clocks, UART (8N1 at EP_BAUD), cycle counter. Called once from main. */
void ep_port_init(void);

/* Blocking write of len bytes. */
void ep_port_uart_write(const uint8_t *data, uint32_t len);

/* One byte into *byte: 1 when read, 0 when timeout_ms passed first (timeout_ms == 0 waits forever). */
int ep_port_uart_read(uint8_t *byte, uint32_t timeout_ms);

/* Restart the cycle counter from zero, aligned to this instant (the firmware does so before each invoke). */
void ep_port_cycles_start(void);

/* Core clock cycles since the last ep_port_cycles_start (or ep_port_init), 64-bit. */
uint64_t ep_port_cycles(void);

/* Stop the board after a fatal error (the firmware has already reported it). Never returns. */
void ep_port_abort(uint32_t code) __attribute__((noreturn));

#endif
