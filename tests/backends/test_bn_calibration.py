"""Short trainings are evaluated with BN statistics of their training images: with a slow momentum the running
statistics would still be near their initial 0 / 1 and a network that fits its data would score at chance."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from flax import nnx

from nas.backends.jax import build as jax_build
from nas.backends.jax import train as jax_train
from nas.backends.jax.ops import BatchNorm, Conv2d
from nas.backends.torch import build as torch_build
from nas.backends.torch.train import train as torch_train
from nas.backends.training import TrainConfig, bn_stats_stale
from nas.core.ir import ArchSpec, GraphBuilder
from nas.data.base import ArrayDataset

SHAPE = (3, 8, 8)
# 64 training images in two evaluation batches of 32: the cumulative average of the batch means is their mean
CONFIG = TrainConfig(epochs=1, batch_size=16, lr=0.1, seed=3, eval_batch_size=32, max_steps_per_epoch=2)


def data() -> ArrayDataset:
    rng = np.random.default_rng(0)
    x = (rng.standard_normal((94, *SHAPE)) * 3 + 2).astype(np.float32)  # far from the initial 0 / 1
    y = rng.integers(0, 4, 94).astype(np.int64)
    return ArrayDataset("random", x[:64], y[:64], x[64:84], y[64:84], x[84:], y[84:], 4)


def slow_bn_arch(momentum: float = 0.003) -> ArchSpec:
    g = GraphBuilder()
    x = g.add("conv2d", g.input(SHAPE), out_channels=4, kernel=3, bias=True)
    x = g.add("act", g.add("batchnorm", x, momentum=momentum), fn="relu")
    return g.build({"logits": g.add("linear", g.add("global_avg_pool", x), out_features=4)})


def conv_output_stats(weight: torch.Tensor, bias: torch.Tensor, x: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
    """The first BN's calibrated statistics: per channel, the average over the evaluation batches of its input's
    batch mean and unbiased batch variance (a cumulative average, one weight per batch)."""
    out = torch.nn.functional.conv2d(torch.from_numpy(x), weight, bias).double()
    batches = out.split(CONFIG.eval_batch_size)
    means = torch.stack([b.mean(dim=(0, 2, 3)) for b in batches])
    variances = torch.stack([b.var(dim=(0, 2, 3), unbiased=True) for b in batches])
    return means.mean(0), variances.mean(0)


def test_the_rule_recalibrates_only_what_a_training_left_stale() -> None:
    assert bn_stats_stale([0.1], 43) and not bn_stats_stale([0.1], 44)  # 0.9 ** 44 < 1%
    assert bn_stats_stale([0.1, 0.003], 500) and not bn_stats_stale([0.003], 1600)
    assert not bn_stats_stale([None], 1) and not bn_stats_stale([], 0)


def test_torch_loop_evaluates_with_the_statistics_of_the_training_images() -> None:
    split, arch = data(), slow_bn_arch()
    model = torch_build(arch, seed=0)
    torch_train(arch, split, CONFIG, model=model)
    conv = next(m for m in model.modules() if isinstance(m, torch.nn.Conv2d))
    norm = next(m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d))
    mean, var = conv_output_stats(conv.weight.detach(), conv.bias.detach(), split.train_x)
    assert norm.momentum == pytest.approx(0.003)
    torch.testing.assert_close(norm.running_mean.double(), mean, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(norm.running_var.double(), var, rtol=1e-4, atol=1e-5)


def test_jax_loop_evaluates_with_the_statistics_of_the_training_images() -> None:
    split, arch = data(), slow_bn_arch()
    model = jax_build(arch, seed=0)
    jax_train(arch, split, CONFIG, model=model)
    conv = next(m for _, m in nnx.iter_modules(model) if isinstance(m, Conv2d))
    norm = next(m for _, m in nnx.iter_modules(model) if isinstance(m, BatchNorm))
    mean, var = conv_output_stats(torch.from_numpy(np.array(conv.weight[...])),
                                  torch.from_numpy(np.array(conv.bias[...])), split.train_x)
    assert norm.momentum == pytest.approx(0.003)
    torch.testing.assert_close(torch.from_numpy(np.array(norm.running_mean[...])).double(), mean, rtol=1e-4,
                               atol=1e-5)
    torch.testing.assert_close(torch.from_numpy(np.array(norm.running_var[...])).double(), var, rtol=1e-4,
                               atol=1e-5)


def test_a_long_enough_training_keeps_its_running_statistics() -> None:
    """Momentum 0.5 over 8 steps leaves 0.4% of the initial values: the loops keep the running averages."""
    split, arch = data(), slow_bn_arch(momentum=0.5)
    config = TrainConfig(epochs=1, batch_size=8, lr=0.1, seed=3, eval_batch_size=32, max_steps_per_epoch=8)
    model = torch_build(arch, seed=0)
    torch_train(arch, split, config, model=model)
    conv = next(m for m in model.modules() if isinstance(m, torch.nn.Conv2d))
    norm = next(m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d))
    mean, _ = conv_output_stats(conv.weight.detach(), conv.bias.detach(), split.train_x)
    assert not torch.allclose(norm.running_mean.double(), mean, rtol=1e-4, atol=1e-5)
    assert int(norm.num_batches_tracked) == 8
