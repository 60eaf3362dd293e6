"""Train and evaluate a Flax NNX network on an ``ArrayDataset``: the JAX twin of the torch loop.

Same recipe and metrics as ``nas.backends.torch.train``: SGD with Nesterov momentum (optax), weight
decay only on weights with ``ndim > 1``, a per-step cosine learning rate, the shared batching helper.
The train step and the evaluation are compiled once each with ``jax.jit`` over split NNX state; the
train step is compiled before the clock starts, so ``steps_per_second`` is the steady-state rate.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Callable, Collection
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

from nas.backends.jax.builder import JaxNetwork, build
from nas.backends.jax.ops import BatchNorm, Progress
from nas.backends.training import (
    BN_CALIBRATION_IMAGES,
    MAIN_HEAD,
    Pruned,
    Reporter,
    TrainConfig,
    bn_stats_stale,
    check_loss,
    epoch_batches,
    learning_rate,
    steps_per_epoch,
)
from nas.core.errors import UserError
from nas.core.ir import AUX_CLASSIFIER, ArchSpec
from nas.data.base import ArrayDataset


def make_optimizer(config: TrainConfig, per_epoch: int) -> optax.GradientTransformation:
    """The recipe's optimiser as torch applies it: L2 decay added to the gradient of ``ndim > 1`` weights
    (decoupled for AdamW), global-norm clipping, the learning rate of ``learning_rate`` at each update
    (looked up in a table of every step's rate, so both backends follow the same schedule)."""
    total = per_epoch * config.epochs
    table = jnp.asarray([learning_rate(config, step, per_epoch) for step in range(max(total, 1))], jnp.float32)

    def schedule(count: jax.Array) -> jax.Array:
        return table[jnp.minimum(count, table.shape[0] - 1)]

    def decay_mask(params: Any) -> Any:
        return jax.tree.map(lambda p: p.ndim > 1, params)

    clip = [optax.clip_by_global_norm(config.grad_clip)] if config.grad_clip else []
    if config.optimizer == "adamw":
        return optax.chain(*clip, optax.adamw(schedule, weight_decay=config.weight_decay, mask=decay_mask))
    decay = optax.add_decayed_weights(config.weight_decay, mask=decay_mask)
    if config.optimizer == "adadelta":
        return optax.chain(*clip, decay, optax.adadelta(schedule, rho=0.9, eps=1e-3))
    return optax.chain(*clip, decay, optax.sgd(schedule, momentum=config.momentum or None,
                                               nesterov=config.nesterov and config.momentum > 0))


def main_output(out: jax.Array | dict[str, jax.Array]) -> jax.Array:
    """The main head of a network's output (the array itself for single-head networks)."""
    return out[MAIN_HEAD] if isinstance(out, dict) else out


def loss_of(out: jax.Array | dict[str, jax.Array], y: jax.Array, aux_weight: float,
            label_smoothing: float = 0.0, aux_heads: Collection[str] = ()) -> jax.Array:
    """Cross-entropy of the main head plus ``aux_weight`` times that of each head in ``aux_heads`` (the
    arch's ``aux_classifier`` heads; other heads add nothing), labels smoothed as torch's
    ``label_smoothing`` does."""
    def ce(logits: jax.Array) -> jax.Array:
        if not label_smoothing:
            return optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()
        target = optax.smooth_labels(jax.nn.one_hot(y, logits.shape[-1]), label_smoothing)
        return optax.softmax_cross_entropy(logits, target).mean()

    if not isinstance(out, dict):
        return ce(out)
    return ce(out[MAIN_HEAD]) + sum(aux_weight * ce(out[head]) for head in aux_heads)


def with_progress(rest: nnx.State, progress: float) -> nnx.State:
    """``rest`` with every drop-path ``Progress`` variable set to ``progress`` (read only by scheduled
    drop-path nodes; constant ones ignore it)."""
    value = jnp.asarray(min(1.0, max(0.0, progress)), jnp.float32)
    return jax.tree.map(lambda v: v.replace(value) if isinstance(v, Progress) else v, rest,
                        is_leaf=lambda v: isinstance(v, nnx.Variable))


def make_steps(model: JaxNetwork, tx: optax.GradientTransformation, aux_weight: float = 0.4,
               label_smoothing: float = 0.0) -> tuple[Callable, Callable]:
    """Compiled ``train_step(params, rest, opt_state, x, y) -> (params, rest, opt_state, loss)`` and
    ``predict(params, rest, x) -> logits`` (eval mode), over the state of ``model``; the loss weighs the
    ``aux_classifier`` heads of ``model.arch``."""
    aux_heads = model.arch.heads_with_role(AUX_CLASSIFIER)
    model.train()
    train_def = nnx.graphdef(model)
    model.eval()
    eval_def = nnx.graphdef(model)
    model.train()

    def loss_fn(params: nnx.State, rest: nnx.State, x: jax.Array, y: jax.Array) -> tuple[jax.Array, Any]:
        net = nnx.merge(train_def, params, rest, copy=True)
        loss = loss_of(net(x), y, aux_weight, label_smoothing, aux_heads)
        return loss, nnx.state(net, nnx.Not(nnx.Param))

    @jax.jit
    def train_step(params, rest, opt_state, x, y):
        (loss, rest), grads = jax.value_and_grad(loss_fn, has_aux=True)(params, rest, x, y)
        updates, opt_state = tx.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), rest, opt_state, loss

    @jax.jit
    def predict(params, rest, x):
        return main_output(nnx.merge(eval_def, params, rest)(x))

    return train_step, predict


def make_bn_calibration(model: JaxNetwork) -> Callable[[nnx.State, nnx.State, np.ndarray, int, int], nnx.State]:
    """``calibrate(params, rest, train_x, steps, batch_size)``: ``rest`` with the BN running statistics
    recomputed on the first training images when ``bn_stats_stale`` says the running ones still hold their
    initial values (as torch's ``update_bn`` does in the torch loop: statistics reset, then a cumulative average
    over train-mode forward passes), ``rest`` itself otherwise. Built once per training, so its forward pass is
    compiled once, not at every evaluation."""
    norms = [m for _, m in nnx.iter_modules(model) if isinstance(m, BatchNorm)]
    momenta = [m.momentum for m in norms]
    for m in norms:
        m.momentum = None  # cumulative average: every calibration batch weighs the same
    model.train()
    calibration_def = nnx.graphdef(model)
    for m, momentum in zip(norms, momenta):
        m.momentum = momentum

    @jax.jit
    def forward(params: nnx.State, rest: nnx.State, x: jax.Array) -> nnx.State:
        net = nnx.merge(calibration_def, params, rest, copy=True)
        net(x)
        return nnx.state(net, nnx.Not(nnx.Param))

    def calibrate(params: nnx.State, rest: nnx.State, train_x: np.ndarray, steps: int,
                  batch_size: int) -> nnx.State:
        if not bn_stats_stale(momenta, steps):
            return rest
        net = nnx.merge(calibration_def, params, rest, copy=True)
        for _, m in nnx.iter_modules(net):
            if isinstance(m, BatchNorm):
                m.running_mean[...] = jnp.zeros_like(m.running_mean[...])
                m.running_var[...] = jnp.ones_like(m.running_var[...])
                m.num_batches_tracked[...] = jnp.zeros_like(m.num_batches_tracked[...])
        state = nnx.state(net, nnx.Not(nnx.Param))
        images = train_x[:BN_CALIBRATION_IMAGES]
        for i in range(0, len(images), batch_size):
            state = forward(params, state, jnp.asarray(images[i:i + batch_size]))
        return state

    return calibrate


def accuracy(predict: Callable, params: nnx.State, rest: nnx.State, x: np.ndarray, y: np.ndarray,
             batch_size: int) -> float:
    """Top-1 accuracy in percent. Batches are zero-padded to ``batch_size`` (or, for a smaller split,
    to the next power of two) so that few shapes get compiled."""
    size = min(batch_size, 1 << max(len(x) - 1, 0).bit_length())
    correct = 0
    for i in range(0, len(x), size):
        xb = x[i:i + size]
        n = len(xb)
        if n < size:
            xb = np.concatenate([xb, np.zeros((size - n, *xb.shape[1:]), xb.dtype)])
        pred = np.asarray(jnp.argmax(predict(params, rest, jnp.asarray(xb)), axis=1))[:n]
        correct += int((pred == y[i:i + n]).sum())
    return 100.0 * correct / max(len(x), 1)


def jax_device(name: str) -> jax.Device:
    """The JAX device of a torch-style name (``cpu``, ``cuda``, ``cuda:1``, ``gpu``); a clear error if absent."""
    platform, _, index = name.strip().lower().partition(":")
    platform = "gpu" if platform == "cuda" else platform
    try:
        devices = jax.devices(platform)
    except RuntimeError:
        raise UserError(f"device {name!r}: JAX has no {platform} backend here "
                        f"(available: {', '.join(sorted({d.platform for d in jax.devices()}))})") from None
    if index and not (index.isdigit() and int(index) < len(devices)):
        raise UserError(f"device {name!r}: JAX sees {len(devices)} {platform} device(s)")
    return devices[int(index or 0)]


def train(arch: ArchSpec, data: ArrayDataset, config: TrainConfig, report: Reporter | None = None,
          device: str | None = None, model: JaxNetwork | None = None) -> dict[str, float]:
    """Train from scratch under ``config.seed``; per-epoch validation accuracy goes to ``report``.

    Returns the final ``valid_accuracy``, ``test_accuracy``, ``train_loss`` and ``steps_per_second``;
    raises ``Pruned`` when the reporter asks to stop. ``device`` is a JAX platform ("cpu", "gpu"; "cuda" and
    "cuda:N" as in torch). ``model``, when given, is the network to train (built under the seed otherwise);
    it holds the trained state afterwards.
    """
    place = jax.default_device(jax_device(device)) if device else contextlib.nullcontext()
    with place:
        return _train(arch, data, config, report, model)


def _train(arch: ArchSpec, data: ArrayDataset, config: TrainConfig, report: Reporter | None,
           model: JaxNetwork | None) -> dict[str, float]:
    model = model if model is not None else build(arch, seed=config.seed)
    rng = np.random.default_rng(config.seed)
    limit = config.max_steps_per_epoch
    per_epoch = steps_per_epoch(len(data.train_x), config)
    tx = make_optimizer(config, per_epoch)
    train_step, predict = make_steps(model, tx, config.aux_weight, config.label_smoothing)
    calibrate = make_bn_calibration(model)
    total = per_epoch * config.epochs
    has_drop_path = any(n.op == "drop_path" and n.p["scheduled"] for n in arch.nodes)
    augment = _torch_augment(config, data)
    params, rest = nnx.state(model, nnx.Param), nnx.state(model, nnx.Not(nnx.Param))
    opt_state = tx.init(params)
    shape = (min(config.batch_size, len(data.train_x)), *data.train_x.shape[1:])
    train_step = train_step.lower(params, rest, opt_state, jnp.zeros(shape, jnp.float32),
                                  jnp.zeros(shape[:1], jnp.int32)).compile()
    step, train_seconds = 0, 0.0
    metrics: dict[str, float] = {}
    for epoch in range(1, config.epochs + 1):
        start = time.perf_counter()
        losses = []
        for idx in epoch_batches(len(data.train_x), config.batch_size, rng, limit):
            xb = data.train_x[idx] if augment is None else augment(data.train_x[idx])
            xb, yb = jnp.asarray(xb), jnp.asarray(data.train_y[idx].astype(np.int32))
            if has_drop_path:
                rest = with_progress(rest, step / max(total, 1))
            params, rest, opt_state, loss = train_step(params, rest, opt_state, xb, yb)
            losses.append(loss)
            step += 1
        loss_mean = float(jnp.mean(jnp.stack(losses))) if losses else 0.0
        if not math.isfinite(loss_mean):  # find the first step that diverged (the mean is NaN or inf)
            values = np.asarray(jnp.stack(losses))
            first = int(np.argmax(~np.isfinite(values)))
            check_loss(float(values[first]), epoch, step - len(losses) + first)
        train_seconds += time.perf_counter() - start
        rest = calibrate(params, rest, data.train_x, step, config.eval_batch_size)
        metrics = {"train_loss": loss_mean,
                   "valid_accuracy": accuracy(predict, params, rest, data.valid_x, data.valid_y,
                                              config.eval_batch_size)}
        if report is not None and report(epoch, dict(metrics)):
            raise Pruned(epoch, metrics)
    metrics["test_accuracy"] = accuracy(predict, params, rest, data.test_x, data.test_y,
                                        config.eval_batch_size)
    metrics["steps_per_second"] = step / max(train_seconds, 1e-9)
    nnx.update(model, params, rest)
    return metrics


def _torch_augment(config: TrainConfig, data: ArrayDataset) -> Callable[[np.ndarray], np.ndarray] | None:
    """The recipe's augmentation for the JAX loop: the same kornia ops on the CPU (torch's generator, seeded
    with the recipe's seed), between the numpy batch and the device."""
    if not config.augment.active:
        return None
    import torch

    from nas.backends.torch.augment import BatchAugment

    torch.manual_seed(config.seed)
    ops = BatchAugment(config.augment, data.train_x)
    return lambda x: ops(torch.from_numpy(x)).numpy()
