/* Status codes of the edgepack serial protocol, version 1 (docs/serial-protocol.md).
 * Stable: never renumber a code. Grouped: 0x00 ok, 0x1x frame, 0x2x model/bundle, 0x3x board.
 * edgepack/runtime/serial_protocol.py mirrors this list (a test compares the two). */
#ifndef EP_STATUS_H
#define EP_STATUS_H

#define EP_STATUS_OK              0x00u /* request done */
#define EP_STATUS_BAD_FRAME       0x10u /* malformed frame */
#define EP_STATUS_BAD_CRC         0x11u /* frame CRC mismatch */
#define EP_STATUS_BAD_LENGTH      0x12u /* payload longer than the device's max payload */
#define EP_STATUS_TIMEOUT         0x13u /* frame incomplete: no byte within the inter-byte timeout */
#define EP_STATUS_BAD_VERSION     0x14u /* protocol version not supported */
#define EP_STATUS_UNKNOWN_CMD     0x15u /* command not known to this firmware */
#define EP_STATUS_BAD_PAYLOAD     0x16u /* payload size wrong for the command */
#define EP_STATUS_INPUT_RANGE     0x21u /* LOAD_INPUT offset + length beyond the input buffer */
#define EP_STATUS_OUTPUT_RANGE    0x22u /* READ_OUTPUT offset + length beyond the output buffer */
#define EP_STATUS_INPUT_CHECKSUM  0x23u /* INVOKE: input buffer CRC differs from the host's */
#define EP_STATUS_MODEL_FAILED    0x24u /* edgepack_model_run returned non-zero */
#define EP_STATUS_NO_OUTPUT       0x25u /* READ_OUTPUT before a successful INVOKE */
#define EP_STATUS_WEIGHTS_RANGE   0x26u /* LOAD_WEIGHTS offset + length beyond the weight image (FPGA link) */
#define EP_STATUS_WEIGHTS_CHECKSUM 0x27u /* COMMIT_WEIGHTS: weight memory CRC differs from the host's */
#define EP_STATUS_NO_WEIGHTS      0x28u /* INVOKE before a successful COMMIT_WEIGHTS */
#define EP_STATUS_BOARD_ERROR     0x30u /* unspecified board error */
#define EP_STATUS_FAULT           0x31u /* the CPU took a fault; the board has stopped */

#endif
