"""What a Linux target can run: every node the golden interpreter prepares, at the bit-widths LiteRT runs.

Fatal issues stop packaging (an op the reference cannot run, a (weight, activation) pair outside
`ALLOWED_BITS`). Non-fatal issues say which backend will be left out of the bundle and why
(`backend_gaps`), so `edgepack check --target rpi4` explains a bundle with fewer backends than asked.

Usage: ``check_graph(graph, TARGETS["rpi4"]).ok``
"""

from __future__ import annotations

from edgepack.errors import EdgepackError
from edgepack.ir.graph import Graph
from edgepack.ir.ops import WEIGHTED_OPS
from edgepack.ir.reference import prepare_all
from edgepack.targets.base import CompatibilityReport, Issue
from edgepack.targets.linux.boards import LinuxSpec

# LiteRT runs static W8A8, W4A8 and W8A16 (16x8) models (FIELD-NOTES); so does the reference interpreter.
ALLOWED_BITS: frozenset[tuple[int, int]] = frozenset({(8, 8), (4, 8), (8, 16)})


def layer_bits(graph: Graph) -> dict[str, tuple[int, int]]:
    """(weight bits, activation bits) of every quantized node with weights."""
    pairs = {}
    for node in graph.nodes:
        if node.op not in WEIGHTED_OPS:
            continue
        w, out = graph.tensor(node.inputs[1]), graph.tensor(node.outputs[0])
        if w.quant is not None and out.quant is not None:
            pairs[node.name] = (w.quant.bits, out.quant.bits)
    return pairs


def backend_gaps(graph: Graph) -> dict[str, str]:
    """Backend -> why this graph cannot be offered on it (backends absent from the dict can be offered)."""
    gaps: dict[str, str] = {}
    pairs = set(layer_bits(graph).values())
    if graph.is_quantized and pairs - {(8, 8)}:
        shown = ", ".join(f"w{w}a{a}" for w, a in sorted(pairs - {(8, 8)}))
        gaps["tvm"] = f"TVM's TFLite frontend imports float and int8 (w8a8) models only; this graph has {shown}"
    try:
        from edgepack.ir.onnx_export import check_exportable
    except ImportError:  # the QDQ exporter ships with edgepack; guard against a partial install
        gaps["onnxruntime"] = "edgepack.ir.onnx_export is missing from this install"
    else:
        try:
            check_exportable(graph)
        except EdgepackError as exc:
            gaps["onnxruntime"] = exc.message
    return gaps


def check_graph(graph: Graph, spec: LinuxSpec) -> CompatibilityReport:
    """Fatal issues for nodes the reference cannot run or bit-widths outside ALLOWED_BITS; notes per backend."""
    _, problems = prepare_all(graph)
    issues = [Issue(node, op, why) for node, op, why in problems]
    by_name = {n.name: n for n in graph.nodes}
    for name, (w, a) in layer_bits(graph).items():
        if (w, a) not in ALLOWED_BITS:
            allowed = ", ".join(f"w{x}a{y}" for x, y in sorted(ALLOWED_BITS))
            issues.append(Issue(name, by_name[name].op.value,
                                f"w{w}a{a} is not run by LiteRT on {spec.name} (allowed: {allowed})"))
    for backend, why in backend_gaps(graph).items():
        issues.append(Issue(None, None, f"backend {backend} will be left out: {why}", fatal=False))
    return CompatibilityReport(spec.name, issues)
