"""The JAX training loop: contract and determinism, and one optimizer step equal to torch's."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from flax import nnx

from nas.backends.jax import build, load_torch_weights, train  # noqa: E402
from nas.backends.jax.train import make_optimizer, make_steps  # noqa: E402
from nas.backends.torch import build as torch_build  # noqa: E402
from nas.backends.training import Pruned, TrainConfig, cosine_lr  # noqa: E402
from nas.core.ir import ArchSpec, GraphBuilder  # noqa: E402
from nas.data.base import ArrayDataset  # noqa: E402
from nas.spaces.nb201 import NB201Space  # noqa: E402

SHAPE = (3, 8, 8)
CONFIG = TrainConfig(epochs=1, batch_size=16, lr=0.1, seed=3, eval_batch_size=24)


def tiny_data(n: int = 64, classes: int = 4) -> ArrayDataset:
    rng = np.random.default_rng(0)

    def split(k: int) -> tuple[np.ndarray, np.ndarray]:
        x = rng.standard_normal((k, *SHAPE)).astype(np.float32)
        return x, rng.integers(0, classes, k).astype(np.int64)

    (tx, ty), (vx, vy), (sx, sy) = split(n), split(30), split(20)
    return ArrayDataset("random", tx, ty, vx, vy, sx, sy, classes)


def tiny_arch(classes: int = 4) -> ArchSpec:
    """Conv (with bias), BN, a residual conv-BN branch, pooling and a classifier."""
    g = GraphBuilder()
    x = g.input(SHAPE)
    x = g.add("conv2d", x, out_channels=6, kernel=3, padding=1, bias=True)
    x = g.add("act", g.add("batchnorm", x), fn="relu")
    y = g.add("batchnorm", g.add("conv2d", x, out_channels=6, kernel=3, stride=2, padding=1))
    x = g.add("add", g.add("avg_pool", x, kernel=2, stride=2, padding=0), y)
    x = g.add("global_avg_pool", x)
    return g.build({"logits": g.add("linear", x, out_features=classes)})


def plain_arch(classes: int = 4) -> ArchSpec:
    """The cheapest network to compile: conv, BN, ReLU, pooling, classifier."""
    g = GraphBuilder()
    x = g.add("act", g.add("batchnorm", g.add("conv2d", g.input(SHAPE), out_channels=4, kernel=3)), fn="relu")
    return g.build({"logits": g.add("linear", g.add("global_avg_pool", x), out_features=classes)})


def nb201_arch() -> ArchSpec:
    space = NB201Space(preset="small", input_shape=list(SHAPE), num_classes=4)
    cell = "|nor_conv_3x3~0|+|none~0|avg_pool_3x3~1|+|skip_connect~0|none~1|none~2|"
    return space.decode(space.parse(cell))


def test_one_epoch_on_nb201_reports_the_torch_metrics() -> None:
    reports: list[tuple[int, dict[str, float]]] = []
    metrics = train(nb201_arch(), tiny_data(), CONFIG, report=lambda e, m: reports.append((e, m)) or False)
    assert set(metrics) == {"valid_accuracy", "test_accuracy", "train_loss", "steps_per_second"}
    assert math.isfinite(metrics["train_loss"]) and metrics["train_loss"] > 0
    assert 0 <= metrics["valid_accuracy"] <= 100 and 0 <= metrics["test_accuracy"] <= 100
    assert metrics["steps_per_second"] > 0
    assert [e for e, _ in reports] == [1] and set(reports[0][1]) == {"train_loss", "valid_accuracy"}


def test_training_is_deterministic_under_the_seed() -> None:
    config = TrainConfig(epochs=2, batch_size=16, seed=5, max_steps_per_epoch=3)
    a = train(plain_arch(), tiny_data(), config)
    b = train(plain_arch(), tiny_data(), config)
    a.pop("steps_per_second")
    b.pop("steps_per_second")
    assert a == b


def test_reporter_can_prune() -> None:
    config = TrainConfig(epochs=3, batch_size=16, max_steps_per_epoch=1)
    with pytest.raises(Pruned) as info:
        train(plain_arch(), tiny_data(), config, report=lambda epoch, m: epoch == 2)
    assert info.value.epoch == 2 and "valid_accuracy" in info.value.metrics


def test_two_sgd_steps_match_torch() -> None:
    """Nesterov momentum, decay on ndim > 1 only and the cosine rate: weights equal torch's after 2 steps."""
    arch, data, total = tiny_arch(), tiny_data(), 4
    tm = torch_build(arch, seed=0)
    jm = load_torch_weights(build(arch, seed=0), tm)
    decay = [p for p in tm.parameters() if p.ndim > 1]
    other = [p for p in tm.parameters() if p.ndim <= 1]
    opt = torch.optim.SGD([{"params": decay, "weight_decay": CONFIG.weight_decay},
                           {"params": other, "weight_decay": 0.0}],
                          lr=CONFIG.lr, momentum=CONFIG.momentum, nesterov=True)
    tx = make_optimizer(CONFIG, total)
    train_step, _ = make_steps(jm, tx)
    params, rest = nnx.state(jm, nnx.Param), nnx.state(jm, nnx.Not(nnx.Param))
    opt_state = tx.init(params)
    tm.train()
    for step in range(2):
        x, y = data.train_x[step * 16:(step + 1) * 16], data.train_y[step * 16:(step + 1) * 16]
        for group in opt.param_groups:
            group["lr"] = cosine_lr(CONFIG.lr, step, total)
        loss = torch.nn.functional.cross_entropy(tm(torch.from_numpy(x)), torch.from_numpy(y))
        opt.zero_grad()
        loss.backward()
        opt.step()
        params, rest, opt_state, jloss = train_step(params, rest, opt_state, x, y.astype(np.int32))
        assert abs(float(jloss) - loss.item()) < 1e-5
    nnx.update(jm, params, rest)
    for key, value in tm.state_dict().items():
        _, layer, name = key.split(".")
        ours = np.asarray(getattr(jm.layers[layer], name)[...])
        np.testing.assert_allclose(ours, value.detach().numpy(), atol=2e-5, err_msg=key)
