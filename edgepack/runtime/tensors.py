"""Tensor descriptions from a manifest, and the conversions a session applies at its edges.

Float inputs given to an integer model are quantized with the bundle's parameters
(round(x / scale) + zero_point in float32, as TFLM's QUANTIZE); integer outputs can be dequantized.
"""

from __future__ import annotations

import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from edgepack.errors import InputError

_INT_LIMITS = {"int8": (-128, 127), "uint8": (0, 255), "int16": (-32768, 32767)}


@dataclass(frozen=True)
class TensorInfo:
    """Name, shape, dtype and (for integer tensors) the per-tensor scale and zero point of a model I/O."""

    name: str
    shape: tuple[int, ...]
    dtype: str
    scale: float | None = None
    zero_point: int | None = None

    @classmethod
    def from_manifest(cls, spec: dict[str, Any]) -> TensorInfo:
        """Build from a manifest `inputs`/`outputs` entry."""
        q = spec.get("quant")
        return cls(spec["name"], tuple(spec["shape"]), spec["dtype"],
                   float(q["scale"][0]) if q else None, int(q["zero_point"][0]) if q else None)

    @property
    def quantized(self) -> bool:
        """True for integer tensors that carry a scale."""
        return self.scale is not None

    def quantize(self, x: np.ndarray) -> np.ndarray:
        """Real values -> this tensor's integer dtype (float32 math, round half away from zero, saturate)."""
        x = np.asarray(x, dtype=np.float32)
        if np.isnan(x).any():
            raise InputError(f"input {self.name!r}: NaN cannot be quantized to {self.dtype}")
        q = np.sign(x) * np.floor(np.abs(x / np.float32(self.scale)) + np.float32(0.5))
        lo, hi = _INT_LIMITS[self.dtype]
        # Saturate before the integer cast: casting a float beyond int64 (1e30, inf) is undefined in numpy.
        return np.clip(q.astype(np.float64) + self.zero_point, lo, hi).astype(self.dtype)

    def dequantize(self, q: np.ndarray) -> np.ndarray:
        """Integer values -> real values (float32)."""
        return (np.float64(self.scale) * (np.asarray(q).astype(np.int64) - self.zero_point)).astype(np.float32)

    def coerce(self, value: Any) -> tuple[np.ndarray, bool]:
        """Check and convert one user input; returns (array, stacked) where stacked means one extra leading axis."""
        arr = np.asarray(value)
        if arr.shape == self.shape:
            stacked = False
        elif arr.shape[1:] == self.shape:
            stacked = True
        else:
            raise InputError(f"input {self.name!r}: expected shape {list(self.shape)} (or a stack "
                             f"[N, {', '.join(map(str, self.shape))}]), got {list(arr.shape)}")
        if arr.dtype == np.dtype(self.dtype):
            return arr, stacked
        if arr.dtype.kind == "f" and self.quantized:
            return self.quantize(arr), stacked
        if arr.dtype.kind == "f" and self.dtype == "float32":
            return arr.astype(np.float32), stacked
        if arr.dtype.kind in "iu" and self.dtype == "float32":
            return arr.astype(np.float32), stacked
        raise InputError(f"input {self.name!r}: expected {self.dtype} (or real values to quantize), got {arr.dtype}",
                         hint="pass the model's integer dtype, or float32 real values for a quantized input")


def read_input_file(path: str | Path, infos: list[TensorInfo]) -> dict[str, np.ndarray]:
    """Arrays for each model input from an .npy (single-input models) or .npz file, without pickle.

    An .npz gives arrays named after the inputs; a single-input model also takes its first array.
    """
    p = Path(path)
    if not p.is_file():
        raise InputError(f"{p}: no such file")
    names = [t.name for t in infos]
    with p.open("rb") as f:
        magic = f.read(6)
    if not magic.startswith((b"\x93NUMPY", b"PK\x03\x04", b"PK\x05\x06")):
        # np.load would treat any other file as a pickle and blame pickling, which misleads.
        raise InputError(f"{p}: not a .npy or .npz file (no NumPy or zip signature at the start)",
                         hint="save inputs with np.save(path, array) or np.savez(path, **{name: array})")
    try:
        data = np.load(p, allow_pickle=False)
        if isinstance(data, np.ndarray):
            if len(infos) != 1:
                raise InputError(f"{p}: a .npy holds one array but the model takes {len(infos)} inputs {names}",
                                 hint="save an .npz with one array per input name")
            return {names[0]: data}
        with data:
            found = {n: data[n] for n in names if n in data.files}
            if not found and len(names) == 1 and data.files:
                found = {names[0]: data[data.files[0]]}
    except (ValueError, OSError, EOFError, zipfile.BadZipFile) as exc:
        raise InputError(f"{p}: not a readable .npy/.npz file ({exc})") from exc
    missing = [n for n in names if n not in found]
    if missing:
        raise InputError(f"{p}: no array for input(s) {missing}",
                         hint="name the arrays after the model inputs: np.savez(f, **{name: array})")
    return found
