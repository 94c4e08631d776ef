"""The `make demo` example (examples/digits/demo.py), end to end, into a temporary folder.

The demo trains the JAX CNN, packages it for cortex-m4 with mixed int4/int8 weights, runs the whole test split on
the emulated board (qemu-mps2-an386) and packages the same model for rpi4 (LiteRT on this computer). It writes
results.json; this test checks its claims: exit 0, board accuracy within 1 percentage point of float, board
outputs bit-identical to the golden interpreter for every test image, and rpi4/LiteRT accuracy measured.
"""

from __future__ import annotations

import importlib.util
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DEMO = ROOT / "examples" / "digits" / "demo.py"


def _missing() -> str | None:
    """What this machine lacks to run the demo (None when nothing)."""
    for module, install in (("jax", "pip install 'edgepack[jax]'"), ("tensorflow", "pip install 'edgepack[jax]'"),
                            ("sklearn", "pip install scikit-learn"), ("tflite", "pip install 'edgepack[tflite]'")):
        if importlib.util.find_spec(module) is None:
            return f"{module} not installed ({install})"
    for tool in ("arm-none-eabi-gcc", "arm-none-eabi-objcopy", "arm-none-eabi-size"):
        if shutil.which(tool) is None:
            return f"{tool} not installed (apt-get install gcc-arm-none-eabi libnewlib-arm-none-eabi)"
    if shutil.which("qemu-system-arm") is None:
        return "qemu-system-arm not installed (apt-get install qemu-system-arm)"
    return None


@pytest.mark.slow
@pytest.mark.skipif(_missing() is not None, reason=str(_missing()))
def test_digits_demo(tmp_path: Path) -> None:
    out = tmp_path / "digits"
    proc = subprocess.run([sys.executable, str(DEMO), "--out", str(out)], cwd=ROOT, capture_output=True, text=True,
                          timeout=600)
    log = (proc.stdout + proc.stderr)[-4000:]
    assert proc.returncode == 0, log
    results = json.loads((out / "results.json").read_text())

    assert results["passed"], results
    assert results["checks"] == {"board_accuracy_within_1pp_of_float": True, "bit_exact_every_test_image": True,
                                 "commands_exit_0": True}
    assert results["n_test"] == 450  # 25 % of the 1797 digits, stratified
    assert results["bit_exact"] == results["bit_exact_total"] == results["n_test"]
    assert abs(results["board_accuracy"] - results["float_accuracy"]) <= 0.01
    assert results["board_accuracy"] == results["reference_accuracy"]  # bit-exact, so the same top-1
    assert results["float_accuracy"] >= 0.95, "the CNN trains to about 98 % on the test split"
    assert all(c["exit"] == 0 for c in results["commands"]) and len(results["commands"]) == 3

    # mixed precision really happened, under the budget, and the board numbers are recorded
    q = results["quantization"]
    assert q["weight_bytes"] <= results["max_weights_kb"] * 1024 < q["int8_weight_bytes"]
    assert any(layer.endswith("w4a8") for layer in q["layers"])
    memory = results["memory"]
    assert memory["flash_bytes"] > 0 and memory["ram_bytes"] > 0
    assert memory["source"].startswith("arm-none-eabi-size")
    assert results["instructions_per_inference"] > 0

    # the same model for rpi4 (or host), in the host runtime with LiteRT
    assert results["linux_target"] in ("rpi4", "host")
    assert results["linux_accuracy"] >= results["float_accuracy"] - 0.02
    for name in ("params.npz", "calib.npz", "test.npz", "digits_m4.edgepack", f"digits_{results['linux_target']}"
                 ".edgepack"):
        assert (out / name).is_file(), name
