"""The runtime stays thin: loading and running a bundle imports numpy and the chosen backend library only.

Two checks: a fresh interpreter that runs a bundle reports which modules it imported, and an AST scan of
every file under edgepack/runtime finds no import of the export side or of heavy toolkits.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "ir"))  # onnx_models, the in-code ONNX builders

REPO = Path(__file__).resolve().parents[2]
RUNTIME = REPO / "edgepack" / "runtime"
MODELS = REPO.parent / "shared" / "models"

# Never imported by the runtime (edgepack.ir.onnx covers onnx_context and onnx_ops by prefix).
EXPORT_SIDE = ("edgepack.packager", "edgepack.quantize", "edgepack.targets", "edgepack.ir.tflite",
               "edgepack.ir.onnx", "edgepack.ir.loader", "edgepack.cli")
HEAVY = ("tensorflow", "onnx", "tflite", "jax", "torch", "keras")
# TVM's compiler side: never imported by the runtime, not even by the tvm backend (it loads compiled
# modules with tvm.runtime only).
TVM_COMPILER = ("tvm.relax", "tvm.compile", "tvm.tirx", "tvm.target", "tvm.support", "tvm.contrib", "tvm.ir")
BACKEND_LIBS = {"onnxruntime": ("onnxruntime",), "litert": ("ai_edge_litert", "tflite_runtime"), "tvm": ("tvm",)}

_RUN_BUNDLE = """
import json, sys
import numpy as np
import edgepack.runtime as rt
sess = rt.load(sys.argv[1], backend=sys.argv[2])
x = {t.name: np.zeros(t.shape, t.dtype) for t in sess.inputs}
sess.run(x)
assert rt.verify(sess).passed
print(json.dumps(sorted(sys.modules)))
"""


def _matches(module: str, prefixes: tuple[str, ...]) -> bool:
    """True when `module` is one of `prefixes` or inside one (so 'onnx' matches 'onnx.helper', not 'onnxruntime')."""
    return any(module == p or module.startswith(p + ".") or (p.endswith("onnx") and module.startswith(p + "_"))
               for p in prefixes)


def _modules_after_run(bundle: Path, backend: str) -> list[str]:
    proc = subprocess.run([sys.executable, "-c", _RUN_BUNDLE, str(bundle), backend], capture_output=True,
                          text=True, timeout=120, cwd=REPO)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def onnx_bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    onnx = pytest.importorskip("onnx")
    import onnx_models

    from edgepack.packager.pipeline import package

    tmp = tmp_path_factory.mktemp("thin")
    onnx.save(onnx_models.cnn(), tmp / "cnn.onnx")
    return package(tmp / "cnn.onnx", tmp / "cnn.edgepack", golden_count=2).path


def test_reference_backend_imports_no_export_side_and_no_toolkit(onnx_bundle: Path) -> None:
    loaded = _modules_after_run(onnx_bundle, "reference")
    forbidden = EXPORT_SIDE + HEAVY + BACKEND_LIBS["onnxruntime"] + BACKEND_LIBS["litert"] + BACKEND_LIBS["tvm"]
    bad = [m for m in loaded if _matches(m, forbidden)]
    assert not bad, f"the reference backend path imported {bad}"
    assert "edgepack.runtime.backends.reference" in loaded


def test_onnxruntime_backend_imports_onnxruntime_only(onnx_bundle: Path) -> None:
    pytest.importorskip("onnxruntime")
    loaded = _modules_after_run(onnx_bundle, "onnxruntime")
    bad = [m for m in loaded if _matches(m, EXPORT_SIDE + HEAVY + BACKEND_LIBS["litert"] + BACKEND_LIBS["tvm"])]
    assert not bad, f"the onnxruntime backend path imported {bad}"
    assert "onnxruntime" in loaded


def test_litert_backend_imports_litert_only(tmp_path: Path) -> None:
    pytest.importorskip("ai_edge_litert")
    model = MODELS / "kws_ref_model.tflite"
    if not model.is_file():
        pytest.skip(f"shared model not found at {model}")
    from edgepack.packager.pipeline import package

    bundle = package(model, tmp_path / "kws.edgepack", golden_count=2).path
    loaded = _modules_after_run(bundle, "litert")
    bad = [m for m in loaded if _matches(m, EXPORT_SIDE + HEAVY + BACKEND_LIBS["onnxruntime"] + BACKEND_LIBS["tvm"])]
    assert not bad, f"the litert backend path imported {bad}"
    assert "ai_edge_litert" in loaded


def test_matches_is_prefix_exact() -> None:
    assert _matches("onnx", ("onnx",)) and _matches("onnx.helper", ("onnx",))
    assert not _matches("onnxruntime", ("onnx",)) and not _matches("tflite_runtime", ("tflite",))
    assert _matches("edgepack.ir.onnx_ops", ("edgepack.ir.onnx",))
    assert not _matches("edgepack.ir.graph", ("edgepack.ir.onnx",))


def _imports(source: str, package: str) -> list[tuple[int, str]]:
    """(line, absolute module name) of every import in `source`, a module of `package`: lazy ones inside
    functions and relative ones included, plus string arguments of importlib.import_module."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = package.rsplit(".", node.level - 1)[0] if node.level else ""
            module = ".".join(p for p in (base, node.module) if p)
            found.append((node.lineno, module))
            found += [(node.lineno, f"{module}.{alias.name}") for alias in node.names]
        elif (isinstance(node, ast.Call) and getattr(node.func, "attr", getattr(node.func, "id", "")) == "import_module"
              and node.args and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str)):
            found.append((node.lineno, node.args[0].value))
    return found


def _file_imports(path: Path) -> list[tuple[int, str]]:
    return _imports(path.read_text(), ".".join(path.relative_to(REPO).parts[:-1]))


def test_runtime_sources_import_nothing_from_the_export_side() -> None:
    files = sorted(RUNTIME.rglob("*.py"))
    assert len(files) >= 8, files
    problems = []
    for path in files:
        allowed: tuple[str, ...] = ()
        if path.parent.name == "backends" and path.stem in BACKEND_LIBS:
            allowed = BACKEND_LIBS[path.stem]
        others = tuple(lib for libs in BACKEND_LIBS.values() for lib in libs if lib not in allowed)
        for line, module in _file_imports(path):
            if _matches(module, EXPORT_SIDE + HEAVY + TVM_COMPILER + others):
                problems.append(f"{path.relative_to(REPO)}:{line} imports {module}")
    assert not problems, "\n".join(problems)


def test_import_scan_sees_lazy_relative_and_dynamic_imports() -> None:
    source = ("import numpy as np\nfrom .. import bundle\nfrom ..session import Session\n"
              "def f():\n    import onnx.helper\n    importlib.import_module('tensorflow')\n")
    assert [m for _, m in _imports(source, "edgepack.runtime.backends")] == [
        "numpy", "edgepack.runtime", "edgepack.runtime.bundle", "edgepack.runtime.session",
        "edgepack.runtime.session.Session", "onnx.helper", "tensorflow"]
    assert "edgepack.runtime.bundle.Bundle" in [m for _, m in _file_imports(RUNTIME / "backends" / "litert.py")]
