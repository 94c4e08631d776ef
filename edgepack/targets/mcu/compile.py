"""Compile a quantized graph for a Cortex-M core: C sources, a CMake drop-in, the model library and the
firmware of one board, measured with arm-none-eabi-size.

Bundle members (role in brackets):

- `graph.json`, `weights.npz` [graph, weights]: the golden interpreter's input (backend `reference`);
- `src/model.c`, `src/model.h`, `src/ep_*.c|h` [sources]: the generated model and the kernels it calls;
- `src/CMakeLists.txt`, `src/arm-none-eabi.cmake` [sources]: the static library `edgepack_model`;
- `lib/libedgepack_model.a` [library]: that library, built with the core's flags;
- `firmware/firmware.elf`, `firmware/firmware.bin` [firmware]: the board's firmware (backend `device`),
  only for boards with a firmware port (the QEMU boards today);
- `memory_plan.txt` [report]: the arena plan and the measured sizes.

Usage: ``arts = compile_model(graph, ("tflite", blob), {"board": "qemu-mps2-an386"}, "cortex-m4")``
"""

from __future__ import annotations

import hashlib
import tempfile
from pathlib import Path
from typing import Any

from edgepack.errors import EdgepackError
from edgepack.ir.graph import Graph
from edgepack.targets.base import Artifact, Artifacts
from edgepack.targets.mcu.boards import BOARDS, McuBoard, boards_for, get_board
from edgepack.targets.mcu.build import FIRMWARE_DIR, build_firmware
from edgepack.targets.mcu.check import check_graph, const_bytes
from edgepack.targets.mcu.codegen import write_sources
from edgepack.targets.mcu.lowering import lower
from edgepack.targets.mcu.memory_plan import plan
from edgepack.targets.mcu.project import build_library, cmake_project

ELF = "firmware/firmware.elf"
BIN = "firmware/firmware.bin"
LIBRARY = "lib/libedgepack_model.a"
REPORT = "memory_plan.txt"
KERNELS = ("native",)
# Flags for a core compiled without a board (the firmware-less cortex-m0plus, or --board omitted with no
# emulated board): soft float, since no FPU is assumed.
CORE_FLAGS = {"cortex-m0plus": ["-mcpu=cortex-m0plus", "-mthumb", "-mfloat-abi=soft"]}


def default_board(core: str) -> McuBoard | None:
    """The first emulated board with `core` (None for cortex-m0plus, which QEMU does not emulate)."""
    return next((b for b in boards_for(core) if b.emulated), None)


def resolve_board(core: str, name: str | None) -> McuBoard | None:
    """The board to build for: `name` (its core must be `core`), else `default_board(core)`."""
    if name is None:
        return default_board(core)
    board = get_board(name)
    if board.core != core:
        fitting = ", ".join(b.name for b in boards_for(core)) or "none"
        raise EdgepackError(f"board {name} has a {board.core}, but the target is {core}",
                            hint=f"use --target {board.core} for {name}, or a {core} board: {fitting}")
    return board


def has_port(board: McuBoard) -> bool:
    """True when the firmware has a port for the board's family (firmware/ports/port_<family>.c)."""
    return (FIRMWARE_DIR / "ports" / f"port_{board.port}.c").is_file()


def cpu_flags(core: str, board: McuBoard | None) -> list[str]:
    """gcc flags for the core: the board's (FPU and float ABI included), else a board-free default."""
    if board is not None:
        return board.cflags
    return CORE_FLAGS.get(core) or next(b.cflags for b in BOARDS.values() if b.core == core)


def compile_model(graph: Graph, source: tuple[str, bytes], options: dict[str, Any], core: str) -> Artifacts:
    """Artifacts for `graph` on `core`; options: `board`, `backends` (names to keep), `kernels` ("native")."""
    kernels = options.get("kernels") or "native"
    if kernels not in KERNELS:
        raise EdgepackError(f"--kernels {kernels} is not available yet for {core}; available: {', '.join(KERNELS)}")
    board = resolve_board(core, options.get("board"))
    report = check_graph(graph, core, board)
    if not report.ok:
        reasons = "; ".join((f"node {i.node!r} ({i.op}): " if i.node else "") + i.reason
                            for i in report.issues if i.fatal)
        raise EdgepackError(f"{graph.name}: cannot compile for {core}"
                            + (f" on {board.name}" if board else "") + f": {reasons}",
                            hint=f"run 'edgepack check MODEL --target {core}' for the full report")
    sha = hashlib.sha256(source[1]).hexdigest()
    calls = lower(graph, core)
    memory_plan = plan(graph, calls, core)
    graph_json, weights = graph.to_bytes()
    files = [Artifact("graph.json", "graph", graph_json), Artifact("weights.npz", "weights", weights)]
    backends: dict[str, dict[str, Any]] = {"reference": {"artifact": "graph.json"}}
    flags = cpu_flags(core, board)
    with tempfile.TemporaryDirectory(prefix="edgepack-mcu-") as tmp:
        src = Path(tmp) / "src"
        c_files = write_sources(graph, sha, core, src)
        for name, text in cmake_project([c.name for c in c_files], flags, core).items():
            (src / name).write_text(text)
        files += [Artifact(f"src/{p.name}", "sources", p.read_bytes()) for p in sorted(src.iterdir())]
        lib = build_library(c_files, src, flags, Path(tmp) / "lib")
        files.append(Artifact(LIBRARY, "library", lib.path.read_bytes()))
        memory: dict[str, Any] = {
            "flash_bytes": lib.flash_bytes, "ram_bytes": lib.ram_bytes, "source": lib.source,
            "arena_bytes": memory_plan.arena_bytes, "const_bytes": const_bytes(calls),
            "model_flash_bytes": lib.flash_bytes, "model_ram_bytes": lib.ram_bytes,
        }
        fw_line = "no firmware: " + (f"board {board.name} has no firmware port yet" if board
                                     else f"no emulated {core} board; link lib/ or src/ into your firmware")
        if board is not None and has_port(board):
            fw = build_firmware(board, c_files, [src], Path(tmp) / "firmware")
            files += [Artifact(ELF, "firmware", fw.elf.read_bytes()), Artifact(BIN, "firmware", fw.bin.read_bytes())]
            memory.update(flash_bytes=fw.flash_bytes, ram_bytes=fw.ram_bytes, source=f"arm-none-eabi-size {ELF}",
                          stack_bytes=fw.stack_bytes)
            backends["device"] = {"artifact": ELF}
            fw_line = (f"firmware {board.name}: flash {fw.flash_bytes:,} B, RAM {fw.ram_bytes:,} B "
                       f"(stack {fw.stack_bytes:,} B) (arm-none-eabi-size {ELF})")
    text = "\n".join([memory_plan.report(), "",
                      f"model library ({core}): flash {lib.flash_bytes:,} B (text {lib.text:,} + data {lib.data:,}), "
                      f"RAM {lib.ram_bytes:,} B (data + bss, arena included) ({lib.source})",
                      f"constant tables: {memory['const_bytes']:,} B", fw_line, ""])
    files.append(Artifact(REPORT, "report", text.encode()))
    wanted = options.get("backends")
    if wanted:
        unknown = sorted(set(wanted) - set(backends))
        if unknown:
            raise EdgepackError(f"target {core} cannot offer backend(s) {unknown}"
                                + (f" on board {board.name}" if board else "")
                                + f" (available: {', '.join(backends)})")
        backends = {k: v for k, v in backends.items() if k in wanted}
    default = "reference" if "reference" in backends else next(iter(backends))
    return Artifacts(files, backends, default, memory, board=board.name if board else None)
