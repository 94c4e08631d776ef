"""The knapsack solver is exact under additivity, and the report files are written."""

from __future__ import annotations

import itertools
import json

import numpy as np
import pytest

from edgepack.quantize.allocate import Budget, allocate, layer_cost, solve_front
from edgepack.quantize.report import write_report
from edgepack.quantize.scheme import ALLOWED_MCU, QuantConfig, layers
from edgepack.quantize.sensitivity import LayerSensitivity, Sensitivity


def _fake_sensitivity(graph, seed: int) -> Sensitivity:
    rng = np.random.default_rng(seed)
    ls = {}
    for n in layers(graph):
        s = LayerSensitivity(n.name, n.op.value, graph.tensor(n.inputs[1]).size)
        s.delta = {(4, 8): float(rng.random()), (8, 16): -float(rng.random()) * 0.3}
        ls[n.name] = s
    return Sensitivity((8, 8), "noise", {"noise": 1.0}, ls)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_front_matches_brute_force(tiny, seed) -> None:
    sens = _fake_sensitivity(tiny, seed)
    config = QuantConfig(allowed=ALLOWED_MCU)
    nodes = layers(tiny)
    combos = []
    for pick in itertools.product(sorted(ALLOWED_MCU), repeat=len(nodes)):
        cost = sum(layer_cost(tiny, n, b)[0] for n, b in zip(nodes, pick, strict=True))
        value = sum(sens.delta(n.name, b) for n, b in zip(nodes, pick, strict=True))
        combos.append((cost, value))
    front = solve_front(tiny, sens, config, resolution=100_000)
    for p in front:
        best = min(v for c, v in combos if c <= p.weight_bytes)
        assert p.predicted == pytest.approx(best, abs=1e-12)
    sizes = [p.weight_bytes for p in front]
    values = [p.predicted for p in front]
    assert sizes == sorted(sizes) and values == sorted(values, reverse=True)
    assert min(sizes) == min(c for c, _ in combos)


def test_budgeted_allocation_and_report(tiny, tiny_calib, tmp_path) -> None:
    config = QuantConfig()
    full = sum(layer_cost(tiny, n, (8, 8))[0] for n in layers(tiny))
    alloc = allocate(tiny, tiny_calib, Budget(max_weight_bytes=int(full * 0.8)), config, max_points=6)
    assert alloc.chosen.weight_bytes <= full * 0.8
    assert {"uniform int8", "uniform int4"} <= {p.label for p in alloc.front}
    paths = write_report(tmp_path, alloc, tiny)
    data = json.loads((tmp_path / "report.json").read_text())
    assert data["chosen"]["weight_bytes"] == alloc.chosen.weight_bytes
    assert len(data["layers"]) == 3 and "w4a8" in data["layers"][0]["sensitivity"]
    assert (tmp_path / "pareto.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", paths["plot"]
    assert "total weight + bias bytes" in (tmp_path / "layers.txt").read_text()


def test_accuracy_drop_budget(tiny, tiny_calib) -> None:
    from edgepack.quantize.evaluate import run_real

    x = tiny_calib["x"]
    labels = run_real(tiny, {"x": x})["y"].argmax(1)  # the float model is 100 % on its own labels
    alloc = allocate(tiny, {"x": x[:32]}, Budget(max_accuracy_drop=0.2), QuantConfig(), eval_data={"x": x[32:]},
                     eval_labels=labels[32:], max_points=5)
    assert alloc.float_accuracy == 1.0
    assert 1.0 - alloc.chosen.measured["eval_accuracy"] <= 0.2


def test_measured_front_marks_dominated_points() -> None:
    from edgepack.quantize.allocate import Point, is_dominated

    def pt(size: int, sqnr: float) -> Point:
        return Point({}, size, 0, 0.0, measured={"calib_sqnr_db": sqnr})

    small_good, big_bad, big_best, tie = pt(100, 30.0), pt(200, 25.0), pt(300, 40.0), pt(300, 40.0)
    points = [small_good, big_bad, big_best, tie]
    flags = [is_dominated(p, points, "calib_sqnr_db") for p in points]
    assert flags[:2] == [False, True]
    assert flags[2:] == [False, False]  # equal points do not dominate each other
