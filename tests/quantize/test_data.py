"""Calibration/evaluation files: .npz by name or first float array, .npy, directories, labels, overlap."""

from __future__ import annotations

import numpy as np
import pytest

from edgepack.errors import InputError
from edgepack.quantize.data import load_labelled, load_samples, overlap


def test_npz_named_first_float_and_npy(tiny, tmp_path) -> None:
    x = np.random.default_rng(0).normal(size=(5, 8, 8, 3)).astype(np.float32)
    np.savez(tmp_path / "named.npz", y=np.arange(5), other=np.zeros((5, 8, 8, 3), np.float32), x=x)
    np.testing.assert_array_equal(load_samples(tmp_path / "named.npz", tiny)["x"], x)
    # No array called 'x': the first *float* array, skipping the integer ones (labels, pre-quantized data).
    np.savez(tmp_path / "first.npz", y=np.arange(5), x_int8=x.astype(np.int8), x_float=x, later=x * 0)
    np.testing.assert_array_equal(load_samples(tmp_path / "first.npz", tiny)["x"], x)
    np.save(tmp_path / "stack.npy", x[:, None])  # [N, 1, 8, 8, 3]: a stack of batch-1 samples is folded
    assert load_samples(tmp_path / "stack.npy", tiny)["x"].shape == (5, 8, 8, 3)


def test_directory_of_samples_and_stacks(tiny, tmp_path) -> None:
    rng = np.random.default_rng(1)
    np.save(tmp_path / "a.npy", rng.normal(size=(8, 8, 3)).astype(np.float32))  # one sample, no batch axis
    np.save(tmp_path / "b.npy", rng.normal(size=(1, 8, 8, 3)).astype(np.float32))  # one sample with batch 1
    np.savez(tmp_path / "c.npz", x=rng.normal(size=(4, 8, 8, 3)).astype(np.float32))  # a stack
    (tmp_path / "notes.txt").write_text("ignored")
    assert load_samples(tmp_path, tiny)["x"].shape == (6, 8, 8, 3)
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="no .npy or .npz"):
        load_samples(tmp_path / "empty", tiny)


def test_errors_name_the_file_and_what_was_expected(tiny, tmp_path) -> None:
    np.savez(tmp_path / "ints.npz", y=np.arange(3))
    with pytest.raises(InputError, match="no floating-point array"):
        load_samples(tmp_path / "ints.npz", tiny)
    np.savez(tmp_path / "shape.npz", x=np.zeros((3, 7, 8, 3), np.float32))
    with pytest.raises(InputError, match=r"shape\.npz.*expected \[N, 8, 8, 3\]"):
        load_samples(tmp_path / "shape.npz", tiny)
    with pytest.raises(InputError, match="no such file"):
        load_samples(tmp_path / "absent.npz", tiny)
    nan = np.zeros((3, 8, 8, 3), np.float32)
    nan[1, 2, 3, 0], nan[2, 0, 0, 1] = np.nan, np.inf
    np.savez(tmp_path / "nan.npz", x=nan)
    with pytest.raises(InputError, match=r"nan\.npz.*holds 2 NaN or infinite"):
        load_samples(tmp_path / "nan.npz", tiny)
    np.savez(tmp_path / "nolabels.npz", x=np.zeros((3, 8, 8, 3), np.float32))
    with pytest.raises(InputError, match="no labels array 'y'"):
        load_labelled(tmp_path / "nolabels.npz", tiny)
    np.savez(tmp_path / "badlabels.npz", x=np.zeros((3, 8, 8, 3), np.float32), y=np.arange(2))
    with pytest.raises(InputError, match="labels 'y' must be 3 integers"):
        load_labelled(tmp_path / "badlabels.npz", tiny)


def test_labels_and_overlap(tiny, tmp_path) -> None:
    x = np.random.default_rng(2).normal(size=(10, 8, 8, 3)).astype(np.float32)
    np.savez(tmp_path / "eval.npz", x=x[4:], y=np.arange(6))
    data, y = load_labelled(tmp_path / "eval.npz", tiny)
    assert data["x"].shape == (6, 8, 8, 3) and y.tolist() == list(range(6))
    assert overlap({"x": x[:4]}, data) == 0
    assert overlap({"x": x[:6]}, data) == 2
