"""What the FPGA targets can run, per architecture, and which architecture a graph gets.

- `engine`: a chain of CONV_2D / DEPTHWISE_CONV_2D (multiplier 1) / FULLY_CONNECTED / AVERAGE_POOL_2D
  (unpadded) / RESHAPE with int8 activations and 8- or 4-bit symmetric weights, optionally ending in a
  SOFTMAX that runs on the host (engine/program.py: `unsupported`). Weights and parameters must fit
  the 64 KiB weight memory, two activation buffers the 64 KiB activation memory.
- `unrolled`: a chain of FULLY_CONNECTED layers whose requantization is a power-of-two shift (every
  multiplier 2**30), small enough to unroll (`UNROLLED_MAX_WEIGHTS`) — see unrolled.py.

`choose_arch` picks `unrolled` for graphs it accepts and `engine` otherwise, unless `--fpga-arch` says.

Usage: ``report = check_graph(graph, "ice40-up5k", "engine")``
"""

from __future__ import annotations

from edgepack.errors import EdgepackError, UnsupportedOpsError
from edgepack.ir.graph import Graph
from edgepack.targets.base import CompatibilityReport, Issue

ARCHES = ("engine", "unrolled")
FLOAT_REASON = ("float32 models cannot run on the FPGA targets; quantize first: "
                "edgepack package MODEL --calib CALIB.npz --target ice40-up5k")


def engine_issues(graph: Graph) -> list[Issue]:
    """Every reason the engine cannot run `graph` ([] when it can)."""
    from edgepack.targets.fpga.engine.program import lower_engine, unsupported

    problems = unsupported(graph)
    if not problems:
        try:
            lower_engine(graph)
        except UnsupportedOpsError as exc:
            problems = exc.problems
    return [Issue(first, op, f"engine: {why} ({count} node{'s' * (count > 1)})") for op, count, first, why in problems]


def unrolled_issues(graph: Graph) -> list[Issue]:
    """Every reason the unrolled (da4ml) architecture cannot take `graph`."""
    from edgepack.targets.fpga.unrolled import unsupported as unrolled_unsupported

    return [Issue(first, op, f"unrolled: {why} ({count} node{'s' * (count > 1)})")
            for op, count, first, why in unrolled_unsupported(graph)]


def choose_arch(graph: Graph, requested: str | None = None) -> str:
    """The architecture for `graph`: `requested` when given ('engine', 'unrolled' or 'auto'), else by fit."""
    if requested not in (None, "auto", *ARCHES):
        raise EdgepackError(f"--fpga-arch {requested}: unknown architecture",
                            hint=f"use one of: auto, {', '.join(ARCHES)}")
    if requested in ARCHES:
        return requested  # type: ignore[return-value]
    return "unrolled" if not unrolled_issues(graph) else "engine"


def check_graph(graph: Graph, target: str, arch: str | None = None) -> CompatibilityReport:
    """Every reason `graph` cannot run on `target` with `arch` (auto: the chosen one), all at once."""
    if not graph.is_quantized:
        return CompatibilityReport(target, [Issue(None, None, FLOAT_REASON)])
    arch = choose_arch(graph, arch)
    issues = engine_issues(graph) if arch == "engine" else unrolled_issues(graph)
    report = CompatibilityReport(target, issues)
    if not issues:
        report.issues.append(Issue(None, None, f"architecture: {arch}"
                                   + ("; the final SOFTMAX runs on the host (golden int8 kernel)"
                                      if arch == "engine" and graph.nodes[-1].op.value == "SOFTMAX" else ""),
                                   fatal=False))
    return report
