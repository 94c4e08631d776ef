"""What the Cortex-M target can run: every node the kernel library cannot execute, float graphs, and whether
the model fits the board's flash and RAM.

The fit is checked twice. Here, before anything is built, from figures known without a compiler: the
constant tables the lowering emits (weights, biases, multipliers), the planned arena, the I/O buffers and
the firmware's stack, plus an allowance for code (`CODE_ALLOWANCE_BYTES`). After the build,
`compile.py` checks the same limits again with the ELF's real sizes (arm-none-eabi-size).

Usage: ``report = check_graph(graph, "cortex-m4", get_board("qemu-mps2-an386"))``
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from edgepack.errors import UnsupportedOpsError
from edgepack.ir.graph import Graph
from edgepack.targets.base import CompatibilityReport, Issue
from edgepack.targets.mcu.boards import McuBoard
from edgepack.targets.mcu.lowering import Call, lower, tables_of
from edgepack.targets.mcu.memory_plan import plan

# Code of the firmware (startup, protocol loop, UART port: ~4 KB) and of the kernels a model calls, rounded
# up: the largest firmware flash minus its constant tables measured on the QEMU boards at -O2 was 14.5 KB
# (KWS, cortex-m55; benchmarks/mcu.py). Only used before the build; the build measures the real figure.
CODE_ALLOWANCE_BYTES = 16 * 1024
# The firmware's stack (EP_STACK_BYTES in firmware/ld/*.ld) and its frame receive buffer (EP_MAX_PAYLOAD).
STACK_BYTES = 16 * 1024
RX_BUFFER_BYTES = 1024
FLOAT_REASON = ("the native kernels are integer-only: run float32 models with --kernels tvm (the default for "
                "them), or quantize the model first: edgepack package MODEL --calib CALIB.npz --target cortex-m4")


@dataclass
class MemoryNeeds:
    """Bytes a model needs on the device, known before the build (code is an allowance, not a measurement)."""

    const_bytes: int  # weights, biases, multipliers and shifts: `static const` tables in flash
    arena_bytes: int
    io_bytes: int  # the firmware's input + output buffers
    stack_bytes: int = STACK_BYTES
    code_allowance_bytes: int = CODE_ALLOWANCE_BYTES

    @property
    def flash_bytes(self) -> int:
        """Estimated flash: constant tables + code allowance."""
        return self.const_bytes + self.code_allowance_bytes

    @property
    def ram_bytes(self) -> int:
        """Estimated RAM: arena + I/O buffers + stack + receive buffer."""
        return self.arena_bytes + self.io_bytes + self.stack_bytes + RX_BUFFER_BYTES


def const_bytes(calls: list[Call]) -> int:
    """Bytes of every `static const` table the generated model.c holds (weights first among them)."""
    seen: dict[str, int] = {}
    for call in calls:
        for t in tables_of(call):
            seen[t.name] = int(np.asarray(t.values).nbytes)
    return sum(seen.values())


def io_bytes(graph: Graph) -> int:
    """Bytes of all graph inputs plus all graph outputs."""
    return sum(graph.tensor(n).size * np.dtype(graph.tensor(n).dtype).itemsize
               for n in [*graph.inputs, *graph.outputs])


def memory_needs(graph: Graph, calls: list[Call], core: str) -> MemoryNeeds:
    """MemoryNeeds of a lowered graph. Usage: ``memory_needs(g, lower(g, "cortex-m4"), "cortex-m4").ram_bytes``"""
    return MemoryNeeds(const_bytes(calls), plan(graph, calls, core).arena_bytes, io_bytes(graph))


def fit_issues(needs: MemoryNeeds, board: McuBoard, measured: bool = False) -> list[Issue]:
    """A fatal Issue per memory that does not fit `board`, with the numbers."""
    issues = []
    how = "arm-none-eabi-size" if measured else "estimate"
    if needs.flash_bytes > board.flash_bytes:
        issues.append(Issue(None, None, f"does not fit the flash of {board.name}: needs {needs.flash_bytes:,} B "
                                        f"({needs.const_bytes:,} B constant tables + {needs.code_allowance_bytes:,} B "
                                        f"code, {how}), the board has {board.flash_bytes:,} B"))
    if needs.ram_bytes > board.ram_bytes:
        issues.append(Issue(None, None, f"does not fit the RAM of {board.name}: needs {needs.ram_bytes:,} B "
                                        f"(arena {needs.arena_bytes:,} + I/O {needs.io_bytes:,} + stack "
                                        f"{needs.stack_bytes:,} + {RX_BUFFER_BYTES:,} receive buffer), the board has "
                                        f"{board.ram_bytes:,} B"))
    return issues


def check_graph(graph: Graph, core: str, board: McuBoard | None, kernels: str | None = None) -> CompatibilityReport:
    """Every reason `graph` cannot run on `core` with `kernels` (default: "native" for quantized graphs, "tvm"
    for float32 ones) (and, with a board, fit it), all at once."""
    from edgepack.targets.mcu.tvm_kernels import lower_tvm, tvm_missing

    target = core
    kernels = kernels or ("native" if graph.is_quantized else "tvm")
    if kernels == "native" and not graph.is_quantized:
        return CompatibilityReport(target, [Issue(None, None, FLOAT_REASON)])
    if kernels == "tvm" and (why := tvm_missing()) is not None:
        return CompatibilityReport(target, [Issue(None, None, f"--kernels tvm: {why}")])
    try:
        calls = lower_tvm(graph, core) if kernels == "tvm" else lower(graph, core)
    except UnsupportedOpsError as exc:
        return CompatibilityReport(target, [Issue(first, op, f"{why} ({count} node{'s' * (count > 1)})")
                                            for op, count, first, why in exc.problems])
    if board is None:
        return CompatibilityReport(target)
    return CompatibilityReport(target, fit_issues(memory_needs(graph, calls, core), board))
