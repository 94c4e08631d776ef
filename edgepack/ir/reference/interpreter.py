"""The golden interpreter: runs a Graph in numpy, float32 or TFLM-exact integer arithmetic.

`Interpreter(graph)` runs every op's Prepare once (deriving multipliers, shifts and clamp ranges);
`run(inputs)` evaluates the nodes in order. Inputs may stack several samples on the leading axis
when the graph's batch dimension is 1: the result then stacks the outputs alike.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import numpy as np

from edgepack.errors import EdgepackError, InputError, ModelError
from edgepack.ir.graph import Graph
from edgepack.ir.ops import Op
from edgepack.ir.reference import elementwise, linear, movement, pool, softmax
from edgepack.ir.reference.prepare import NodeContext, context


def _no_prepare(ctx: NodeContext) -> None:
    return None


# op -> (prepare, eval). Eval receives the node context and the input arrays (absent optional inputs as None).
KERNELS: dict[Op, tuple[Callable[[NodeContext], None], Callable[..., np.ndarray]]] = {
    Op.CONV_2D: (linear.prepare, linear.conv_2d),
    Op.DEPTHWISE_CONV_2D: (linear.prepare, linear.depthwise_conv_2d),
    Op.FULLY_CONNECTED: (linear.prepare, linear.fully_connected),
    Op.ADD: (elementwise.prepare_add, elementwise.add),
    Op.MUL: (elementwise.prepare_mul, elementwise.mul),
    Op.AVERAGE_POOL_2D: (pool.prepare_pool, pool.average_pool_2d),
    Op.MAX_POOL_2D: (pool.prepare_pool, pool.max_pool_2d),
    Op.MEAN: (pool.prepare_mean, pool.mean),
    Op.RESHAPE: (_no_prepare, movement.reshape),
    Op.CONCATENATION: (movement.prepare_concat, movement.concatenation),
    Op.PAD: (_no_prepare, movement.pad),
    Op.TRANSPOSE: (_no_prepare, movement.transpose),
    Op.SOFTMAX: (softmax.prepare, softmax.softmax),
    Op.RELU: (elementwise.prepare_clip, elementwise.clip),
    Op.RELU6: (elementwise.prepare_clip, elementwise.clip),
    Op.CLIP: (elementwise.prepare_clip, elementwise.clip),
    Op.LOGISTIC: (elementwise.prepare_sigmoid_tanh, elementwise.sigmoid),
    Op.TANH: (elementwise.prepare_sigmoid_tanh, elementwise.tanh_op),
    Op.QUANTIZE: (movement.prepare_quantize, movement.quantize),
    Op.DEQUANTIZE: (_no_prepare, movement.dequantize),
}


def prepare_all(graph: Graph) -> tuple[list[NodeContext], list[tuple[str, str, str]]]:
    """Prepare every node; returns the contexts and (node, op, reason) for each node that cannot run."""
    contexts: list[NodeContext] = []
    problems: list[tuple[str, str, str]] = []
    for node in graph.nodes:
        ctx = context(graph, node)
        try:
            KERNELS[node.op][0](ctx)
        except EdgepackError as exc:
            problems.append((node.name, node.op.value, exc.message))
        contexts.append(ctx)
    return contexts, problems


class Interpreter:
    """Executes one Graph; construct once, call `run` many times."""

    def __init__(self, graph: Graph) -> None:
        graph.validate()
        self.graph = graph
        self.contexts, problems = prepare_all(graph)
        if problems:
            name, op, reason = problems[0]
            more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
            raise ModelError(f"graph {graph.name!r}: node {name!r} ({op}) cannot run: {reason}{more}")

    def _check_input(self, name: str, value: np.ndarray) -> np.ndarray:
        t = self.graph.tensor(name)
        arr = np.asarray(value)
        if arr.dtype != np.dtype(t.dtype):
            raise InputError(f"input {name!r}: expected dtype {t.dtype}, got {arr.dtype}")
        if arr.shape == t.shape:
            return arr
        if t.shape and t.shape[0] == 1 and arr.shape[1:] == t.shape[1:]:
            return arr  # several samples stacked along the batch axis
        raise InputError(f"input {name!r}: expected shape {list(t.shape)}, got {list(arr.shape)}")

    def run(self, inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Evaluate the graph; `inputs` maps every graph input name to an array of its dtype."""
        missing = [n for n in self.graph.inputs if n not in inputs]
        if missing:
            raise InputError(f"missing input(s) {missing}; the model takes {self.graph.inputs}")
        values: dict[str, np.ndarray] = {n: self._check_input(n, inputs[n]) for n in self.graph.inputs}
        for name, t in self.graph.tensors.items():
            if t.is_const:
                values[name] = t.data  # type: ignore[assignment]
        for ctx in self.contexts:
            args = [values[n] if n else None for n in ctx.node.inputs]
            values[ctx.node.outputs[0]] = KERNELS[ctx.node.op][1](ctx, *args)
        return {n: values[n] for n in self.graph.outputs}


def run(graph: Graph, inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Run `graph` once on `inputs` (name -> array) and return name -> output array."""
    return Interpreter(graph).run(inputs)
