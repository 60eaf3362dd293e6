"""Initial weights as each space's reference draws them by default (the ``init`` of conv2d and linear),
in the torch and the JAX lowering: BossNet/HyTra (He normal fan-out convs), ResNet-RS (TF1 variance
scaling convs, N(0, 0.01) classifier, zero biases), SimpleNet (Glorot uniform convs with ReLU gain), NASNet
(TF-Slim variance scaling, fan-out, on every conv, depthwise conv and fully connected layer)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from nas.backends.jax import build as jax_build
from nas.backends.torch import build as torch_build
from nas.backends.torch import count_params
from nas.core.cost import arch_cost
from nas.core.ir import ArchSpec, GraphBuilder
from nas.spaces.hytra.space import HyTraSpace
from nas.spaces.nasnet import NASNetSpace
from nas.spaces.nb201.space import NB201Space
from nas.spaces.scaling.resnet_rs import ResNetRSSpace
from nas.spaces.scaling.simplenet import SimpleNetSpace

T0_TOKENS = [5, 4, 3, 3, 3, 2, 3, 0, 0, 0, 1, 0, 0, 0, 0, 0]
TRUNCATED_STD = 0.87962566103423978  # std of a unit normal truncated at +-2


def _hytra() -> ArchSpec:
    space = HyTraSpace(se=True)
    return space.decode(space.from_tokens(T0_TOKENS))


def _resnet_rs() -> ArchSpec:
    space = ResNetRSSpace(preset="small", num_classes=100)
    return space.decode(space.make({"depth": 50, "width_mult": 0.125, "resolution": 32}))


def _simplenet() -> ArchSpec:
    space = SimpleNetSpace(preset="small")
    return space.decode(space.make({"table": "cifar_5m", "width_mult": 0.25, "depth_mult": 1.0,
                                    "stride_mode": 0, "resolution": 32, "dropout": 0.1}))


def _nasnet() -> ArchSpec:
    space = NASNetSpace(preset="cifar", cells_per_stack=2, filters=16)
    return space.decode(space.sample(0))


def _weights(arch: ArchSpec, backend: str) -> dict[str, tuple[np.ndarray, np.ndarray | None]]:
    """Node name -> (weight, bias) of every conv2d and linear node, torch layouts, as numpy."""
    net = torch_build(arch, seed=0) if backend == "torch" else jax_build(arch, seed=0)
    out = {}
    for node in arch.nodes:
        if node.op not in ("conv2d", "linear"):
            continue
        layer = net.layers[node.name.replace(".", "/")]
        if backend == "torch":
            bias = None if layer.bias is None else layer.bias.detach().numpy()
            out[node.name] = (layer.weight.detach().numpy(), bias)
        else:
            bias = None if layer.bias is None else np.asarray(layer.bias[...])
            out[node.name] = (np.asarray(layer.weight[...]), bias)
    return out


def _fans(w: np.ndarray) -> tuple[int, int]:
    receptive = math.prod(w.shape[2:])
    return w.shape[1] * receptive, w.shape[0] * receptive


def _inits(arch: ArchSpec, op: str) -> set[str]:
    return {n.p["init"] for n in arch.nodes if n.op == op}


@pytest.mark.parametrize("backend", ["torch", "jax"])
def test_hytra_convs_are_he_normal_fan_out(backend: str) -> None:
    arch = _hytra()
    assert _inits(arch, "conv2d") == {"kaiming_normal_fan_out"} and _inits(arch, "linear") == {"default"}
    params = _weights(arch, backend)
    z = np.concatenate([w.ravel() / math.sqrt(2.0 / _fans(w)[1]) for name, (w, _) in params.items()
                        if arch.node(name).op == "conv2d"])
    assert z.size > 400_000
    assert z.mean() == pytest.approx(0.0, abs=0.01)
    assert z.std() == pytest.approx(1.0, rel=0.02)
    assert np.mean(np.abs(z) > 2.0) == pytest.approx(0.0455, abs=0.003)  # a normal's tails, not a uniform's
    peg = params["layer0.branch.peg"][0]  # depthwise: torch's fan-out counts every output channel
    assert peg.std() == pytest.approx(math.sqrt(2.0 / (peg.shape[0] * 9)), rel=0.15)
    fc, bias = params["head.fc"]
    bound = 1.0 / math.sqrt(fc.shape[1])
    assert np.abs(fc).max() <= bound and np.abs(bias).max() <= bound and fc.std() > 0.9 * bound / math.sqrt(3)


@pytest.mark.parametrize("backend", ["torch", "jax"])
def test_resnet_rs_follows_the_tf_initialisers(backend: str) -> None:
    arch = _resnet_rs()
    assert _inits(arch, "conv2d") == {"tf_variance_scaling"} and _inits(arch, "linear") == {"normal_0.01"}
    params = _weights(arch, backend)
    fc, fc_bias = params["head.classifier"]
    assert fc.shape == (100, 256)
    assert fc.std() == pytest.approx(0.01, rel=0.03) and abs(fc.mean()) < 1e-3
    assert not fc_bias.any()
    convs = [(w, b) for name, (w, b) in params.items() if arch.node(name).op == "conv2d"]
    z = np.concatenate([w.ravel() * math.sqrt(_fans(w)[0]) for w, _ in convs])
    assert z.size > 100_000
    assert z.std() == pytest.approx(1.0, rel=0.02)
    assert np.abs(z).max() <= 2.0 / TRUNCATED_STD + 1e-5  # truncated at two (widened) standard deviations
    se_biases = [b for _, b in convs if b is not None]
    assert se_biases and not any(b.any() for b in se_biases)


@pytest.mark.parametrize("backend", ["torch", "jax"])
def test_simplenet_convs_are_glorot_uniform_with_relu_gain(backend: str) -> None:
    arch = _simplenet()
    assert _inits(arch, "conv2d") == {"xavier_uniform_relu"} and _inits(arch, "linear") == {"default"}
    params = _weights(arch, backend)
    z, biases_in_default_range = [], True
    for name, (w, b) in params.items():
        if arch.node(name).op != "conv2d":
            continue
        fan_in, fan_out = _fans(w)
        z.append(w.ravel() / (math.sqrt(2.0) * math.sqrt(6.0 / (fan_in + fan_out))))
        biases_in_default_range &= bool(np.abs(b).max() <= 1.0 / math.sqrt(fan_in))
    z = np.concatenate(z)
    assert z.size > 300_000
    assert np.abs(z).max() <= 1.0 + 1e-6
    assert z.var() == pytest.approx(1.0 / 3.0, rel=0.02)  # uniform on [-1, 1]
    assert biases_in_default_range


@pytest.mark.parametrize("backend", ["torch", "jax"])
def test_nasnet_follows_tf_slim_fan_out_variance_scaling(backend: str) -> None:
    """nasnet_*_arg_scope: variance_scaling_initializer(mode='FAN_OUT') (factor 2, truncated normal of std
    sqrt(1.3 * 2 / n) cut at two std) on conv2d, separable_conv2d and fully_connected; TF's fan-out of a
    depthwise kernel [kh, kw, in, 1] is kh * kw, not torch's channels * kh * kw."""
    arch = _nasnet()
    assert _inits(arch, "conv2d") == {"tf_slim_fan_out"} and _inits(arch, "linear") == {"tf_slim_fan_out"}
    assert "aux_logits" in dict(arch.outputs)
    params = _weights(arch, backend)
    z, depthwise = [], []
    for name, (w, b) in params.items():
        groups = arch.node(name).p.get("groups", 1)
        std = math.sqrt(1.3 * 2.0 / (_fans(w)[1] // groups))
        z.append(w.ravel() / std)
        if groups > 1:
            depthwise.append(w.ravel() / std)
        assert b is None or not b.any()
    z, depthwise = np.concatenate(z), np.concatenate(depthwise)
    assert z.size > 200_000 and depthwise.size > 10_000
    for sample in (z, depthwise):
        assert np.abs(sample).max() <= 2.0 + 1e-5
        assert sample.mean() == pytest.approx(0.0, abs=0.02)
        assert sample.std() == pytest.approx(TRUNCATED_STD, rel=0.02)
    for head in ("head.classifier", "aux.fc"):  # fully_connected: fan_out = classes
        fc, bias = params[head]
        assert fc.std() == pytest.approx(TRUNCATED_STD * math.sqrt(2.6 / fc.shape[0]), rel=0.1)
        assert bias is not None and not bias.any()


def test_init_keeps_parameter_counts() -> None:
    for arch in (_hytra(), _resnet_rs(), _simplenet(), _nasnet()):
        cost = arch_cost(arch)  # NASNet's auxiliary head is built too
        assert count_params(torch_build(arch, seed=0)) == cost.get("params_with_aux", cost["params"])


def test_spaces_without_a_stated_init_keep_torch_defaults() -> None:
    space = NB201Space()
    arch = space.decode(space.sample(0))
    assert _inits(arch, "conv2d") == {"default"} and _inits(arch, "linear") == {"default"}


def test_unknown_init_is_rejected() -> None:
    g = GraphBuilder()
    x = g.input((3, 8, 8))
    with pytest.raises(ValueError, match="init must be one of"):
        g.add("conv2d", x, out_channels=4, init="he")
    with pytest.raises(ValueError, match="init must be one of"):
        g.add("linear", g.add("global_avg_pool", x), out_features=2, init="zeros")
