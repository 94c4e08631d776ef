/* Framing of the edgepack serial protocol, version 1 (docs/serial-protocol.md):
 *   0xA5 0x5A | version u8 | cmd u8 | seq u8 | len u32 LE | payload[len] | crc32 u32 LE
 * The CRC is IEEE 802.3 CRC-32 (as zlib.crc32) over version..payload. */
#ifndef EP_PROTOCOL_H
#define EP_PROTOCOL_H

#include <stdint.h>

#define EP_PROTOCOL_VERSION 1u
#define EP_SYNC0 0xA5u
#define EP_SYNC1 0x5Au

/* Commands; a response echoes cmd and seq and starts its payload with a status byte (ep_status.h). */
#define EP_CMD_IDENTIFY    0x01u
#define EP_CMD_LOAD_INPUT  0x02u
#define EP_CMD_INVOKE      0x03u
#define EP_CMD_READ_OUTPUT 0x04u
#define EP_CMD_ECHO        0x05u
#define EP_CMD_RESET       0x06u
/* For boards with a volatile weight memory (the FPGA link, ep_link.v); this firmware keeps its weights in
 * flash and answers them UNKNOWN_CMD. */
#define EP_CMD_LOAD_WEIGHTS   0x07u
#define EP_CMD_COMMIT_WEIGHTS 0x08u

#ifndef EP_BYTE_TIMEOUT_MS
#define EP_BYTE_TIMEOUT_MS 100u /* a frame stalled this long between bytes is dropped (status TIMEOUT) */
#endif

typedef struct {
    uint8_t version;
    uint8_t cmd;
    uint8_t seq;
    uint32_t len;
    const uint8_t *payload;
} ep_frame_t;

/* CRC-32 continued from crc (start with 0), as zlib.crc32(data, crc). */
uint32_t ep_crc32(uint32_t crc, const void *data, uint32_t len);

/* Block until a frame arrives in buf (cap bytes). Returns EP_STATUS_OK, or a 0x1x status for a bad frame;
 * then f->cmd/seq hold what was received (unchecked; 0 when the header itself was incomplete). */
uint8_t ep_proto_receive(ep_frame_t *f, uint8_t *buf, uint32_t cap);

/* Send a response: status byte, then a[alen], then b[blen] as the payload. */
void ep_proto_send(uint8_t cmd, uint8_t seq, uint8_t status, const void *a, uint32_t alen, const void *b,
                   uint32_t blen);

static inline uint32_t ep_rd32(const uint8_t *p)
{
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}

static inline uint8_t *ep_wr32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
    p[2] = (uint8_t)(v >> 16);
    p[3] = (uint8_t)(v >> 24);
    return p + 4;
}

#endif
