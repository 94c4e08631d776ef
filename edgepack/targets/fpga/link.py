"""The serial link of the FPGA boards: what the generated RTL needs to speak the edgepack protocol.

The board tops (`rtl/ep_top.v` for the engine, `rtl/ep_unrolled_top.v` for da4ml networks) put `ep_link.v`
on the UART: the protocol of docs/serial-protocol.md, as the Cortex-M firmware speaks it, plus
LOAD_WEIGHTS / COMMIT_WEIGHTS for the engine, whose weight SPRAM has no initial contents. This module
decides everything per bundle:

- `identity_bytes`: IDENTIFY's data (model sha256, buffer sizes, clock, flags), written as `identity.hex`
  and baked into a ROM;
- `engine_link` / `unrolled_link`: the top's Verilog parameters (buffer sizes, tensor layout, UART divider)
  and the device side of the manifest (what the board returns, what runs on the host after it, the weight
  image), as a `LinkSpec`;
- `port_cycles`: the exact clock cycles the model port takes per INVOKE (the `ticks` the board reports).

Usage: ``spec = engine_link(prog, graph, sha, board, "ice40-up5k"); spec.write(rtl_dir)``
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from edgepack import __version__
from edgepack.errors import EdgepackError
from edgepack.ir.graph import Graph
from edgepack.runtime.serial_protocol import FLAG_NEEDS_WEIGHTS, PROTOCOL_VERSION, DeviceInfo

MAX_PAYLOAD = 256  # request payload buffer in the RTL (one BRAM)
WEIGHTS_ARTIFACT = "device/weights.bin"
IDENTITY_HEX = "identity.hex"
SIM_CLKS_PER_BIT = 8  # the `sim` board's UART divider: the pty has no baud rate, so bits are made short
BAUD = 115_200


def identity_bytes(*, input_bytes: int, output_bytes: int, arena_bytes: int, clock_hz: int, flags: int,
                   firmware: str, model: str, sha256: str, board: str, cpu: str) -> bytes:
    """IDENTIFY's data after the status byte (serial-protocol.md), as the RTL sends it."""
    return DeviceInfo(PROTOCOL_VERSION, MAX_PAYLOAD, input_bytes, output_bytes, arena_bytes, clock_hz, flags,
                      firmware, model, sha256, board, cpu).encode()


@dataclass
class LinkSpec:
    """The board top's parameters, its identity ROM and the manifest's `device` backend fields."""

    top: str
    params: dict[str, int]
    identity: bytes
    device_outputs: list[str]  # graph tensors the board returns, in order
    host_nodes: list[str] = field(default_factory=list)  # graph nodes the host runs on them
    weights: bytes = b""  # the image LOAD_WEIGHTS sends (little-endian words), empty without a weight memory
    cycles: int = 0  # port_cycles: ticks per INVOKE

    def write(self, directory: Path) -> list[str]:
        """identity.hex ($readmemh, one byte a line) into `directory`; returns the file names written."""
        directory.mkdir(parents=True, exist_ok=True)
        (directory / IDENTITY_HEX).write_text("".join(f"{b:02x}\n" for b in self.identity))
        return [IDENTITY_HEX]

    def board_params(self, clock_hz: int, sim: bool = False) -> dict[str, int]:
        """The top's parameters for a board clock (the real UART divider), or for the `sim` board."""
        cpb = SIM_CLKS_PER_BIT if sim else max(1, round(clock_hz / BAUD))
        return dict(self.params, CLKS_PER_BIT=cpb, TIMEOUT_CLKS=max(1, clock_hz // 10))

    def manifest_entry(self, graph: Graph) -> dict[str, Any]:
        """Fields of the manifest's `device` backend (read by edgepack.runtime.backends.device)."""
        from edgepack.packager.pipeline import tensor_spec

        entry: dict[str, Any] = {"device_outputs": [tensor_spec(graph, n) for n in self.device_outputs]}
        if self.host_nodes:
            entry["host_nodes"] = list(self.host_nodes)
        if self.weights:
            entry["weights_image"] = WEIGHTS_ARTIFACT
        return entry


def _firmware(arch: str) -> str:
    return f"edgepack {__version__} fpga-{arch}"


def engine_link(prog: Any, graph: Graph, sha256: str, board_name: str, clock_hz: int, target: str) -> LinkSpec:
    """The link of an engine design: the input is the graph input, the output the engine's last tensor."""
    from edgepack.targets.fpga.engine.program import engine_cycles

    in_h, in_w, in_c = prog.input_shape
    out_h, out_w, out_c = prog.output_shape
    in_bytes, out_bytes = in_h * in_w * in_c, out_h * out_w * out_c
    weights = np.asarray(prog.weights, dtype="<u4").tobytes()
    params = {
        "PROG_DEPTH": len(prog.program), "MAX_PAYLOAD": MAX_PAYLOAD, "IN_BYTES": in_bytes, "OUT_BYTES": out_bytes,
        "W_BYTES": max(len(weights), 4), "IN_WORDS": prog.input_words, "IN_C": in_c,
        "IN_WPP": prog.input_words // (in_h * in_w), "IN_BASE": prog.input_base // 4,
        "OUT_WORDS": prog.output_words, "OUT_C": out_c, "OUT_WPP": prog.output_words // (out_h * out_w),
        "OUT_BASE": prog.output_base // 4,
    }
    identity = identity_bytes(input_bytes=in_bytes, output_bytes=out_bytes, arena_bytes=prog.act_bytes,
                              clock_hz=clock_hz, flags=FLAG_NEEDS_WEIGHTS, firmware=_firmware("engine"),
                              model=graph.name, sha256=sha256, board=board_name, cpu=f"{target} int8 engine")
    params["ID_BYTES"] = len(identity)
    cycles = port_cycles("engine", params, engine_cycles(prog))
    return LinkSpec("ep_top", params, identity, [prog.engine_output], list(prog.host_ops), weights, cycles)


def unrolled_link(design: Any, graph: Graph, sha256: str, board_name: str, clock_hz: int, target: str) -> LinkSpec:
    """The link of a da4ml design: int8 bytes in, its output elements extended to int8 bytes out."""
    if design.in_bits != 8 or design.out_bits > 8 or design.out_frac != 0:
        raise EdgepackError(f"{graph.name}: the unrolled design has {design.in_bits}-bit inputs and "
                            f"{design.out_bits}-bit outputs with {design.out_frac} fraction bits; the serial "
                            "link carries int8 tensors only", hint="use --fpga-arch engine")
    params = {"MAX_PAYLOAD": MAX_PAYLOAD, "N_IN": design.n_in, "N_OUT": design.n_out,
              "OUT_BITS": design.out_bits, "OUT_SIGNED": int(design.out_signed), "LATENCY": design.latency}
    identity = identity_bytes(input_bytes=design.n_in, output_bytes=design.n_out, arena_bytes=0,
                              clock_hz=clock_hz, flags=0, firmware=_firmware("unrolled"), model=graph.name,
                              sha256=sha256, board=board_name, cpu=f"{target} unrolled (da4ml)")
    params["ID_BYTES"] = len(identity)
    return LinkSpec("ep_unrolled_top", params, identity, list(graph.outputs), [], b"",
                    port_cycles("unrolled", params))


def port_cycles(arch: str, params: dict[str, int], engine: int = 0) -> int:
    """Clock cycles from the link's m_start to m_done: what INVOKE reports as `ticks` (exact).

    engine: per input byte slot 2 cycles (address, data), the engine's own cycles, per output word 1 + 4,
    and 5 for the hand-overs; unrolled: 2 per input byte, the pipeline's LATENCY + 2, 1 per output byte,
    and 3 for the hand-overs. The tests compare it with the ticks the RTL reports.
    """
    if arch == "engine":
        return 8 * params["IN_WORDS"] + engine + 5 * params["OUT_WORDS"] + 5
    return 2 * params["N_IN"] + params["LATENCY"] + 2 + params["N_OUT"] + 3
