"""Keras frontend: a model with Conv2D, BatchNormalization, DepthwiseConv2D and Dense, saved as .keras and .h5,
converts with a static batch of 1 to a float .tflite that matches Keras within 1e-4 and packages for host (and
cortex-m4, int8); an open spatial dimension and an unsupported layer each give one clear message."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from frontend_checks import assert_close, mcu_missing, needs, package_and_verify, run_reference

from edgepack.errors import EdgepackError, ModelError, UnsupportedOpsError
from edgepack.frontends import from_keras, prepare_model

keras_tf = needs("tensorflow", "keras", extra="jax")
pytestmark = [pytest.mark.filterwarnings("ignore:.*HDF5 file.*:UserWarning"),
              # Keras 3.15 on numpy 2 (keras/src/backend/tensorflow/core.py), not edgepack
              pytest.mark.filterwarnings("ignore:__array__ implementation doesn't accept a copy:DeprecationWarning")]


def _build(input_shape: tuple[int | None, ...] = (8, 8, 1)) -> Any:
    import keras

    inp = keras.Input(input_shape, name="image")
    y = keras.layers.Conv2D(8, 3, padding="same", use_bias=False)(inp)
    y = keras.layers.BatchNormalization()(y)
    y = keras.layers.ReLU()(y)
    y = keras.layers.DepthwiseConv2D(3, padding="same", activation="relu")(y)
    y = keras.layers.MaxPooling2D(2)(y)
    y = keras.layers.GlobalAveragePooling2D()(y)
    out = keras.layers.Dense(10, activation="softmax", name="probs")(y)
    model = keras.Model(inp, out, name="kws_like")
    rng = np.random.default_rng(0)
    for layer in model.layers:  # non-trivial BatchNorm statistics, so folding them is really tested
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.set_weights([rng.uniform(0.5, 1.5, 8), rng.normal(size=8), rng.normal(size=8) * 0.2,
                               rng.uniform(0.5, 2.0, 8)])
    return model


@pytest.fixture(scope="module")
def saved(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    folder = tmp_path_factory.mktemp("keras")
    model = _build()
    model.save(folder / "cnn.keras")
    model.save(folder / "cnn_legacy.h5")
    return {"model": model, "keras": folder / "cnn.keras", "h5": folder / "cnn_legacy.h5", "folder": folder}


def _samples(count: int, seed: int = 1) -> np.ndarray:
    return np.random.default_rng(seed).uniform(0, 1, size=(count, 1, 8, 8, 1)).astype(np.float32)


@pytest.mark.slow
@keras_tf
@pytest.mark.parametrize("kind", ["keras", "h5"])
def test_saved_model_converts_matches_keras_and_packages_for_host(saved: dict[str, Any], kind: str,
                                                                  tmp_path: Path) -> None:
    from edgepack.ir.loader import list_model_ops, load_model

    path = from_keras(saved[kind], tmp_path / f"{kind}.tflite")
    graph = load_model(path)
    assert graph.inputs == ["image"] and graph.outputs == ["probs"]
    assert graph.tensor("image").shape == (1, 8, 8, 1)  # the open Keras batch is fixed to 1
    ops = {r["op"] for r in list_model_ops(path)}
    assert {"CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED"} <= ops and not ops & {"SHAPE", "STRIDED_SLICE"}
    for x in _samples(4):
        assert_close(run_reference(path, {"image": x})["probs"], saved["model"](x, training=False).numpy())
    package_and_verify(path, tmp_path, "host")


@pytest.mark.slow
@keras_tf
def test_model_object_and_prepare_model(saved: dict[str, Any], tmp_path: Path) -> None:
    path = from_keras(saved["model"], tmp_path / "obj.tflite")
    x = _samples(1)[0]
    assert_close(run_reference(path, {"image": x})["probs"], saved["model"](x, training=False).numpy())
    assert prepare_model(saved["keras"], out_dir=tmp_path / "cli") == tmp_path / "cli" / "cnn.tflite"


@pytest.mark.slow
@keras_tf
def test_packages_for_cortex_m4_int8(saved: dict[str, Any], tmp_path: Path) -> None:
    reason = mcu_missing()
    if reason:
        pytest.skip(reason)
    path = from_keras(saved["keras"], tmp_path / "cnn.tflite")
    manifest = package_and_verify(path, tmp_path, "cortex-m4", calib={"image": _samples(32, seed=2)[:, 0]})
    assert manifest["backends"]["device"]["tolerance"] == {"max_abs": 0, "unit": "lsb"}


@pytest.mark.slow
@keras_tf
def test_open_spatial_dimension_names_the_input_and_dimension(tmp_path: Path) -> None:
    model = _build((None, 8, 1))
    with pytest.raises(ModelError, match=r"input 'image' has a dynamic dimension 1 \(None\) in shape "
                                         r"\(\?, \?, 8, 1\)") as exc:
        from_keras(model, tmp_path / "dyn.tflite")
    assert "fixed size" in exc.value.hint
    path = from_keras(model, tmp_path / "fixed.tflite", input_shapes=[(1, 8, 8, 1)])  # the way out
    assert run_reference(path, {"image": _samples(1)[0]})["probs"].shape == (1, 10)


@pytest.mark.slow
@keras_tf
def test_unsupported_layers_are_listed_in_one_error(tmp_path: Path) -> None:
    import keras

    inp = keras.Input((6, 4), name="frames")
    y = keras.layers.LSTM(8, unroll=False)(inp)
    out = keras.layers.Dense(3, activation="tanh")(keras.layers.Activation("elu")(y))
    with pytest.raises(UnsupportedOpsError) as exc:
        from_keras(keras.Model(inp, out, name="rnn"), tmp_path / "rnn.tflite")
    ops = {op for op, *_ in exc.value.problems}
    assert {"WHILE", "ELU"} <= ops, ops  # Keras 3 runs the LSTM as a while loop
    assert exc.value.message.startswith("Keras model 'rnn' (converted to ")


def test_missing_file_and_wrong_suffix(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="no such file"):
        from_keras(tmp_path / "absent.keras")
    (tmp_path / "model.pb").write_bytes(b"x")
    with pytest.raises(ModelError, match=r"a Keras model file ends in \.keras, \.h5, \.hdf5"):
        from_keras(tmp_path / "model.pb")


def test_missing_tensorflow_names_the_extra(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setitem(sys.modules, "tensorflow", None)
    (tmp_path / "m.keras").write_bytes(b"x")
    with pytest.raises(EdgepackError, match="needs tensorflow") as exc:
        from_keras(tmp_path / "m.keras")
    assert exc.value.hint == "install it with: pip install 'edgepack[jax]'"
