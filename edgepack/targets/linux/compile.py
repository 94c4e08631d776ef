"""Artifacts for a Linux target: graph (reference), .tflite (LiteRT), .onnx (onnxruntime), TVM .so (tvm).

Where each artifact comes from:

- `model.tflite`: the source file for a TFLite model edgepack did not quantize; otherwise
  `ir.tflite_export.to_tflite(graph)` (float or quantized).
- `model.onnx`: the source file for an ONNX model edgepack did not quantize; otherwise
  `ir.onnx_export.to_onnx(graph)` (QDQ for quantized graphs, plain float for float TFLite sources).
- `model.<arch>.so`: the .tflite above imported with TVM's Relax TFLite frontend, built with
  `tvm.compile` for the target's LLVM triple and CPU, exported as a shared object (cross-compiled with
  `aarch64-linux-gnu-gcc` for aarch64 targets). The runtime loads it with TVM's runtime only.
- `reports/linux-build.json`: what was built, from what, with which tools, and which backends were left
  out and why.

With `options["backends"]` unset every backend that applies is built and the others are left out with
a note; a backend asked for by name that cannot be built is an error that says why.

Usage: ``compile_model(graph, ("tflite", blob), {"backends": ["litert", "tvm"]}, TARGETS["rpi4"])``
"""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

from edgepack.errors import EdgepackError
from edgepack.ir.graph import Graph
from edgepack.targets.base import Artifact, Artifacts
from edgepack.targets.linux.boards import LinuxSpec, get_board
from edgepack.targets.linux.check import backend_gaps

BACKENDS = ("litert", "onnxruntime", "tvm")
"""Backends a Linux bundle can offer besides `reference`, in the order the default is picked."""
REPORT_PATH = "reports/linux-build.json"
TVM_HINT = "pip install 'edgepack[tvm]'   (Apache TVM 0.27, apache-tvm==0.27.0.post1)"


def tvm_artifact_path(spec: LinuxSpec) -> str:
    """Bundle path of the TVM shared object, named after the CPU architecture it runs on."""
    return f"model.{spec.arch}.so"


def _tool_version(cmd: list[str]) -> str | None:
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=30, check=True).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return out.splitlines()[0] if out else None


def tvm_missing() -> str | None:
    """Why TVM's compiler cannot be used here, or None when it can."""
    try:
        import tvm  # noqa: F401
        from tvm.relax.frontend.tflite import from_tflite  # noqa: F401
    except ImportError as exc:
        return f"Apache TVM is not installed ({exc}); {TVM_HINT}"
    except AttributeError as exc:  # TVM_USE_RUNTIME_LIB=1: only the runtime library was loaded
        return f"Apache TVM's compiler did not load ({exc}); unset TVM_USE_RUNTIME_LIB when packaging"
    try:
        import tflite  # noqa: F401
    except ImportError:
        return "TVM's TFLite frontend needs the tflite package; pip install 'edgepack[tflite]'"
    return None


def build_tvm(tflite_model: bytes, tvm_target: dict[str, Any], cross_compiler: str | None) -> tuple[bytes, str]:
    """A Relax VM executable for `tflite_model`, exported as a shared object; returns (bytes, compiler used).

    Usage: ``so, cc = build_tvm(blob, {"kind": "llvm", "mtriple": "aarch64-linux-gnu"}, "aarch64-linux-gnu-gcc")``
    """
    import tflite
    import tvm
    from tvm.relax.frontend.tflite import from_tflite

    mod = from_tflite(tflite.Model.GetRootAsModel(tflite_model, 0))
    if isinstance(mod, tuple):  # older frontends return (mod, params)
        mod = mod[0]
    executable = tvm.compile(mod, tvm.target.Target(tvm_target))
    with tempfile.TemporaryDirectory(prefix="edgepack-tvm-") as tmp:
        path = Path(tmp) / "model.so"
        if cross_compiler:
            from tvm.support import cc

            executable.export_library(str(path), fcompile=cc.cross_compiler(cross_compiler))
            used = cross_compiler
        else:
            executable.export_library(str(path))
            used = "host cc"
        return path.read_bytes(), used


def _wanted(options: dict[str, Any]) -> set[str] | None:
    wanted = options.get("backends")
    if not wanted or "all" in wanted:
        return None
    unknown = sorted(set(wanted) - set(BACKENDS) - {"reference"})
    if unknown:
        raise EdgepackError(f"unknown backend(s) {unknown} for a Linux target; known: {', '.join(BACKENDS)}, "
                            "reference, all")
    return set(wanted)


def compile_model(graph: Graph, source: tuple[str, bytes], options: dict[str, Any], spec: LinuxSpec,
                  host_twins: dict[str, bytes] | None = None) -> Artifacts:
    """Artifacts for every backend asked for (default: all that apply); see the module docstring.

    When `host_twins` is given and the target's CPU is not the host's, the TVM module is also built for
    the host and stored there under the artifact path, so packaging can check it on the golden pairs.
    """
    import platform

    board = get_board(spec, options.get("board"))
    wanted = _wanted(options)
    fmt, blob = source
    edgepack_quantized = "quantization" in graph.metadata
    gaps = backend_gaps(graph)
    graph_json, weights = graph.to_bytes()
    files = [Artifact("graph.json", "graph", graph_json), Artifact("weights.npz", "weights", weights)]
    backends: dict[str, dict[str, Any]] = {"reference": {"artifact": "graph.json"}}
    built: dict[str, dict[str, Any]] = {}

    tflite_model: bytes | None = None
    if fmt == "tflite" and not edgepack_quantized:
        tflite_model, tflite_from = blob, "source model"
    else:
        from edgepack.ir.tflite_export import to_tflite

        try:
            tflite_model, tflite_from = to_tflite(graph), "ir.tflite_export"
        except EdgepackError as exc:
            gaps["litert"] = f"cannot export this graph to TFLite: {exc.message}"
            gaps.setdefault("tvm", "TVM is built from the .tflite, which could not be exported")

    def wants(name: str) -> bool:
        return wanted is None or name in wanted

    if wants("litert") and "litert" not in gaps and tflite_model is not None:
        files.append(Artifact("model.tflite", "tflite", tflite_model))
        backends["litert"] = {"artifact": "model.tflite"}
        built["litert"] = {"artifact": "model.tflite", "from": tflite_from}

    if wants("onnxruntime") and "onnxruntime" not in gaps:
        if fmt == "onnx" and not edgepack_quantized:
            onnx_model, onnx_from = blob, "source model"
        else:
            from edgepack.ir.onnx_export import to_onnx

            onnx_model = to_onnx(graph)
            onnx_from = "ir.onnx_export (QDQ)" if graph.is_quantized else "ir.onnx_export (float)"
        files.append(Artifact("model.onnx", "onnx", onnx_model))
        backends["onnxruntime"] = {"artifact": "model.onnx"}
        built["onnxruntime"] = {"artifact": "model.onnx", "from": onnx_from}

    tvm_info: dict[str, Any] = {}
    if wants("tvm") and "tvm" not in gaps:
        why = tvm_missing()
        if why is None and spec.cross_compiler and shutil.which(spec.cross_compiler) is None:
            why = (f"cross compiler {spec.cross_compiler} is not installed; "
                   "apt-get install gcc-aarch64-linux-gnu")
        if why is not None:
            gaps["tvm"] = why
        else:
            import tvm

            assert tflite_model is not None
            start = time.perf_counter()
            so, used = build_tvm(tflite_model, spec.tvm_target, spec.cross_compiler)
            path = tvm_artifact_path(spec)
            files.append(Artifact(path, "tvm", so))
            backends["tvm"] = {"artifact": path}
            tvm_info = {"version": tvm.__version__, "target": spec.tvm_target, "compiler": used,
                        "compiler_version": _tool_version([spec.cross_compiler or "cc", "-dumpfullversion"]),
                        "seconds": round(time.perf_counter() - start, 2)}
            built["tvm"] = {"artifact": path, "from": "model.tflite via tvm.relax.frontend.tflite", **tvm_info}
            if host_twins is not None and spec.arch != platform.machine():
                host_target = {"kind": "llvm"}
                host_twins[path] = build_tvm(tflite_model, host_target, None)[0]

    if wanted is not None:
        missing = {b: gaps.get(b, "not built") for b in wanted - {"reference"} if b not in backends}
        if missing:
            first, why = next(iter(sorted(missing.items())))
            raise EdgepackError(f"target {spec.name} cannot offer backend {first}: {why}",
                                hint="leave it out with --backend, or install what the message names")
        backends = {k: v for k, v in backends.items() if k in wanted or k == "reference"}

    default = next((b for b in BACKENDS if b in backends), "reference")
    report = {"target": spec.name, "board": board.name, "arch": spec.arch, "cpu": spec.cpu,
              "source_format": fmt, "backends": built, "default_backend": default,
              "left_out": {b: gaps[b] for b in BACKENDS if b not in backends and b in gaps and wants(b)}}
    files.append(Artifact(REPORT_PATH, "report", json.dumps(report, indent=2, sort_keys=True).encode()))
    return Artifacts(files, backends, default, board=board.name)
