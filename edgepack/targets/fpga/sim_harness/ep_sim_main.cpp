// The `sim` FPGA board: a Verilated board top (ports clk, uart_rx, uart_tx, led_busy; class Vboard) with its
// UART pins bridged to a pseudo-terminal, so the host's serial client opens it like a real port (as QEMU's
// -serial pty does for the Cortex-M boards). Prints "ep-sim: uart on /dev/pts/N" once ready.
//
// Bits are driven and sampled at CLKS_PER_BIT clocks (a -D of the build, equal to the RTL parameter). The
// clock runs while a frame is in flight or the design is busy; when both are idle the harness waits for
// host bytes without advancing time, so the design's inter-byte timeout only counts gaps inside a frame.
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <termios.h>
#include <unistd.h>

#include <deque>

#include "Vboard.h"
#include "verilated.h"

#ifndef CLKS_PER_BIT
#error "build with -DCLKS_PER_BIT=<the RTL's CLKS_PER_BIT>"
#endif

static void write_all(int fd, unsigned char byte) {
    while (write(fd, &byte, 1) != 1) {
        struct pollfd p = {fd, POLLOUT, 0};
        poll(&p, 1, 10);
    }
}

int main(int argc, char** argv) {
    Verilated::commandArgs(argc, argv);
    int master = posix_openpt(O_RDWR | O_NOCTTY);
    if (master < 0 || grantpt(master) != 0 || unlockpt(master) != 0) {
        perror("ep-sim: pty");
        return 2;
    }
    const char* name = ptsname(master);
    // Held open for the whole run: the pty then never hangs up between host sessions; raw, so the line
    // discipline neither echoes nor translates bytes before the host configures the port.
    int slave = open(name, O_RDWR | O_NOCTTY);
    struct termios t;
    if (slave < 0 || tcgetattr(slave, &t) != 0) {
        perror("ep-sim: pty slave");
        return 2;
    }
    cfmakeraw(&t);
    tcsetattr(slave, TCSANOW, &t);
    fcntl(master, F_SETFL, fcntl(master, F_GETFL) | O_NONBLOCK);

    Vboard* top = new Vboard;
    top->clk = 0;
    top->uart_rx = 1;
    top->eval();
    printf("ep-sim: uart on %s\n", name);
    fflush(stdout);

    std::deque<unsigned char> pending;  // host -> board bytes not yet on the wire
    int rx_bit = -1;                    // bit of the frame being driven (0 start .. 9 stop), -1 idle
    long rx_cnt = 0;
    unsigned rx_frame = 0;
    long tx_cnt = -1;  // clocks since the start edge of the byte the board is sending, -1 idle
    unsigned tx_byte = 0;
    int prev_tx = 1;
    unsigned long long cycle = 0;
    unsigned char buf[4096];
    while (!Verilated::gotFinish()) {
        bool idle = pending.empty() && rx_bit < 0 && tx_cnt < 0 && !top->led_busy;
        if (idle || (cycle & 255) == 0) {
            if (idle) {
                struct pollfd p = {master, POLLIN, 0};
                poll(&p, 1, 50);
            }
            ssize_t n = read(master, buf, sizeof buf);
            for (ssize_t i = 0; i < n; i++) pending.push_back(buf[i]);
            if (idle && pending.empty()) continue;
        }
        if (rx_bit < 0 && !pending.empty()) {
            rx_frame = (1u << 9) | ((unsigned)pending.front() << 1);
            pending.pop_front();
            rx_bit = 0;
            rx_cnt = 0;
        }
        top->uart_rx = rx_bit < 0 ? 1 : (rx_frame >> rx_bit) & 1u;
        top->clk = 1;
        top->eval();
        top->clk = 0;
        top->eval();
        cycle++;
        if (rx_bit >= 0 && ++rx_cnt == CLKS_PER_BIT) {
            rx_cnt = 0;
            if (++rx_bit == 10) rx_bit = -1;
        }
        int tx = top->uart_tx;
        if (tx_cnt < 0) {
            if (prev_tx && !tx) tx_cnt = 0;
        } else {
            tx_cnt++;
            long mid = tx_cnt - CLKS_PER_BIT / 2;  // sample each bit in its middle
            if (mid > 0 && mid % CLKS_PER_BIT == 0) {
                long bit = mid / CLKS_PER_BIT;  // 1..8 data, 9 stop
                if (bit <= 8) tx_byte = (tx_byte >> 1) | ((unsigned)tx << 7);
                else {
                    if (tx) write_all(master, (unsigned char)tx_byte);  // a missing stop bit drops the byte
                    tx_cnt = -1;
                }
            }
        }
        prev_tx = tx;
    }
    top->final();
    delete top;
    return 0;
}
