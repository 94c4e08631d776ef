/* The runtime side of TVM-generated kernels on a bare-metal Cortex-M, in place of TVM's runtime library:
 * the error hook the generated argument checks call, a LIFO workspace allocator over a region of the
 * edgepack arena, and the packed-call helper model.c uses. No heap, no stdio. */
#include <stddef.h>
#include <stdint.h>

#include "ep_tvm_ffi.h"

const char *ep_tvm_last_error_kind;
const char *ep_tvm_last_error_part;

void TVMFFIErrorSetRaisedFromCStrParts(const char *kind, const char **message_parts, int32_t num_parts)
{
    ep_tvm_last_error_kind = kind;
    ep_tvm_last_error_part = num_parts > 0 ? message_parts[0] : NULL;
}

static uint8_t *ws_base;
static uint32_t ws_size, ws_top;

void ep_tvm_set_workspace(void *base, uint32_t bytes)
{
    ws_base = (uint8_t *)base;
    ws_size = bytes;
    ws_top = 0;
}

void *TVMBackendAllocWorkspace(int device_type, int device_id, uint64_t nbytes, int dtype_code_hint,
                               int dtype_bits_hint)
{
    (void)device_type;
    (void)device_id;
    (void)dtype_code_hint;
    (void)dtype_bits_hint;
    uint32_t start = (ws_top + 15u) & ~15u;
    if (ws_base == NULL || start > ws_size || nbytes > (uint64_t)(ws_size - start)) {
        return NULL; /* the generated code checks for NULL and raises */
    }
    ws_top = start + (uint32_t)nbytes;
    return ws_base + start;
}

int TVMBackendFreeWorkspace(int device_type, int device_id, void *ptr)
{
    (void)device_type;
    (void)device_id;
    /* TVM frees in reverse order of allocation: pop back to the freed block. */
    if (ptr != NULL && (uint8_t *)ptr >= ws_base && (uint8_t *)ptr < ws_base + ws_size) {
        ws_top = (uint32_t)((uint8_t *)ptr - ws_base);
    }
    return 0;
}

int32_t ep_tvm_call(ep_tvm_packed_fn fn, TVMFFIAny *args, int32_t num_args)
{
    TVMFFIAny result;
    result.type_index = kTVMFFINone;
    result.zero_padding = 0;
    result.v_int64 = 0;
    return fn(NULL, args, num_args, &result);
}
