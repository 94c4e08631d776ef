/* edgepack device firmware: answers the serial protocol (docs/serial-protocol.md) around one generated model.
 * model.h (generated) defines EDGEPACK_MODEL_NAME, EDGEPACK_MODEL_SHA256, EDGEPACK_ARENA_BYTES,
 * EDGEPACK_INPUT_BYTES, EDGEPACK_OUTPUT_BYTES and declares edgepack_model_run(input, output). */
#include <stdint.h>
#include <string.h>

#include "cortexm.h"
#include "ep_port.h"
#include "ep_protocol.h"
#include "ep_status.h"
#include "model.h"

#ifndef EP_MAX_PAYLOAD
#define EP_MAX_PAYLOAD 1024u /* largest request payload accepted; stated in IDENTIFY */
#endif
#ifndef EP_FIRMWARE_VERSION
#define EP_FIRMWARE_VERSION "0.0.0"
#endif

static uint8_t ep_input[EDGEPACK_INPUT_BYTES] __attribute__((aligned(16)));
static uint8_t ep_output[EDGEPACK_OUTPUT_BYTES] __attribute__((aligned(16)));
static uint8_t rx_buf[EP_MAX_PAYLOAD] __attribute__((aligned(4)));
static int output_valid;

/* The request being served, so a fault can still answer it. */
static volatile uint8_t current_cmd, current_seq;

static void reply(uint8_t status, const void *data, uint32_t len)
{
    ep_proto_send(current_cmd, current_seq, status, data, len, 0, 0);
}

static uint8_t *put_str(uint8_t *p, const char *s)
{
    uint32_t n = (uint32_t)strlen(s);
    n = n > 255u ? 255u : n;
    *p++ = (uint8_t)n;
    memcpy(p, s, n);
    return p + n;
}

static void cmd_identify(void)
{
    uint8_t out[1 + 6 * 4 + 5 * 256];
    uint8_t *p = out;
    *p++ = EP_PROTOCOL_VERSION;
    p = ep_wr32(p, EP_MAX_PAYLOAD);
    p = ep_wr32(p, EDGEPACK_INPUT_BYTES);
    p = ep_wr32(p, EDGEPACK_OUTPUT_BYTES);
    p = ep_wr32(p, EDGEPACK_ARENA_BYTES);
    p = ep_wr32(p, EP_CLOCK_HZ);
    p = ep_wr32(p, 0); /* flags, reserved */
    p = put_str(p, EP_FIRMWARE_VERSION);
    p = put_str(p, EDGEPACK_MODEL_NAME);
    p = put_str(p, EDGEPACK_MODEL_SHA256);
    p = put_str(p, EP_BOARD_NAME);
    p = put_str(p, EP_CPU_NAME);
    reply(EP_STATUS_OK, out, (uint32_t)(p - out));
}

static void cmd_load_input(const ep_frame_t *f)
{
    if (f->len < 4u) {
        reply(EP_STATUS_BAD_PAYLOAD, 0, 0);
        return;
    }
    uint32_t offset = ep_rd32(f->payload);
    uint32_t n = f->len - 4u;
    if (offset > EDGEPACK_INPUT_BYTES || n > EDGEPACK_INPUT_BYTES - offset) {
        reply(EP_STATUS_INPUT_RANGE, 0, 0);
        return;
    }
    memcpy(&ep_input[offset], f->payload + 4, n);
    output_valid = 0;
    reply(EP_STATUS_OK, 0, 0);
}

static void cmd_invoke(const ep_frame_t *f)
{
    if (f->len != 4u) {
        reply(EP_STATUS_BAD_PAYLOAD, 0, 0);
        return;
    }
    uint8_t out[4 + 8 + 4];
    uint32_t have = ep_crc32(0, ep_input, EDGEPACK_INPUT_BYTES);
    if (have != ep_rd32(f->payload)) {
        ep_wr32(out, have);
        reply(EP_STATUS_INPUT_CHECKSUM, out, 4);
        return;
    }
    ep_port_cycles_start();
    uint64_t t0 = ep_port_cycles();
    int rc = edgepack_model_run(ep_input, ep_output);
    uint64_t t1 = ep_port_cycles();
    output_valid = rc == 0;
    uint8_t *p = ep_wr32(out, (uint32_t)rc);
    p = ep_wr32(p, (uint32_t)(t1 - t0));
    p = ep_wr32(p, (uint32_t)((t1 - t0) >> 32));
    ep_wr32(p, ep_crc32(0, ep_output, EDGEPACK_OUTPUT_BYTES));
    reply(rc == 0 ? EP_STATUS_OK : EP_STATUS_MODEL_FAILED, out, sizeof out);
}

static void cmd_read_output(const ep_frame_t *f)
{
    if (f->len != 8u) {
        reply(EP_STATUS_BAD_PAYLOAD, 0, 0);
        return;
    }
    uint32_t offset = ep_rd32(f->payload);
    uint32_t n = ep_rd32(f->payload + 4);
    if (!output_valid) {
        reply(EP_STATUS_NO_OUTPUT, 0, 0);
    } else if (offset > EDGEPACK_OUTPUT_BYTES || n > EDGEPACK_OUTPUT_BYTES - offset || n > EP_MAX_PAYLOAD - 1u) {
        reply(EP_STATUS_OUTPUT_RANGE, 0, 0);
    } else {
        reply(EP_STATUS_OK, &ep_output[offset], n);
    }
}

static void cmd_reset(void)
{
    reply(EP_STATUS_OK, 0, 0);
    uint64_t until = ep_port_cycles() + EP_CLOCK_HZ / 100u; /* 10 ms: let the UART drain */
    while (ep_port_cycles() < until) {
    }
    __asm volatile("dsb" ::: "memory");
    EP_REG(0xE000ED0Cu) = 0x05FA0004u; /* AIRCR: VECTKEY | SYSRESETREQ */
    for (;;) {
    }
}

/* Called from Fault_Handler (startup.c) with the stacked frame: answer the current request, then stop. */
void ep_fault_report(const uint32_t *stacked, uint32_t exc_return)
{
    uint8_t out[5 * 4];
    uint8_t *p = ep_wr32(out, EP_SCB_CFSR);
    p = ep_wr32(p, EP_SCB_HFSR);
    p = ep_wr32(p, stacked[6]); /* pc */
    p = ep_wr32(p, stacked[5]); /* lr */
    ep_wr32(p, exc_return);
    reply(EP_STATUS_FAULT, out, sizeof out);
    ep_port_abort(EP_STATUS_FAULT);
}

int main(void)
{
    ep_port_init();
    for (;;) {
        ep_frame_t f;
        uint8_t status = ep_proto_receive(&f, rx_buf, sizeof rx_buf);
        current_cmd = f.cmd;
        current_seq = f.seq;
        if (status != EP_STATUS_OK) {
            reply(status, 0, 0);
            continue;
        }
        switch (f.cmd) {
        case EP_CMD_IDENTIFY:
            cmd_identify();
            break;
        case EP_CMD_LOAD_INPUT:
            cmd_load_input(&f);
            break;
        case EP_CMD_INVOKE:
            cmd_invoke(&f);
            break;
        case EP_CMD_READ_OUTPUT:
            cmd_read_output(&f);
            break;
        case EP_CMD_ECHO:
            reply(EP_STATUS_OK, f.payload, f.len < EP_MAX_PAYLOAD ? f.len : EP_MAX_PAYLOAD - 1u);
            break;
        case EP_CMD_RESET:
            cmd_reset();
            break;
        default:
            reply(EP_STATUS_UNKNOWN_CMD, 0, 0);
            break;
        }
    }
}
