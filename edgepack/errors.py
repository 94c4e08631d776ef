"""Errors that reach the user as one line (plus an optional hint); the CLI maps them to exit code 1."""

from __future__ import annotations


class EdgepackError(Exception):
    """A user-facing error: `message` says what went wrong, `hint` what to do next."""

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint


class ModelError(EdgepackError):
    """A model file cannot be read or is malformed."""


class UnsupportedOpsError(ModelError):
    """The model uses ops (or op variants) edgepack cannot import or execute.

    `problems` lists (op, count, first node, reason) so every problem is reported at once.
    """

    def __init__(self, model: str, problems: list[tuple[str, int, str, str]]) -> None:
        self.model = model
        self.problems = problems
        lines = [f"{op} x{count} (first: {first}){': ' + why if why else ''}" for op, count, first, why in problems]
        super().__init__(
            f"{model}: {len(problems)} unsupported op(s): " + "; ".join(lines),
            hint=f"run 'edgepack check {model}' for the full report",
        )


class QuantizationError(EdgepackError):
    """The graph or the configuration cannot be quantized as asked."""


class BundleError(EdgepackError):
    """A bundle file is corrupt, unsafe or inconsistent."""


class BundleIncompatibleError(BundleError):
    """A bundle was written by a format version (or for a backend) this reader cannot use."""


class BackendUnavailableError(EdgepackError):
    """A runtime backend's library is not installed."""


class InputError(EdgepackError):
    """Inputs given to a session do not match the model."""
