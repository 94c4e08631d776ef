"""Check a session against the bundle's golden pairs, within the tolerance the bundle states."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from edgepack.runtime.session import Session


@dataclass
class OutputCheck:
    """Agreement of one output with its golden values."""

    name: str
    max_abs_diff: float
    unit: str  # "lsb" for integer outputs, "abs" for float
    allowed: float
    rtol: float
    mismatched_samples: int
    top1_agreement: float | None  # fraction of samples whose argmax agrees (classifier-shaped outputs)
    passed: bool


@dataclass
class VerifyReport:
    """Result of `verify`."""

    backend: str
    samples: int
    outputs: list[OutputCheck]

    @property
    def passed(self) -> bool:
        """True when every output is within tolerance."""
        return all(o.passed for o in self.outputs)

    def to_dict(self) -> dict:
        """JSON form."""
        return {"backend": self.backend, "samples": self.samples, "passed": self.passed,
                "outputs": [asdict(o) for o in self.outputs]}


def compare(name: str, got: np.ndarray, want: np.ndarray, max_abs: float, rtol: float = 0.0) -> OutputCheck:
    """Compare stacked outputs [count, ...]: integers in LSB, floats with |d| <= max_abs + rtol*|want|."""
    is_int = want.dtype.kind in "iu"
    diff = np.abs(got.astype(np.float64) - want.astype(np.float64))
    bound = max_abs + rtol * np.abs(want.astype(np.float64))
    bad = (diff > bound).reshape(len(want), -1).any(axis=1)
    top1 = None
    if want.ndim >= 2 and want.reshape(len(want), -1).shape[1] > 1:
        top1 = float(np.mean(got.reshape(len(got), -1).argmax(1) == want.reshape(len(want), -1).argmax(1)))
    return OutputCheck(name, float(diff.max()) if diff.size else 0.0, "lsb" if is_int else "abs", max_abs, rtol,
                       int(bad.sum()), top1, not bad.any())


def verify(session: Session) -> VerifyReport:
    """Run every golden input through `session` and compare with the golden outputs."""
    inputs, outputs = session.bundle.golden()
    got = session.run(inputs)
    tol = session.tolerance
    checks = [compare(t.name, got[t.name], outputs[t.name], float(tol.get("max_abs", 0)), float(tol.get("rtol", 0)))
              for t in session.outputs]
    return VerifyReport(session.backend, int(next(iter(outputs.values())).shape[0]), checks)
