"""JAX frontend: a small CNN (written with jax.lax, no flax) converts through jax2tf to a float .tflite whose
graph matches JAX within 1e-4 and packages for host (and cortex-m4, int8); entry points; one clear message for
dynamic shapes, unconvertible constructs and ops edgepack cannot import; the litert route; the missing extra."""

from __future__ import annotations

import importlib.util
import sys
import textwrap
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from frontend_checks import assert_close, mcu_missing, needs, package_and_verify, run_reference

from edgepack.errors import EdgepackError, ModelError, UnsupportedOpsError
from edgepack.frontends import from_jax, prepare_model
from edgepack.frontends.jax import UnstableAPIWarning, entry_from_result, load_entry_point

jax_and_tf = needs("jax", "tensorflow", extra="jax")
has_litert_converter = importlib.util.find_spec("litert_converter") is not None

# A module-level model so the entry-point test can import it from a file, too.
CNN_SOURCE = '''
import jax
import jax.numpy as jnp
import numpy as np

def _conv(x, w, b):
    y = jax.lax.conv_general_dilated(x, w, (1, 1), "SAME", dimension_numbers=("NHWC", "HWIO", "NHWC"))
    return y + b

def _avg_pool(x, k):
    return jax.lax.reduce_window(x, 0.0, jax.lax.add, (1, k, k, 1), (1, k, k, 1), "VALID") / (k * k)

def apply(params, x):
    """conv 3x3 (1->8) + relu, avg pool 2, conv 3x3 (8->16) + relu, global avg pool, dense, softmax."""
    y = jax.nn.relu(_conv(x, params["w1"], params["b1"]))
    y = _avg_pool(y, 2)
    y = jax.nn.relu(_conv(y, params["w2"], params["b2"]))
    y = _avg_pool(y, y.shape[1]).reshape(y.shape[0], -1)
    return jax.nn.softmax(y @ params["wd"] + params["bd"])

def init(seed=0):
    rng = np.random.default_rng(seed)
    shapes = {"w1": (3, 3, 1, 8), "b1": (8,), "w2": (3, 3, 8, 16), "b2": (16,), "wd": (16, 10), "bd": (10,)}
    return {k: (rng.normal(size=s) * (0.1 if k[0] == "b" else 0.4)).astype(np.float32) for k, s in shapes.items()}

def digits_cnn():
    return apply, init(), {"image": np.zeros((1, 8, 8, 1), np.float32)}

def digits_cnn_no_examples():
    return apply, init()
'''


@pytest.fixture(scope="module")
def cnn(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """The CNN module, written to a file (for the entry-point tests) and imported."""
    folder = tmp_path_factory.mktemp("jax_cnn")
    (folder / "jax_cnn.py").write_text(textwrap.dedent(CNN_SOURCE))
    spec = importlib.util.spec_from_file_location("jax_cnn_model", folder / "jax_cnn.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.path = folder / "jax_cnn.py"
    return module


@pytest.fixture(scope="module")
def cnn_tflite(cnn: Any, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("jax_cnn_out") / "cnn.tflite"
    return from_jax(cnn.apply, cnn.init(), {"image": np.zeros((1, 8, 8, 1), np.float32)}, out_path=out)


def _samples(count: int, seed: int = 1) -> np.ndarray:
    return np.random.default_rng(seed).uniform(0, 1, size=(count, 1, 8, 8, 1)).astype(np.float32)


@pytest.mark.slow
@jax_and_tf
def test_cnn_converts_matches_jax_and_packages_for_host(cnn: Any, cnn_tflite: Path, tmp_path: Path) -> None:
    from edgepack.ir.loader import list_model_ops, load_model

    graph = load_model(cnn_tflite)
    assert graph.inputs == ["image"] and graph.outputs == ["output"]
    assert graph.tensor("image").shape == (1, 8, 8, 1) and graph.tensor("output").shape == (1, 10)
    ops = {r["op"] for r in list_model_ops(cnn_tflite)}
    assert {"CONV_2D", "AVERAGE_POOL_2D", "FULLY_CONNECTED", "SOFTMAX"} <= ops
    assert not ops & {"SHAPE", "STRIDED_SLICE", "PACK", "QUANTIZE"}  # static batch, float, no optimizations
    params = cnn.init()
    for x in _samples(4):
        assert_close(run_reference(cnn_tflite, {"image": x})["output"], np.asarray(cnn.apply(params, x)))
    manifest = package_and_verify(cnn_tflite, tmp_path, "host")
    assert manifest["inputs"][0]["name"] == "image" and "litert" in manifest["backends"]


@pytest.mark.slow
@jax_and_tf
def test_cnn_packages_for_cortex_m4_int8(cnn_tflite: Path, tmp_path: Path) -> None:
    reason = mcu_missing()
    if reason:
        pytest.skip(reason)
    manifest = package_and_verify(cnn_tflite, tmp_path, "cortex-m4", calib={"image": _samples(32, seed=2)[:, 0]})
    assert manifest["quantization"]["bits"] == "int8"
    assert manifest["backends"]["device"]["tolerance"] == {"max_abs": 0, "unit": "lsb"}


@pytest.mark.slow
@jax_and_tf
def test_entry_point_file_with_example_shape(cnn: Any, tmp_path: Path) -> None:
    spec = f"{cnn.path}:digits_cnn_no_examples"
    with pytest.raises(ModelError, match="returned no example inputs") as exc:
        load_entry_point(spec)
    assert "--example-shape" in exc.value.hint
    path = prepare_model(spec, [1, 8, 8, 1], out_dir=tmp_path)
    assert path == tmp_path / "digits_cnn_no_examples.tflite"
    x = _samples(1)[0]
    want = np.asarray(cnn.apply(cnn.init(), x))
    assert_close(run_reference(path, {"input": x})["output"], want)
    # (fn, params, examples): the example's name is kept
    named = prepare_model(f"{cnn.path}:digits_cnn", out_dir=tmp_path)
    assert_close(run_reference(named, {"image": x})["output"], want)


def test_entry_point_errors(tmp_path: Path) -> None:
    (tmp_path / "m.py").write_text("def model():\n    return 42\n\ndef other():\n    pass\n")
    with pytest.raises(ModelError, match="has no function 'nope'; it defines model, other"):
        load_entry_point(f"{tmp_path / 'm.py'}:nope")
    with pytest.raises(ModelError, match=r"returned int; return \(fn, params, example_inputs\)"):
        load_entry_point(f"{tmp_path / 'm.py'}:model")
    with pytest.raises(ModelError, match="no such file"):
        load_entry_point(f"{tmp_path / 'missing.py'}:model")
    with pytest.raises(ModelError, match=r"input 'input' has a dynamic dimension 1 \(-1\)"):
        entry_from_result((lambda x: x, None), [1, -1, 8, 1], "m.py:model", "model")
    with pytest.raises(ModelError, match="--example-shape sets one input, but model\\(\\) returned 2"):
        entry_from_result((lambda a, b: a, None, (np.zeros(2), np.zeros(2))), [1, 2], "m.py:model", "model")


@pytest.mark.slow
@jax_and_tf
def test_dynamic_shape_names_the_input_and_dimension() -> None:
    import jax
    from jax import export

    (batch,) = export.symbolic_shape("b")
    with pytest.raises(ModelError, match=r"input 'image' has a dynamic dimension 0 \(b\) in shape \(b, 16\)"):
        from_jax(lambda x: x * 2.0, None, {"image": jax.ShapeDtypeStruct((batch, 16), np.float32)})


@pytest.mark.slow
@jax_and_tf
def test_unconvertible_construct_is_one_message_naming_the_source_line() -> None:
    import jax.numpy as jnp

    def sorted_scores(x: Any) -> Any:
        return jnp.sort(x, axis=-1) * 2.0

    with pytest.raises(ModelError) as exc:
        from_jax(sorted_scores, None, np.ones((1, 16), np.float32))
    message = exc.value.message
    assert "conversion failed" in message and "sort" in message
    assert "(in sorted_scores, test_frontend_jax.py:" in message and "\n" not in message


@pytest.mark.slow
@jax_and_tf
def test_ops_edgepack_cannot_import_are_listed_in_one_error() -> None:
    import jax.numpy as jnp

    def head(x: Any) -> Any:
        return jnp.exp(x) + jnp.max(x, axis=-1, keepdims=True)

    with pytest.raises(UnsupportedOpsError) as exc:
        from_jax(head, None, np.ones((1, 16), np.float32))
    ops = {op for op, *_ in exc.value.problems}
    assert {"EXP", "REDUCE_MAX"} <= ops, ops
    assert "JAX function 'head' (converted to" in exc.value.message and "docs/frontends.md" in exc.value.hint


@pytest.mark.slow
@needs("jax", extra="jax")
@pytest.mark.skipif(not has_litert_converter, reason="litert-converter not installed "
                    "(pip install --no-deps litert-converter==0.5.0)")
def test_litert_route_warns_and_matches_jax(cnn: Any, tmp_path: Path) -> None:
    params = cnn.init()
    with pytest.warns(UnstableAPIWarning, match="unstable API"):
        path = from_jax(cnn.apply, params, {"image": np.zeros((1, 8, 8, 1), np.float32)}, route="litert",
                        out_path=tmp_path / "cnn_litert.tflite")
    x = _samples(1)[0]
    assert_close(run_reference(path, {"image": x})["output"], np.asarray(cnn.apply(params, x)))
    package_and_verify(path, tmp_path, "host")


@pytest.mark.slow
@needs("jax", extra="jax")
def test_litert_route_without_the_package_says_why(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "litert_converter", None)
    with warnings.catch_warnings(record=True) as caught, pytest.raises(EdgepackError) as exc:
        warnings.simplefilter("always")
        from_jax(lambda x: x, None, np.zeros((1, 2), np.float32), route="litert")
    assert any(issubclass(w.category, UnstableAPIWarning) for w in caught)
    assert "typing-extensions<4.13" in exc.value.message and "--no-deps litert-converter" in exc.value.hint


def test_missing_jax_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "jax", None)
    with pytest.raises(EdgepackError, match="converting JAX functions needs jax") as exc:
        from_jax(lambda x: x, None, np.zeros((1, 2), np.float32))
    assert exc.value.hint == "install it with: pip install 'edgepack[jax]'"


def test_unknown_route() -> None:
    with pytest.raises(EdgepackError, match="route 'tflite' is not a JAX conversion route; use one of jax2tf, litert"):
        from_jax(lambda x: x, None, np.zeros((1, 2), np.float32), route="tflite")
