"""Conventions of the reference code that parameter counts cannot see: TF SAME padding, batch-norm
settings per preset, scheduled vs constant drop-path, average pooling on odd maps, and SimpleNet's
channel-wise dropout."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

import nas
from nas.backends.torch import build as torch_build
from nas.backends.torch.ops import TORCH_OPS, DropPath
from nas.backends.torch.train import train as torch_train
from nas.backends.training import TrainConfig
from nas.core.ir import ArchSpec, GraphBuilder
from nas.data.base import ArrayDataset
from nas.ops import same_pads
from nas.spaces.fbnet.fbnetv3 import FBNetV3Space
from nas.spaces.hytra import layers as hytra_layers
from nas.spaces.hytra.space import HyTraSpace
from nas.spaces.nasnet import NASNetSpace
from nas.spaces.nasnet.ops import apply_op
from nas.spaces.scaling import resnet_rs
from nas.spaces.scaling.resnet_rs import ResNetRSSpace
from nas.spaces.scaling.simplenet import SimpleNetSpace

TF_SAME_EVEN = (0, 1, 0, 1)  # (left, right, top, bottom) of TF's SAME for a stride-2 3x3 window on an even map


def test_same_pads_follow_tensorflow() -> None:
    assert same_pads(8, 3, 2) == (0, 1)
    assert same_pads(8, 5, 2) == (1, 2)
    assert same_pads(8, 7, 2) == (2, 3)
    assert same_pads(8, 3, 2, dilation=2) == (1, 2)
    assert same_pads(7, 3, 2) == (1, 1)
    assert same_pads(8, 3, 1) == (1, 1)
    assert same_pads(3, 2, 2) == (0, 1) and same_pads(4, 2, 2) == (0, 0)


def _op_arch(op: str, shape: tuple[int, int, int] = (4, 8, 8), channels: int = 4) -> ArchSpec:
    g = GraphBuilder()
    x = g.input(shape)
    with g.scope("op"):
        y = apply_op(g, x, op, channels, stride=2)
    return g.build({"out": y})


def _tf_avg_pool(x: torch.Tensor, k: int, s: int, pads: tuple[int, int, int, int]) -> torch.Tensor:
    """TF SAME average pooling: zero-padded sums over the count of real cells in each window."""
    total = F.avg_pool2d(F.pad(x, pads), k, s) * k * k
    count = F.avg_pool2d(F.pad(torch.ones_like(x[:1, :1]), pads), k, s) * k * k
    return total / count


@pytest.mark.parametrize("op,k,kind", [("max_pool_3x3", 3, "max"), ("max_pool_5x5", 5, "max"),
                                       ("avg_pool_3x3", 3, "avg")])
def test_strided_nasnet_pools_pad_like_tf(op: str, k: int, kind: str) -> None:
    x = torch.randn(2, 4, 8, 8)
    begin, end = same_pads(8, k, 2)
    pads = (begin, end, begin, end)
    if kind == "max":
        want = F.max_pool2d(F.pad(x, pads, value=float("-inf")), k, 2)
    else:
        want = _tf_avg_pool(x, k, 2, pads)
    arch = _op_arch(op)
    with torch.no_grad():
        got = torch_build(arch, seed=0).eval()(x)
    torch.testing.assert_close(got, want)
    import nas.backends.jax as jax_backend
    got_jax = np.asarray(jax_backend.build(arch, seed=0)(x.numpy()))
    np.testing.assert_allclose(got_jax, want.numpy(), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("op,k,dilation", [("sep_conv_3x3", 3, 1), ("sep_conv_5x5", 5, 1), ("sep_conv_7x7", 7, 1),
                                           ("dil_conv_3x3", 3, 2), ("conv_3x3", 3, 1)])
def test_strided_nasnet_convs_pad_like_tf(op: str, k: int, dilation: int) -> None:
    """The strided conv of each op, seen in place, equals F.pad (TF SAME) then an unpadded conv."""
    arch = _op_arch(op)
    model = torch_build(arch, seed=0).eval()
    strided = [n for n in arch.nodes if n.op == "conv2d" and n.p["stride"] == 2]
    assert len(strided) == 1
    conv = model.layers[strided[0].name.replace(".", "/")]
    seen: dict[str, torch.Tensor] = {}
    conv.register_forward_hook(lambda m, inp, out: seen.update(inp=inp[0], out=out))
    with torch.no_grad():
        model(torch.randn(2, 4, 8, 8))
        begin, end = same_pads(8, k, 2, dilation)
        want = F.conv2d(F.pad(seen["inp"], (begin, end, begin, end)), conv.weight, None, 2, 0, dilation,
                        conv.groups)
    assert seen["out"].shape[-2:] == (4, 4)
    torch.testing.assert_close(seen["out"], want)


def test_stride_one_nasnet_ops_keep_symmetric_padding() -> None:
    g = GraphBuilder()
    x = g.input((4, 8, 8))
    y = apply_op(g, x, "sep_conv_5x5", 4, stride=1)
    arch = g.build({"out": y})
    node = next(n for n in arch.nodes if n.name.endswith("depthwise"))
    conv = torch_build(arch, seed=0).layers[node.name.replace(".", "/")]
    assert type(conv) is nn.Conv2d and conv.padding == (2, 2)


def _bn_settings_torch(model: nn.Module) -> set[tuple[float, float]]:
    return {(m.eps, m.momentum) for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)}


def _bn_settings_jax(arch: ArchSpec) -> set[tuple[float, float]]:
    import nas.backends.jax as jax_backend
    from nas.backends.jax.ops import BatchNorm

    model = jax_backend.build(arch, seed=0)
    return {(m.eps, m.momentum) for m in model.layers.values() if isinstance(m, BatchNorm)}


@pytest.mark.parametrize("preset,want", [("cifar", (1e-5, 0.1)), ("small", (1e-5, 0.1)),
                                         ("mobile", (1e-3, 3e-4)), ("large", (1e-3, 3e-4))])
def test_nasnet_batchnorm_follows_the_preset(preset: str, want: tuple[float, float]) -> None:
    space = NASNetSpace(preset=preset, cells_per_stack=1, filters=8, input_shape=[3, 96, 96], num_classes=10)
    arch = space.decode(space.sample(0))
    assert _bn_settings_torch(torch_build(arch, seed=0)) == {want}
    assert _bn_settings_jax(arch) == {want}


def test_fbnetv3_batchnorm_uses_mobile_vision_momentum() -> None:
    space = FBNetV3Space(preset="small")
    arch = space.decode(space.make({"variant": "A"}))
    assert _bn_settings_torch(torch_build(arch, seed=0)) == {(1e-5, 0.003)}
    assert _bn_settings_jax(arch) == {(1e-5, 0.003)}


def test_fbnetv5_batchnorm_uses_mobile_vision_momentum() -> None:
    space = nas.space("fbnetv5", preset="cpu")
    arch = space.decode(space.sample(0))
    assert {(n.p["eps"], n.p["momentum"]) for n in arch.nodes if n.op == "batchnorm"} == {(1e-5, 0.003)}


def _drop_flags(arch: ArchSpec) -> set[bool]:
    return {n.p["scheduled"] for n in arch.nodes if n.op == "drop_path" and n.p["rate"] > 0}


def test_drop_path_is_scheduled_for_nasnet_only() -> None:
    nasnet = NASNetSpace(preset="small")
    assert _drop_flags(nasnet.decode(nasnet.sample(0))) == {True}
    hytra = HyTraSpace(preset="cpu", drop_path=0.1)
    assert _drop_flags(hytra.decode(hytra.sample(0))) == {False}
    rs = ResNetRSSpace(preset="small", depths=[200])
    assert _drop_flags(rs.decode(rs.make({"depth": 200, "width_mult": 0.0625, "resolution": 32}))) == {False}


def test_training_loop_ramps_only_scheduled_drop_path() -> None:
    """Over a short torch training the scheduled node's rate grows with step / total; the constant one stays."""
    g = GraphBuilder()
    x = g.input((2, 4, 4))
    y = g.add("conv2d", x, out_channels=4, kernel=1)
    y = g.add("drop_path", y, rate=0.5, name="constant")
    y = g.add("drop_path", y, rate=0.5, scheduled=True, name="scheduled")
    y = g.add("linear", g.add("global_avg_pool", y), out_features=2)
    arch = g.build({"logits": y})
    model = torch_build(arch, seed=0)
    seen: dict[str, list[float]] = {"constant": [], "scheduled": []}
    for name, rates in seen.items():
        model.layers[name].register_forward_hook(lambda m, i, o, rates=rates: rates.append(m.drop_rate)
                                                 if m.training else None)
    rng = np.random.default_rng(0)
    data = ArrayDataset("random", rng.standard_normal((32, 2, 4, 4)).astype(np.float32), rng.integers(0, 2, 32),
                        rng.standard_normal((8, 2, 4, 4)).astype(np.float32), rng.integers(0, 2, 8),
                        rng.standard_normal((8, 2, 4, 4)).astype(np.float32), rng.integers(0, 2, 8), 2)
    torch_train(arch, data, TrainConfig(epochs=2, batch_size=8, lr=0.01, seed=0), model=model)
    assert seen["constant"] == [0.5] * 8
    assert seen["scheduled"] == pytest.approx([0.5 * step / 8 for step in range(8)])


def test_jax_drop_path_ignores_progress_unless_scheduled() -> None:
    from nas.backends.jax.ops import DropPath as JaxDropPath

    x = np.ones((256, 1), np.float32)
    for scheduled, dropped in ((False, True), (True, False)):
        layer = JaxDropPath(0.5, np.random.default_rng(0), scheduled)
        layer.progress[...] = 0.0
        assert bool((np.asarray(layer(x)) == 0).any()) is dropped
    assert isinstance(DropPath(0.5), nn.Module) and DropPath(0.5).drop_rate == 0.5


def _lower_pool(arch: ArchSpec) -> tuple[nn.Module, object, object]:
    node = next(n for n in arch.nodes if n.op == "avg_pool")
    ins = arch.in_shapes(node)
    import nas.backends.jax.ops as jax_ops
    return TORCH_OPS["avg_pool"](ins, node.p, node.shape), jax_ops.JAX_OPS["avg_pool"](
        ins, node.p, node.shape, np.random.default_rng(0)), node


def _hytra_shortcut() -> ArchSpec:
    g = GraphBuilder()
    x = g.input((4, 3, 3))
    return g.build({"out": hytra_layers._shortcut(g, x, 8, 2)})


def _resnet_rs_shortcut() -> ArchSpec:
    g = GraphBuilder()
    x = g.input((4, 3, 3))
    return g.build({"out": resnet_rs._bottleneck(g, x, 2, 2, True, 0.0, 0.0)})


@pytest.mark.parametrize("make", [_hytra_shortcut, _resnet_rs_shortcut], ids=["hytra", "resnet_rs"])
def test_shortcut_pool_on_an_odd_map_is_ceil_mode(make) -> None:
    """BossNAS's AvgPool2d(2, 2, ceil_mode=True, count_include_pad=False) = Keras 'same' average pooling."""
    x = torch.randn(2, 4, 3, 3)
    want = nn.AvgPool2d(2, 2, ceil_mode=True, count_include_pad=False)(x)
    assert torch.allclose(want[..., 1, 1], x[..., 2, 2])  # the corner window holds one real cell
    torch_pool, jax_pool, node = _lower_pool(make())
    assert node.shape == (4, 2, 2)
    torch.testing.assert_close(torch_pool(x), want)
    np.testing.assert_allclose(np.asarray(jax_pool(x.numpy())), want.numpy(), rtol=1e-6, atol=1e-6)


def _dropout_arch(channelwise: bool) -> ArchSpec:
    g = GraphBuilder()
    x = g.input((16, 5, 5))
    return g.build({"out": g.add("dropout", x, rate=0.5, channelwise=channelwise, name="drop")})


def _train_mode_output(arch: ArchSpec, backend: str) -> np.ndarray:
    x = np.ones((8, *arch.input_shape), np.float32)
    if backend == "torch":
        model = torch_build(arch, seed=0).train()
        with torch.no_grad():
            return model(torch.from_numpy(x)).numpy()
    import nas.backends.jax as jax_backend

    model = jax_backend.build(arch, seed=0)
    model.train()
    return np.asarray(model(x))


@pytest.mark.parametrize("backend", ["torch", "jax"])
@pytest.mark.parametrize("channelwise", [True, False])
def test_channelwise_dropout_drops_whole_maps(backend: str, channelwise: bool) -> None:
    """``channelwise`` keeps or zeroes each (example, channel) map as a whole (torch's Dropout2d), scaled by
    1 / (1 - rate); the default draws every element on its own."""
    out = _train_mode_output(_dropout_arch(channelwise), backend)
    assert set(np.unique(out)) == {0.0, 2.0}
    maps = out.reshape(8 * 16, 25)
    whole = bool(np.all(maps.min(axis=1) == maps.max(axis=1)))
    assert whole is channelwise
    assert 0 < np.mean(maps[:, 0] == 0) < 1


def test_simplenet_dropout_is_channelwise_like_the_pytorch_port() -> None:
    """The authors' port: ``nn.Dropout2d`` after each pool and ``F.dropout2d`` before the classifier."""
    space = SimpleNetSpace(preset="small")
    arch = space.decode(space.make({"table": "cifar_310k", "width_mult": 0.25, "depth_mult": 1.0,
                                    "stride_mode": 0, "resolution": 32, "dropout": 0.1}))
    drops = [n for n in arch.nodes if n.op == "dropout"]
    assert len(drops) == 5 and all(n.p["channelwise"] and n.p["rate"] == 0.1 for n in drops)
    model = torch_build(arch, seed=0)
    kinds = [type(model.layers[n.name.replace(".", "/")]) for n in drops]
    assert kinds == [nn.Dropout2d] * 4 + [nn.Dropout]  # the head's is on a vector: one value per channel
