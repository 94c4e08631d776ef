"""The golden numpy interpreter as a runtime backend (bit-exact with TFLM for integer graphs)."""

from __future__ import annotations

import numpy as np

from edgepack.errors import BundleError, ModelError
from edgepack.ir.graph import Graph
from edgepack.ir.reference import Interpreter
from edgepack.runtime.bundle import Bundle

NAME = "reference"


def available() -> bool:
    """Always available: it needs only numpy."""
    return True


def missing_hint() -> str:
    """Nothing to install."""
    return ""


def load_graph(bundle: Bundle) -> Graph:
    """The bundle's graph (role "graph" JSON plus role "weights" npz)."""
    try:
        return Graph.from_bytes(bundle.artifact("graph"), bundle.artifact("weights"))
    except ModelError as exc:
        raise BundleError(f"{bundle.path}: {exc.message}") from exc


class ReferenceSession:
    """Runs the bundle's graph with the golden interpreter."""

    def __init__(self, graph: Graph) -> None:
        self.interpreter = Interpreter(graph)

    def run(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """One inference (several if the inputs are stacked on the batch axis)."""
        return self.interpreter.run(inputs)


def load(bundle: Bundle, artifact: str | None = None, threads: int | None = None) -> ReferenceSession:
    """A session over the bundle's graph."""
    return ReferenceSession(load_graph(bundle))
