"""Artifacts for the Edge TPU: the full-int8 .tflite, the analysis, and the compiled model when possible.

What a bundle for `edgetpu` holds:

- `graph.json` + `weights.npz`: the golden reference (backend `reference`);
- `model.tflite`: `ir.tflite_export.to_tflite(graph)`, always exported (never the source file) so that the
  batch is static and the I/O dtype is the one asked for; LiteRT runs it on any CPU (backend `litert`);
- `model_edgetpu.tflite` (role `edgetpu`): `edgetpu_compiler -s -o OUTDIR model.tflite`, when the compiler
  is on PATH; otherwise later with `compile_bundle` (`edgepack compile-edgetpu BUNDLE`);
- `reports/edgetpu.json` (role `report`): the analysis (`check.py`), the compiler's parsed log or the reason
  it did not run, and the commands to compile elsewhere; `reports/edgetpu.txt`: the same as a summary;
  `reports/edgetpu_compiler.log`: the compiler's own output, when it ran.

Backend `edgetpu` runs `model_edgetpu.tflite` with the libedgetpu delegate; without the compiled model or
without the library it runs `model.tflite` on the CPU (runtime/backends/edgetpu.py). It is the default.

I/O dtype (`with_io_dtype`): the quantizer gives int8 inputs and outputs. Coral's examples use uint8;
`io_dtype="uint8"` adds one QUANTIZE (int8 -> uint8, same scale, zero point + 128) at each edge, which
TFLite, the golden interpreter and the Edge TPU (QUANTIZE is in Coral's table) all run exactly.

Usage: ``arts = compile_model(graph, ("tflite", blob), {"board": "coral-usb"})``;
``manifest = compile_bundle("kws.edgepack")``
"""

from __future__ import annotations

import copy
import json
import os
from pathlib import Path
from typing import Any

from edgepack.errors import EdgepackError
from edgepack.ir.graph import Graph, Node, QuantParams, Tensor
from edgepack.ir.ops import Op
from edgepack.targets.base import Artifact, Artifacts
from edgepack.targets.edgetpu.boards import get_board
from edgepack.targets.edgetpu.check import Analysis, analyze_tflite
from edgepack.targets.edgetpu.compiler import (
    COMPILER,
    INSTALL_COMMANDS,
    CompileResult,
    compiler_path,
    missing_message,
    run_compiler,
)

MODEL_PATH = "model.tflite"
COMPILED_PATH = "model_edgetpu.tflite"
REPORT_PATH = "reports/edgetpu.json"
SUMMARY_PATH = "reports/edgetpu.txt"
LOG_PATH = "reports/edgetpu_compiler.log"
IO_DTYPES = ("int8", "uint8")


def with_io_dtype(graph: Graph, io_dtype: str) -> Graph:
    """`graph` with uint8 (or int8) model inputs and outputs; see the module docstring. A new Graph.

    Usage: ``g8 = with_io_dtype(qgraph, "uint8")``
    """
    if io_dtype not in IO_DTYPES:
        raise EdgepackError(f"io_dtype {io_dtype!r} is not a choice for target edgetpu; use int8 or uint8")
    edges = [n for n in (*graph.inputs, *graph.outputs) if graph.tensor(n).dtype != io_dtype]
    if not edges:
        return graph
    g = copy.deepcopy(graph)
    for name in edges:
        t = g.tensor(name)
        if t.dtype not in IO_DTYPES or t.quant is None or t.quant.per_channel:
            raise EdgepackError(f"graph {graph.name!r}: {name!r} is {t.dtype}; io_dtype {io_dtype} needs a full-int8 "
                                "graph with per-tensor quantized inputs and outputs",
                                hint="quantize first: edgepack package MODEL --target edgetpu --calib CALIB.npz")
    shift = 128 if io_dtype == "uint8" else -128
    for name in [n for n in g.inputs if n in edges]:
        t = g.tensor(name)
        outer = f"{name}_{io_dtype}"
        g.tensors[outer] = Tensor(outer, t.shape, io_dtype, _shifted(t.quant, shift))
        g.nodes.insert(0, Node(Op.QUANTIZE, f"{outer}/quantize", [outer], [name]))
        g.inputs[g.inputs.index(name)] = outer
    for name in [n for n in g.outputs if n in edges]:
        t = g.tensor(name)
        outer = f"{name}_{io_dtype}"
        g.tensors[outer] = Tensor(outer, t.shape, io_dtype, _shifted(t.quant, shift))
        g.nodes.append(Node(Op.QUANTIZE, f"{outer}/quantize", [name], [outer]))
        g.outputs[g.outputs.index(name)] = outer
    g.metadata = {**g.metadata, "io_dtype": io_dtype}
    g.validate()
    return g


def _shifted(q: QuantParams | None, shift: int) -> QuantParams:
    assert q is not None
    return QuantParams(q.scale.copy(), q.zero_point + shift, None, 8)


def _require_int8(graph: Graph) -> None:
    from edgepack.targets.edgetpu.check import layer_pairs

    if not graph.is_quantized:
        raise EdgepackError(f"graph {graph.name!r} is float; the Edge TPU runs only full-int8 models",
                            hint="quantize it: edgepack package MODEL --target edgetpu --calib CALIB.npz")
    other = {n: p for n, p in layer_pairs(graph).items() if p != (8, 8)}
    if other:
        name, (w, a) = next(iter(other.items()))
        raise EdgepackError(f"layer {name!r} is w{w}a{a}; the Edge TPU runs only w8a8",
                            hint="quantize with --bits int8 for --target edgetpu")


def report_document(analysis: Analysis, board: str, compiled: CompileResult | None, why_not: str | None,
                    source: str) -> dict[str, Any]:
    """reports/edgetpu.json: analysis, compiler result (or why there is none) and how to compile."""
    doc: dict[str, Any] = {"target": "edgetpu", "board": board, "model": MODEL_PATH, "model_from": source,
                           "analysis": analysis.to_dict(), "summary": analysis.summary()}
    if compiled is not None:
        doc["compiler"] = {"command": compiled.command, "artifact": COMPILED_PATH, **compiled.log.to_dict()}
    else:
        doc["compiler"] = None
        doc["not_compiled"] = why_not
        doc["compile_elsewhere"] = {"install": list(INSTALL_COMMANDS), "then": "edgepack compile-edgetpu BUNDLE"}
    return doc


def summary_text(doc: dict[str, Any]) -> str:
    """reports/edgetpu.txt: the analysis summary plus the compiler's verdict."""
    lines = [doc["summary"]]
    c = doc.get("compiler")
    if c:
        lines.append(f"edgetpu_compiler {c['version']}: {c['edgetpu_ops']} of {c['total_ops']} ops mapped to the Edge "
                     f"TPU, {c['subgraphs']} Edge TPU subgraph(s); on-chip parameter cache used "
                     f"{c['on_chip_used_bytes']} bytes, off-chip (streamed) {c['off_chip_bytes']} bytes")
    else:
        lines.append(f"not compiled: {doc.get('not_compiled')}")
    return "\n".join(lines) + "\n"


def _report_files(doc: dict[str, Any], compiled: CompileResult | None) -> list[Artifact]:
    files = [Artifact(REPORT_PATH, "report", json.dumps(doc, indent=2, sort_keys=True).encode()),
             Artifact(SUMMARY_PATH, "report", summary_text(doc).encode())]
    if compiled is not None:
        files.append(Artifact(LOG_PATH, "report", (compiled.text + ("\n" + compiled.log_file
                                                                     if compiled.log_file else "")).encode()))
    return files


def compile_model(graph: Graph, source: tuple[str, bytes], options: dict[str, Any]) -> Artifacts:
    """The bundle's files and backends (see the module docstring); `options`: board, backends, compiler."""
    from edgepack.ir.tflite_export import to_tflite

    board = get_board(options.get("board"))
    _require_int8(graph)
    wanted = options.get("backends")
    known = ("edgetpu", "litert", "reference")
    if wanted and set(wanted) - set(known) - {"all"}:
        raise EdgepackError(f"target edgetpu cannot offer backend(s) {sorted(set(wanted) - set(known))} "
                            f"(it offers: {', '.join(known)})")
    tflite = to_tflite(graph)
    analysis = analyze_tflite(tflite)
    compiler = options.get("compiler") or COMPILER
    compiled: CompileResult | None = None
    why_not: str | None = None
    if compiler_path(compiler) is not None:
        compiled = run_compiler(tflite, compiler, MODEL_PATH)
    else:
        why_not = f"{compiler} is not on PATH"
    graph_json, weights = graph.to_bytes()
    files = [Artifact("graph.json", "graph", graph_json), Artifact("weights.npz", "weights", weights),
             Artifact(MODEL_PATH, "tflite", tflite)]
    if compiled is not None:
        files.append(Artifact(COMPILED_PATH, "edgetpu", compiled.model))
    files += _report_files(report_document(analysis, board.name, compiled, why_not, "ir.tflite_export"), compiled)
    edgetpu: dict[str, Any] = {"artifact": COMPILED_PATH if compiled is not None else MODEL_PATH}
    if compiled is None:
        edgetpu["note"] = (f"not compiled for the Edge TPU ({why_not}): runs model.tflite on the CPU until "
                           "'edgepack compile-edgetpu BUNDLE' adds model_edgetpu.tflite")
    backends: dict[str, dict[str, Any]] = {"reference": {"artifact": "graph.json"},
                                          "litert": {"artifact": MODEL_PATH}, "edgetpu": edgetpu}
    if wanted and "all" not in wanted:
        backends = {k: v for k, v in backends.items() if k in wanted or k == "reference"}
    default = next(b for b in ("edgetpu", "litert", "reference") if b in backends)
    return Artifacts(files, backends, default, board=board.name)


def package_message(bundle_path: str | os.PathLike[str], manifest: dict[str, Any]) -> str | None:
    """What `edgepack package` prints (stderr) for an edgetpu bundle without a compiled model; None otherwise.

    Usage: ``msg = package_message(result.path, result.manifest)``
    """
    if manifest.get("target") != "edgetpu" or any(a["path"] == COMPILED_PATH for a in manifest.get("artifacts", [])):
        return None
    return missing_message(str(bundle_path))


def compile_bundle(bundle_path: str | os.PathLike[str], compiler: str = COMPILER) -> dict[str, Any]:
    """Compile the bundle's model.tflite with `compiler` and rewrite the bundle atomically with the result.

    Adds model_edgetpu.tflite and the compiler log, updates reports/edgetpu.*, points backend `edgetpu` at the
    compiled model and records that its golden check ran on the CPU model here (`verified_on`) unless an
    Edge TPU is attached (then the compiled model is run on the golden pairs and its tolerance measured).
    Returns the new manifest. What `edgepack compile-edgetpu BUNDLE` calls.

    Usage: ``manifest = compile_bundle("kws_tpu.edgepack")``
    """
    from edgepack.packager.bundle_writer import write_bundle
    from edgepack.runtime.bundle import Bundle

    path = Path(bundle_path)
    with Bundle.open(path) as bundle:
        manifest = dict(bundle.manifest)
        if manifest.get("target") != "edgetpu":
            raise EdgepackError(f"{path}: bundle target is {manifest.get('target')!r}, not 'edgetpu'",
                                hint="package the model with --target edgetpu first")
        if compiler_path(compiler) is None:
            raise EdgepackError(f"{compiler} is not on PATH; cannot compile {path} here",
                                hint="on a Debian-based x86-64 machine: " + "; ".join(INSTALL_COMMANDS))
        golden_path = (manifest.get("golden") or {}).get("artifact")
        skip = {golden_path, COMPILED_PATH, LOG_PATH, REPORT_PATH, SUMMARY_PATH}
        files = [(a["path"], a["role"], bundle.artifact(a["path"])) for a in manifest["artifacts"]
                 if a["path"] not in skip]
        tflite = bundle.artifact(MODEL_PATH)
        old_doc = json.loads(bundle.artifact(REPORT_PATH)) if any(
            a["path"] == REPORT_PATH for a in manifest["artifacts"]) else {}
        gin, gout = bundle.golden() if golden_path else (None, None)
    compiled = run_compiler(tflite, compiler, MODEL_PATH)
    analysis = analyze_tflite(tflite)
    doc = report_document(analysis, manifest.get("board") or "coral-usb", compiled, None,
                          old_doc.get("model_from", "bundle"))
    files.append((COMPILED_PATH, "edgetpu", compiled.model))
    files += [(a.path, a.role, a.data) for a in _report_files(doc, compiled)]
    for key in ("format_version", "edgepack_version", "artifacts", "golden"):
        manifest.pop(key, None)
    backends = {k: dict(v) for k, v in manifest.get("backends", {}).items()}
    entry = backends.get("edgetpu", {"tolerance": backends.get("litert", {}).get("tolerance", {"max_abs": 0,
                                                                                                 "unit": "lsb"})})
    entry.pop("note", None)
    entry["artifact"] = COMPILED_PATH
    entry["verified_on"] = ("LiteRT CPU on model.tflite while packaging; model_edgetpu.tflite added by "
                            f"{COMPILER} {compiled.log.version} afterwards and not run (no Edge TPU here)")
    backends["edgetpu"] = entry
    manifest["backends"] = backends
    manifest.setdefault("tools", {})[COMPILER] = compiled.log.version or "unknown"
    write_bundle(path, manifest, files, gin, gout)
    _verify_on_tpu(path)
    with Bundle.open(path) as bundle:
        return bundle.manifest


def _verify_on_tpu(path: Path) -> None:
    """When an Edge TPU is attached, run the compiled model on the golden pairs and record what it measured."""
    from edgepack.runtime.backends import edgetpu as backend

    if not backend.accelerator_available():
        return
    from edgepack.packager.bundle_writer import write_bundle
    from edgepack.runtime.bundle import Bundle
    from edgepack.runtime.session import Session
    from edgepack.runtime.verify import compare

    with Bundle.open(path) as bundle:
        sess = Session(bundle, "edgetpu")
        inputs, want = bundle.golden()
        got = sess.run(inputs)
        worst = max(compare(k, got[k], want[k], float("inf"), 0.0).max_abs_diff for k in want)
        manifest = dict(bundle.manifest)
        golden_path = manifest["golden"]["artifact"]
        files = [(a["path"], a["role"], bundle.artifact(a["path"])) for a in manifest["artifacts"]
                 if a["path"] != golden_path]
    for key in ("format_version", "edgepack_version", "artifacts", "golden"):
        manifest.pop(key, None)
    entry = manifest["backends"]["edgetpu"]
    entry["tolerance"] = dict(entry["tolerance"], max_abs=type(entry["tolerance"]["max_abs"])(worst))
    entry["verified_on"] = "Edge TPU (libedgetpu.so.1 delegate) on this machine after compile-edgetpu"
    write_bundle(path, manifest, files, inputs, want)
