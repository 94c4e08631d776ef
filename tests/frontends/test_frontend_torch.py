"""PyTorch frontend: Conv2d+BatchNorm+ReLU+MaxPool+Linear exports (opset 17, static shapes) to a float .onnx
that matches torch within 1e-4 and packages for host (and cortex-m4, int8); an LSTM gives one clear message;
entry points returning (module, example); the missing extra."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from frontend_checks import assert_close, mcu_missing, needs, package_and_verify, run_reference

from edgepack.errors import EdgepackError, ModelError, UnsupportedOpsError
from edgepack.frontends import from_torch, prepare_model

torch_onnx = needs("torch", "onnx", extra="torch")

NET_SOURCE = '''
import torch
from torch import nn

class SmallCNN(nn.Module):
    """8x8x1 -> conv/bn/relu/maxpool 2 -> conv/bn/relu/maxpool `pool` -> flatten -> linear 10."""

    def __init__(self, pool=2):
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(), nn.MaxPool2d(2),
                                      nn.Conv2d(8, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(),
                                      nn.MaxPool2d(pool))
        self.head = nn.Linear(16 * (4 // pool) ** 2, 10)

    def forward(self, x):
        return self.head(torch.flatten(self.features(x), 1))

def build(seed=0, pool=2):
    torch.manual_seed(seed)
    net = SmallCNN(pool)
    for m in net.modules():  # non-trivial running statistics, so BatchNorm folding is really tested
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 2.0)
            m.weight.data.uniform_(0.5, 1.5)
            m.bias.data.uniform_(-0.3, 0.3)
    return net

def model():
    return build(), torch.zeros(1, 1, 8, 8)
'''


@pytest.fixture(scope="module")
def net_module(tmp_path_factory: pytest.TempPathFactory) -> Any:
    import importlib.util

    folder = tmp_path_factory.mktemp("torch_net")
    (folder / "torch_net.py").write_text(NET_SOURCE)
    spec = importlib.util.spec_from_file_location("torch_net_model", folder / "torch_net.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.path = folder / "torch_net.py"
    return module


@pytest.fixture(scope="module")
def net_onnx(net_module: Any, tmp_path_factory: pytest.TempPathFactory) -> tuple[Any, Path]:
    import torch

    net = net_module.build()
    path = from_torch(net, torch.zeros(1, 1, 8, 8), tmp_path_factory.mktemp("torch_out") / "cnn.onnx")
    return net, path


def _samples(count: int, seed: int = 1) -> np.ndarray:
    return np.random.default_rng(seed).uniform(0, 1, size=(count, 1, 1, 8, 8)).astype(np.float32)


@pytest.mark.slow
@torch_onnx
def test_cnn_exports_matches_torch_and_packages_for_host(net_onnx: tuple[Any, Path], tmp_path: Path) -> None:
    import onnx
    import torch

    net, path = net_onnx
    assert net.training  # exported in eval mode, handed back in the mode it came in
    proto = onnx.load(path)
    assert [o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")] == [17]
    assert [d.dim_value for d in proto.graph.input[0].type.tensor_type.shape.dim] == [1, 1, 8, 8]
    assert "BatchNormalization" not in {n.op_type for n in proto.graph.node}  # folded into Conv
    net.eval()
    for x in _samples(4):
        with torch.no_grad():
            want = net(torch.from_numpy(x)).numpy()
        assert_close(run_reference(path, {"input": x})["output"], want)
    net.train()
    manifest = package_and_verify(path, tmp_path, "host")
    assert "onnxruntime" in manifest["backends"]


@pytest.mark.slow
@torch_onnx
def test_cnn_packages_for_cortex_m4_int8(net_module: Any, tmp_path: Path) -> None:
    import torch

    reason = mcu_missing()
    if reason:
        pytest.skip(reason)
    # Pooled to 1x1 before the flatten: flattening a 2x2 NCHW map needs a TRANSPOSE (NHWC -> NCHW), for which
    # the Cortex-M kernel library has no kernel yet.
    path = from_torch(net_module.build(pool=4), torch.zeros(1, 1, 8, 8), tmp_path / "cnn_1x1.onnx")
    manifest = package_and_verify(path, tmp_path, "cortex-m4", calib={"input": _samples(32, seed=2)[:, 0]})
    assert manifest["backends"]["device"]["tolerance"] == {"max_abs": 0, "unit": "lsb"}


@pytest.mark.slow
@torch_onnx
def test_entry_point_returning_module_and_example(net_module: Any, tmp_path: Path) -> None:
    path = prepare_model(f"{net_module.path}:model", out_dir=tmp_path)
    assert path == tmp_path / "model.onnx"
    assert run_reference(path, {"input": np.zeros((1, 1, 8, 8), np.float32)})["output"].shape == (1, 10)
    with pytest.raises(ModelError, match=r"torch.onnx.export failed \(RuntimeError: mat1 and mat2 shapes"):
        prepare_model(f"{net_module.path}:model", [1, 1, 12, 12], out_dir=tmp_path / "big")


@pytest.mark.slow
@torch_onnx
@pytest.mark.filterwarnings("ignore:Converting a tensor to a Python boolean")  # the tracer's notes on the LSTM
@pytest.mark.filterwarnings("ignore:Exporting a model to ONNX with a batch_size")
def test_lstm_is_one_unsupported_ops_error(tmp_path: Path) -> None:
    import torch

    class Tagger(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.lstm = torch.nn.LSTM(4, 8, batch_first=True)
            self.out = torch.nn.Linear(8, 3)

        def forward(self, x: Any) -> Any:
            return torch.nn.functional.gelu(self.out(self.lstm(x)[0]))

    with pytest.raises(UnsupportedOpsError) as exc:
        from_torch(Tagger(), torch.zeros(1, 6, 4), tmp_path / "tagger.onnx")
    ops = {op for op, *_ in exc.value.problems}
    assert "LSTM" in ops, ops
    assert exc.value.message.startswith("PyTorch module 'Tagger' (converted to ") and "\n" not in exc.value.message


@pytest.mark.slow
@torch_onnx
def test_bad_arguments(net_module: Any) -> None:
    import torch

    with pytest.raises(ModelError, match="needs a torch.nn.Module, got function"):
        from_torch(lambda x: x, torch.zeros(1))
    with pytest.raises(ModelError, match=r"input 'input' has an empty dimension 0 \(0\)"):
        from_torch(net_module.build(), torch.zeros(0, 1, 8, 8))
    with pytest.raises(ModelError, match="2 input_names for 1 example inputs"):
        from_torch(net_module.build(), torch.zeros(1, 1, 8, 8), input_names=["a", "b"])


def test_missing_torch_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "torch", None)
    with pytest.raises(EdgepackError, match="converting PyTorch models needs torch") as exc:
        from_torch(object(), None)
    assert exc.value.hint == "install it with: pip install 'edgepack[torch]'"
