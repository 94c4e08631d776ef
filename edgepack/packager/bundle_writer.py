"""Write edgepack bundles (format 1.0); the format is documented in docs/bundle-format.md.

The writer fills what only it can know (format and edgepack versions, creation time, artifact sizes and
checksums, the golden npz), checks paths with the reader's own rules, and writes atomically: a temporary
file in the destination directory is fsynced, opened once with the reader, and renamed into place. On any
error (or Ctrl-C) the temporary file is removed and an existing bundle at `out_path` is left untouched.

Usage::

    write_bundle("kws.edgepack", manifest, [("model.tflite", "tflite", data)], golden_in, golden_out)
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import io
import json
import os
import re
import stat
import tempfile
import zipfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from numpy.lib import format as npy_format

import edgepack
from edgepack.errors import BundleError
from edgepack.runtime import bundle as reader

GOLDEN_PATH = "golden.npz"
"""Member path of the golden npz artifact the writer adds."""

_ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)  # fixed member timestamps: same inputs give the same bytes
_CREATED_RE = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?Z$")
_WRITER_FIELDS = ("format_version", "edgepack_version")


def write_bundle(
    out_path: str | os.PathLike[str],
    manifest: Mapping[str, Any],
    artifacts: Sequence[tuple[str, str, bytes | bytearray | memoryview]],
    golden_inputs: Mapping[str, np.ndarray] | None = None,
    golden_outputs: Mapping[str, np.ndarray] | None = None,
) -> Path:
    """Write a bundle to `out_path` atomically and return its path.

    `manifest` holds the caller's fields (target, board, model, inputs, outputs, layers, memory, tools,
    backends, default_backend, ...); it is copied, never modified. The writer sets `format_version`,
    `edgepack_version`, `artifacts` and, when golden data is given, `golden`; it sets `created` (UTC, now)
    unless the caller gave one. `artifacts` are (path, role, bytes). `golden_inputs` / `golden_outputs`
    map every input / output name to an array shaped [count, *shape] of the manifest's dtype; they are
    stored as `golden.npz` (role "golden"). Raises ValueError when the arguments do not make a valid bundle.

    Usage: ``write_bundle("kws.edgepack", manifest, [("model.tflite", "tflite", blob)], gin, gout)``
    """
    out = Path(out_path)
    doc = _json_copy(manifest)
    if "artifacts" in doc:
        raise ValueError("manifest['artifacts'] is filled by write_bundle; pass the artifacts as the `artifacts` "
                         "argument instead")
    for key, value in (("format_version", reader.FORMAT_VERSION), ("edgepack_version", edgepack.__version__)):
        if doc.get(key, value) != value:
            raise ValueError(f"manifest[{key!r}] is {doc[key]!r}, but this writer writes {value!r}; leave it out")
        doc[key] = value
    if "created" not in doc:
        doc["created"] = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    elif not (isinstance(doc["created"], str) and _CREATED_RE.match(doc["created"])):
        raise ValueError(f"manifest['created'] must be ISO-8601 UTC such as '2025-01-31T12:00:00Z', "
                         f"got {doc['created']!r}")

    members = _check_artifacts(artifacts)
    if (golden_inputs is None) != (golden_outputs is None):
        raise ValueError("give both golden_inputs and golden_outputs, or neither")
    if golden_inputs is not None and golden_outputs is not None:
        if "golden" in doc:
            raise ValueError("manifest['golden'] is filled by write_bundle when golden arrays are given; leave it out")
        if GOLDEN_PATH.casefold() in {p.casefold() for p, _, _ in members}:
            raise ValueError(f"artifact path {GOLDEN_PATH!r} is reserved for the golden data")
        npz, count = _golden_npz(doc, golden_inputs, golden_outputs)
        members.append((GOLDEN_PATH, "golden", npz))
        doc["golden"] = {"artifact": GOLDEN_PATH, "count": count}
    members.sort(key=lambda member: member[0])
    doc["artifacts"] = [
        {"path": path, "role": role, "size": len(data), "sha256": hashlib.sha256(data).hexdigest()}
        for path, role, data in members
    ]
    try:
        reader.check_manifest(doc, where=f"refusing to write {out}")
    except BundleError as exc:
        raise ValueError(exc.message) from exc
    manifest_bytes = json.dumps(doc, indent=2, sort_keys=True, allow_nan=False).encode("utf-8") + b"\n"
    if len(manifest_bytes) > reader.MAX_MANIFEST_BYTES:
        raise ValueError(f"manifest is {len(manifest_bytes)} bytes, more than readers accept "
                         f"({reader.MAX_MANIFEST_BYTES})")
    _write_atomically(out, [(reader.MANIFEST_NAME, manifest_bytes), *((p, d) for p, _, d in members)])
    return out


def _json_copy(manifest: Mapping[str, Any]) -> dict[str, Any]:
    """Deep-copy through JSON, turning numpy scalars and arrays into plain numbers and lists."""

    def plain(value: object) -> object:
        if isinstance(value, np.generic):
            return value.item()
        if isinstance(value, np.ndarray):
            return value.tolist()
        if isinstance(value, tuple):
            return list(value)
        raise TypeError(f"manifest value {value!r} ({type(value).__name__}) is not JSON-serializable")

    try:
        return json.loads(json.dumps(dict(manifest), default=plain, allow_nan=False))
    except (TypeError, ValueError) as exc:
        raise ValueError(f"manifest cannot be written as JSON: {exc}") from exc


def _check_artifacts(artifacts: Sequence[tuple[str, str, bytes | bytearray | memoryview]]) -> list[
        tuple[str, str, bytes]]:
    members: list[tuple[str, str, bytes]] = []
    seen: set[str] = set()
    total = 0
    for item in artifacts:
        path, role, data = item
        why = reader.path_problem(path)
        if why:
            raise ValueError(f"artifact path {path!r} is not allowed: {why}")
        if path == reader.MANIFEST_NAME or path.casefold() in seen:
            raise ValueError(f"artifact path {path!r} is reserved or used twice (paths compare case-insensitively)")
        seen.add(path.casefold())
        if not isinstance(role, str) or not role:
            raise ValueError(f"artifact {path!r}: role must be a non-empty string, got {role!r}")
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise ValueError(f"artifact {path!r}: expected bytes, got {type(data).__name__}")
        data = bytes(data)
        if len(data) > reader.MAX_MEMBER_BYTES:
            raise ValueError(f"artifact {path!r} is {len(data)} bytes, more than readers accept "
                             f"({reader.MAX_MEMBER_BYTES})")
        total += len(data)
        if total > reader.MAX_TOTAL_BYTES:
            raise ValueError(f"artifacts total more than readers accept ({reader.MAX_TOTAL_BYTES} bytes)")
        members.append((path, role, data))
    return members


def _golden_npz(doc: dict[str, Any], golden_inputs: Mapping[str, np.ndarray],
                golden_outputs: Mapping[str, np.ndarray]) -> tuple[bytes, int]:
    """Build the golden npz (keys input_<i> / output_<j>, manifest order) and return it with the pair count."""
    arrays: list[tuple[str, np.ndarray]] = []
    counts: set[int] = set()
    for kind, given in (("input", golden_inputs), ("output", golden_outputs)):
        specs = doc.get(kind + "s")
        if not isinstance(specs, list) or not all(isinstance(s, dict) and "name" in s for s in specs):
            raise ValueError(f"manifest[{kind + 's'!r}] must list tensors with names before golden data can be stored")
        names = [spec["name"] for spec in specs]
        missing, extra = sorted(set(names) - set(given)), sorted(set(given) - set(names))
        if missing or extra:
            raise ValueError(f"golden_{kind}s must have exactly the manifest's {kind} names {names}; "
                             f"missing {missing}, unexpected {extra}")
        for i, spec in enumerate(specs):
            array = np.ascontiguousarray(given[spec["name"]])
            try:
                dtype = np.dtype(spec.get("dtype"))
            except TypeError as exc:
                raise ValueError(f"{kind} {spec['name']!r}: dtype {spec.get('dtype')!r} is not a numpy dtype") from exc
            shape = spec.get("shape", [])
            if array.dtype != dtype or array.ndim != len(shape) + 1 or any(
                    want >= 0 and got != want for want, got in zip(shape, array.shape[1:], strict=True)):
                raise ValueError(f"golden {kind} {spec['name']!r} is {array.dtype}{list(array.shape)}, expected "
                                 f"{dtype}[count, *{shape}]")
            counts.add(array.shape[0])
            arrays.append((f"{kind}_{i}", array))
    if len(counts) != 1:
        raise ValueError(f"golden arrays disagree on the number of pairs (leading dimension): {sorted(counts)}")
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as npz:
        for key, array in arrays:
            npy = io.BytesIO()
            npy_format.write_array(npy, array, allow_pickle=False)
            _add_member(npz, key + ".npy", npy.getvalue(), zipfile.ZIP_STORED)  # the bundle deflates the npz
    return buffer.getvalue(), counts.pop()


def _add_member(zf: zipfile.ZipFile, name: str, data: bytes, compression: int = zipfile.ZIP_DEFLATED) -> None:
    """Add one member with fixed metadata, so identical inputs give identical archives."""
    info = zipfile.ZipInfo(name, date_time=_ZIP_EPOCH)
    info.compress_type = compression
    info.create_system = 3  # unix, so external_attr holds a mode
    info.external_attr = (stat.S_IFREG | 0o644) << 16
    zf.writestr(info, data, compresslevel=6)


def _write_atomically(out: Path, members: list[tuple[str, bytes]]) -> None:
    """Write the zip to a temp file beside `out`, fsync, check it with the reader, then rename over `out`."""
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as f:
            with zipfile.ZipFile(f, "w") as zf:
                for name, data in members:
                    _add_member(zf, name, data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~_umask())
        reader.Bundle.open(tmp).close()  # never leave behind a bundle the reader would refuse
        os.replace(tmp, out)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _fsync_directory(out.parent)


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _fsync_directory(directory: Path) -> None:
    """Make the rename durable; not every platform can open a directory, so this is best effort."""
    with contextlib.suppress(OSError):
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
