/* Frame receive/send over the port's UART. Receiving hunts for the sync pair, so the device resynchronises
 * after any garbage; every malformed frame is answered with a 0x1x status so the host can retry at once. */
#include "ep_protocol.h"

#include "ep_port.h"
#include "ep_status.h"

/* Nibble-table CRC-32 (reflected polynomial 0xEDB88320): 64 bytes of table, ~2x the bitwise speed. */
static const uint32_t crc_nibble[16] = {
    0x00000000u, 0x1DB71064u, 0x3B6E20C8u, 0x26D930ACu, 0x76DC4190u, 0x6B6B51F4u, 0x4DB26158u, 0x5005713Cu,
    0xEDB88320u, 0xF00F9344u, 0xD6D6A3E8u, 0xCB61B38Cu, 0x9B64C2B0u, 0x86D3D2D4u, 0xA00AE278u, 0xBDBDF21Cu,
};

uint32_t ep_crc32(uint32_t crc, const void *data, uint32_t len)
{
    const uint8_t *p = (const uint8_t *)data;
    crc = ~crc;
    while (len--) {
        crc ^= *p++;
        crc = (crc >> 4) ^ crc_nibble[crc & 0xFu];
        crc = (crc >> 4) ^ crc_nibble[crc & 0xFu];
    }
    return ~crc;
}

static int read_exact(uint8_t *dst, uint32_t n)
{
    for (uint32_t i = 0; i < n; i++) {
        if (!ep_port_uart_read(&dst[i], EP_BYTE_TIMEOUT_MS)) {
            return 0;
        }
    }
    return 1;
}

static void hunt_sync(void)
{
    uint8_t b = 0;
    for (;;) {
        while (b != EP_SYNC0) {
            ep_port_uart_read(&b, 0);
        }
        if (!ep_port_uart_read(&b, EP_BYTE_TIMEOUT_MS)) {
            b = 0; /* a lone 0xA5 followed by silence: start over */
            continue;
        }
        if (b == EP_SYNC1) {
            return;
        }
        /* b may itself be EP_SYNC0 (0xA5 0xA5 0x5A ...): the loop above then falls straight through */
    }
}

uint8_t ep_proto_receive(ep_frame_t *f, uint8_t *buf, uint32_t cap)
{
    uint8_t hdr[7];
    f->version = 0;
    f->cmd = 0;
    f->seq = 0;
    f->len = 0;
    f->payload = buf;
    hunt_sync();
    if (!read_exact(hdr, sizeof hdr)) {
        return EP_STATUS_TIMEOUT;
    }
    f->version = hdr[0];
    f->cmd = hdr[1];
    f->seq = hdr[2];
    f->len = ep_rd32(&hdr[3]);
    if (f->len > cap) {
        return EP_STATUS_BAD_LENGTH;
    }
    uint8_t crc_bytes[4];
    if (!read_exact(buf, f->len) || !read_exact(crc_bytes, 4)) {
        return EP_STATUS_TIMEOUT;
    }
    uint32_t crc = ep_crc32(ep_crc32(0, hdr, sizeof hdr), buf, f->len);
    if (crc != ep_rd32(crc_bytes)) {
        return EP_STATUS_BAD_CRC;
    }
    if (f->version != EP_PROTOCOL_VERSION) {
        return EP_STATUS_BAD_VERSION;
    }
    return EP_STATUS_OK;
}

void ep_proto_send(uint8_t cmd, uint8_t seq, uint8_t status, const void *a, uint32_t alen, const void *b,
                   uint32_t blen)
{
    uint8_t hdr[2 + 7 + 1] = {EP_SYNC0, EP_SYNC1, EP_PROTOCOL_VERSION, cmd, seq};
    ep_wr32(&hdr[5], 1u + alen + blen);
    hdr[9] = status;
    uint32_t crc = ep_crc32(0, &hdr[2], sizeof hdr - 2);
    crc = ep_crc32(crc, a, alen);
    crc = ep_crc32(crc, b, blen);
    uint8_t tail[4];
    ep_wr32(tail, crc);
    ep_port_uart_write(hdr, sizeof hdr);
    ep_port_uart_write((const uint8_t *)a, alen);
    ep_port_uart_write((const uint8_t *)b, blen);
    ep_port_uart_write(tail, sizeof tail);
}
