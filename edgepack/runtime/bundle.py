"""Read and verify edgepack bundles (format 1.x); the format is documented in docs/bundle-format.md.

A bundle is one zip archive with ``manifest.json`` at its root plus the artifact members the manifest lists.
Nothing in the archive is trusted: member names are checked before anything is read, every read is bounded
by the size the manifest declares (never by the zip header alone), and every artifact is checked against
its sha256 before it is returned.

This module is part of the thin runtime: it imports only the standard library, numpy and edgepack.errors.

Usage::

    with Bundle.open("kws.edgepack") as bundle:
        tflite = bundle.artifact("tflite")      # bytes, verified against size + sha256
        inputs, outputs = bundle.golden()        # {name: array shaped [count, *shape]}
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import stat
import tempfile
import zipfile
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import Any, NoReturn

import numpy as np
from numpy.lib import format as npy_format

from edgepack.errors import BundleError, BundleIncompatibleError

FORMAT_VERSION = "1.0"
"""The format version this module writes and the newest one it fully understands (reads any 1.x)."""
FORMAT_MAJOR = 1
MANIFEST_NAME = "manifest.json"

MAX_MANIFEST_BYTES = 16 * 2**20
"""Largest manifest.json accepted (uncompressed bytes)."""
MAX_MEMBER_BYTES = 2**30
"""Largest single member accepted (uncompressed bytes)."""
MAX_TOTAL_BYTES = 4 * 2**30
"""Largest sum of uncompressed member sizes accepted."""
MAX_MEMBERS = 4096
"""Most members accepted in one bundle (and in the golden npz)."""
MAX_PATH_CHARS = 512
"""Longest member path accepted."""

MANIFEST_SCHEMA_PATH = Path(__file__).with_name("manifest.schema.json")
"""JSON Schema (draft 2020-12) of manifest.json, for tools and tests; the reader does not need it."""

KNOWN_ROLES = ("graph", "weights", "golden", "tflite", "onnx", "firmware", "sources", "report")
"""Artifact roles with a documented meaning; `role` is a free string, readers ignore roles they do not use."""

_CHUNK = 2**20
_NPY_HEADER_SLACK = 2**16
_VERSION_RE = re.compile(r"^(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)$")
_SHA256_RE = re.compile(r"^[0-9a-f]{64}$")
_HINT_DAMAGED = "the file is damaged or was not written by edgepack; rebuild the bundle or copy it again"


def path_problem(name: object) -> str | None:
    """Say why `name` is not a safe bundle member path, or return None when it is.

    Shared by the reader and the writer. A safe path is relative, uses '/' only, has no empty, '.' or
    '..' components, no backslash, no ':' (drive letters, NTFS streams) and no control characters.

    Usage: ``if (why := path_problem("../x")): raise ...``
    """
    if not isinstance(name, str) or not name:
        return "path is empty or not a string"
    if len(name) > MAX_PATH_CHARS:
        return f"path is longer than {MAX_PATH_CHARS} characters"
    if "\\" in name:
        return "path contains a backslash"
    if name.startswith("/"):
        return "path is absolute"
    if ":" in name:
        return "path contains ':' (drive letter or stream name)"
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in name):
        return "path contains a control character"
    for part in name.split("/"):
        if part == "":
            return "path has an empty component (leading, trailing or doubled '/')"
        if part in (".", ".."):
            return f"path has a '{part}' component"
    return None


def parse_format_version(text: object) -> tuple[int, int]:
    """Parse a "MAJOR.MINOR" format version; raise ValueError if it is not one.

    Usage: ``parse_format_version("1.0") == (1, 0)``
    """
    match = _VERSION_RE.match(text) if isinstance(text, str) else None
    if match is None:
        raise ValueError(f"expected a string 'MAJOR.MINOR' such as '{FORMAT_VERSION}', got {text!r}")
    return int(match.group(1)), int(match.group(2))


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: object) -> bool:
    return (isinstance(value, (int, float)) and not isinstance(value, bool)) and value == value  # NaN != NaN


def check_manifest(manifest: object, where: str) -> None:
    """Check the fields the runtime relies on; raise BundleError naming the first bad field.

    This is the minimal structural check done on every open (no jsonschema at run time). Unknown fields
    are ignored, as the evolution rules require. `where` prefixes the message (usually the bundle path).

    Usage: ``check_manifest(json.loads(text), where="kws.edgepack")``
    """

    def fail(field: str, expected: str, got: object) -> NoReturn:
        shown = repr(got) if len(repr(got)) <= 80 else repr(got)[:77] + "..."
        raise BundleError(f"{where}: manifest field {field}: expected {expected}, got {shown}", hint=_HINT_DAMAGED)

    if not isinstance(manifest, dict):
        fail("(top level)", "a JSON object", type(manifest).__name__)
    for key in ("format_version", "edgepack_version", "created", "target"):
        if not isinstance(manifest.get(key), str):
            fail(key, "a string", manifest.get(key))
    if manifest.get("board") is not None and not isinstance(manifest["board"], str):
        fail("board", "a string or null", manifest["board"])
    model = manifest.get("model")
    if not isinstance(model, dict) or not isinstance(model.get("name"), str):
        fail("model", "an object with a string 'name'", model)

    for kind in ("inputs", "outputs"):
        tensors = manifest.get(kind)
        if not isinstance(tensors, list) or not tensors:
            fail(kind, "a non-empty list", tensors)
        names: set[str] = set()
        for i, spec in enumerate(tensors):
            field = f"{kind}[{i}]"
            if not isinstance(spec, dict) or not isinstance(spec.get("name"), str):
                fail(field, "an object with a string 'name'", spec)
            if spec["name"] in names:
                fail(f"{field}.name", "a name unique among " + kind, spec["name"])
            names.add(spec["name"])
            shape = spec.get("shape")
            if not isinstance(shape, list) or not all(_is_int(d) and d >= -1 for d in shape):
                fail(f"{field}.shape", "a list of integers (-1 for a dynamic dimension)", shape)
            if not isinstance(spec.get("dtype"), str):
                fail(f"{field}.dtype", "a dtype name such as 'int8'", spec.get("dtype"))
            quant = spec.get("quant")
            if quant is None:
                continue
            if not isinstance(quant, dict):
                fail(f"{field}.quant", "null or an object", quant)
            scale, zero_point, axis = quant.get("scale"), quant.get("zero_point"), quant.get("axis")
            if not isinstance(scale, list) or not scale or not all(_is_number(s) and s > 0 for s in scale):
                fail(f"{field}.quant.scale", "a non-empty list of numbers > 0", scale)
            if not isinstance(zero_point, list) or not all(_is_int(z) for z in zero_point):
                fail(f"{field}.quant.zero_point", "a list of integers", zero_point)
            if len(zero_point) != len(scale):
                fail(f"{field}.quant.zero_point", f"{len(scale)} entries (one per scale)", len(zero_point))
            if axis is None and len(scale) != 1:
                fail(f"{field}.quant.scale", "one entry when axis is null", len(scale))
            if axis is not None and not (_is_int(axis) and 0 <= axis < len(shape)):
                fail(f"{field}.quant.axis", f"null or an integer in [0, {len(shape)})", axis)
            if not (_is_int(quant.get("bits")) and 1 <= quant["bits"] <= 64):
                fail(f"{field}.quant.bits", "an integer in [1, 64]", quant.get("bits"))

    artifacts = manifest.get("artifacts")
    if not isinstance(artifacts, list):
        fail("artifacts", "a list", artifacts)
    paths: set[str] = set()
    for i, entry in enumerate(artifacts):
        field = f"artifacts[{i}]"
        if not isinstance(entry, dict):
            fail(field, "an object", entry)
        why = path_problem(entry.get("path"))
        if why:
            fail(f"{field}.path", f"a safe relative path ({why})", entry.get("path"))
        if entry["path"] == MANIFEST_NAME:
            fail(f"{field}.path", "any path but the reserved 'manifest.json'", entry["path"])
        if entry["path"].casefold() in paths:
            fail(f"{field}.path", "a path unique among artifacts (case-insensitively)", entry["path"])
        paths.add(entry["path"].casefold())
        if not isinstance(entry.get("role"), str) or not entry["role"]:
            fail(f"{field}.role", "a non-empty string", entry.get("role"))
        if not (_is_int(entry.get("size")) and entry["size"] >= 0):
            fail(f"{field}.size", "a byte count >= 0", entry.get("size"))
        if not (isinstance(entry.get("sha256"), str) and _SHA256_RE.match(entry["sha256"])):
            fail(f"{field}.sha256", "64 lowercase hex digits", entry.get("sha256"))
    exact_paths = {entry["path"] for entry in artifacts}

    golden = manifest.get("golden")
    if golden is not None:
        if not isinstance(golden, dict) or golden.get("artifact") not in exact_paths:
            fail("golden.artifact", "the path of an artifact listed in 'artifacts'", golden)
        if not (_is_int(golden.get("count")) and golden["count"] >= 0):
            fail("golden.count", "an integer >= 0", golden.get("count"))

    backends = manifest.get("backends", {})
    if not isinstance(backends, dict):
        fail("backends", "an object mapping backend name to {artifact, tolerance}", backends)
    for name, backend in backends.items():
        field = f"backends.{name}"
        if not isinstance(backend, dict) or backend.get("artifact") not in exact_paths:
            fail(f"{field}.artifact", "the path of an artifact listed in 'artifacts'", backend)
        tolerance = backend.get("tolerance")
        if not isinstance(tolerance, dict):
            fail(f"{field}.tolerance", "an object {max_abs, unit}", tolerance)
        if not (_is_number(tolerance.get("max_abs")) and tolerance["max_abs"] >= 0):
            fail(f"{field}.tolerance.max_abs", "a number >= 0", tolerance.get("max_abs"))
        if not isinstance(tolerance.get("unit"), str):
            fail(f"{field}.tolerance.unit", "a string ('lsb' or 'abs')", tolerance.get("unit"))
        if "rtol" in tolerance and not (_is_number(tolerance["rtol"]) and tolerance["rtol"] >= 0):
            fail(f"{field}.tolerance.rtol", "a number >= 0", tolerance["rtol"])
    default = manifest.get("default_backend")
    if default is not None and default not in backends:
        fail("default_backend", f"one of the backends {sorted(backends)}", default)

    for key, kind in (("layers", list), ("memory", dict), ("tools", dict)):
        if key in manifest and not isinstance(manifest[key], kind):
            fail(key, f"a JSON {'array' if kind is list else 'object'}", manifest[key])


def _no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise ValueError(f"duplicate key {key!r}")
        result[key] = value
    return result


def _refuse_constant(name: str) -> None:
    raise ValueError(f"{name} is not valid JSON")


def _read_bounded(zf: zipfile.ZipFile, info: zipfile.ZipInfo, limit: int, where: str) -> bytes:
    """Read one member, never more than `limit` + 1 bytes whatever its header claims."""
    try:
        with zf.open(info) as f:
            data = f.read(limit + 1)
    except Exception as exc:  # zipfile raises many types on damaged input (BadZipFile, zlib.error, EOFError, ...)
        raise BundleError(f"{where}: cannot read member '{info.filename}': {exc} (bundle corrupted or truncated)",
                          hint=_HINT_DAMAGED) from exc
    if len(data) > limit:
        raise BundleError(f"{where}: member '{info.filename}' is larger than {limit} bytes", hint=_HINT_DAMAGED)
    return data


class Bundle:
    """An open, structurally checked bundle. Create it with `Bundle.open(path)`; close it (or use `with`).

    Attributes: `path` (Path), `manifest` (dict, as parsed from manifest.json), `format_version` ("1.x").
    """

    def __init__(self, path: Path, zf: zipfile.ZipFile, manifest: dict[str, Any],
                 members: dict[str, zipfile.ZipInfo]) -> None:
        self.path = path
        self.manifest = manifest
        self.format_version: str = manifest["format_version"]
        self._zip = zf
        self._members = members

    # -- opening -------------------------------------------------------------------------------------------

    @classmethod
    def open(cls, path: str | os.PathLike[str]) -> Bundle:
        """Open `path` and check its structure (names, sizes, manifest); checksums are checked on access.

        Raises BundleError (damaged, unsafe or inconsistent file) or BundleIncompatibleError (newer major
        format version). Usage: ``with Bundle.open("kws.edgepack") as b: ...``
        """
        path = Path(path)
        if not path.exists():
            raise BundleError(f"{path}: no such file", hint="check the path; 'edgepack package' writes bundles")
        if not path.is_file():
            raise BundleError(f"{path} is not an edgepack bundle (not a regular file)")
        try:
            zf = zipfile.ZipFile(path)
        except Exception as exc:  # BadZipFile, OSError, ValueError, struct.error, ... on garbage or truncation
            raise BundleError(f"{path} is not an edgepack bundle (truncated or not a zip archive): {exc}",
                              hint=_HINT_DAMAGED) from exc
        try:
            members = _check_members(zf, str(path))
            manifest = _read_manifest(zf, members, str(path))
            check_manifest(manifest, str(path))
            for entry in manifest["artifacts"]:
                info = members.get(entry["path"])
                if info is None:
                    raise BundleError(f"{path}: artifact '{entry['path']}' (role {entry['role']}) is listed in the "
                                      "manifest but missing from the archive", hint=_HINT_DAMAGED)
                if info.file_size != entry["size"]:
                    raise BundleError(f"{path}: artifact '{entry['path']}' is {info.file_size} bytes in the archive, "
                                      f"the manifest says {entry['size']} (bundle corrupted or modified)",
                                      hint=_HINT_DAMAGED)
        except BaseException:
            zf.close()
            raise
        return cls(path, zf, manifest, members)

    def close(self) -> None:
        """Close the underlying archive. Usage: ``bundle.close()``"""
        self._zip.close()

    def __enter__(self) -> Bundle:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Bundle({str(self.path)!r}, format {self.format_version}, target {self.manifest.get('target')!r})"

    # -- artifacts -----------------------------------------------------------------------------------------

    @property
    def artifacts(self) -> list[dict[str, Any]]:
        """The manifest's artifact entries ({path, role, size, sha256}). Usage: ``[a["role"] for a in b.artifacts]``"""
        return self.manifest["artifacts"]

    def artifact_entry(self, role_or_path: str) -> dict[str, Any]:
        """The manifest entry for the only artifact with this role, else the artifact with this path.

        Raises BundleError when nothing matches or the role is ambiguous. Usage: ``b.artifact_entry("tflite")``
        """
        by_role = [a for a in self.artifacts if a["role"] == role_or_path]
        if len(by_role) == 1:
            return by_role[0]
        for entry in self.artifacts:
            if entry["path"] == role_or_path:
                return entry
        if by_role:
            paths = ", ".join(a["path"] for a in by_role)
            raise BundleError(f"{self.path}: {len(by_role)} artifacts have role '{role_or_path}' ({paths})",
                              hint="ask for one of them by path")
        known = ", ".join(f"{a['path']} ({a['role']})" for a in self.artifacts) or "none"
        raise BundleError(f"{self.path}: no artifact with role or path '{role_or_path}'; artifacts: {known}")

    def artifact(self, role_or_path: str) -> bytes:
        """The artifact's bytes, checked against the manifest's size and sha256 first.

        Usage: ``model = bundle.artifact("tflite")``
        """
        chunks: list[bytes] = []
        self._copy_verified(self.artifact_entry(role_or_path), chunks.append)
        return b"".join(chunks)

    def verify_all(self) -> None:
        """Check every artifact's size and sha256 (streaming); raise BundleError on the first mismatch.

        Usage: ``bundle.verify_all()``
        """
        for entry in self.artifacts:
            self._copy_verified(entry, lambda chunk: None)

    def _copy_verified(self, entry: dict[str, Any], sink: Callable[[bytes], object]) -> None:
        """Stream one artifact into `sink`, reading at most size + 1 bytes, then check size and sha256."""
        name, size = entry["path"], entry["size"]
        hasher = hashlib.sha256()
        total = 0
        try:
            stream = self._zip.open(self._members[name])
        except Exception as exc:  # BadZipFile on a damaged local header, ...
            raise self._damaged(name, exc) from exc
        with stream:
            while total <= size:
                try:
                    chunk = stream.read(min(_CHUNK, size + 1 - total))
                except Exception as exc:  # BadZipFile (bad CRC), zlib.error, EOFError, ... on damaged data
                    raise self._damaged(name, exc) from exc
                if not chunk:
                    break
                total += len(chunk)
                hasher.update(chunk)
                sink(chunk)  # outside the try: an error writing the sink is the caller's, not the bundle's
        if total != size:
            got = f"more than {size}" if total > size else str(total)
            raise BundleError(f"{self.path}: artifact '{name}' has {got} bytes, the manifest says {size} "
                              "(bundle corrupted or modified)", hint=_HINT_DAMAGED)
        digest = hasher.hexdigest()
        if digest != entry["sha256"]:
            raise BundleError(f"{self.path}: artifact '{name}' (role {entry['role']}) checksum mismatch (bundle "
                              f"corrupted or modified): manifest sha256 {entry['sha256'][:16]}..., "
                              f"archive {digest[:16]}...", hint=_HINT_DAMAGED)

    def _damaged(self, name: str, exc: BaseException) -> BundleError:
        return BundleError(f"{self.path}: cannot read artifact '{name}': {exc} (bundle corrupted or truncated)",
                           hint=_HINT_DAMAGED)

    def extract_to(self, directory: str | os.PathLike[str]) -> dict[str, Path]:
        """Write every artifact under `directory` (created if needed), verified, never outside it.

        Each file is streamed to a temporary file beside its destination and renamed into place only after
        its checksum matched; existing symlinks that would lead outside `directory` are refused.
        Returns {artifact path: written file}. Usage: ``files = bundle.extract_to(tmp_dir)``
        """
        root = Path(directory)
        root.mkdir(parents=True, exist_ok=True)
        root = root.resolve()
        written: dict[str, Path] = {}
        for entry in self.artifacts:
            target = root.joinpath(*entry["path"].split("/"))
            parent = target.parent
            parent.mkdir(parents=True, exist_ok=True)
            if not parent.resolve().is_relative_to(root):
                raise BundleError(f"{self.path}: refusing to extract '{entry['path']}': {parent} leads outside "
                                  f"{root} (a symlink?)", hint="extract into an empty directory")
            if target.is_symlink() or (target.exists() and not target.is_file()):
                raise BundleError(f"{self.path}: refusing to extract '{entry['path']}': {target} exists and is not "
                                  "a regular file", hint="extract into an empty directory")
            fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".part", dir=parent)
            try:
                with os.fdopen(fd, "wb") as out:
                    self._copy_verified(entry, out.write)
                os.replace(tmp_name, target)
            except BaseException:
                Path(tmp_name).unlink(missing_ok=True)
                raise
            written[entry["path"]] = target
        return written

    # -- golden data ---------------------------------------------------------------------------------------

    def golden(self) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
        """The golden pairs as (inputs, outputs): {tensor name: array shaped [count, *shape]}.

        Names and order follow manifest `inputs` / `outputs`; the npz keys are `input_<i>` / `output_<j>`.
        The npz is read without pickle and with every array's size bounded by the manifest's shapes.
        Usage: ``inputs, outputs = bundle.golden(); x0 = {k: v[0] for k, v in inputs.items()}``
        """
        golden = self.manifest.get("golden")
        if golden is None:
            raise BundleError(f"{self.path}: bundle has no golden input/output pairs",
                              hint="rebuild it with golden data to verify devices from the bundle alone")
        entry = next(a for a in self.artifacts if a["path"] == golden["artifact"])
        chunks: list[bytes] = []
        self._copy_verified(entry, chunks.append)
        where = f"{self.path}: golden artifact '{entry['path']}'"
        try:
            npz = zipfile.ZipFile(io.BytesIO(b"".join(chunks)))
        except Exception as exc:
            raise BundleError(f"{where} is not an npz archive: {exc}", hint=_HINT_DAMAGED) from exc
        with npz:
            infos = npz.infolist()
            if len(infos) > MAX_MEMBERS or len({i.filename for i in infos}) != len(infos):
                raise BundleError(f"{where} has too many or duplicate members", hint=_HINT_DAMAGED)
            members = {info.filename: info for info in infos}
            result: tuple[dict[str, np.ndarray], dict[str, np.ndarray]] = ({}, {})
            for out, kind in zip(result, ("input", "output"), strict=True):
                for i, spec in enumerate(self.manifest[kind + "s"]):
                    out[spec["name"]] = self._golden_array(npz, members, f"{kind}_{i}", spec, golden["count"], where)
        return result

    def _golden_array(self, npz: zipfile.ZipFile, members: dict[str, zipfile.ZipInfo], key: str,
                      spec: dict[str, Any], count: int, where: str) -> np.ndarray:
        info = members.get(key + ".npy")
        if info is None:
            raise BundleError(f"{where} has no array '{key}' (tensor '{spec['name']}')", hint=_HINT_DAMAGED)
        try:
            dtype = np.dtype(spec["dtype"])
        except TypeError as exc:
            raise BundleError(f"{self.path}: tensor '{spec['name']}' has dtype {spec['dtype']!r}, which is not a "
                              "numpy dtype name", hint=_HINT_DAMAGED) from exc
        shape = [count, *spec["shape"]]
        limit = MAX_MEMBER_BYTES
        if all(d >= 0 for d in shape):
            limit = min(limit, int(np.prod(shape, dtype=np.int64)) * dtype.itemsize + _NPY_HEADER_SLACK)
        if info.file_size > limit:
            raise BundleError(f"{where}: '{key}' is {info.file_size} bytes, more than its shape {shape} allows",
                              hint=_HINT_DAMAGED)
        raw = _read_bounded(npz, info, limit, where)
        try:
            array = npy_format.read_array(io.BytesIO(raw), allow_pickle=False)
        except Exception as exc:
            raise BundleError(f"{where}: '{key}' is not a valid .npy array: {exc}", hint=_HINT_DAMAGED) from exc
        if array.dtype != dtype or array.ndim != len(shape) or any(
                want >= 0 and got != want for want, got in zip(shape, array.shape, strict=False)):
            raise BundleError(f"{where}: '{key}' (tensor '{spec['name']}') is {array.dtype}{list(array.shape)}, "
                              f"expected {dtype}{shape}", hint=_HINT_DAMAGED)
        return array


def _check_members(zf: zipfile.ZipFile, where: str) -> dict[str, zipfile.ZipInfo]:
    """Refuse unsafe or oversized members before anything is read; return {name: info}."""
    infos = zf.infolist()
    if len(infos) > MAX_MEMBERS:
        raise BundleError(f"{where}: {len(infos)} members, more than the {MAX_MEMBERS} a bundle may hold",
                          hint=_HINT_DAMAGED)
    members: dict[str, zipfile.ZipInfo] = {}
    folded: set[str] = set()
    total = 0
    for info in infos:
        name = info.filename
        why = path_problem(name)
        if why:
            raise BundleError(f"{where}: unsafe member name {name!r}: {why}", hint=_HINT_DAMAGED)
        if name.casefold() in folded:
            raise BundleError(f"{where}: duplicate member name {name!r}", hint=_HINT_DAMAGED)
        folded.add(name.casefold())
        if stat.S_ISLNK(info.external_attr >> 16):
            raise BundleError(f"{where}: member {name!r} is a symbolic link", hint=_HINT_DAMAGED)
        if info.flag_bits & 0x1:
            raise BundleError(f"{where}: member {name!r} is encrypted", hint=_HINT_DAMAGED)
        if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
            raise BundleError(f"{where}: member {name!r} uses zip compression method {info.compress_type}, "
                              "expected stored (0) or deflated (8)", hint=_HINT_DAMAGED)
        if info.file_size > MAX_MEMBER_BYTES:
            raise BundleError(f"{where}: member {name!r} declares {info.file_size} bytes, more than the "
                              f"{MAX_MEMBER_BYTES} allowed", hint=_HINT_DAMAGED)
        total += info.file_size
        if total > MAX_TOTAL_BYTES:
            raise BundleError(f"{where}: members declare more than {MAX_TOTAL_BYTES} bytes in total",
                              hint=_HINT_DAMAGED)
        members[name] = info
    return members


def _read_manifest(zf: zipfile.ZipFile, members: dict[str, zipfile.ZipInfo], where: str) -> dict[str, Any]:
    """Read, parse and version-check manifest.json."""
    info = members.get(MANIFEST_NAME)
    if info is None:
        raise BundleError(f"{where} is not an edgepack bundle: no {MANIFEST_NAME} at the archive root",
                          hint=_HINT_DAMAGED)
    if info.file_size > MAX_MANIFEST_BYTES:
        raise BundleError(f"{where}: {MANIFEST_NAME} is {info.file_size} bytes, more than the {MAX_MANIFEST_BYTES} "
                          "allowed", hint=_HINT_DAMAGED)
    raw = _read_bounded(zf, info, MAX_MANIFEST_BYTES, where)
    try:
        manifest = json.loads(raw.decode("utf-8"), object_pairs_hook=_no_duplicate_keys,
                              parse_constant=_refuse_constant)
    except Exception as exc:  # UnicodeDecodeError, JSONDecodeError, ValueError, RecursionError
        raise BundleError(f"{where}: {MANIFEST_NAME} is not valid UTF-8 JSON: {exc}", hint=_HINT_DAMAGED) from exc
    if not isinstance(manifest, dict):
        raise BundleError(f"{where}: {MANIFEST_NAME} must hold a JSON object, got {type(manifest).__name__}",
                          hint=_HINT_DAMAGED)
    try:
        major, minor = parse_format_version(manifest.get("format_version"))
    except ValueError as exc:
        raise BundleError(f"{where}: manifest field format_version: {exc}", hint=_HINT_DAMAGED) from exc
    if major != FORMAT_MAJOR:
        writer = manifest.get("edgepack_version")
        by = f" (written by edgepack {writer})" if isinstance(writer, str) else ""
        relation = "newer than" if major > FORMAT_MAJOR else "older than"
        raise BundleIncompatibleError(
            f"{where}: bundle format version {major}.{minor}{by} is {relation} this reader, which reads format "
            f"{FORMAT_MAJOR}.x (reader format version {FORMAT_VERSION})",
            hint="upgrade edgepack (pip install -U edgepack)" if major > FORMAT_MAJOR
            else "rebuild the bundle with this edgepack")
    return manifest
