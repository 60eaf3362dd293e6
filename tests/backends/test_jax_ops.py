"""Per-op parity of the JAX backend with the torch one: every op of ``nas.ops.OPS``, one tiny graph each."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from flax import nnx

from nas.backends.jax import build, count_params, load_torch_weights  # noqa: E402
from nas.backends.jax.ops import JAX_OPS  # noqa: E402
from nas.backends.torch import build as torch_build  # noqa: E402
from nas.core.ir import ArchSpec, GraphBuilder  # noqa: E402
from nas.ops import ACTIVATIONS, OPS  # noqa: E402
from nas.testing.parity import check_parity  # noqa: E402

IMAGE = (4, 7, 7)


def single(op: str, shape: tuple[int, ...] = IMAGE, **params: object) -> ArchSpec:
    g = GraphBuilder()
    x = g.input(shape)
    return g.build({"out": g.add(op, x, **params)})


def branches(op: str) -> ArchSpec:
    g = GraphBuilder()
    x = g.input(IMAGE)
    a = g.add("act", x, fn="tanh")
    b = g.add("conv2d", x, out_channels=4 if op == "add" else 3, kernel=1)
    return g.build({"out": g.add(op, a, b, x)})


def vector(op: str, **params: object) -> ArchSpec:
    g = GraphBuilder()
    x = g.add("global_avg_pool", g.input(IMAGE))
    return g.build({"out": g.add(op, x, **params)})


def gate() -> ArchSpec:
    """Squeeze-and-excitation style: a (C, 1, 1) sigmoid gate broadcast over the map."""
    g = GraphBuilder()
    x = g.input(IMAGE)
    s = g.add("act", g.add("global_avg_pool", x, keepdims=True), fn="sigmoid")
    return g.build({"out": g.add("mul", x, s)})


def two_heads() -> ArchSpec:
    g = GraphBuilder()
    x = g.add("conv2d", g.input(IMAGE), out_channels=4, kernel=3, padding=1)
    return g.build({"features": g.add("max_pool", x), "logits": g.add("linear", g.add("global_avg_pool", x),
                                                                        out_features=2)})


def attention() -> ArchSpec:
    """BoTNet-style: one bias-free 1x1 conv makes q, k, v (2 heads of 3), then ``mhsa``."""
    g = GraphBuilder()
    qkv = g.add("conv2d", g.input(IMAGE), out_channels=3 * 2 * 3, kernel=1)
    return g.build({"out": g.add("mhsa", qkv, heads=2, dim_head=3)})


CASES: dict[str, ArchSpec] = {
    "conv2d-3x3-pad": single("conv2d", out_channels=6, kernel=3, padding=1),
    "conv2d-bias-stride2": single("conv2d", out_channels=5, kernel=3, stride=2, padding=1, bias=True),
    "conv2d-dilation2": single("conv2d", out_channels=4, kernel=3, padding=2, dilation=2),
    "conv2d-groups2": single("conv2d", out_channels=6, kernel=3, padding=1, groups=2),
    "conv2d-depthwise": single("conv2d", out_channels=4, kernel=5, padding=2, groups=4),
    "conv2d-rect": single("conv2d", out_channels=3, kernel=(1, 3), stride=(2, 1), padding=(0, 1)),
    "batchnorm-2d": single("batchnorm"),
    "batchnorm-no-affine": single("batchnorm", affine=False, eps=1e-3, momentum=0.3),
    "batchnorm-1d": vector("batchnorm"),
    "identity": single("identity"),
    "dropout-eval": single("dropout", rate=0.5),
    "dropout-zero": single("dropout", rate=0.0),
    "avg_pool-exclude-pad": single("avg_pool", kernel=3, stride=1, padding=1, count_include_pad=False),
    "avg_pool-include-pad": single("avg_pool", kernel=3, stride=2, padding=1, count_include_pad=True),
    "avg_pool-2x2": single("avg_pool", kernel=2, stride=2, padding=0, count_include_pad=True),
    "max_pool-pad": single("max_pool", kernel=3, stride=2, padding=1),
    "max_pool-nopad": single("max_pool", kernel=2, stride=2, padding=0),
    "zero": single("zero"),
    "zero-stride2-widen": single("zero", stride=2, out_channels=8),
    "global_avg_pool": single("global_avg_pool"),
    "global_avg_pool-keepdims": single("global_avg_pool", keepdims=True),
    "global_max_pool": single("global_max_pool"),
    "global_max_pool-keepdims": single("global_max_pool", keepdims=True),
    "mul-gate": gate(),
    "drop_path-eval": single("drop_path", rate=0.3),
    "drop_path-zero": single("drop_path", rate=0.0),
    "pad": single("pad", pads=(1, 2, 0, 1)),
    "pad-crop": single("pad", pads=(-1, 1, -1, 1)),
    "upsample": single("upsample", scale=2),
    "linear": vector("linear", out_features=5),
    "linear-no-bias": vector("linear", out_features=3, bias=False),
    "add": branches("add"),
    "concat": branches("concat"),
    "channel_slice": single("channel_slice", start=1, stop=3),
    "channel_slice-all": single("channel_slice", start=0, stop=4),
    **{f"act-{fn}": single("act", fn=fn) for fn in ACTIVATIONS},
    "two-heads": two_heads(),
    "mhsa": attention(),
}


def test_every_op_has_a_jax_lowering_and_a_case() -> None:
    assert set(JAX_OPS) == set(OPS)
    covered = {n.op for arch in CASES.values() for n in arch.nodes}
    assert set(OPS) <= covered


@pytest.mark.parametrize("case", sorted(CASES))
def test_op_parity(case: str) -> None:
    r = check_parity(CASES[case], batch=3)
    assert r["params"]["torch"] == r["params"]["jax"] == r["params"]["arch"], r["params"]
    assert r["shapes"]["expected"] == r["shapes"]["torch"] == r["shapes"]["jax"], r["shapes"]
    assert r["eval_diff"] < 1e-5, r
    assert r["train_diff"] < 1e-4, r
    assert r["state_diff"] < 1e-5, r
    assert r["ok"]


def test_activations_cover_extreme_inputs() -> None:
    x = np.linspace(-8, 8, 2 * 4 * 7 * 7, dtype=np.float32).reshape(2, *IMAGE)
    for fn in ACTIVATIONS:
        arch = single("act", fn=fn)
        expected = torch_build(arch)(torch.from_numpy(x)).numpy()
        np.testing.assert_allclose(np.asarray(build(arch)(x)), expected, atol=1e-6, err_msg=fn)


@pytest.mark.parametrize("momentum", [0.1, None])
def test_batchnorm_running_stats_follow_torch(momentum: float | None) -> None:
    arch = single("batchnorm", momentum=momentum)
    tm, jm = torch_build(arch, seed=0), build(arch, seed=0)
    rng = np.random.default_rng(0)
    for _ in range(3):
        x = (rng.standard_normal((5, *IMAGE)) * 3 + 1).astype(np.float32)
        out_t = tm(torch.from_numpy(x)).detach().numpy()
        np.testing.assert_allclose(np.asarray(jm(x)), out_t, atol=1e-5)
    layer, ref = jm.layers["batchnorm"], tm.layers["batchnorm"]
    np.testing.assert_allclose(np.asarray(layer.running_mean[...]), ref.running_mean, atol=1e-6)
    np.testing.assert_allclose(np.asarray(layer.running_var[...]), ref.running_var, atol=1e-5)
    assert int(layer.num_batches_tracked[...]) == 3
    tm.eval()
    jm.eval()
    x = rng.standard_normal((2, *IMAGE)).astype(np.float32)
    np.testing.assert_allclose(np.asarray(jm(x)), tm(torch.from_numpy(x)).detach().numpy(), atol=1e-5)


def test_batch_stats_are_not_counted_and_dropouts_are_active_in_train_mode() -> None:
    arch = single("batchnorm")
    assert count_params(build(arch)) == 2 * IMAGE[0]
    drop = build(single("dropout", rate=0.5))
    x = np.ones((4, *IMAGE), np.float32)
    y = np.asarray(drop(x))
    assert set(np.unique(y)) == {0.0, 2.0}
    drop.eval()
    np.testing.assert_array_equal(np.asarray(drop(x)), x)
    path = build(single("drop_path", rate=0.5), seed=2)
    per_example = np.asarray(path(np.ones((16, *IMAGE), np.float32))).reshape(16, -1)
    assert set(np.unique(per_example)) == {0.0, 2.0}
    assert all(len(np.unique(row)) == 1 for row in per_example)


def test_weight_copy_rejects_mismatched_networks() -> None:
    with pytest.raises((KeyError, ValueError)):
        load_torch_weights(build(single("conv2d", out_channels=4)),
                           torch_build(single("conv2d", out_channels=5)))
    with pytest.raises(KeyError):
        load_torch_weights(build(single("conv2d", out_channels=4)), torch_build(single("batchnorm")))


def test_network_works_under_nnx_jit_and_split() -> None:
    arch = CASES["two-heads"]
    model = build(arch, seed=1)
    x = np.random.default_rng(1).standard_normal((2, *IMAGE)).astype(np.float32)
    eager = build(arch, seed=1)(x)
    jitted = nnx.jit(lambda m, inp: m(inp))(model, x)
    assert set(jitted) == {"features", "logits"}
    for head in jitted:
        np.testing.assert_allclose(np.asarray(jitted[head]), np.asarray(eager[head]), atol=1e-6)
    graphdef, params, rest = nnx.split(model, nnx.Param, ...)
    again = nnx.merge(graphdef, params, rest)
    assert count_params(again) == count_params(model) == 4 * 4 * 9 + 4 * 2 + 2


@pytest.mark.parametrize("start, stop", [(2, 9), (3, 3), (-1, 2)])
def test_channel_slice_bounds_are_checked(start: int, stop: int) -> None:
    with pytest.raises(ValueError, match="channel_slice"):
        single("channel_slice", start=start, stop=stop)
