"""Fixtures for the quantizer tests: a tiny float graph built in code, and the shared KWS/AD models."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from edgepack.ir.graph import Graph, Node, Tensor
from edgepack.ir.ops import Op

SHARED = Path(__file__).resolve().parents[2].parent / "shared"


def tiny_graph(*, with_add: bool = True) -> Graph:
    """input [1,8,8,3] -> CONV 3x3 RELU -> DEPTHWISE 3x3 RELU -> (ADD skip) -> AVG POOL -> RESHAPE -> FC -> SOFTMAX."""
    rng = np.random.default_rng(1)
    t: dict[str, Tensor] = {}

    def act(name: str, shape: tuple[int, ...]) -> str:
        t[name] = Tensor(name, shape, "float32")
        return name

    def const(name: str, data: np.ndarray) -> str:
        t[name] = Tensor(name, data.shape, "float32", data=data.astype(np.float32))
        return name

    act("x", (1, 8, 8, 3))
    nodes = [
        Node(Op.CONV_2D, "conv", ["x", const("conv/w", rng.normal(0, 0.4, (6, 3, 3, 3))),
                                  const("conv/b", rng.normal(0, 0.1, 6))], [act("c1", (1, 8, 8, 6))],
             {"strides": [1, 1], "dilations": [1, 1], "pads": [1, 1, 1, 1], "activation": "RELU"}),
        Node(Op.DEPTHWISE_CONV_2D, "dw", ["c1", const("dw/w", rng.normal(0, 0.5, (1, 3, 3, 6))),
                                          const("dw/b", rng.normal(0, 0.1, 6))], [act("c2", (1, 8, 8, 6))],
             {"strides": [1, 1], "dilations": [1, 1], "pads": [1, 1, 1, 1], "depth_multiplier": 1,
              "activation": "RELU"}),
    ]
    last = "c2"
    if with_add:
        nodes.append(Node(Op.ADD, "skip", ["c1", "c2"], [act("s", (1, 8, 8, 6))], {"activation": "NONE"}))
        last = "s"
    nodes += [
        Node(Op.AVERAGE_POOL_2D, "pool", [last], [act("p", (1, 1, 1, 6))],
             {"kernel": [8, 8], "strides": [8, 8], "pads": [0, 0, 0, 0], "activation": "NONE"}),
        Node(Op.RESHAPE, "flat", ["p"], [act("f", (1, 6))]),
        Node(Op.FULLY_CONNECTED, "fc", ["f", const("fc/w", rng.normal(0, 0.8, (5, 6))),
                                        const("fc/b", rng.normal(0, 0.1, 5))], [act("logits", (1, 5))],
             {"activation": "NONE"}),
        Node(Op.SOFTMAX, "softmax", ["logits"], [act("y", (1, 5))], {"beta": 1.0}),
    ]
    g = Graph("tiny", t, nodes, ["x"], ["y"])
    g.validate()
    return g


@pytest.fixture
def tiny() -> Graph:
    """The tiny float graph."""
    return tiny_graph()


@pytest.fixture
def tiny_calib() -> dict[str, np.ndarray]:
    """64 calibration inputs for the tiny graph."""
    return {"x": np.random.default_rng(2).normal(0, 1, (64, 8, 8, 3)).astype(np.float32)}


def require_shared(*names: str) -> Path:
    """The shared directory, or skip the test when one of `names` (relative to it) is absent."""
    for name in names:
        if not (SHARED / name).exists():
            pytest.skip(f"shared test data {SHARED / name} is absent (see /work/shared/models/README.md)")
    return SHARED
