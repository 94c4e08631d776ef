"""Every C kernel, called through ctypes on random tensors and random quantization, must equal the
golden interpreter bit for bit, in both builds: portable loops and the DSP fast paths (compiled on
the host with EP_EMULATE_DSP, which emulates SMLAD/SXTB16 in C)."""

from __future__ import annotations

import ctypes

import numpy as np
import pytest
from test_kernels_support import (
    act,
    assert_matches_golden,
    bias,
    build_library,
    have_gcc,
    rand_quant,
    random_inputs,
    run_on_host,
    single_op_graph,
    struct_class,
    weights,
)

from edgepack.ir.graph import QuantParams, Tensor
from edgepack.ir.ops import Op
from edgepack.targets.mcu import kernel_lib
from edgepack.targets.mcu.lowering import Table, lower, pack_int4

pytestmark = pytest.mark.skipif(not have_gcc(), reason="needs a host gcc to build the kernel library")


@pytest.fixture(scope="module", params=[False, True], ids=["portable", "dsp-emulated"])
def lib(request, tmp_path_factory):
    """The kernel library as a host shared object, portable or with the emulated DSP paths."""
    return build_library(tmp_path_factory.mktemp("eplib"), dsp=request.param), request.param


def check(lib, graph, rng, batch_inputs=None):
    inputs = batch_inputs or random_inputs(graph, rng)
    outputs = run_on_host(lib[0], graph, inputs)
    assert_matches_golden(graph, outputs, inputs)


ACTS = ["NONE", "RELU", "RELU6"]


def conv_graph(rng, *, cin, cout, hw, k, stride, dil, pads, act_name, dtype="int8", bits=8, bias_on=True):
    h, w = hw
    kh, kw = k
    oh = (h + pads[0] + pads[2] - dil[0] * (kh - 1) - 1) // stride[0] + 1
    ow = (w + pads[1] + pads[3] - dil[1] * (kw - 1) - 1) // stride[1] + 1
    x = act("x", (1, h, w, cin), dtype, rng)
    wt = weights("w", (cout, kh, kw, cin), 0, rng, bits)
    b = bias("b", cout, rng, wide=dtype == "int16") if bias_on else None
    y = act("y", (1, oh, ow, cout), dtype, rng)
    return single_op_graph(Op.CONV_2D, [x, wt, b], y, {"strides": list(stride), "dilations": list(dil),
                                                       "pads": list(pads), "activation": act_name})


def dw_graph(rng, *, c, mult, hw, k, stride, dil, pads, act_name, dtype="int8", bits=8):
    h, w = hw
    kh, kw = k
    oh = (h + pads[0] + pads[2] - dil[0] * (kh - 1) - 1) // stride[0] + 1
    ow = (w + pads[1] + pads[3] - dil[1] * (kw - 1) - 1) // stride[1] + 1
    x = act("x", (1, h, w, c), dtype, rng)
    wt = weights("w", (1, kh, kw, c * mult), 3, rng, bits)
    y = act("y", (1, oh, ow, c * mult), dtype, rng)
    return single_op_graph(Op.DEPTHWISE_CONV_2D, [x, wt, bias("b", c * mult, rng, dtype == "int16")], y,
                           {"strides": list(stride), "dilations": list(dil), "pads": list(pads),
                            "depth_multiplier": mult, "activation": act_name})


def fc_graph(rng, *, rows, depth, outs, act_name, dtype="int8", bits=8, bias_on=True):
    x = act("x", (rows, depth), dtype, rng)
    wt = weights("w", (outs, depth), 0, rng, bits)
    b = bias("b", outs, rng, wide=dtype == "int16") if bias_on else None
    return single_op_graph(Op.FULLY_CONNECTED, [x, wt, b], act("y", (rows, outs), dtype, rng), {"activation": act_name})


CONV_CASES = [
    dict(cin=1, cout=8, hw=(13, 6), k=(10, 4), stride=(2, 2), dil=(1, 1), pads=(4, 1, 5, 1)),  # KWS first layer
    dict(cin=3, cout=5, hw=(7, 9), k=(3, 3), stride=(1, 1), dil=(1, 1), pads=(1, 1, 1, 1)),
    dict(cin=6, cout=7, hw=(9, 8), k=(3, 2), stride=(2, 1), dil=(2, 1), pads=(0, 1, 2, 0)),
    dict(cin=16, cout=9, hw=(5, 5), k=(1, 1), stride=(1, 1), dil=(1, 1), pads=(0, 0, 0, 0)),  # pointwise -> fc
    dict(cin=13, cout=3, hw=(4, 3), k=(1, 1), stride=(2, 2), dil=(1, 1), pads=(0, 0, 0, 0)),
    dict(cin=8, cout=6, hw=(5, 6), k=(3, 3), stride=(1, 2), dil=(1, 1), pads=(1, 1, 1, 2)),  # whole depth groups
    dict(cin=3, cout=5, hw=(7, 7), k=(2, 3), stride=(1, 1), dil=(2, 2), pads=(1, 2, 0, 1)),  # dilation_w 2
]


@pytest.mark.parametrize("case", range(len(CONV_CASES)))
@pytest.mark.parametrize("bits", [8, 4])
def test_conv2d(lib, case, bits):
    rng = np.random.default_rng(100 + case + bits)
    for i, act_name in enumerate(ACTS):
        check(lib, conv_graph(rng, **CONV_CASES[case], act_name=act_name, bits=bits, bias_on=i != 1), rng)


@pytest.mark.parametrize("case", range(len(CONV_CASES)))
def test_conv2d_s16(lib, case):
    rng = np.random.default_rng(200 + case)
    for act_name in ACTS:
        check(lib, conv_graph(rng, **CONV_CASES[case], act_name=act_name, dtype="int16"), rng)


DW_CASES = [
    dict(c=8, mult=1, hw=(9, 5), k=(3, 3), stride=(1, 1), dil=(1, 1), pads=(1, 1, 1, 1)),  # KWS
    # 3x3 stride-1 plane path (DSP): output heights 1..6 around the groups of four, asymmetric and no padding
    dict(c=3, mult=1, hw=(1, 1), k=(3, 3), stride=(1, 1), dil=(1, 1), pads=(1, 1, 1, 1)),
    dict(c=5, mult=1, hw=(4, 3), k=(3, 3), stride=(1, 1), dil=(1, 1), pads=(0, 0, 0, 0)),
    dict(c=7, mult=1, hw=(6, 2), k=(3, 3), stride=(1, 1), dil=(1, 1), pads=(2, 0, 0, 1)),
    dict(c=4, mult=1, hw=(7, 6), k=(3, 3), stride=(1, 1), dil=(1, 1), pads=(0, 2, 1, 1)),
    dict(c=2, mult=1, hw=(8, 3), k=(3, 3), stride=(1, 1), dil=(1, 1), pads=(1, 1, 1, 1)),
    dict(c=3, mult=2, hw=(6, 7), k=(3, 2), stride=(2, 1), dil=(1, 2), pads=(0, 1, 1, 1)),
    dict(c=5, mult=3, hw=(4, 4), k=(2, 2), stride=(2, 2), dil=(1, 1), pads=(0, 0, 0, 0)),
    dict(c=3, mult=1, hw=(10, 9), k=(9, 9), stride=(1, 1), dil=(1, 1), pads=(4, 4, 4, 4)),  # > 64 taps
]


@pytest.mark.parametrize("case", range(len(DW_CASES)))
@pytest.mark.parametrize("variant", ["s8", "w4", "s16"])
def test_dwconv2d(lib, case, variant):
    rng = np.random.default_rng(300 + case)
    for act_name in ACTS:
        g = dw_graph(rng, **DW_CASES[case], act_name=act_name, dtype="int16" if variant == "s16" else "int8",
                     bits=4 if variant == "w4" else 8)
        check(lib, g, rng)


FC_CASES = [dict(rows=1, depth=64, outs=12), dict(rows=1, depth=640, outs=128), dict(rows=3, depth=7, outs=5),
            dict(rows=4, depth=33, outs=6), dict(rows=2, depth=128, outs=8), dict(rows=5, depth=3, outs=1)]


@pytest.mark.parametrize("case", range(len(FC_CASES)))
@pytest.mark.parametrize("variant", ["s8", "w4", "s16"])
def test_fully_connected(lib, case, variant):
    rng = np.random.default_rng(400 + case)
    for i, act_name in enumerate(ACTS):
        g = fc_graph(rng, **FC_CASES[case], act_name=act_name, dtype="int16" if variant == "s16" else "int8",
                     bits=4 if variant == "w4" else 8, bias_on=i != 2)
        check(lib, g, rng)


BINARY_SHAPES = [((1, 4, 5, 6), (1, 4, 5, 6)), ((1, 4, 5, 6), (1, 1, 1, 6)), ((2, 3, 1, 4), (1, 1, 5, 1)),
                 ((3, 7), (7,)), ((1, 1, 1, 1), (2, 3, 4, 5))]


@pytest.mark.parametrize("op", [Op.ADD, Op.MUL])
@pytest.mark.parametrize("shapes", range(len(BINARY_SHAPES)))
def test_binary(lib, op, shapes):
    rng = np.random.default_rng(500 + shapes)
    sa, sb = BINARY_SHAPES[shapes]
    out_shape = np.broadcast_shapes(sa, sb)
    for act_name in ACTS:
        g = single_op_graph(op, [act("a", sa, "int8", rng), act("b", sb, "int8", rng)],
                            act("y", out_shape, "int8", rng), {"activation": act_name})
        check(lib, g, rng)


POOL_CASES = [dict(hw=(25, 5), k=(25, 5), s=(25, 5), pads=(0, 0, 0, 0)),  # KWS global average
              dict(hw=(7, 8), k=(3, 3), s=(2, 2), pads=(1, 1, 1, 1)),
              dict(hw=(6, 5), k=(2, 3), s=(1, 2), pads=(0, 1, 1, 0))]


@pytest.mark.parametrize("op", [Op.AVERAGE_POOL_2D, Op.MAX_POOL_2D])
@pytest.mark.parametrize("case", range(len(POOL_CASES)))
def test_pool(lib, op, case):
    rng = np.random.default_rng(600 + case)
    c = POOL_CASES[case]
    h, w = c["hw"]
    oh = (h + c["pads"][0] + c["pads"][2] - c["k"][0]) // c["s"][0] + 1
    ow = (w + c["pads"][1] + c["pads"][3] - c["k"][1]) // c["s"][1] + 1
    for act_name in ACTS:
        q = rand_quant(rng, "int8")
        g = single_op_graph(op, [act("x", (2, h, w, 5), "int8", rng, q)], act("y", (2, oh, ow, 5), "int8", rng, q),
                            {"kernel": list(c["k"]), "strides": list(c["s"]), "pads": list(c["pads"]),
                             "activation": act_name})
        check(lib, g, rng)


@pytest.mark.parametrize("keepdims", [True, False])
def test_mean(lib, keepdims):
    rng = np.random.default_rng(700)
    for _ in range(4):
        out = (2, 1, 1, 6) if keepdims else (2, 6)
        g = single_op_graph(Op.MEAN, [act("x", (2, 5, 3, 6), "int8", rng)], act("y", out, "int8", rng),
                            {"axes": [1, 2], "keepdims": keepdims})
        check(lib, g, rng)


@pytest.mark.parametrize("depth", [1, 12, 100])
def test_softmax(lib, depth):
    rng = np.random.default_rng(800 + depth)
    for beta in (1.0, 0.5, 2.0):
        out_q = QuantParams(np.array([1 / 256]), np.array([-128]))
        g = single_op_graph(Op.SOFTMAX, [act("x", (3, depth), "int8", rng)], act("y", (3, depth), "int8", rng, out_q),
                            {"beta": beta})
        check(lib, g, rng)


@pytest.mark.parametrize("op", [Op.LOGISTIC, Op.TANH])
def test_sigmoid_tanh(lib, op):
    rng = np.random.default_rng(900)
    out_q = QuantParams(np.array([1 / 256]), np.array([-128])) if op is Op.LOGISTIC else \
        QuantParams(np.array([1 / 128]), np.array([0]))
    for _ in range(4):
        g = single_op_graph(op, [act("x", (4, 64), "int8", rng)], act("y", (4, 64), "int8", rng, out_q), {})
        inputs = {"x": np.arange(-128, 128, dtype=np.int8).reshape(4, 64)}
        check(lib, g, rng, inputs)


def test_pad(lib):
    rng = np.random.default_rng(1000)
    for pads in ([[0, 0], [1, 2], [0, 3], [0, 0]], [[1, 0], [0, 0], [2, 1], [3, 1]]):
        q = rand_quant(rng, "int8")
        out = tuple(d + a + b for d, (a, b) in zip((2, 3, 4, 5), pads, strict=True))
        g = single_op_graph(Op.PAD, [act("x", (2, 3, 4, 5), "int8", rng, q)], act("y", out, "int8", rng, q),
                            {"pads": pads})
        check(lib, g, rng)


@pytest.mark.parametrize("axis", [0, 1, 2, 3, -1])
def test_concat(lib, axis):
    rng = np.random.default_rng(1100)
    q = rand_quant(rng, "int8")
    shapes = [(2, 3, 4, 5), (2, 3, 4, 5), (2, 3, 4, 5)]
    ax = axis % 4
    shapes[1] = tuple(d + 2 if i == ax else d for i, d in enumerate(shapes[1]))
    out = tuple(sum(s[i] for s in shapes) if i == ax else shapes[0][i] for i in range(4))
    ins = [act(f"x{i}", s, "int8", rng, q) for i, s in enumerate(shapes)]
    g = single_op_graph(Op.CONCATENATION, ins, act("y", out, "int8", rng, q), {"axis": axis, "activation": "NONE"})
    check(lib, g, rng)


def test_reshape_chain(lib):
    """RESHAPE lowers to an alias; the FC after it reads the pooled tensor directly."""
    from edgepack.ir.graph import Graph, Node
    rng = np.random.default_rng(1200)
    q = rand_quant(rng, "int8")
    x, p = act("x", (1, 4, 4, 8), "int8", rng, q), act("p", (1, 1, 1, 8), "int8", rng, q)
    r, w, y = act("r", (1, 8), "int8", rng, q), weights("w", (3, 8), 0, rng), act("y", (1, 3), "int8", rng)
    nodes = [Node(Op.AVERAGE_POOL_2D, "pool", ["x"], ["p"], {"kernel": [4, 4], "strides": [4, 4],
                                                              "pads": [0, 0, 0, 0], "activation": "NONE"}),
             Node(Op.RESHAPE, "flat", ["p"], ["r"]),
             Node(Op.FULLY_CONNECTED, "fc", ["r", "w", ""], ["y"], {"activation": "NONE"})]
    g = Graph("chain", {t.name: t for t in (x, p, r, w, y)}, nodes, ["x"], ["y"])
    check(lib, g, rng)


def test_requantize_extremes(lib):
    """Saturation corners of ep_requantize (INT32_MIN * INT32_MIN, wrapping left shifts) via a 1x1 FC."""
    rng = np.random.default_rng(1300)
    g = fc_graph(rng, rows=8, depth=4, outs=2, act_name="NONE")
    g.tensors["w"].data[:] = np.array([[127, 127, 127, 127], [-128, -128, -128, -128]], np.int8)
    g.tensors["y"].quant = QuantParams(np.array([1e-6]), np.array([0]))
    check(lib, g, rng)


def test_int4_packing_order():
    """Element 2k goes in the low nibble, as TFLite packs int4."""
    packed = pack_int4(np.array([1, -1, -8, 7, 3], np.int8))
    assert packed.view(np.uint8).tolist() == [0xF1, 0x78, 0x03]


@pytest.mark.parametrize("kernel", ["ep_conv2d_s8", "ep_conv2d_s8_w4", "ep_conv2d_1x1_s8_w4", "ep_fc_s8_w4", "ep_fc_s8",
                                    "ep_conv2d_1x1_s8", "ep_conv2d_s16"])
def test_scratch_twin_matches_c(lib, kernel):
    """The Python twin of *_scratch_bytes() equals the C function in both builds."""
    dims_cls = struct_class("ep_dims_t")
    fn = getattr(lib[0], f"{kernel}_scratch_bytes")
    fn.restype, fn.argtypes = ctypes.c_int32, [ctypes.c_void_p]
    for dims in [(8, 10, 4, 1), (64, 3, 3, 64), (5, 1, 1, 13), (3, 2, 2, 7)]:
        d = dims_cls(*dims)
        assert fn(ctypes.addressof(d)) == kernel_lib.scratch_bytes(kernel, dims, dsp=lib[1]), dims


def test_dwconv_scratch_twin_matches_c(lib):
    """ep_dwconv2d_s8_scratch_bytes(conv, filter_dims, out_dims) and its Python twin agree."""
    dims_cls, conv_cls = struct_class("ep_dims_t"), struct_class("ep_conv_params_t")
    for kernel in ("ep_dwconv2d_s8", "ep_dwconv2d_s8_w4"):
        _check_dw_twin(lib, kernel, dims_cls, conv_cls)


def _check_dw_twin(lib, kernel, dims_cls, conv_cls):
    fn = getattr(lib[0], f"{kernel}_scratch_bytes")
    fn.restype, fn.argtypes = ctypes.c_int32, [ctypes.c_void_p] * 3
    names = [f for f, _ in kernel_lib.STRUCTS["ep_conv_params_t"]]
    for fdims, odims, conv in [((1, 3, 3, 64), (1, 25, 5, 64), (1, 1, 1, 1, 1, 1, 1)),
                               ((1, 3, 3, 8), (1, 1, 1, 8), (1, 1, 1, 1, 0, 0, 1)),
                               ((1, 3, 3, 8), (1, 9, 4, 8), (2, 1, 1, 1, 1, 1, 1)),
                               ((1, 3, 2, 6), (1, 4, 4, 6), (1, 1, 1, 1, 0, 0, 1)),
                               ((1, 3, 3, 6), (1, 4, 4, 6), (1, 1, 1, 1, 0, 0, 2))]:
        f, o, c = dims_cls(*fdims), dims_cls(*odims), conv_cls(*conv)
        want = kernel_lib.scratch_bytes(kernel, fdims, lib[1], odims, dict(zip(names, conv, strict=True)))
        assert fn(ctypes.addressof(c), ctypes.addressof(f), ctypes.addressof(o)) == want, (fdims, odims, conv)


def test_unsupported_ops_listed_together():
    """Every node the library cannot run is reported at once."""
    from edgepack.errors import UnsupportedOpsError
    from edgepack.targets.mcu.lowering import lower
    rng = np.random.default_rng(1400)
    g = single_op_graph(Op.TRANSPOSE, [act("x", (1, 2, 3, 4), "int8", rng)], act("y", (1, 3, 2, 4), "int8", rng),
                        {"perm": [0, 2, 1, 3]})
    with pytest.raises(UnsupportedOpsError, match="TRANSPOSE"):
        lower(g)
    _ = Tensor


REQUANT_CHECK_C = r"""
#include <stdio.h>
#include "ep_common.h"
int main(void)
{
    static const int32_t accs[] = {0, 1, -1, 2, -2, 3, 1000, -1000, 65535, -65536, 1 << 20, -(1 << 20), 123456789,
                                   -123456789, INT32_MAX, INT32_MIN, INT32_MAX - 1, INT32_MIN + 1, 1 << 30, -(1 << 30)};
    static const int32_t mults[] = {0, 1 << 30, (1 << 30) + 1, 1518500250, 2147483647, 1234567890};
    static const int32_t zps[] = {-128, -1, 0, 5, 127};
    uint32_t state = 12345u;
    int32_t shift, mi, zi, ai, bad = 0;
    for (shift = -31; shift <= -1; ++shift) {
        for (mi = 0; mi < 6; ++mi) {
            const int32_t m = mults[mi];
            const ep_requant_neg_t n = ep_requant_neg_prepare(m, shift);
            for (ai = 0; ai < 20 + 2000; ++ai) {
                int32_t acc;
                if (ai < 20) {
                    acc = accs[ai];
                } else {
                    state = state * 1664525u + 1013904223u;
                    acc = (int32_t)state >> (ai % 24);
                }
                if (ep_requant_neg_apply(acc, n.multiplier, n.half, n.right_m1) != ep_requantize(acc, m, shift)) {
                    printf("neg %d %d %d\n", acc, m, shift);
                    ++bad;
                }
                for (zi = 0; zi < 5; ++zi) {
                    if (ep_requant_zp_ok(m, shift)) {
                        const ep_requant_zp_t z = ep_requant_zp_prepare(m, shift, zps[zi]);
                        if (ep_requant_zp_apply(acc, z.multiplier, z.hi_base, z.right_m1) !=
                            ep_requantize(acc, m, shift) + zps[zi]) {
                            printf("zp %d %d %d %d\n", acc, m, shift, zps[zi]);
                            ++bad;
                        }
                    }
                }
            }
        }
    }
    printf("bad %d\n", bad);
    return bad != 0;
}
"""


@pytest.mark.parametrize("dsp", [False, True], ids=["portable", "dsp-emulated"])
def test_fast_requantize_forms_equal_ep_requantize(tmp_path, dsp):
    """ep_requant_neg_apply and ep_requant_zp_apply (+ zp folded in) equal ep_requantize at the int32
    corners and on random accumulators, for every negative shift and multipliers at the range ends."""
    import subprocess

    src = tmp_path / "requant_check.c"
    src.write_text(REQUANT_CHECK_C)
    exe = tmp_path / "requant_check"
    subprocess.run(["gcc", "-O2", "-std=c99", "-Wall", "-Wextra", "-Werror", f"-I{kernel_lib.KERNEL_DIR}",
                    *(["-DEP_EMULATE_DSP"] if dsp else []), str(src), "-o", str(exe)], check=True)
    res = subprocess.run([str(exe)], capture_output=True, text=True)
    assert res.returncode == 0, res.stdout[-2000:]


@pytest.mark.parametrize("case", range(len(CONV_CASES)))
def test_conv2d_int8_weight_kernels(lib, case):
    """ep_conv2d_s8 / ep_conv2d_1x1_s8 (natural int8 weights) stay bit-exact in both builds, although
    the Cortex-M4 lowering now picks their *_w16 twins: the same calls with the int8 tables swapped in."""
    from test_kernels_support import HostRunner

    rng = np.random.default_rng(1500 + case)
    for i, act_name in enumerate(ACTS):
        g = conv_graph(rng, **CONV_CASES[case], act_name=act_name, bias_on=i != 1)
        calls = lower(g, "cortex-m4")
        assert calls[0].kernel.endswith("_w16")
        w = np.asarray(g.tensor("w").data).astype(np.int8).ravel()
        calls[0].kernel = calls[0].kernel.removesuffix("_w16")
        calls[0].args = [Table(a.name, "int8_t", w) if isinstance(a, Table) and a.name.endswith("weights") else a
                         for a in calls[0].args]
        inputs = random_inputs(g, rng)
        assert_matches_golden(g, HostRunner(lib[0], g, calls).run(inputs), inputs)


def test_pack_w16_layout():
    """kernel_lib.pack_w16 follows ep_gemm_w16.h: channel pairs, depth groups of 4, halves (k, k+2)."""
    w = np.arange(3 * 5, dtype=np.int64).reshape(3, 5).astype(np.int8)  # outs 3 -> 4, depth 5 -> 8
    t = kernel_lib.pack_w16(w)
    assert t.dtype == np.int16 and t.size == 4 * 8
    # pair 0, group 0, half 0: w0[0], w0[2], w1[0], w1[2]; half 1: w0[1], w0[3], w1[1], w1[3]
    assert t[:8].tolist() == [0, 2, 5, 7, 1, 3, 6, 8]
    # pair 0, group 1 (depth 4..7, only 4 real): w0[4], 0, w1[4], 0, then zeros
    assert t[8:16].tolist() == [4, 0, 9, 0, 0, 0, 0, 0]
    # pair 1: channel 2 and the zero pad channel
    assert t[16:24].tolist() == [10, 12, 0, 0, 11, 13, 0, 0]


RESCALE_DTYPES = [("int8", "int8"), ("int8", "int16"), ("int16", "int8"), ("int16", "int16")]


def _rescale_inputs(dtype: str, shape: tuple[int, ...], rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Random values with both ends of the dtype's range included."""
    lo, hi = np.iinfo(dtype).min, np.iinfo(dtype).max
    x = rng.integers(lo, hi + 1, size=shape).astype(dtype)
    x.ravel()[:4] = [lo, hi, 0, -1]
    return {"x": x}


@pytest.mark.parametrize(("src", "dst"), RESCALE_DTYPES, ids=[f"{a}-{b}" for a, b in RESCALE_DTYPES])
def test_quantize_int_to_int(lib, src, dst):
    """QUANTIZE int -> int (TFLM Requantize) in all four directions: random scales and zero points (also
    non-zero int16 ones), equal scales, and ratios that saturate or round everything to the zero point."""
    rng = np.random.default_rng(1600 + 10 * len(src) + len(dst))
    for i in range(8):
        qi, qo = rand_quant(rng, src), rand_quant(rng, dst)
        if i == 1:
            qo = QuantParams(qi.scale.copy(), np.array([0 if dst == "int16" else -3]))
        elif i == 2:
            qo = QuantParams(qi.scale * 1e-4, qo.zero_point)  # x1e4: saturates
        elif i == 3:
            qo = QuantParams(qi.scale * 3e9, qo.zero_point)  # multiplier 0 (shift < -31): the zero point
        elif i == 4:
            qo = QuantParams(qi.scale * 2.0**20, qo.zero_point)  # shift -20
        elif i == 5:
            qi = QuantParams(qi.scale, np.array([int(rng.integers(-300, 300))]))  # int16 with a zero point
            qo = QuantParams(qo.scale, np.array([int(rng.integers(-100, 100))]))
        elif i in (6, 7):  # shift 30: the left shift wraps in int32 (as TFLM), + zero point must not
            qo = QuantParams(qi.scale / (2.0**29 * (1.4 if i == 7 else 1.0)), np.array([-7 if i == 6 else 5]))
        g = single_op_graph(Op.QUANTIZE, [act("x", (3, 5, 7), src, rng, qi)], act("y", (3, 5, 7), dst, rng, qo), {})
        calls = lower(g)
        assert calls[0].kernel == f"ep_requantize_{src.replace('int', 's')}_{dst.replace('int', 's')}"
        check(lib, g, rng, _rescale_inputs(src, (3, 5, 7), rng))


@pytest.mark.parametrize("dtype", ["int8", "int16"])
@pytest.mark.parametrize("op", ["RELU", "RELU6", "CLIP"])
def test_standalone_activations(lib, op, dtype):
    """RELU and CLIP requantize to the output scale then clamp; RELU6 clamps in the input quantization."""
    rng = np.random.default_rng(1700 + len(op) + len(dtype))
    for i in range(5):
        qi = rand_quant(rng, dtype)
        qo = qi if op == "RELU6" or i == 0 else rand_quant(rng, dtype)
        attrs = {"min": float(rng.uniform(-3, 0)), "max": float(rng.uniform(0.1, 3))} if op == "CLIP" else {}
        if op == "CLIP" and i == 1:
            attrs = {"min": -1.0, "max": 1.0}  # RELU_N1_TO_1
        g = single_op_graph(Op(op), [act("x", (2, 9, 11), dtype, rng, qi)], act("y", (2, 9, 11), dtype, rng, qo),
                            attrs)
        kernel = lower(g)[0].kernel
        assert kernel.startswith("ep_clamp_" if op == "RELU6" else "ep_requantize_"), kernel
        check(lib, g, rng, _rescale_inputs(dtype, (2, 9, 11), rng))


def test_quantize_lowering_refusals():
    """Float graph edges (QUANTIZE from float32, DEQUANTIZE) and RELU6 across dtypes are refused with the reason."""
    from edgepack.errors import UnsupportedOpsError
    rng = np.random.default_rng(1800)
    g = single_op_graph(Op.QUANTIZE, [Tensor("x", (1, 4), "float32")], act("y", (1, 4), "int8", rng), {})
    with pytest.raises(UnsupportedOpsError, match="QUANTIZE of a float32 tensor .* quantize on the host"):
        lower(g)
    g = single_op_graph(Op.DEQUANTIZE, [act("x", (1, 4), "int8", rng)], Tensor("y", (1, 4), "float32"), {})
    with pytest.raises(UnsupportedOpsError, match="DEQUANTIZE .* dequantize on the host"):
        lower(g)
    g = single_op_graph(Op.RELU, [act("x", (1, 4), "int8", rng)], act("y", (1, 4), "int16", rng), {})
    g.nodes[0].op = Op.RELU6
    with pytest.raises(UnsupportedOpsError, match="RELU6 with different input and output dtypes"):
        lower(g)


@pytest.mark.parametrize(("op", "case"), [("conv", 0), ("conv", 3), ("conv", 4), ("fc", 2), ("fc", 1)])
def test_int4_weights_stay_packed(op, case):
    """int4 tables hold two weights per byte (rows padded to whole bytes), on DSP cores too: no widening."""
    rng = np.random.default_rng(1900 + case)
    g = (conv_graph(rng, **CONV_CASES[case], act_name="NONE", bits=4) if op == "conv"
         else fc_graph(rng, **FC_CASES[case], act_name="NONE", bits=4))
    w = g.tensor("w")
    outs, depth = w.shape[0], int(np.prod(w.shape[1:]))
    for cpu in ("cortex-m4", "cortex-m0plus"):
        call = lower(g, cpu)[0]
        assert call.kernel.endswith("_w4"), call.kernel
        table = next(a for a in call.args if isinstance(a, Table) and a.name.endswith("weights"))
        assert table.ctype == "int8_t" and table.values.size == outs * ((depth + 1) // 2)


def test_pack_w4_rows_layout():
    """kernel_lib.pack_w4_rows: TFLite nibble order within each row, odd rows padded with a zero nibble."""
    w = np.array([[1, -1, -8], [7, 3, -2]], np.int8)
    assert kernel_lib.pack_w4_rows(w).view(np.uint8).tolist() == [0xF1, 0x08, 0x37, 0x0E]
    even = np.arange(-8, 8, dtype=np.int8).reshape(2, 8)
    assert kernel_lib.pack_w4_rows(even).tolist() == pack_int4(even).tolist()  # even depth: TFLite's packing


def test_fc_w4_deeper_than_the_dsp_bound(lib):
    """Depth above EP_W4_DSP_MAX_DEPTH (where the 16-fold SMLAD sums could wrap) takes the portable loop."""
    rng = np.random.default_rng(2000)
    g = fc_graph(rng, rows=1, depth=65536 + 9, outs=2, act_name="NONE", bits=4)
    g.tensors["w"].data[:] = 7
    x = np.full((1, 65545), 127, np.int8)
    check(lib, g, rng, {"x": x})
