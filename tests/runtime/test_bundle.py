"""Bundle format: writer/reader round trip, schema, and the reader's refusal of damaged or hostile files."""

from __future__ import annotations

import ast
import hashlib
import io
import json
import os
import re
import stat
import subprocess
import sys
import warnings
import zipfile
from pathlib import Path
from typing import Any

import jsonschema
import numpy as np
import pytest

import edgepack
from edgepack.errors import BundleError, BundleIncompatibleError
from edgepack.packager import bundle_writer
from edgepack.packager.bundle_writer import write_bundle
from edgepack.runtime import bundle as bundle_mod
from edgepack.runtime.bundle import Bundle, path_problem

REPO = Path(__file__).resolve().parents[2]
CREATED = "2025-01-31T12:00:00Z"
UNSAFE_NAMES = ["../x", "/abs", "a\\b", "C:/x", "c:x", "a/../b", "a//b", "./a", "dir/", "a\x01b", ""]


def make_manifest() -> dict[str, Any]:
    """A complete manifest as the packager would pass it (writer-owned fields left out)."""
    return {
        "created": CREATED,
        "target": "host",
        "board": None,
        "model": {"name": "tiny", "source_file": "tiny.tflite", "source_format": "tflite",
                  "source_sha256": hashlib.sha256(b"tiny").hexdigest()},
        "inputs": [{"name": "x", "shape": [1, 4], "dtype": "int8",
                    "quant": {"scale": [0.5], "zero_point": [-3], "axis": None, "bits": 8}},
                   {"name": "mask", "shape": [1, 2], "dtype": "float32", "quant": None}],
        "outputs": [{"name": "y", "shape": [1, 3], "dtype": "int8",
                     "quant": {"scale": [0.25, 0.5, 1.0], "zero_point": [0, 0, 0], "axis": 1, "bits": 4}}],
        "layers": [{"name": "fc", "op": "fully_connected", "weight_bits": 4, "activation_bits": 8,
                    "macs": 12, "params": 15}],
        "memory": {"flash_bytes": 1024, "ram_bytes": 256, "source": "arm-none-eabi-size"},
        "tools": {"numpy": np.__version__},
        "backends": {"reference": {"artifact": "graph.json", "tolerance": {"max_abs": 0, "unit": "lsb"}},
                     "litert": {"artifact": "model.tflite", "tolerance": {"max_abs": 1, "unit": "lsb", "rtol": 0}}},
        "default_backend": "reference",
    }


ARTIFACTS = [
    ("model.tflite", "tflite", b"TFL3" + bytes(range(256)) * 2),
    ("graph.json", "graph", b'{"nodes": []}'),
    ("weights.bin", "weights", np.random.default_rng(0).integers(0, 256, 700, dtype=np.uint8).tobytes()),
    ("firmware/app.elf", "firmware", b"\x7fELF" + b"\x00" * 300),
]


def make_golden(count: int = 3) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    rng = np.random.default_rng(1)
    inputs = {"x": rng.integers(-128, 128, (count, 1, 4), dtype=np.int8),
              "mask": rng.random((count, 1, 2), dtype=np.float32)}
    outputs = {"y": rng.integers(-8, 8, (count, 1, 3), dtype=np.int8)}
    return inputs, outputs


@pytest.fixture
def bundle_path(tmp_path: Path) -> Path:
    gin, gout = make_golden()
    return write_bundle(tmp_path / "tiny.edgepack", make_manifest(), ARTIFACTS, gin, gout)


def read_members(path: Path) -> list[tuple[zipfile.ZipInfo, bytes]]:
    with zipfile.ZipFile(path) as zf:
        return [(info, zf.read(info)) for info in zf.infolist()]


def rewrite(src: Path, dst: Path, *, replace: dict[str, bytes] | None = None, manifest: Any = None,
            extra: list[tuple[zipfile.ZipInfo | str, bytes]] | None = None, drop: tuple[str, ...] = (),
            fix_checksums: bool = False) -> Path:
    """Copy a bundle member by member, changing contents, the manifest, or adding members (valid zip CRCs)."""
    replace = replace or {}
    members = read_members(src)
    doc = json.loads(dict((i.filename, d) for i, d in members)["manifest.json"]) if manifest is None else manifest
    if fix_checksums:
        for entry in doc["artifacts"]:
            if entry["path"] in replace:
                entry["size"] = len(replace[entry["path"]])
                entry["sha256"] = hashlib.sha256(replace[entry["path"]]).hexdigest()
    with warnings.catch_warnings(), zipfile.ZipFile(dst, "w", zipfile.ZIP_DEFLATED) as zf:
        warnings.simplefilter("ignore")  # duplicate names are written on purpose
        for info, data in members:
            if info.filename in drop:
                continue
            if info.filename == "manifest.json":
                data = doc if isinstance(doc, bytes) else json.dumps(doc).encode()
            zf.writestr(info.filename, replace.get(info.filename, data))
        for name, data in extra or []:
            zf.writestr(name, data)
    return dst


def manifest_of(path: Path) -> dict[str, Any]:
    with zipfile.ZipFile(path) as zf:
        return json.loads(zf.read("manifest.json"))


def schema() -> dict[str, Any]:
    return json.loads(bundle_mod.MANIFEST_SCHEMA_PATH.read_text())


def read_everything(path: Path) -> None:
    """Use every part of a bundle; whatever is returned must be exactly what was written."""
    with Bundle.open(path) as b:
        b.verify_all()
        for artifact_path, _, data in ARTIFACTS:
            assert b.artifact(artifact_path) == data
        inputs, outputs = b.golden()
        gin, gout = make_golden()
        for want, got in ((gin, inputs), (gout, outputs)):
            for name in want:
                np.testing.assert_array_equal(got[name], want[name])


# -- round trip ----------------------------------------------------------------------------------------------


def test_round_trip(bundle_path: Path) -> None:
    gin, gout = make_golden()
    with Bundle.open(bundle_path) as b:
        m = b.manifest
        assert m["format_version"] == bundle_mod.FORMAT_VERSION == b.format_version
        assert m["edgepack_version"] == edgepack.__version__
        assert m["created"] == CREATED and m["target"] == "host" and m["board"] is None
        assert m["model"] == make_manifest()["model"]
        assert m["layers"] == make_manifest()["layers"] and m["backends"] == make_manifest()["backends"]
        assert m["golden"] == {"artifact": "golden.npz", "count": 3}
        assert [a["path"] for a in m["artifacts"]] == sorted([p for p, _, _ in ARTIFACTS] + ["golden.npz"])
        for path, role, data in ARTIFACTS:
            entry = b.artifact_entry(path)
            assert entry == {"path": path, "role": role, "size": len(data), "sha256": hashlib.sha256(data).hexdigest()}
            assert b.artifact(path) == data
            assert b.artifact(role) == data  # roles are unique here
        b.verify_all()
        inputs, outputs = b.golden()
        assert list(inputs) == ["x", "mask"] and list(outputs) == ["y"]
        for want, got in ((gin, inputs), (gout, outputs)):
            for name in want:
                assert got[name].dtype == want[name].dtype
                np.testing.assert_array_equal(got[name], want[name])
    # the golden artifact is a plain npz numpy can read, keyed by manifest index
    with Bundle.open(bundle_path) as b, np.load(io.BytesIO(b.artifact("golden")), allow_pickle=False) as npz:
        assert sorted(npz.files) == ["input_0", "input_1", "output_0"]
        np.testing.assert_array_equal(npz["input_1"], gin["mask"])


def test_member_order_and_compression(bundle_path: Path) -> None:
    infos = [info for info, _ in read_members(bundle_path)]
    names = [info.filename for info in infos]
    assert names[0] == "manifest.json"
    assert names[1:] == sorted(names[1:])
    assert all(info.compress_type == zipfile.ZIP_DEFLATED for info in infos)


def test_writer_is_deterministic(tmp_path: Path) -> None:
    gin, gout = make_golden()
    a = write_bundle(tmp_path / "a.edgepack", make_manifest(), ARTIFACTS, gin, gout)
    b = write_bundle(tmp_path / "b.edgepack", make_manifest(), list(reversed(ARTIFACTS)), gin, gout)
    assert a.read_bytes() == b.read_bytes()


def test_writer_fills_created_and_keeps_caller_manifest(tmp_path: Path) -> None:
    manifest = make_manifest()
    del manifest["created"]
    manifest["inputs"][0]["shape"] = [np.int64(1), np.int32(4)]  # numpy scalars are written as plain ints
    before = json.dumps(manifest, default=str)
    out = write_bundle(tmp_path / "t.edgepack", manifest, ARTIFACTS)
    assert json.dumps(manifest, default=str) == before
    m = manifest_of(out)
    assert re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$", m["created"])
    assert m["inputs"][0]["shape"] == [1, 4]
    assert "golden" not in m
    with Bundle.open(out) as b, pytest.raises(BundleError, match="no golden"):
        b.golden()


def test_written_file_mode_follows_umask(bundle_path: Path) -> None:
    mask = os.umask(0o022)
    os.umask(mask)
    assert stat.S_IMODE(bundle_path.stat().st_mode) == 0o666 & ~mask


def test_lookup_by_role_or_path(tmp_path: Path) -> None:
    arts = [("a.c", "sources", b"int a;"), ("b.c", "sources", b"int b;"), ("graph.json", "graph", b"{}")]
    manifest = make_manifest()
    manifest["backends"] = {}
    del manifest["default_backend"]
    out = write_bundle(tmp_path / "t.edgepack", manifest, arts)
    with Bundle.open(out) as b:
        assert b.artifact("graph") == b"{}"
        assert b.artifact("b.c") == b"int b;"
        with pytest.raises(BundleError, match=r"2 artifacts have role 'sources' \(a.c, b.c\)") as err:
            b.artifact("sources")
        assert "by path" in err.value.hint
        with pytest.raises(BundleError, match="no artifact with role or path 'nope'"):
            b.artifact("nope")


# -- schema and docs -----------------------------------------------------------------------------------------


def test_schema_is_valid_draft_2020_12() -> None:
    s = schema()
    assert s["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    jsonschema.Draft202012Validator.check_schema(s)


def test_written_manifests_match_schema(bundle_path: Path, tmp_path: Path) -> None:
    validator = jsonschema.Draft202012Validator(schema())
    validator.validate(manifest_of(bundle_path))
    minimal = {k: v for k, v in make_manifest().items() if k in ("created", "target", "model", "inputs", "outputs")}
    validator.validate(manifest_of(write_bundle(tmp_path / "min.edgepack", minimal, [])))


@pytest.mark.parametrize("mutate", [
    lambda m: m.update(format_version="2.0"),
    lambda m: m["artifacts"][0].update(path="../x"),
    lambda m: m["artifacts"][0].update(path="a\\b"),
    lambda m: m["artifacts"][0].update(sha256="XYZ"),
    lambda m: m["inputs"][0].update(shape=[1, "4"]),
    lambda m: m["backends"]["reference"]["tolerance"].update(unit="percent"),
    lambda m: m.update(created="2025-01-31 12:00"),
    lambda m: m.pop("target"),
])
def test_schema_rejects_bad_manifests(bundle_path: Path, mutate: Any) -> None:
    m = manifest_of(bundle_path)
    mutate(m)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(m, schema(), cls=jsonschema.Draft202012Validator)


def test_schema_accepts_newer_minor_with_unknown_fields(bundle_path: Path) -> None:
    m = manifest_of(bundle_path)
    m.update(format_version="1.7", future_field={"anything": 1})
    m["artifacts"][0]["future_flag"] = True
    jsonschema.validate(m, schema(), cls=jsonschema.Draft202012Validator)


def _schema_property_names(node: Any) -> set[str]:
    names: set[str] = set()
    if isinstance(node, dict):
        names |= set(node.get("properties", {}))
        for value in node.values():
            names |= _schema_property_names(value)
    elif isinstance(node, list):
        for value in node:
            names |= _schema_property_names(value)
    return names


def test_docs_cover_every_schema_field() -> None:
    doc = (REPO / "docs" / "bundle-format.md").read_text()
    missing = sorted(name for name in _schema_property_names(schema()) if f"`{name}`" not in doc)
    assert not missing, f"docs/bundle-format.md does not document {missing}"
    assert "edgepack/runtime/manifest.schema.json" in doc
    for role in bundle_mod.KNOWN_ROLES:
        assert f"`{role}`" in doc


def test_reader_imports_only_stdlib_numpy_and_errors() -> None:
    tree = ast.parse(Path(bundle_mod.__file__).read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            modules = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            modules = [node.module or ""]
        else:
            continue
        for module in modules:
            top = module.split(".")[0]
            assert top in sys.stdlib_module_names or top == "numpy" or module == "edgepack.errors", module
    loaded = subprocess.run(
        [sys.executable, "-c", "import sys, edgepack.runtime.bundle; "
         "print(sorted(m for m in sys.modules if m.startswith('edgepack')))"],
        cwd=REPO, capture_output=True, text=True, check=True).stdout
    heavy = [m for m in ast.literal_eval(loaded) if m.split(".")[:2] in (
        ["edgepack", "packager"], ["edgepack", "quantize"], ["edgepack", "targets"])]
    assert not heavy, f"importing the bundle reader pulled in {heavy}"


# -- tampering -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("member", [p for p, _, _ in ARTIFACTS] + ["golden.npz"])
def test_flipped_byte_in_any_artifact_is_a_checksum_mismatch(bundle_path: Path, tmp_path: Path, member: str) -> None:
    data = dict((i.filename, d) for i, d in read_members(bundle_path))[member]
    tampered = bytearray(data)
    tampered[len(tampered) // 2] ^= 0x01
    bad = rewrite(bundle_path, tmp_path / "bad.edgepack", replace={member: bytes(tampered)})
    with Bundle.open(bad) as b:  # structure is intact; the content check happens on access
        pattern = rf"artifact '{re.escape(member)}' .*checksum mismatch \(bundle corrupted"
        with pytest.raises(BundleError, match=pattern):
            b.artifact(member)
        with pytest.raises(BundleError, match="checksum mismatch"):
            b.verify_all()
        if member == "golden.npz":
            with pytest.raises(BundleError, match="checksum mismatch"):
                b.golden()
        with pytest.raises(BundleError, match="checksum mismatch"):
            b.extract_to(tmp_path / "out")
    leftovers = [p for p in (tmp_path / "out").rglob("*") if p.is_file() and p.name.endswith(".part")]
    assert not leftovers
    assert not (tmp_path / "out" / member).exists()


def test_every_single_byte_flip_is_caught_or_harmless(bundle_path: Path, tmp_path: Path) -> None:
    original = bundle_path.read_bytes()
    bad = tmp_path / "flip.edgepack"
    for i in range(len(original)):
        data = bytearray(original)
        data[i] ^= 0xFF
        bad.write_bytes(bytes(data))
        try:
            read_everything(bad)  # a flip in an unused header field may be harmless: the checksums still held
        except BundleError:
            pass
        except Exception as exc:  # pragma: no cover - this is the failure being tested for
            pytest.fail(f"flipping byte {i} raised {type(exc).__name__}: {exc}")


def test_truncated_at_every_length_is_a_clear_bundle_error(bundle_path: Path, tmp_path: Path) -> None:
    original = bundle_path.read_bytes()
    cut = tmp_path / "cut.edgepack"
    for length in range(len(original)):
        cut.write_bytes(original[:length])
        with pytest.raises(BundleError, match=r"is not an edgepack bundle \(truncated or not a zip archive\)"):
            Bundle.open(cut)


@pytest.mark.parametrize("content", [b"", b"hello world\n", bytes(range(256)) * 40, b"PK\x03\x04garbage"])
def test_garbage_file(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "garbage.edgepack"
    path.write_bytes(content)
    with pytest.raises(BundleError, match="not an edgepack bundle") as err:
        Bundle.open(path)
    assert str(path) in str(err.value) and err.value.hint


def test_missing_file_and_directory(tmp_path: Path) -> None:
    with pytest.raises(BundleError, match="no such file"):
        Bundle.open(tmp_path / "nope.edgepack")
    with pytest.raises(BundleError, match="not a regular file"):
        Bundle.open(tmp_path)


# -- hostile member names and headers ------------------------------------------------------------------------


@pytest.mark.parametrize("name", UNSAFE_NAMES)
def test_path_problem(name: str) -> None:
    assert path_problem(name)


@pytest.mark.parametrize("name", ["model.tflite", "firmware/app.elf", "a/b/c.d", "..hidden", "x..y/z", "ünïcode.bin"])
def test_path_problem_accepts_safe_names(name: str) -> None:
    assert path_problem(name) is None


@pytest.mark.parametrize("name", [n for n in UNSAFE_NAMES if n])
def test_unsafe_member_names_are_refused(bundle_path: Path, tmp_path: Path, name: str) -> None:
    bad = rewrite(bundle_path, tmp_path / "bad.edgepack", extra=[(name, b"x")])
    with pytest.raises(BundleError, match="unsafe member name"):
        Bundle.open(bad)


def test_unsafe_artifact_path_in_manifest_is_refused(bundle_path: Path, tmp_path: Path) -> None:
    m = manifest_of(bundle_path)
    m["artifacts"].append({"path": "../evil", "role": "weights", "size": 1, "sha256": "0" * 64})
    bad = rewrite(bundle_path, tmp_path / "bad.edgepack", manifest=m)
    with pytest.raises(BundleError, match=r"artifacts\[\d\]\.path"):
        Bundle.open(bad)


def test_symlink_member_is_refused(bundle_path: Path, tmp_path: Path) -> None:
    link = zipfile.ZipInfo("weights.bin")
    link.create_system = 3
    link.external_attr = (stat.S_IFLNK | 0o777) << 16
    bad = rewrite(bundle_path, tmp_path / "bad.edgepack", drop=("weights.bin",), extra=[(link, b"/etc/passwd")])
    with pytest.raises(BundleError, match="'weights.bin' is a symbolic link"):
        Bundle.open(bad)


@pytest.mark.parametrize("name", ["weights.bin", "WEIGHTS.bin"])
def test_duplicate_member_names_are_refused(bundle_path: Path, tmp_path: Path, name: str) -> None:
    bad = rewrite(bundle_path, tmp_path / "bad.edgepack", extra=[(name, b"evil")])
    with pytest.raises(BundleError, match="duplicate member name"):
        Bundle.open(bad)


def test_member_count_and_size_limits(bundle_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    Bundle.open(bundle_path).close()
    with monkeypatch.context() as mp:
        mp.setattr(bundle_mod, "MAX_MEMBERS", 3)
        with pytest.raises(BundleError, match="more than the 3 a bundle may hold"):
            Bundle.open(bundle_path)
    with monkeypatch.context() as mp:
        mp.setattr(bundle_mod, "MAX_MEMBER_BYTES", 600)
        with pytest.raises(BundleError, match=r"member '[^']+' declares \d+ bytes, more than the 600 allowed"):
            Bundle.open(bundle_path)
    with monkeypatch.context() as mp:
        mp.setattr(bundle_mod, "MAX_TOTAL_BYTES", 1000)
        with pytest.raises(BundleError, match="more than 1000 bytes in total"):
            Bundle.open(bundle_path)


def _patch_uncompressed_size(path: Path, member: str, size: int) -> None:
    """Make both zip headers of `member` claim `size` uncompressed bytes (a lying header)."""
    data = bytearray(path.read_bytes())
    with zipfile.ZipFile(path) as zf:
        info, start = zf.getinfo(member), zf.start_dir
    data[info.header_offset + 22:info.header_offset + 26] = size.to_bytes(4, "little")
    pos = start
    while data[pos:pos + 4] == b"PK\x01\x02":
        name_len, extra_len, comment_len = (int.from_bytes(data[pos + o:pos + o + 2], "little") for o in (28, 30, 32))
        if data[pos + 46:pos + 46 + name_len].decode() == member:
            data[pos + 24:pos + 28] = size.to_bytes(4, "little")
        pos += 46 + name_len + extra_len + comment_len
    path.write_bytes(bytes(data))


def test_lying_size_header_is_not_trusted(bundle_path: Path, tmp_path: Path) -> None:
    # The archive says weights.bin is 10 bytes and the manifest agrees, but the stream holds 700 bytes:
    # the reader must stop at 10 (+1) bytes and report damage rather than inflate the rest.
    real = dict((i.filename, d) for i, d in read_members(bundle_path))["weights.bin"]
    m = manifest_of(bundle_path)
    entry = next(a for a in m["artifacts"] if a["path"] == "weights.bin")
    entry.update(size=10, sha256=hashlib.sha256(real[:10]).hexdigest())
    bad = rewrite(bundle_path, tmp_path / "bad.edgepack", manifest=m)
    _patch_uncompressed_size(bad, "weights.bin", 10)
    with Bundle.open(bad) as b:
        with pytest.raises(BundleError, match="weights.bin.*corrupted"):
            b.artifact("weights.bin")


def test_zip_bomb_member_is_refused_before_reading(bundle_path: Path, tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    bomb = bytes(2_000_000)  # compresses to ~2 KB
    m = manifest_of(bundle_path)
    m["artifacts"].append({"path": "bomb.bin", "role": "report", "size": len(bomb),
                           "sha256": hashlib.sha256(bomb).hexdigest()})
    bad = rewrite(bundle_path, tmp_path / "bad.edgepack", manifest=m, extra=[("bomb.bin", bomb)])
    assert bad.stat().st_size < 100_000
    monkeypatch.setattr(bundle_mod, "MAX_MEMBER_BYTES", 1_000_000)
    with pytest.raises(BundleError, match="'bomb.bin' declares 2000000 bytes"):
        Bundle.open(bad)


# -- manifest problems ---------------------------------------------------------------------------------------


def test_missing_manifest(bundle_path: Path, tmp_path: Path) -> None:
    bad = rewrite(bundle_path, tmp_path / "bad.edgepack", drop=("manifest.json",))
    with pytest.raises(BundleError, match="no manifest.json at the archive root"):
        Bundle.open(bad)


@pytest.mark.parametrize("text, match", [
    (b"{not json", "not valid UTF-8 JSON"),
    (b"\xff\xfe{}", "not valid UTF-8 JSON"),
    (b"[1, 2]", "must hold a JSON object, got list"),
    (b'{"format_version": "1.0", "format_version": "9.0"}', "duplicate key 'format_version'"),
    (b'{"format_version": NaN}', "NaN is not valid JSON"),
    (b"[" * 100_000 + b"]" * 100_000, "not valid UTF-8 JSON"),
])
def test_bad_manifest_text(bundle_path: Path, tmp_path: Path, text: bytes, match: str) -> None:
    bad = rewrite(bundle_path, tmp_path / "bad.edgepack", manifest=text)
    with pytest.raises(BundleError, match=match):
        Bundle.open(bad)


def test_manifest_too_big(bundle_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    size = zipfile.ZipFile(bundle_path).getinfo("manifest.json").file_size
    monkeypatch.setattr(bundle_mod, "MAX_MANIFEST_BYTES", size - 1)
    with pytest.raises(BundleError, match=rf"manifest.json is {size} bytes, more than the {size - 1} allowed"):
        Bundle.open(bundle_path)


def test_newer_major_version_is_incompatible(bundle_path: Path, tmp_path: Path) -> None:
    m = manifest_of(bundle_path)
    m.update(format_version="2.0", edgepack_version="9.1.0", artifacts="a v2 layout this reader cannot parse")
    bad = rewrite(bundle_path, tmp_path / "v2.edgepack", manifest=m)
    with pytest.raises(BundleIncompatibleError) as err:
        Bundle.open(bad)
    message = str(err.value)
    assert "format version 2.0" in message and "1.0" in message and "edgepack 9.1.0" in message
    assert "upgrade edgepack" in err.value.hint


def test_older_unknown_major_is_incompatible(bundle_path: Path, tmp_path: Path) -> None:
    m = manifest_of(bundle_path)
    m["format_version"] = "0.9"
    with pytest.raises(BundleIncompatibleError, match="0.9 .*older than"):
        Bundle.open(rewrite(bundle_path, tmp_path / "v0.edgepack", manifest=m))


def test_newer_minor_version_with_unknown_fields_is_accepted(bundle_path: Path, tmp_path: Path) -> None:
    m = manifest_of(bundle_path)
    m.update(format_version="1.7", future_field={"x": 1})
    m["inputs"][0]["future_layout"] = "nhwc"
    m["backends"]["reference"]["tolerance"]["unit"] = "ulp"  # a unit a later minor might add
    ok = rewrite(bundle_path, tmp_path / "v17.edgepack", manifest=m)
    with Bundle.open(ok) as b:
        assert b.format_version == "1.7"
        assert b.manifest["future_field"] == {"x": 1}
        b.verify_all()
        inputs, _ = b.golden()
        assert inputs["x"].shape == (3, 1, 4)


@pytest.mark.parametrize("version", [None, 1.0, "1", "1.0.0", "v1.0", "01.0", ""])
def test_malformed_format_version(bundle_path: Path, tmp_path: Path, version: Any) -> None:
    m = manifest_of(bundle_path)
    m["format_version"] = version
    with pytest.raises(BundleError, match="format_version: expected a string 'MAJOR.MINOR'") as err:
        Bundle.open(rewrite(bundle_path, tmp_path / "bad.edgepack", manifest=m))
    assert not isinstance(err.value, BundleIncompatibleError)


@pytest.mark.parametrize("mutate, field", [
    (lambda m: m.pop("target"), "target"),
    (lambda m: m.pop("model"), "model"),
    (lambda m: m.update(inputs=[]), "inputs"),
    (lambda m: m["inputs"][1].update(name="x"), r"inputs\[1\]\.name"),
    (lambda m: m["outputs"][0].update(shape=[1, 3.0]), r"outputs\[0\]\.shape"),
    (lambda m: m["outputs"][0]["quant"].update(zero_point=[0]), r"outputs\[0\]\.quant\.zero_point"),
    (lambda m: m["inputs"][0]["quant"].update(scale=[0.0]), r"inputs\[0\]\.quant\.scale"),
    (lambda m: m["outputs"][0]["quant"].update(axis=2), r"outputs\[0\]\.quant\.axis"),
    (lambda m: m["artifacts"][0].update(size=-1), r"artifacts\[0\]\.size"),
    (lambda m: m["artifacts"][0].update(sha256="ABC"), r"artifacts\[0\]\.sha256"),
    (lambda m: m["artifacts"][1].update(path=m["artifacts"][0]["path"].upper()), r"artifacts\[1\]\.path"),
    (lambda m: m.update(golden={"artifact": "nope.npz", "count": 3}), "golden.artifact"),
    (lambda m: m["backends"]["reference"].update(artifact="nope.bin"), r"backends\.reference\.artifact"),
    (lambda m: m["backends"]["litert"]["tolerance"].update(max_abs=-1), r"backends\.litert\.tolerance\.max_abs"),
    (lambda m: m.update(default_backend="tvm"), "default_backend"),
    (lambda m: m.update(layers={}), "layers"),
])
def test_inconsistent_manifest_names_the_field(bundle_path: Path, tmp_path: Path, mutate: Any, field: str) -> None:
    m = manifest_of(bundle_path)
    mutate(m)
    with pytest.raises(BundleError, match=rf"manifest field {field}: expected"):
        Bundle.open(rewrite(bundle_path, tmp_path / "bad.edgepack", manifest=m))


def test_missing_artifact_member(bundle_path: Path, tmp_path: Path) -> None:
    bad = rewrite(bundle_path, tmp_path / "bad.edgepack", drop=("weights.bin",))
    with pytest.raises(BundleError, match=r"artifact 'weights.bin' \(role weights\) is listed in the manifest but "
                                          "missing from the archive"):
        Bundle.open(bad)


def test_declared_size_differs_from_member(bundle_path: Path, tmp_path: Path) -> None:
    bad = rewrite(bundle_path, tmp_path / "bad.edgepack", replace={"graph.json": b'{"nodes": [1]}'})
    with pytest.raises(BundleError, match="'graph.json' is 14 bytes in the archive, the manifest says 13"):
        Bundle.open(bad)


# -- golden npz ----------------------------------------------------------------------------------------------


def _npz(arrays: dict[str, np.ndarray], allow_pickle: bool = False) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        for key, array in arrays.items():
            npy = io.BytesIO()
            np.lib.format.write_array(npy, array, allow_pickle=allow_pickle)
            zf.writestr(key + ".npy", npy.getvalue())
    return buffer.getvalue()


@pytest.mark.parametrize("arrays, match", [
    ({"input_0": np.zeros((3, 1, 4), np.int8), "input_1": np.zeros((3, 1, 2), np.float32)},
     "has no array 'output_0'"),
    ({"input_0": np.zeros((3, 1, 4), np.int16), "input_1": np.zeros((3, 1, 2), np.float32),
      "output_0": np.zeros((3, 1, 3), np.int8)}, r"'input_0' \(tensor 'x'\) is int16\[3, 1, 4\], expected int8"),
    ({"input_0": np.zeros((2, 1, 4), np.int8), "input_1": np.zeros((3, 1, 2), np.float32),
      "output_0": np.zeros((3, 1, 3), np.int8)}, r"expected int8\[3, 1, 4\]"),
    ({"input_0": np.array([[None]] * 3, dtype=object), "input_1": np.zeros((3, 1, 2), np.float32),
      "output_0": np.zeros((3, 1, 3), np.int8)}, "not a valid .npy array"),
    ({"input_0": np.zeros((3, 1, 40_000), np.int8), "input_1": np.zeros((3, 1, 2), np.float32),
      "output_0": np.zeros((3, 1, 3), np.int8)}, "more than its shape"),
])
def test_bad_golden_npz(bundle_path: Path, tmp_path: Path, arrays: dict[str, np.ndarray], match: str) -> None:
    npz = _npz(arrays, allow_pickle=True)  # the pickled object array must be refused by the reader
    bad = rewrite(bundle_path, tmp_path / "bad.edgepack", replace={"golden.npz": npz}, fix_checksums=True)
    with Bundle.open(bad) as b:
        b.verify_all()  # checksums are consistent: the problem is the content
        with pytest.raises(BundleError, match=match):
            b.golden()


# -- extract_to ----------------------------------------------------------------------------------------------


def test_extract_to_writes_verified_files_inside_dir(bundle_path: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    with Bundle.open(bundle_path) as b:
        files = b.extract_to(out)
        again = b.extract_to(out)  # re-extracting over our own files is fine
    assert files == again
    assert set(files) == {p for p, _, _ in ARTIFACTS} | {"golden.npz"}
    for path, _, data in ARTIFACTS:
        assert files[path] == out.resolve() / path and files[path].read_bytes() == data
    written = sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file())
    assert written == sorted(files)


def test_extract_to_refuses_symlinked_directory(bundle_path: Path, tmp_path: Path) -> None:
    out, outside = tmp_path / "out", tmp_path / "outside"
    out.mkdir()
    outside.mkdir()
    (out / "firmware").symlink_to(outside, target_is_directory=True)
    with Bundle.open(bundle_path) as b, pytest.raises(BundleError, match="leads outside"):
        b.extract_to(out)
    assert list(outside.iterdir()) == []


def test_extract_to_refuses_symlinked_file(bundle_path: Path, tmp_path: Path) -> None:
    out, victim = tmp_path / "out", tmp_path / "victim.txt"
    out.mkdir()
    victim.write_text("keep me")
    (out / "graph.json").symlink_to(victim)
    with Bundle.open(bundle_path) as b, pytest.raises(BundleError, match="exists and is not a regular file"):
        b.extract_to(out)
    assert victim.read_text() == "keep me"


# -- writer checks and atomicity -----------------------------------------------------------------------------


@pytest.mark.parametrize("name", UNSAFE_NAMES + ["manifest.json", "golden.npz"])
def test_writer_refuses_bad_artifact_paths(tmp_path: Path, name: str) -> None:
    gin, gout = make_golden()
    with pytest.raises(ValueError, match="not allowed|reserved"):
        write_bundle(tmp_path / "t.edgepack", make_manifest(), [*ARTIFACTS, (name, "report", b"x")], gin, gout)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("change, match", [
    (lambda m, a, gi, go: a.append(("MODEL.tflite", "tflite", b"")), "used twice"),
    (lambda m, a, gi, go: a.append(("r.txt", "", b"")), "role must be a non-empty string"),
    (lambda m, a, gi, go: a.append(("r.txt", "report", "text")), "expected bytes"),
    (lambda m, a, gi, go: m.update(artifacts=[]), "filled by write_bundle"),
    (lambda m, a, gi, go: m.update(format_version="1.1"), "this writer writes '1.0'"),
    (lambda m, a, gi, go: m.update(created="yesterday"), "ISO-8601 UTC"),
    (lambda m, a, gi, go: m.update(golden={"artifact": "golden.npz", "count": 3}), "filled by write_bundle"),
    (lambda m, a, gi, go: gi.pop("mask"), r"missing \['mask'\]"),
    (lambda m, a, gi, go: go.update(z=go["y"]), r"unexpected \['z'\]"),
    (lambda m, a, gi, go: gi.update(x=gi["x"].astype(np.int16)), r"golden input 'x' is int16\[3, 1, 4\]"),
    (lambda m, a, gi, go: go.update(y=go["y"][:2]), "disagree on the number of pairs"),
    (lambda m, a, gi, go: m.update(target=None), "manifest field target"),
    (lambda m, a, gi, go: m.update(tools={"x": object()}), "cannot be written as JSON"),
])
def test_writer_refuses_inconsistent_arguments(tmp_path: Path, change: Any, match: str) -> None:
    manifest, artifacts, (gin, gout) = make_manifest(), list(ARTIFACTS), make_golden()
    change(manifest, artifacts, gin, gout)
    with pytest.raises(ValueError, match=match):
        write_bundle(tmp_path / "t.edgepack", manifest, artifacts, gin, gout)
    assert list(tmp_path.iterdir()) == []


def test_writer_refuses_half_golden(tmp_path: Path) -> None:
    gin, _ = make_golden()
    with pytest.raises(ValueError, match="both golden_inputs and golden_outputs"):
        write_bundle(tmp_path / "t.edgepack", make_manifest(), ARTIFACTS, gin, None)


@pytest.mark.parametrize("exc_type", [OSError, KeyboardInterrupt])
def test_failed_write_leaves_no_partial_file(bundle_path: Path, monkeypatch: pytest.MonkeyPatch,
                                             exc_type: type[BaseException]) -> None:
    directory = bundle_path.parent
    before = bundle_path.read_bytes()
    real = bundle_writer._add_member
    calls = []

    def failing(zf: zipfile.ZipFile, name: str, data: bytes, *args: Any) -> None:
        calls.append(name)
        if len(calls) == 4:  # after the manifest and a few members have been written
            raise exc_type("disk unplugged")
        real(zf, name, data, *args)

    monkeypatch.setattr(bundle_writer, "_add_member", failing)
    gin, gout = make_golden()
    with pytest.raises(exc_type, match="disk unplugged"):
        write_bundle(bundle_path, make_manifest(), ARTIFACTS, gin, gout)  # over an existing bundle
    assert [p.name for p in directory.iterdir()] == [bundle_path.name]
    assert bundle_path.read_bytes() == before
    calls.clear()
    with pytest.raises(exc_type):
        write_bundle(directory / "new.edgepack", make_manifest(), ARTIFACTS, gin, gout)
    assert [p.name for p in directory.iterdir()] == [bundle_path.name]


def test_failed_rename_leaves_no_temp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(src: Any, dst: Any) -> None:
        raise PermissionError("read-only")

    monkeypatch.setattr(bundle_writer.os, "replace", refuse)
    with pytest.raises(PermissionError):
        write_bundle(tmp_path / "t.edgepack", make_manifest(), ARTIFACTS)
    assert list(tmp_path.iterdir()) == []
