"""The stochastic ops checked statistically in both backends, lowered from the IR: ``dropout`` (element-wise
and channel-wise) and ``drop_path`` (constant, and NASNet's scheduled one whose rate is ``rate * progress``)
drop at their rate (within 5 binomial sigmas), scale what they keep by exactly 1 / keep, keep the mean,
are the identity in eval mode and draw a fresh mask on every call."""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterator
from typing import Any

import jax
import numpy as np
import pytest
import torch
from flax import nnx

from nas.backends.jax import build as jax_build
from nas.backends.jax.train import with_progress
from nas.backends.torch import build as torch_build
from nas.backends.torch.schedules import set_drop_path_progress
from nas.backends.training import TrainConfig
from nas.core.ir import ArchSpec, GraphBuilder
from nas.data.base import ArrayDataset

BACKENDS = ["torch", "jax"]
SIGMAS = 5.0
Forward = Callable[[np.ndarray], np.ndarray]
# One batch shape per kind of mask, shared by the tests, so eager JAX compiles each random draw once.
ELEMENTS = (64, 8, 16, 16)  # element-wise dropout: 131k draws
MAPS = (256, 32, 4, 4)  # channel-wise dropout: 8192 (example, channel) draws
EXAMPLES = (8192, 2, 3, 3)  # drop-path: 8192 per-example draws


@pytest.fixture(autouse=True)
def _torch_rng() -> Iterator[None]:
    """Torch's dropout draws from the global generator: seed it per test and restore it afterwards."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        yield


def _single(op: str, shape: tuple[int, ...], **p: Any) -> ArchSpec:
    """An input followed by one ``op`` node (named ``op``) that is the output."""
    g = GraphBuilder()
    x = g.input(shape)
    return g.build({"out": g.add(op, x, name="op", **p)})


def _forward(arch: ArchSpec, backend: str, seed: int = 0, train: bool = True,
             progress: float | None = None) -> Forward:
    """The lowered model as numpy -> numpy, in train or eval mode; ``progress`` is set the way each training
    loop sets it (``set_drop_path_progress`` / ``with_progress`` on the non-parameter state)."""
    if backend == "torch":
        model = torch_build(arch, seed=seed).train(train)
        if progress is not None:
            set_drop_path_progress(model, progress)

        def run_torch(x: np.ndarray) -> np.ndarray:
            with torch.no_grad():
                return model(torch.from_numpy(x)).numpy()

        return run_torch
    net = jax_build(arch, seed=seed)
    net.train() if train else net.eval()
    if progress is not None:
        nnx.update(net, with_progress(nnx.state(net, nnx.Not(nnx.Param)), progress))
    return lambda x: np.asarray(net(x))


def _inputs(shape: tuple[int, ...], seed: int = 0) -> np.ndarray:
    """Values in [0.5, 1.5): never 0, so a zero in the output is a drop."""
    return np.random.default_rng(seed).uniform(0.5, 1.5, shape).astype(np.float32)


def _assert_rate(dropped: np.ndarray, rate: float) -> None:
    """The share of True in ``dropped`` is ``rate`` within 5 binomial sigmas."""
    n = dropped.size
    sigma = np.sqrt(rate * (1 - rate) / n)
    assert abs(dropped.mean() - rate) <= SIGMAS * sigma + 1e-12, (dropped.mean(), rate, n)


def _assert_mean_kept(x: np.ndarray, out: np.ndarray, rate: float, unit: int = 1) -> None:
    """E[out] = x: the mean error is within 5 sigmas, each mask unit (``unit`` consecutive values kept or
    dropped together) with sum s adding Var = s^2 rate / (1 - rate)."""
    sums = x.astype(np.float64).reshape(-1, unit).sum(axis=1)
    sigma = np.sqrt(np.sum(sums**2) * rate / (1 - rate)) / x.size
    assert abs(out.mean(dtype=np.float64) - x.mean(dtype=np.float64)) <= SIGMAS * sigma


def _assert_scaled(x: np.ndarray, out: np.ndarray, keep: float) -> None:
    """Every kept value is exactly x / keep."""
    kept = out != 0
    np.testing.assert_allclose(out[kept], x[kept] / keep, rtol=1e-6)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("rate", [0.2, 0.7])
def test_dropout_zeroes_elements_at_rate(backend: str, rate: float) -> None:
    """Element-wise: a share ``rate`` of 131k values is zeroed, each on its own (maps are mixed)."""
    x = _inputs(ELEMENTS)
    out = _forward(_single("dropout", x.shape[1:], rate=rate), backend)(x)
    dropped = out == 0
    _assert_rate(dropped, rate)
    _assert_scaled(x, out, 1 - rate)
    _assert_mean_kept(x, out, rate)
    maps = dropped.reshape(64 * 8, -1)
    assert np.mean(maps.any(axis=1) & ~maps.all(axis=1)) > 0.99  # nearly every map has kept and dropped cells


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("rate", [0.3, 0.8])
def test_channelwise_dropout_zeroes_whole_maps_at_rate(backend: str, rate: float) -> None:
    """Channel-wise: each of 256 x 32 (example, channel) maps is zeroed whole with probability ``rate``,
    drawn independently per example and per channel (not shared along either axis)."""
    x = _inputs(MAPS)
    out = _forward(_single("dropout", x.shape[1:], rate=rate, channelwise=True), backend)(x)
    maps = (out == 0).reshape(256, 32, 16)
    assert np.array_equal(maps.all(axis=2), maps.any(axis=2))  # every map all kept or all dropped
    dropped = maps[:, :, 0]
    _assert_rate(dropped, rate)
    _assert_scaled(x, out, 1 - rate)
    _assert_mean_kept(x, out, rate, unit=16)
    assert len({row.tobytes() for row in dropped}) >= 240  # examples draw their own channel masks
    assert len({col.tobytes() for col in dropped.T}) == 32  # channels draw their own example masks


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("rate", [0.2, 0.7])
def test_drop_path_zeroes_whole_examples_at_rate(backend: str, rate: float) -> None:
    """Constant drop-path: each of 8192 examples' branch is zeroed whole with probability ``rate``."""
    x = _inputs(EXAMPLES)
    out = _forward(_single("drop_path", x.shape[1:], rate=rate), backend)(x)
    examples = (out == 0).reshape(8192, -1)
    assert np.array_equal(examples.all(axis=1), examples.any(axis=1))
    _assert_rate(examples[:, 0], rate)
    _assert_scaled(x, out, 1 - rate)
    _assert_mean_kept(x, out, rate, unit=18)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("progress", [0.0, 0.25, 0.5, 1.0])
def test_scheduled_drop_path_ramps_with_progress(backend: str, progress: float) -> None:
    """Scheduled (NASNet's ScheduledDropPath): the rate in effect is ``rate * progress``, scaling by its keep;
    at progress 0 nothing is dropped. A constant node at the same rate ignores progress."""
    rate = 0.4
    x = _inputs(EXAMPLES)
    out = _forward(_single("drop_path", x.shape[1:], rate=rate, scheduled=True), backend, progress=progress)(x)
    effective = rate * progress
    if progress == 0.0:
        np.testing.assert_array_equal(out, x)
    examples = (out == 0).reshape(8192, -1)
    assert np.array_equal(examples.all(axis=1), examples.any(axis=1))
    _assert_rate(examples[:, 0], effective)
    _assert_scaled(x, out, 1 - effective)
    constant = _forward(_single("drop_path", x.shape[1:], rate=rate), backend, progress=progress)(x)
    _assert_rate((constant == 0).reshape(8192, -1)[:, 0], rate)
    _assert_scaled(x, constant, 1 - rate)


@pytest.mark.parametrize("backend", BACKENDS)
def test_scheduled_drop_path_defaults_to_the_full_rate(backend: str) -> None:
    """Built and never told the progress (e.g. outside the training loops), a scheduled node drops at ``rate``."""
    x = _inputs(EXAMPLES)
    out = _forward(_single("drop_path", x.shape[1:], rate=0.4, scheduled=True), backend)(x)
    _assert_rate((out == 0).reshape(8192, -1)[:, 0], 0.4)
    _assert_scaled(x, out, 0.6)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("op,params", [("dropout", {}), ("dropout", {"channelwise": True}),
                                       ("drop_path", {}), ("drop_path", {"scheduled": True})],
                         ids=["dropout", "dropout2d", "drop_path", "scheduled_drop_path"])
def test_eval_mode_is_the_identity(backend: str, op: str, params: dict[str, Any]) -> None:
    """In eval mode every stochastic op returns its input unchanged, whatever the rate or progress."""
    x = _inputs((64, 4, 4, 4))
    for rate in (0.5, 1.0):
        forward = _forward(_single(op, x.shape[1:], rate=rate, **params), backend, train=False, progress=1.0)
        np.testing.assert_array_equal(forward(x), x)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("op,params", [("dropout", {}), ("dropout", {"channelwise": True}), ("drop_path", {})],
                         ids=["dropout", "dropout2d", "drop_path"])
def test_rate_one_drops_everything(backend: str, op: str, params: dict[str, Any]) -> None:
    """At rate 1 the output is all zeros (no 0 / 0 NaN), as torch's dropout and timm's drop_path give."""
    x = _inputs({"dropout": MAPS if params else ELEMENTS, "drop_path": EXAMPLES}[op])
    out = _forward(_single(op, x.shape[1:], rate=1.0, **params), backend)(x)
    np.testing.assert_array_equal(out, np.zeros_like(x))


def _masks(backend: str, seed: int, calls: int) -> list[np.ndarray]:
    """Drop masks of ``calls`` successive train-mode calls on a fresh model: jax's keys come from the build
    seed, torch's from the global generator, seeded here with ``seed``."""
    arch = _single("dropout", ELEMENTS[1:], rate=0.5)
    x = _inputs(ELEMENTS)
    torch.manual_seed(seed)
    forward = _forward(arch, backend, seed=seed)
    return [forward(x) == 0 for _ in range(calls)]


@pytest.mark.parametrize("backend", BACKENDS)
def test_masks_change_per_call_and_seed_and_repeat_per_seed(backend: str) -> None:
    """Successive calls draw new masks; another seed draws other masks; the same seed the same ones."""
    first, second = _masks(backend, 0, 2)
    assert not np.array_equal(first, second)
    again = _masks(backend, 0, 2)
    assert np.array_equal(again[0], first) and np.array_equal(again[1], second)
    assert not np.array_equal(_masks(backend, 1, 1)[0], first)


def test_jax_masks_and_progress_are_state_under_jit() -> None:
    """Under ``jax.jit`` (as the training step runs), threading the returned state draws a new mask per
    step, and a new ``Progress`` in that state changes the scheduled rate without recompiling to a constant."""
    arch = _single("drop_path", (2, 3, 3), rate=0.4, scheduled=True)
    net = jax_build(arch, seed=0)
    net.train()
    graph, params, rest = nnx.split(net, nnx.Param, ...)

    @jax.jit
    def step(rest: nnx.State, x: jax.Array) -> tuple[jax.Array, nnx.State]:
        model = nnx.merge(graph, params, rest, copy=True)
        return model(x), nnx.state(model, nnx.Not(nnx.Param))

    x = _inputs(EXAMPLES)
    out1, rest = step(with_progress(rest, 1.0), x)
    out2, rest = step(rest, x)
    drop1, drop2 = (np.stack([out1, out2]) == 0).reshape(2, 8192, -1)[:, :, 0]
    assert not np.array_equal(drop1, drop2)
    _assert_rate(drop1, 0.4)
    _assert_rate(drop2, 0.4)
    half, rest = step(with_progress(rest, 0.5), x)
    _assert_rate((np.asarray(half) == 0).reshape(8192, -1)[:, 0], 0.2)
    _assert_scaled(x, np.asarray(half), 0.8)
    none, _ = step(with_progress(rest, 0.0), x)
    np.testing.assert_array_equal(np.asarray(none), x)


def test_jax_training_loop_sets_progress_to_step_over_total(monkeypatch: pytest.MonkeyPatch) -> None:
    """The JAX loop hands scheduled drop-path ``step / total`` before each step (as the torch loop does)."""
    jax_train = importlib.import_module("nas.backends.jax.train")  # the package re-exports a ``train`` function

    seen: list[float] = []

    def recording(rest: nnx.State, progress: float) -> nnx.State:
        seen.append(progress)
        return with_progress(rest, progress)

    monkeypatch.setattr(jax_train, "with_progress", recording)
    g = GraphBuilder()
    x = g.input((2, 4, 4))
    y = g.add("drop_path", g.add("conv2d", x, out_channels=4, kernel=1), rate=0.5, scheduled=True)
    arch = g.build({"logits": g.add("linear", g.add("global_avg_pool", y), out_features=2)})
    rng = np.random.default_rng(0)
    split = [rng.standard_normal((n, 2, 4, 4)).astype(np.float32) for n in (32, 8, 8)]
    labels = [rng.integers(0, 2, n) for n in (32, 8, 8)]
    data = ArrayDataset("random", split[0], labels[0], split[1], labels[1], split[2], labels[2], 2)
    jax_train.train(arch, data, TrainConfig(epochs=2, batch_size=8, lr=0.01, seed=0))
    assert seen == pytest.approx([step / 8 for step in range(8)])
