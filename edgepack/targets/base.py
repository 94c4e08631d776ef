"""The one interface every target implements, and what it returns."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from edgepack.ir.graph import Graph


@dataclass
class Issue:
    """One compatibility finding about a node (or the whole graph when node is None)."""

    node: str | None
    op: str | None
    reason: str
    fatal: bool = True


@dataclass
class CompatibilityReport:
    """What a target can and cannot do with a graph."""

    target: str
    issues: list[Issue] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when no fatal issue was found."""
        return not any(i.fatal for i in self.issues)


@dataclass
class Artifact:
    """One file of a bundle: path inside the bundle, role, bytes."""

    path: str
    role: str
    data: bytes


@dataclass
class Artifacts:
    """What `Target.compile` produces: files, the backends that can run them, and measured figures."""

    files: list[Artifact]
    backends: dict[str, dict[str, Any]]  # backend name -> {"artifact": path}
    default_backend: str
    memory: dict[str, Any] | None = None
    board: str | None = None  # the board the artifacts were built for (manifest `board`)


@dataclass
class Board:
    """A board a target can flash or run on."""

    name: str
    description: str
    emulated: bool = False
    constraints: dict[str, Any] = field(default_factory=dict)


class Target(Protocol):
    """A compilation target family (host, cortex-m, linux, edgetpu, fpga).

    Optional hooks, for backends whose artifacts cannot run in this process (firmware for a board, a
    shared object for another CPU): `runs_on_host(backend) -> bool` (default True) and
    `run_golden(backend, bundle_path, progress) -> (outputs or None, manifest fields)`, which the
    pipeline calls instead of a host Session to verify such a backend on the golden pairs.
    `prepare(graph, options) -> Graph` (optional) is the target's last rewrite of the graph before
    `check`/`compile` (e.g. the Edge TPU's uint8 model I/O). `compile_options` (optional, a set of names)
    lists the extra options `compile` takes from `package(target_options=...)`; others are refused.
    """

    name: str
    description: str
    boards: list[Board]
    # The (weight bits, activation bits) pairs this target executes; the quantizer produces nothing else.
    allowed_bits: frozenset[tuple[int, int]]

    def check(self, graph: Graph) -> CompatibilityReport:
        """Which nodes this target can execute."""
        ...

    def compile(self, graph: Graph, source: tuple[str, bytes], options: dict[str, Any]) -> Artifacts:
        """Artifacts for the bundle; `source` is (format, bytes) of the imported model file."""
        ...
