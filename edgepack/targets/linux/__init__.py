"""Linux targets: `rpi3-64`, `rpi4`, `rpi5`, `aarch64`, `x86-64`.

One class, `LinuxTarget`, parametrized by a `LinuxSpec` (boards.py: CPU, TVM target, boards);
`targets/__init__.py` lists one factory per target. The pieces: `check.py` (what can run, which backends
will be left out), `compile.py` (.tflite, .onnx, TVM .so, graph), `select.py` (best-of selection on the
host), `pi_emulator.py` (the emulated Raspberry Pi: a Debian arm64 userland under qemu-aarch64-static),
`deploy.py` (copy a bundle to a board over SSH and verify it there).

Usage: ``get_target("rpi4").compile(graph, ("tflite", blob), {"backends": ["litert", "tvm"]})``
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from edgepack.ir.graph import Graph
from edgepack.targets.base import Artifacts, Board, CompatibilityReport
from edgepack.targets.linux.boards import TARGETS, LinuxSpec, get_spec
from edgepack.targets.linux.check import ALLOWED_BITS


class LinuxTarget:
    """A Linux machine (Raspberry Pi, any aarch64, x86-64): LiteRT, ONNX Runtime and TVM artifacts."""

    allowed_bits = ALLOWED_BITS

    def __init__(self, spec: LinuxSpec) -> None:
        self.spec = spec
        self.name = spec.name
        self.description = f"{spec.description}: .tflite (LiteRT), .onnx (ONNX Runtime), TVM .so ({spec.arch})"
        self.boards = [Board(b.name, b.description, b.emulated, constraints={
            "arch": spec.arch, "cpu": spec.cpu, **({"qemu_cpu": b.qemu_cpu} if b.qemu_cpu else {})})
            for b in spec.boards]
        # TVM modules built for this host from the same Relax module as a cross-compiled artifact,
        # by artifact path: packaging checks them on the golden pairs when no aarch64 runtime is at hand.
        self._host_twins: dict[str, bytes] = {}

    def check(self, graph: Graph, board: str | None = None) -> CompatibilityReport:
        """Nodes the reference cannot run, bit-widths LiteRT does not run, and backends left out (notes)."""
        from edgepack.targets.linux.boards import get_board
        from edgepack.targets.linux.check import check_graph

        get_board(self.spec, board)
        return check_graph(graph, self.spec)

    def compile(self, graph: Graph, source: tuple[str, bytes], options: dict[str, Any]) -> Artifacts:
        """Graph + .tflite + .onnx + TVM .so as `options['backends']` asks (see compile.py)."""
        from edgepack.targets.linux.compile import compile_model

        return compile_model(graph, source, options, self.spec, self._host_twins)

    def runs_on_host(self, backend: str) -> bool:
        """False for a backend whose artifact is native code for another CPU (TVM .so for aarch64 on x86-64)."""
        from edgepack.runtime.backends.tvm import host_arch

        return backend != "tvm" or self.spec.arch == host_arch()

    def run_golden(self, backend: str, bundle_path: Path, progress: Any = None
                   ) -> tuple[dict[str, np.ndarray] | None, dict[str, Any]]:
        """Packaging hook for a backend that cannot run on this host (`runs_on_host` is False).

        Runs the golden inputs in the emulated board when its userland is already built (pi_emulator),
        else on the host build of the same Relax module; the manifest entry says which (`verified_on`).
        """
        from edgepack.targets.linux.pi_emulator import run_golden

        return run_golden(self.spec, backend, Path(bundle_path), self._host_twins, progress)


def _factory(name: str) -> LinuxTarget:
    return LinuxTarget(get_spec(name))


def rpi3_64() -> LinuxTarget:
    """The rpi3-64 target (Cortex-A53)."""
    return _factory("rpi3-64")


def rpi4() -> LinuxTarget:
    """The rpi4 target (Cortex-A72)."""
    return _factory("rpi4")


def rpi5() -> LinuxTarget:
    """The rpi5 target (Cortex-A76)."""
    return _factory("rpi5")


def aarch64() -> LinuxTarget:
    """The aarch64 target (generic ARMv8-A)."""
    return _factory("aarch64")


def x86_64() -> LinuxTarget:
    """The x86-64 target (this host)."""
    return _factory("x86-64")


__all__ = ["TARGETS", "LinuxTarget", "aarch64", "rpi3_64", "rpi4", "rpi5", "x86_64"]
