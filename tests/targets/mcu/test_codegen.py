"""Generated model.c, compiled with the host gcc (-Wall -Wextra -Werror) against the kernel library,
must reproduce the golden interpreter bit for bit: KWS on 100 EEMBC inputs, AD on 50 random inputs,
and small graphs built in code. The same sources must cross-compile for Cortex-M4 with the DSP paths."""

from __future__ import annotations

import hashlib
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from test_kernels_support import (
    CFLAGS,
    act,
    assert_matches_golden,
    bias,
    have_gcc,
    rand_quant,
    random_dag,
    weights,
)

from edgepack.ir.graph import Graph, Node, QuantParams
from edgepack.ir.ops import Op
from edgepack.targets.mcu import kernel_lib
from edgepack.targets.mcu.codegen import generate, required_sources, write_sources

MODELS = Path("/work/shared/models")
DATA = Path("/work/shared/data")
needs_gcc = pytest.mark.skipif(not have_gcc(), reason="needs a host gcc")
needs_models = pytest.mark.skipif(not (MODELS / "kws_ref_model.tflite").is_file(),
                                  reason="MLPerf Tiny models not found under /work/shared/models")
HAVE_ARM = shutil.which("arm-none-eabi-gcc") is not None

HARNESS = r"""
/* Host harness: argv[1] samples of EDGEPACK_INPUT_BYTES on stdin -> outputs on stdout. */
#include <stdio.h>
#include <stdlib.h>
#include "model.h"

static unsigned char input[EDGEPACK_INPUT_BYTES];
static unsigned char output[EDGEPACK_OUTPUT_BYTES];

int main(int argc, char **argv)
{
    long n = argc > 1 ? strtol(argv[1], NULL, 10) : 1;
    long i;
    for (i = 0; i < n; ++i) {
        int status;
        if (fread(input, 1, sizeof input, stdin) != sizeof input) {
            return 2;
        }
        status = edgepack_model_run(input, output);
        if (status != 0) {
            fprintf(stderr, "edgepack_model_run: status 0x%02x\n", status);
            return 3;
        }
        fwrite(output, 1, sizeof output, stdout);
    }
    return 0;
}
"""


def sha_of(path: Path | None, graph: Graph) -> str:
    data = path.read_bytes() if path is not None else graph.name.encode()
    return hashlib.sha256(data).hexdigest()


def build_host(graph: Graph, sha: str, out: Path, dsp: bool, cpu: str = "cortex-m4") -> Path:
    """Generate, write and compile model + kernels + harness; returns the executable."""
    c_files = write_sources(graph, sha, cpu, out)
    (out / "harness.c").write_text(HARNESS)
    exe = out / "model_host"
    cmd = ["gcc", *CFLAGS, *(["-DEP_EMULATE_DSP"] if dsp else []), f"-I{out}", *map(str, c_files),
           str(out / "harness.c"), "-o", str(exe)]
    res = subprocess.run(cmd, capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    return exe


def run_host(exe: Path, graph: Graph, inputs: dict[str, np.ndarray], n: int) -> dict[str, np.ndarray]:
    """Run n samples (stacked on axis 0 of every input) through the compiled model."""
    blob = b"".join(b"".join(np.ascontiguousarray(inputs[name][i]).tobytes() for name in graph.inputs)
                    for i in range(n))
    res = subprocess.run([str(exe), str(n)], input=blob, capture_output=True)
    assert res.returncode == 0, res.stderr.decode()
    outs: dict[str, list[np.ndarray]] = {name: [] for name in graph.outputs}
    raw, pos = res.stdout, 0
    for _ in range(n):
        for name in graph.outputs:
            t = graph.tensor(name)
            nbytes = t.size * np.dtype(t.dtype).itemsize
            outs[name].append(np.frombuffer(raw[pos:pos + nbytes], dtype=t.dtype).reshape(t.shape[1:]))
            pos += nbytes
    assert pos == len(raw)
    return {name: np.stack(v) for name, v in outs.items()}


def check_model(graph: Graph, sha: str, inputs: dict[str, np.ndarray], n: int, tmp: Path, dsp: bool) -> None:
    exe = build_host(graph, sha, tmp / ("dsp" if dsp else "portable"), dsp)
    outputs = run_host(exe, graph, inputs, n)
    stacked = {k: v.reshape(n, *graph.tensor(k).shape[1:]) for k, v in inputs.items()}
    assert_matches_golden(graph, {k: v.reshape(n, *graph.tensor(k).shape[1:]) for k, v in outputs.items()}, stacked)


@pytest.fixture(scope="module")
def kws():
    from edgepack.ir.tflite import from_tflite
    return from_tflite(MODELS / "kws_ref_model.tflite")


@pytest.fixture(scope="module")
def ad():
    from edgepack.ir.tflite import from_tflite
    return from_tflite(MODELS / "ad01_int8.tflite")


@needs_gcc
@needs_models
@pytest.mark.parametrize("dsp", [False, True], ids=["portable", "dsp-emulated"])
def test_kws_bit_exact_on_100_inputs(kws, tmp_path, dsp):
    x = np.load(DATA / "kws01_test.npz")["x_int8"][:100].reshape(100, 49, 10, 1)
    check_model(kws, sha_of(MODELS / "kws_ref_model.tflite", kws), {"input_1": x}, 100, tmp_path, dsp)


@needs_gcc
@needs_models
@pytest.mark.parametrize("dsp", [False, True], ids=["portable", "dsp-emulated"])
def test_ad_bit_exact_on_50_inputs(ad, tmp_path, dsp):
    x = np.random.default_rng(0).integers(-128, 128, size=(50, 640)).astype(np.int8)
    check_model(ad, sha_of(MODELS / "ad01_int8.tflite", ad), {"input_1": x}, 50, tmp_path, dsp)


def small_graph(rng: np.random.Generator) -> Graph:
    """conv (int4) -> dwconv -> add (residual, in place) -> pad -> maxpool -> concat -> mean -> fc -> logistic."""
    q = rand_quant(rng, "int8")
    t = {}

    def add(tensor):
        t[tensor.name] = tensor
        return tensor.name

    x = add(act("x", (1, 8, 6, 3), "int8", rng))
    w0, b0 = add(weights("w0", (8, 3, 3, 3), 0, rng, bits=4)), add(bias("b0", 8, rng))
    c0 = add(act("c0", (1, 8, 6, 8), "int8", rng))
    w1, b1 = add(weights("w1", (1, 3, 3, 8), 3, rng)), add(bias("b1", 8, rng))
    c1 = add(act("c1", (1, 8, 6, 8), "int8", rng))
    s = add(act("s", (1, 8, 6, 8), "int8", rng, q))
    p = add(act("p", (1, 9, 7, 8), "int8", rng, q))
    m = add(act("m", (1, 4, 3, 8), "int8", rng, q))
    m2 = add(act("m2", (1, 4, 3, 8), "int8", rng, q))
    cat = add(act("cat", (1, 4, 3, 16), "int8", rng, q))
    g = add(act("g", (1, 1, 1, 16), "int8", rng))
    f = add(act("f", (1, 16), "int8", rng, t["g"].quant))
    w2, b2 = add(weights("w2", (10, 16), 0, rng)), add(bias("b2", 10, rng))
    y = add(act("y", (1, 10), "int8", rng))
    out = add(act("out", (1, 10), "int8", rng, QuantParams(np.array([1 / 256]), np.array([-128]))))
    conv = {"strides": [1, 1], "dilations": [1, 1], "pads": [1, 1, 1, 1], "activation": "RELU"}
    pool = {"kernel": [2, 2], "strides": [2, 2], "pads": [0, 0, 1, 1], "activation": "NONE"}
    nodes = [
        Node(Op.CONV_2D, "block1/conv", [x, w0, b0], [c0], conv),
        Node(Op.DEPTHWISE_CONV_2D, "block1/dw", [c0, w1, b1], [c1], {**conv, "depth_multiplier": 1}),
        Node(Op.ADD, "block1/residual", [c1, c0], [s], {"activation": "NONE"}),
        Node(Op.PAD, "block2/pad", [s], [p], {"pads": [[0, 0], [1, 0], [1, 0], [0, 0]]}),
        Node(Op.MAX_POOL_2D, "block2/max", [p], [m], pool),
        Node(Op.AVERAGE_POOL_2D, "block2/avg", [p], [m2], {**pool, "activation": "RELU"}),
        Node(Op.CONCATENATION, "block2/cat", [m, m2], [cat], {"axis": 3, "activation": "NONE"}),
        Node(Op.MEAN, "head/mean", [cat], [g], {"axes": [1, 2], "keepdims": True}),
        Node(Op.RESHAPE, "head/flat", [g], [f]),
        Node(Op.FULLY_CONNECTED, "head/fc", [f, w2, b2], [y], {"activation": "NONE"}),
        Node(Op.SOFTMAX, "head/softmax", [y], [out], {"beta": 1.0}),
    ]
    return Graph("small", t, nodes, [x], [out], {"source_file": "small.tflite"})


def two_io_graph(rng: np.random.Generator) -> Graph:
    """Two inputs, two outputs (one an int16 fc), exercising the concatenated I/O buffers."""
    a, b = act("a", (1, 5), "int8", rng), act("b", (1, 5), "int8", rng)
    s = act("s", (1, 5), "int8", rng)
    x16 = act("x16", (1, 6), "int16", rng)
    w = weights("w", (4, 6), 0, rng)
    bb = bias("bb", 4, rng, wide=True)
    y16 = act("y16", (1, 4), "int16", rng)
    nodes = [Node(Op.MUL, "mul", ["a", "b"], ["s"], {"activation": "NONE"}),
             Node(Op.FULLY_CONNECTED, "fc16", ["x16", "w", "bb"], ["y16"], {"activation": "NONE"})]
    tensors = {t.name: t for t in (a, b, s, x16, w, bb, y16)}
    return Graph("two_io", tensors, nodes, ["a", "b", "x16"], ["s", "y16"])


def mixed_width_graph(rng: np.random.Generator) -> Graph:
    """int8 -> QUANTIZE -> int16 FC -> RELU6 (int16, in place) -> QUANTIZE -> int8 -> CLIP -> int4 1x1 conv
    and int4 FC: the requantize kernels between widths, as the quantizer emits them, in generated C."""
    x = act("x", (1, 4, 3, 8), "int8", rng)
    x16 = act("x16", (1, 4, 3, 8), "int16", rng)
    w16 = weights("w16", (10, 8), 0, rng)
    b16 = bias("b16", 10, rng, wide=True)
    f16 = act("f16", (12, 10), "int16", rng)
    f16r = act("f16r", (12, 10), "int16", rng, f16.quant)
    q8, c8 = act("q8", (12, 10), "int8", rng), act("c8", (12, 10), "int8", rng)
    c8r = act("c8r", (1, 4, 3, 10), "int8", rng, c8.quant)
    w4, b4 = weights("w4", (6, 1, 1, 10), 0, rng, bits=4), bias("b4", 6, rng)
    y = act("y", (1, 4, 3, 6), "int8", rng)
    wf, bf = weights("wf", (3, 72), 0, rng, bits=4), bias("bf", 3, rng)
    wf.quant.scale, wf.quant.zero_point, wf.quant.axis = wf.quant.scale[:1].copy(), np.zeros(1, np.int64), None
    yf, z = act("yf", (1, 72), "int8", rng, y.quant), act("z", (1, 3), "int8", rng)
    conv = {"strides": [1, 1], "dilations": [1, 1], "pads": [0, 0, 0, 0], "activation": "RELU"}
    nodes = [Node(Op.QUANTIZE, "to16", ["x"], ["x16"]),
             Node(Op.FULLY_CONNECTED, "fc16", ["x16", "w16", "b16"], ["f16"], {"activation": "NONE"}),
             Node(Op.RELU6, "relu6", ["f16"], ["f16r"]),
             Node(Op.QUANTIZE, "to8", ["f16r"], ["q8"]),
             Node(Op.CLIP, "clip", ["q8"], ["c8"], {"min": -0.5, "max": 2.0}),
             Node(Op.RESHAPE, "image", ["c8"], ["c8r"]),
             Node(Op.CONV_2D, "pw4", ["c8r", "w4", "b4"], ["y"], conv),
             Node(Op.RESHAPE, "flat", ["y"], ["yf"]),
             Node(Op.FULLY_CONNECTED, "fc4", ["yf", "wf", "bf"], ["z"], {"activation": "NONE"})]
    tensors = {t.name: t for t in (x, x16, w16, b16, f16, f16r, q8, c8, c8r, w4, b4, y, wf, bf, yf, z)}
    return Graph("mixed", tensors, nodes, ["x"], ["z"])


@needs_gcc
@pytest.mark.parametrize("builder", [small_graph, two_io_graph, mixed_width_graph])
@pytest.mark.parametrize("dsp", [False, True], ids=["portable", "dsp-emulated"])
def test_small_graphs_bit_exact(builder, tmp_path, dsp):
    rng = np.random.default_rng(7)
    graph = builder(rng)
    check_model(graph, sha_of(None, graph), stacked_inputs(graph, rng, 20), 20, tmp_path, dsp)


def stacked_inputs(graph: Graph, rng: np.random.Generator, n: int) -> dict[str, np.ndarray]:
    """n random samples per graph input, stacked on axis 0."""
    inputs = {}
    for name in graph.inputs:
        t = graph.tensor(name)
        lo, hi = (-128, 127) if t.dtype == "int8" else (-32768, 32767)
        inputs[name] = rng.integers(lo, hi + 1, size=(n, *t.shape[1:])).astype(t.dtype)
    return inputs


@needs_gcc
def test_reshape_from_input_to_output_is_a_copy(tmp_path):
    """Input -> RESHAPE -> output cannot alias (two caller buffers): lowering makes it a copy."""
    rng = np.random.default_rng(11)
    q = rand_quant(rng, "int8")
    x, y = act("x", (1, 2, 3, 4), "int8", rng, q), act("y", (1, 24), "int8", rng, q)
    graph = Graph("copy", {"x": x, "y": y}, [Node(Op.RESHAPE, "flat", ["x"], ["y"])], ["x"], ["y"])
    assert "EP_CHECK(ep_concat(" in generate(graph, "1" * 64, "cortex-m4")["model.c"]
    check_model(graph, sha_of(None, graph), stacked_inputs(graph, rng, 5), 5, tmp_path, dsp=False)


@needs_gcc
@pytest.mark.parametrize("seed", range(6))
def test_random_dags_bit_exact_with_planned_arena(seed, tmp_path):
    """Random DAGs with aliases, in-place ops and several outputs: the planned offsets never clobber."""
    rng = np.random.default_rng(seed)
    graph = random_dag(rng, 16)
    check_model(graph, sha_of(None, graph), stacked_inputs(graph, rng, 10), 10, tmp_path, dsp=seed % 2 == 1)


def test_generated_c_is_data_plus_calls(tmp_path):
    rng = np.random.default_rng(3)
    graph = small_graph(rng)
    files = generate(graph, "ab" * 32, "cortex-m4")
    c, h = files["model.c"], files["model.h"]
    assert c.splitlines()[0] == ("/* Generated by edgepack 0.1.0 from small.tflite (sha256 abababababab...) "
                                 "for cortex-m4. Do not edit. */")
    assert h.splitlines()[0] == c.splitlines()[0]
    body = c[c.index("int edgepack_model_run"):]
    assert "malloc" not in c and "#if" not in body
    assert '/* 00 conv2d "block1/conv" 8x6x3 -> 8x6x8, w4 a8 */' in c
    assert re.search(r"static int8_t ep_arena\[EDGEPACK_ARENA_BYTES\] EP_ALIGNED\(16\);", c)
    for macro in ("EDGEPACK_MODEL_NAME", "EDGEPACK_MODEL_SHA256", "EDGEPACK_ARENA_BYTES", "EDGEPACK_INPUT_COUNT",
                  "EDGEPACK_OUTPUT_COUNT", "EDGEPACK_INPUT_BYTES", "EDGEPACK_OUTPUT_BYTES", "EDGEPACK_INPUT0_SCALE",
                  "EDGEPACK_INPUT0_ZERO_POINT", "EDGEPACK_INPUT0_BYTES", "EDGEPACK_OUTPUT0_SCALE"):
        assert f"#define {macro} " in h, macro
    assert "int edgepack_model_run(const void *input, void *output);" in h
    assert f'#define EDGEPACK_MODEL_SHA256 "{"ab" * 32}"' in h
    # int4 weights are packed two per byte, each channel's row on a byte boundary: 8 rows of 3*3*3 = 27
    # values -> 8 * 14 = 112 bytes (108 packed flat; a zero nibble pads each odd row)
    assert "static const int8_t l00_weights[112]" in c
    assert "ep_conv2d_s8_w4.c" in required_sources(graph, "cortex-m4")


def test_two_io_defines():
    graph = two_io_graph(np.random.default_rng(1))
    h = generate(graph, "0" * 64, "cortex-m3")["model.h"]
    assert "#define EDGEPACK_INPUT_COUNT 3" in h and "#define EDGEPACK_INPUT_BYTES 22u" in h
    assert "#define EDGEPACK_INPUT2_OFFSET 10u" in h and "#define EDGEPACK_OUTPUT1_BYTES 8u" in h


def arm_compile(files: list[Path], include: Path, cpu_flags: list[str]) -> subprocess.CompletedProcess:
    """Compile each file to an object in `include` (the working directory) with the target flags."""
    cmd = ["arm-none-eabi-gcc", *cpu_flags, "-mthumb", "-O2", "-c", "-Wall", "-Wextra", "-Werror", "-std=c99",
           f"-I{include}", *map(str, files)]
    return subprocess.run(cmd, capture_output=True, text=True, cwd=include)


M4 = ["-mcpu=cortex-m4", "-mfloat-abi=hard", "-mfpu=fpv4-sp-d16"]


@pytest.mark.skipif(not HAVE_ARM, reason="arm-none-eabi-gcc not installed (apt-get install gcc-arm-none-eabi)")
@needs_models
@pytest.mark.parametrize("model", ["kws_ref_model.tflite", "ad01_int8.tflite"])
def test_cross_compiles_for_cortex_m4_with_dsp(tmp_path, model):
    from edgepack.ir.tflite import from_tflite
    graph = from_tflite(MODELS / model)
    c_files = write_sources(graph, sha_of(MODELS / model, graph), "cortex-m4", tmp_path)
    res = arm_compile(c_files, tmp_path, M4)
    assert res.returncode == 0, res.stderr
    # The DSP fast paths are really compiled in: SMLAD appears in the pointwise/fc object.
    dis = subprocess.run(["arm-none-eabi-objdump", "-d", str(tmp_path / "ep_fc_s8.o")], capture_output=True, text=True)
    assert "smlad" in dis.stdout


@pytest.mark.skipif(not HAVE_ARM, reason="arm-none-eabi-gcc not installed (apt-get install gcc-arm-none-eabi)")
@pytest.mark.parametrize("flags", [["-mcpu=cortex-m0plus"], ["-mcpu=cortex-m3"], M4, ["-mcpu=cortex-m7"],
                                   ["-mcpu=cortex-m33"], ["-mcpu=cortex-m55"]],
                         ids=["m0plus", "m3", "m4", "m7", "m33", "m55"])
def test_whole_library_cross_compiles(tmp_path, flags):
    for src in kernel_lib.all_sources():
        shutil.copy(src, tmp_path)
    for h in kernel_lib.HEADERS:
        shutil.copy(kernel_lib.KERNEL_DIR / h, tmp_path)
    res = arm_compile([tmp_path / s.name for s in kernel_lib.all_sources()], tmp_path, flags)
    assert res.returncode == 0, res.stderr
