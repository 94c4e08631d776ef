"""Test-only model sources for the Cortex-M firmware (a stand-in for the code generator's model.c/model.h).

Kinds: "reverse" (output[i] = input[IN - 1 - i] + 1), "spin" (an exact 2 * SPIN_LOOPS instruction loop, to
calibrate ticks against QEMU's instruction count), "fail" (returns 7), "fault" (executes UDF).
Shared by tests/targets/mcu and device_tests.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np

SPIN_LOOPS = 1_000_000
SIZES = {"reverse": (3000, 1500), "spin": (16, 16), "fail": (16, 16), "fault": (16, 16)}

BODIES = {
    "reverse": """
    for (uint32_t i = 0; i < EDGEPACK_OUTPUT_BYTES; i++) {
        out[i] = (uint8_t)(in[EDGEPACK_INPUT_BYTES - 1u - i] + 1u);
    }
    return 0;""",
    "spin": f"""
    uint32_t n = {SPIN_LOOPS}u;
    __asm volatile("1: subs %0, %0, #1\\n\\tbne 1b" : "+r"(n) :: "cc");
    for (uint32_t i = 0; i < EDGEPACK_OUTPUT_BYTES; i++) {{
        out[i] = in[i];
    }}
    return 0;""",
    "fail": """
    out[0] = in[0];
    return 7;""",
    "fault": """
    out[0] = in[0];
    __asm volatile("udf #0");
    return 0;""",
}


def model_sha256(kind: str) -> str:
    """The sha256 the test model claims (stands for the source model's)."""
    return hashlib.sha256(f"edgepack test model {kind}".encode()).hexdigest()


def write_model(directory: Path, kind: str = "reverse") -> Path:
    """Write model.h and model.c for `kind` into `directory`; returns model.c."""
    n_in, n_out = SIZES[kind]
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "model.h").write_text(f"""#ifndef MODEL_H
#define MODEL_H
#define EDGEPACK_MODEL_NAME "test-{kind}"
#define EDGEPACK_MODEL_SHA256 "{model_sha256(kind)}"
#define EDGEPACK_ARENA_BYTES 0
#define EDGEPACK_INPUT_BYTES {n_in}
#define EDGEPACK_OUTPUT_BYTES {n_out}
int edgepack_model_run(const void *input, void *output);
#endif
""")
    (directory / "model.c").write_text(f"""#include <stdint.h>
#include "model.h"

int edgepack_model_run(const void *input, void *output)
{{
    const uint8_t *in = (const uint8_t *)input;
    uint8_t *out = (uint8_t *)output;
    {BODIES[kind].strip()}
}}
""")
    return directory / "model.c"


def expected(kind: str, data: bytes) -> bytes:
    """What the device must return for `data`."""
    n_in, n_out = SIZES[kind]
    if kind == "reverse":
        return ((np.frombuffer(data, np.uint8)[::-1][:n_out].astype(np.uint16) + 1) % 256).astype(np.uint8).tobytes()
    return data[:n_out]


def build(board: str, out_dir: Path, kind: str = "reverse", **options):  # noqa: ANN003, ANN201
    """Build firmware for `board` around the test model; returns the FirmwareBuild."""
    from edgepack.targets.mcu.build import build_firmware

    src = write_model(out_dir / "model", kind)
    return build_firmware(board, [src], [src.parent], out_dir / "build", **options)
