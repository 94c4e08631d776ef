"""Graph IR: tensors, nodes, the op set, importers (`from_tflite`, `from_onnx`) and the golden interpreter.

Importers are imported lazily so that reading a graph (as the runtime does) needs only numpy.
"""

from edgepack.ir.graph import Graph, Node, QuantParams, Tensor
from edgepack.ir.ops import Activation, Op

__all__ = ["Activation", "Graph", "Node", "Op", "QuantParams", "Tensor", "load_model"]


def load_model(path: str) -> Graph:
    """Import a .tflite or .onnx model file into a Graph (ModelError for anything else)."""
    from edgepack.ir.loader import load_model as _load

    return _load(path)
