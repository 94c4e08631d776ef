"""The `host` target: the imported graph plus the source model, run by reference, LiteRT or ONNX Runtime.

A graph quantized by edgepack (its metadata holds `quantization`) is exported instead of copying the float
source: a .tflite for LiteRT (`ir.tflite_export`) and, when the source was ONNX, a QDQ .onnx for
onnxruntime (`ir.onnx_export`).
"""

from __future__ import annotations

from typing import Any

from edgepack.ir.graph import Graph
from edgepack.ir.reference import prepare_all
from edgepack.quantize.scheme import ALLOWED_LITERT
from edgepack.targets.base import Artifact, Artifacts, Board, CompatibilityReport, Issue

SOURCE_BACKENDS = {"tflite": ("litert", "model.tflite"), "onnx": ("onnxruntime", "model.onnx")}


class HostTarget:
    """Runs bundles on the machine that loads them (x86-64 or aarch64 with numpy + a backend library)."""

    name = "host"
    description = "this computer: golden reference interpreter, plus LiteRT (.tflite) or ONNX Runtime (.onnx)"
    boards = [Board("host", "the machine running edgepack", constraints={"dtypes": "float32, int8, int16"})]
    # LiteRT runs w8a8, w4a8 and 16x8 models (FIELD-NOTES); the reference interpreter runs them all.
    allowed_bits = ALLOWED_LITERT

    def check(self, graph: Graph) -> CompatibilityReport:
        """Every node the golden interpreter can prepare is supported."""
        _, problems = prepare_all(graph)
        return CompatibilityReport(self.name, [Issue(n, op, why) for n, op, why in problems])

    def compile(self, graph: Graph, source: tuple[str, bytes], options: dict[str, Any]) -> Artifacts:
        """graph.json + weights.npz for the reference backend and the source model for its own runtime."""
        graph_json, weights = graph.to_bytes()
        files = [Artifact("graph.json", "graph", graph_json), Artifact("weights.npz", "weights", weights)]
        backends: dict[str, dict[str, Any]] = {"reference": {"artifact": "graph.json"}}
        fmt, blob = source
        if "quantization" in graph.metadata:  # quantized by edgepack: export, the source is the float model
            from edgepack.ir.tflite_export import to_tflite

            files.append(Artifact("model.tflite", "tflite", to_tflite(graph)))
            backends["litert"] = {"artifact": "model.tflite"}
            if fmt == "onnx":
                from edgepack.ir.onnx_export import to_onnx

                files.append(Artifact("model.onnx", "onnx", to_onnx(graph)))
                backends["onnxruntime"] = {"artifact": "model.onnx"}
        elif fmt in SOURCE_BACKENDS:
            backend, path = SOURCE_BACKENDS[fmt]
            files.append(Artifact(path, fmt, blob))
            backends[backend] = {"artifact": path}
        wanted = options.get("backends")
        if wanted:
            unknown = sorted(set(wanted) - set(backends))
            if unknown:
                from edgepack.errors import EdgepackError

                raise EdgepackError(f"target host cannot offer backend(s) {unknown} for a {fmt} model "
                                    f"(available: {', '.join(backends)})")
            backends = {k: v for k, v in backends.items() if k in wanted}
        default = next((b for b in ("litert", "onnxruntime") if b in backends), "reference")
        return Artifacts(files, backends, default)
