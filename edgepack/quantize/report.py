"""The quantization report: per-layer table, Pareto front (JSON and PNG) and the chosen point.

`write_report(directory, allocation, graph)` writes:

- `layers.txt`: one row per layer (op, weights, chosen bits, bytes, sensitivity of each alternative);
- `report.json`: the same table, the chosen point, the front, the sensitivities and the budget;
- `pareto.json`: the front alone (weight bytes, RAM bytes, predicted delta, measured quality);
- `pareto.png`: weight KB against measured quality (eval accuracy when measured for every point,
  else calibration SQNR), with uniform int8, uniform int4, the mixed points and the chosen one marked.
  Drawn with matplotlib's headless Agg backend; without matplotlib the PNG is skipped and the
  returned dict says why.

Usage: `paths = write_report("out/report", alloc, graph)`.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from edgepack.ir.graph import Graph
from edgepack.quantize.allocate import Allocation, Point, is_dominated, layer_cost
from edgepack.quantize.scheme import layers


def layer_table(graph: Graph, allocation: Allocation) -> list[dict[str, Any]]:
    """Rows: layer name, op, weight count, chosen bits, bytes at those bits, and sensitivity deltas."""
    rows = []
    for node in layers(graph):
        bits = allocation.chosen.layer_bits[node.name]
        wb, ram = layer_cost(graph, node, bits)
        ls = allocation.sensitivity.layers[node.name]
        rows.append({"layer": node.name, "op": node.op.value, "weights": ls.weights, "bits": f"w{bits[0]}a{bits[1]}",
                     "weight_bytes": wb, "ram_bytes": ram,
                     "sensitivity": {f"w{b[0]}a{b[1]}": d for b, d in ls.delta.items()}})
    return rows


def format_table(rows: list[dict[str, Any]], metric: str = "noise") -> str:
    """Fixed-width text of `layer_table` rows (long layer names are shortened from the left)."""
    alts = sorted({k for r in rows for k in r["sensitivity"]})
    head = f"{'#':>2}  {'layer':<32} {'op':<18} {'weights':>7} {'bits':<6} {'bytes':>6}  " + \
        "  ".join(f"d{metric}[{a}]".rjust(16) for a in alts)
    lines = [head, "-" * len(head)]
    for i, r in enumerate(rows):
        name = r["layer"] if len(r["layer"]) <= 32 else "…" + r["layer"][-31:]
        sens = "  ".join(f"{r['sensitivity'].get(a, 0.0):+16.3e}" for a in alts)
        lines.append(f"{i:>2}  {name:<32} {r['op']:<18} {r['weights']:>7} {r['bits']:<6} "
                     f"{r['weight_bytes']:>6}  {sens}")
    total = sum(r["weight_bytes"] for r in rows)
    lines.append(f"total weight + bias bytes: {total}")
    return "\n".join(lines)


def _quality_axis(front: list[Point]) -> tuple[str, str]:
    if all("eval_accuracy" in p.measured for p in front):
        return "eval_accuracy", "top-1 accuracy (eval data)"
    return "calib_sqnr_db", "output SQNR vs float, dB (calibration data)"


def plot_front(allocation: Allocation, path: str | os.PathLike[str], title: str = "") -> None:
    """Write the Pareto plot (weight KB vs measured quality) as PNG; needs matplotlib."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    front = allocation.front
    key, label = _quality_axis(front)
    fig, ax = plt.subplots(figsize=(6.4, 4.2), dpi=120)
    beaten = {id(p) for p in front if is_dominated(p, front, key)}  # on the plotted axis
    mixed = [p for p in front if not p.label.startswith("uniform")]
    best = [p for p in front if id(p) not in beaten]
    ax.plot([p.weight_bytes / 1024 for p in best], [p.measured[key] for p in best], color="0.7", lw=1, zorder=1)
    for group, style, name in (([p for p in mixed if id(p) not in beaten], {}, "mixed"),
                               ([p for p in mixed if id(p) in beaten], {"facecolors": "none", "edgecolors": "C0"},
                                "mixed, dominated when measured")):
        if group:
            ax.scatter([p.weight_bytes / 1024 for p in group], [p.measured[key] for p in group], s=25,
                       label=name, zorder=2, **style)
    for p, marker in ((p, "s" if "int8" in p.label else "^") for p in front if p.label.startswith("uniform")):
        ax.scatter([p.weight_bytes / 1024], [p.measured[key]], marker=marker, s=60, label=p.label, zorder=3)
    c = allocation.chosen
    if key in c.measured:
        ax.scatter([c.weight_bytes / 1024], [c.measured[key]], s=160, facecolors="none", edgecolors="red",
                   linewidths=1.5, label="chosen", zorder=4)
    ax.set_xlabel("weight + bias bytes (KB)")
    ax.set_ylabel(label)
    ax.set_title(title or "size vs quality (Pareto front)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def report_dict(graph: Graph, allocation: Allocation) -> dict[str, Any]:
    """Everything the report shows, as JSON-able data."""
    return {"model": graph.name, "budget": allocation.budget.__dict__, "float_accuracy": allocation.float_accuracy,
            "chosen": allocation.chosen.to_dict(), "layers": layer_table(graph, allocation),
            "front": [p.to_dict() for p in allocation.front], "sensitivity": allocation.sensitivity.to_dict()}


def write_report(directory: str | os.PathLike[str], allocation: Allocation, graph: Graph) -> dict[str, str]:
    """Write layers.txt, report.json, pareto.json and pareto.png into `directory`; returns name -> path (or reason)."""
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    data = report_dict(graph, allocation)
    paths = {}
    (out / "layers.txt").write_text(format_table(data["layers"], allocation.sensitivity.metric) + "\n")
    (out / "report.json").write_text(json.dumps(data, indent=1))
    (out / "pareto.json").write_text(json.dumps(data["front"], indent=1))
    paths.update(layers=str(out / "layers.txt"), report=str(out / "report.json"), pareto=str(out / "pareto.json"))
    try:
        plot_front(allocation, out / "pareto.png", title=f"{graph.name}: size vs quality")
        paths["plot"] = str(out / "pareto.png")
    except ImportError:
        paths["plot"] = "skipped: matplotlib is not installed (pip install matplotlib)"
    return paths
