"""The `edgetpu` target: Coral Edge TPU (boards coral-usb, coral-devboard, coral-m2).

The Edge TPU runs full-int8 TFLite models compiled by `edgetpu_compiler`; the compiler and `libedgetpu`
come only from Coral's apt repository (x86-64 Debian for the compiler), so this target says plainly what
it could do here. The pieces: `boards.py` (data), `check.py` (Coral's documented rules applied to the
.tflite: per-op verdict, partition point, MAC fraction, parameter cache, suggestions), `compiler.py`
(running `edgetpu_compiler` and parsing its log), `compile.py` (the bundle's files, uint8/int8 model I/O,
`compile_bundle` for `edgepack compile-edgetpu`). At run time, backend `edgetpu`
(runtime/backends/edgetpu.py) loads `libedgetpu.so.1` as a LiteRT delegate, or runs on the CPU.

Quantization: `allowed_bits` is {w8a8} only, so `package --calib` produces nothing else.

Usage: ``get_target("edgetpu").compile(qgraph, ("onnx", blob), {"board": "coral-usb"})``
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from edgepack.ir.graph import Graph
from edgepack.quantize.scheme import ALLOWED_EDGETPU
from edgepack.targets.base import Artifacts, Board, CompatibilityReport
from edgepack.targets.edgetpu.boards import BOARDS, PARAMETER_CACHE_BYTES, get_board


class EdgeTpuTarget:
    """Coral Edge TPU: full-int8 .tflite, the compatibility analysis, the compiled model when possible."""

    name = "edgetpu"
    description = ("Coral Edge TPU: full-int8 .tflite (LiteRT on the CPU) + model_edgetpu.tflite when "
                   "edgetpu_compiler is installed (libedgetpu delegate at run time)")
    allowed_bits = ALLOWED_EDGETPU
    boards = [Board(b.name, b.description, b.emulated,
                    constraints={"dtypes": "int8/uint8 only (w8a8)", "link": b.link, "host_cpu": b.host_cpu,
                                 "parameter_cache_bytes": PARAMETER_CACHE_BYTES, "static_shapes": True})
              for b in BOARDS.values()]

    def check(self, graph: Graph, board: str | None = None) -> CompatibilityReport:
        """Fatal issues when no bundle can be made; one non-fatal issue per op that would run on the CPU."""
        from edgepack.targets.edgetpu.check import check_graph

        get_board(board)
        return check_graph(graph)

    def prepare(self, graph: Graph, options: dict[str, Any]) -> Graph:
        """The graph to package after quantization: `options['io_dtype']` ('int8' default, or 'uint8')."""
        from edgepack.targets.edgetpu.compile import with_io_dtype

        io_dtype = options.get("io_dtype")
        return graph if io_dtype is None else with_io_dtype(graph, io_dtype)

    def compile(self, graph: Graph, source: tuple[str, bytes], options: dict[str, Any]) -> Artifacts:
        """graph + model.tflite + reports (+ model_edgetpu.tflite when edgetpu_compiler runs); see compile.py."""
        from edgepack.targets.edgetpu.compile import compile_model

        return compile_model(graph, source, options)

    def runs_on_host(self, backend: str) -> bool:
        """False for `edgetpu`: its golden check goes through `run_golden`, which records where it ran."""
        return backend != "edgetpu"

    def run_golden(self, backend: str, bundle_path: Path, progress: Any = None
                   ) -> tuple[dict[str, np.ndarray] | None, dict[str, Any]]:
        """Run backend `edgetpu` on the golden inputs: on the Edge TPU when one is attached, else the CPU model."""
        import warnings

        from edgepack.runtime.backends import edgetpu as backend_mod
        from edgepack.runtime.bundle import Bundle
        from edgepack.runtime.session import Session

        with Bundle.open(bundle_path) as bundle, warnings.catch_warnings():
            warnings.simplefilter("ignore", backend_mod.EdgeTpuFallbackWarning)
            sess = Session(bundle, backend)
            inputs, _ = bundle.golden()
            outputs = sess.run(inputs)
            where = sess._impl.where  # noqa: SLF001 - the backend session says what it ran on
        if progress is not None:
            progress(f"backend edgetpu verified on: {where}")
        return outputs, {"verified_on": where}


def edgetpu() -> EdgeTpuTarget:
    """The edgetpu target."""
    return EdgeTpuTarget()


__all__ = ["EdgeTpuTarget", "edgetpu"]
