"""The FBNetV5 multitask search: one supernet, one mask per step, every task's loss from one forward pass.

``MultitaskSearch.step`` is the algorithm (see ``estimator`` for the distributions and their maths):
draw a mask a from the proposal, run the supernet once for all heads, update the shared weights with
sum_t gamma_t r_t l_t (Adam), then, after the warm-up, update every task's logits by REINFORCE with its
cost c_t = l_t + lambda_t macs_t(a) / macs_t(all kept). The REINFORCE signal is the training-batch loss
of the forward pass just made (before the weight update), so a step costs one forward and one backward
pass whatever the number of tasks. ``naive_step`` is the baseline the benchmark compares with: one
mask from each task's own distribution and one forward/backward pass per task.

Also here: the batches (images with every task's labels), the task losses of the heads, and the short
single-task training and evaluation of a found architecture.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

from nas.backends.torch.device import torch_device
from nas.backends.torch.supernets.fbnetv5 import CHANNELS_LAST, MaskCost, Supernet, heads_of
from nas.core.ir import ArchSpec
from nas.data.multitask import MultitaskData, MultitaskSplit
from nas.evaluators.metrics import accuracy, coco_map, confusion_matrix, miou_from_confusion
from nas.searchers.fbnetv5 import _tasks as T
from nas.searchers.fbnetv5._estimator import TaskDistributions
from nas.spaces.fbnet.plan import Plan

METRIC = {"classification": "valid_accuracy", "segmentation": "valid_miou", "detection": "valid_map"}
SHORT = {"classification": "cls", "segmentation": "seg", "detection": "det"}


@dataclass
class SearchConfig:
    """Hyperparameters of the search (every value is ours: the paper's are unknown)."""

    steps: int = 300
    warmup: int = 80
    batch_size: int = 32
    lr: float = 2e-3
    weight_decay: float = 1e-4
    theta_lr: float = 0.05
    uniform_mix: float = 0.1
    baseline_decay: float = 0.9
    gamma: Mapping[str, float] = field(default_factory=dict)
    flops_weight: Mapping[str, float] = field(default_factory=dict)
    seed: int = 0
    device: str = "cpu"
    sandwich: bool = False


def levels_of(plan: Plan, size: int) -> list[T.Level]:
    """Detection levels (stride, h, w) from the plan's ``det.l*.cls`` outputs, finest first."""
    levels = []
    for head, (unit, out) in plan.outputs.items():
        if head.startswith("det.") and head.endswith(".cls"):
            _, h, w = plan.unit(unit).kept.output_shapes[out]
            levels.append(T.Level(size // h, h, w))
    return sorted(levels, key=lambda lv: lv.stride)


def det_outputs(out: Mapping[str, torch.Tensor], levels: Sequence[T.Level]) -> list[tuple[torch.Tensor, ...]]:
    """The per-level (class, box, centerness) tensors of the detection head, finest level first."""
    names = sorted({h.rsplit(".", 1)[0] for h in out if h.startswith("det.")}, key=lambda n: int(n[5:]))
    if len(names) != len(levels):
        raise ValueError(f"detection head has levels {names}, expected {len(levels)}")
    return [(out[f"{n}.cls"], out[f"{n}.box"], out[f"{n}.ctr"]) for n in names]


def adamw(params: Iterable[torch.nn.Parameter], lr: float, weight_decay: float) -> torch.optim.AdamW:
    """AdamW with torch's fused kernel (one pass over all tensors: 3x faster than ``foreach`` on the CPU for the
    A-size supernet, measured), or ``foreach`` where this torch has no fused kernel for the device."""
    params = list(params)
    try:
        return torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay, fused=True)
    except (RuntimeError, ValueError):
        return torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay, foreach=True)


@dataclass(frozen=True)
class Batch:
    images: torch.Tensor
    labels: torch.Tensor
    masks: torch.Tensor
    targets: T.DetectionTargets | None  # None when no task detects


class Batches:
    """A split as tensors on ``device`` with its FCOS targets (for ``levels``, if any) computed once; ``take``
    gives a ``Batch`` (the whole split is moved once, so a step copies nothing from the host)."""

    def __init__(self, split: MultitaskSplit, levels: Sequence[T.Level], device: str | torch.device = "cpu") -> None:
        self.split = split
        self.device = torch.device(device)
        self.images = torch.from_numpy(split.images).to(self.device)
        self.labels = torch.from_numpy(split.labels).to(self.device)
        self.masks = torch.from_numpy(split.masks).to(self.device)
        per_image = [split.boxes_of(i) for i in range(len(split))] if levels else []
        targets = T.fcos_targets([b for b, _ in per_image], [c for _, c in per_image], levels) if levels else None
        self.targets = targets.to(self.device) if targets else None

    def __len__(self) -> int:
        return len(self.split)

    def take(self, index: np.ndarray) -> Batch:
        i = torch.from_numpy(np.asarray(index, dtype=np.int64)).to(self.device)
        return Batch(self.images[i], self.labels[i], self.masks[i], self.targets.take(i) if self.targets else None)


def task_loss(task: str, out: Mapping[str, torch.Tensor], batch: Batch, levels: Sequence[T.Level]) -> torch.Tensor:
    """The loss of one task's head outputs on a batch."""
    if task == "classification":
        return T.classification_loss(out["logits"], batch.labels)
    if task == "segmentation":
        return T.segmentation_loss(out["seg"], batch.masks)
    return T.detection_loss(det_outputs(out, levels), [lv.stride for lv in levels], batch.targets)


class MultitaskSearch:
    """Supernet, optimiser and per-task distributions of one search, stepped by ``step`` (or ``naive_step``)."""

    def __init__(self, plan: Plan, data: MultitaskData, tasks: Sequence[str], config: SearchConfig) -> None:
        self.plan, self.tasks, self.config = plan, tuple(tasks), config
        self.size = int(plan.input_shape[1])
        self.levels = levels_of(plan, self.size) if "detection" in tasks else []
        self.heads = {t: heads_of(plan, t) for t in self.tasks}
        self.all_heads = tuple(h for t in self.tasks for h in self.heads[t])
        self.device = torch_device(config.device)
        self.supernet = Supernet(plan, seed=config.seed).to(self.device)
        for module in self.supernet.kept.values():
            T.set_class_prior(module)
        self.optimizer = adamw(self.supernet.parameters(), lr=config.lr, weight_decay=config.weight_decay)
        self.cost = MaskCost(plan, self.tasks)
        self.dists = TaskDistributions(self.tasks, len(plan.decisions), config.theta_lr, config.uniform_mix,
                                       config.baseline_decay, relevant=self.cost.reach)
        self.macs_ref = self.cost.full()
        self.gamma = torch.tensor([float(config.gamma.get(t, 1.0)) for t in self.tasks], device=self.device)
        self.flops_weight = torch.tensor([float(config.flops_weight.get(t, 0.0)) for t in self.tasks],
                                         dtype=torch.float64)
        self.batches = Batches(data.train, self.levels, self.device)
        self.rng = np.random.default_rng(config.seed)
        self.generator = torch.Generator().manual_seed(config.seed)
        self.step_count = 0

    def _batch(self) -> Batch:
        return self.batches.take(self.rng.choice(len(self.batches), self.config.batch_size, replace=False))

    def _train_mode(self) -> None:
        """Train mode for the supernet, walking its modules only when something switched it (3-5 ms a walk)."""
        if not self.supernet.training:
            self.supernet.train()

    def _lr(self) -> float:
        """Cosine decay of the weights' learning rate over the whole search."""
        return float(0.5 * self.config.lr * (1 + np.cos(np.pi * self.step_count / self.config.steps)))

    def costs(self, losses: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """c_t = l_t + lambda_t * macs_t(mask) / macs_t(all blocks kept)."""
        return (losses.double() + self.flops_weight * self.cost.macs(mask) / self.macs_ref).float()

    def step(self) -> dict[str, float]:
        """One search step (one forward and backward pass for all tasks); returns losses and weights."""
        warm = self.step_count < self.config.warmup
        batch = self._batch()
        mask = self.dists.sample(self.generator, warm)
        weights = self.dists.weights(mask, warm)
        self._train_mode()
        out = self.supernet(batch.images, mask, self.all_heads)
        losses = torch.stack([task_loss(t, out, batch, self.levels) for t in self.tasks])
        for group in self.optimizer.param_groups:
            group["lr"] = self._lr()
        self.optimizer.zero_grad(set_to_none=True)
        (self.gamma * weights.to(self.device) * losses).sum().backward()
        if self.config.sandwich:
            self._sandwich(batch)
        self.optimizer.step()
        losses = losses.detach().cpu()
        if not warm:
            self.dists.reinforce(mask, self.costs(losses, mask), weights)
        self.step_count += 1
        return {**{t: float(v) for t, v in zip(self.tasks, losses)},
                **{f"r_{t}": float(v) for t, v in zip(self.tasks, weights)}}

    def _sandwich(self, batch: Batch) -> None:
        """The sandwich rule (BigNAS, once-for-all): add the gradients of the largest (every block kept) and the
        smallest (every block skipped) network on the same batch, so that the extremes of the space, which
        uniform masks rarely draw, train as much as the middle. Costs two more forward/backward passes a step;
        the REINFORCE signal still comes from the sampled mask alone."""
        for keep in (1.0, 0.0):
            mask = torch.full((len(self.plan.decisions),), keep)
            out = self.supernet(batch.images, mask, self.all_heads)
            (self.gamma * torch.stack([task_loss(t, out, batch, self.levels) for t in self.tasks])).sum().backward()

    def naive_step(self) -> dict[str, float]:
        """The per-task baseline: each task draws its own mask and runs its own forward/backward pass."""
        warm = self.step_count < self.config.warmup
        batch = self._batch()
        self._train_mode()
        self.optimizer.zero_grad(set_to_none=True)
        losses = []
        for t, task in enumerate(self.tasks):
            probs = torch.full_like(self.dists.probs[t], 0.5) if warm else self.dists.probs[t]
            mask = (torch.rand(len(probs), generator=self.generator) < probs).float()
            out = self.supernet(batch.images, mask, self.heads[task])
            loss = task_loss(task, out, batch, self.levels)
            (self.gamma[t] * loss).backward()
            losses.append(float(loss.detach()))
        self.optimizer.step()
        self.step_count += 1
        return dict(zip(self.tasks, losses))

    def run(self, log: Callable[[str], None] | None = None, every: int = 20,
            checkpoint: Callable[[], None] | None = None, checkpoint_every: int = 50) -> None:
        """Step to ``config.steps``, logging every ``every`` steps and checkpointing every ``checkpoint_every``."""
        start, first = time.perf_counter(), self.step_count
        while self.step_count < self.config.steps:
            got = self.step()
            done = self.step_count
            if log and (done % every == 0 or done == self.config.steps):
                rate = (time.perf_counter() - start) / max(done - first, 1)
                phase = "warm-up" if done <= self.config.warmup else "search"
                losses = " ".join(f"{SHORT[t]} {got[t]:.3f}" for t in self.tasks)
                keep = " ".join(f"{SHORT[t]} {float(p.mean()):.2f}" for t, p in zip(self.tasks, self.dists.probs))
                log(f"fbnetv5 step {done}/{self.config.steps} {phase} | loss {losses} | mean keep {keep} | "
                    f"{rate:.2f} s/step, ETA {rate * (self.config.steps - done):.0f} s")
            if checkpoint and done % checkpoint_every == 0:
                checkpoint()

    def state_dict(self) -> dict[str, object]:
        return {"supernet": self.supernet.state_dict(), "optimizer": self.optimizer.state_dict(),
                "dists": self.dists.state_dict(), "step": self.step_count, "generator": self.generator.get_state(),
                "rng": self.rng.bit_generator.state}

    def load_state_dict(self, state: Mapping[str, object]) -> None:
        self.supernet.load_state_dict(state["supernet"])  # type: ignore[arg-type]
        self.optimizer.load_state_dict(state["optimizer"])  # type: ignore[arg-type]
        self.dists.load_state_dict(state["dists"])  # type: ignore[arg-type]
        self.step_count = int(state["step"])  # type: ignore[arg-type]
        self.generator.set_state(state["generator"])  # type: ignore[arg-type]
        self.rng.bit_generator.state = state["rng"]


# --- short single-task training of a found (or random) architecture ---------------------------------


def _as_dict(arch: ArchSpec, out: torch.Tensor | dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return out if isinstance(out, dict) else {arch.outputs[0][0]: out}


def evaluate(model: torch.nn.Module, arch: ArchSpec, task: str, batches: Batches, levels: Sequence[T.Level],
             num_classes: int, batch_size: int = 128) -> dict[str, float]:
    """The task's validation metrics in percent: accuracy, mIoU (with background) or COCO mAP."""
    model.eval()
    split = batches.split
    predicted, confusion, found = [], np.zeros((num_classes + 1,) * 2, dtype=np.int64), []
    size = tuple(split.masks.shape[1:])
    with torch.no_grad():
        for start in range(0, len(batches), batch_size):
            batch = batches.take(np.arange(start, min(start + batch_size, len(batches))))
            out = _as_dict(arch, model(batch.images.contiguous(memory_format=CHANNELS_LAST)))
            out = {name: value.cpu() for name, value in out.items()}
            if task == "classification":
                predicted.append(out["logits"].argmax(1).numpy())
            elif task == "segmentation":
                pred = T.segmentation_predict(out["seg"], size).numpy()
                confusion += confusion_matrix(pred, batch.masks.cpu().numpy(), num_classes + 1)
            else:
                found.extend(T.decode_detections(det_outputs(out, levels), levels, size))
    if task == "classification":
        return {"valid_accuracy": 100.0 * accuracy(np.concatenate(predicted), split.labels)}
    if task == "segmentation":
        return {"valid_miou": 100.0 * miou_from_confusion(confusion)}
    truth = [split.boxes_of(i) for i in range(len(split))]
    scores = coco_map(found, truth, num_classes, size)
    return {"valid_map": 100.0 * scores["map"], "valid_map50": 100.0 * scores["map50"]}


def train_task(arch: ArchSpec, task: str, data: MultitaskData, steps: int, batch_size: int, lr: float,
               seed: int, device: str = "cpu") -> dict[str, float]:
    """Train ``arch`` from scratch on one task for ``steps`` (AdamW, cosine) on ``device``, then its validation
    metrics."""
    from nas.backends.torch import build
    from nas.backends.torch.train import calibrate_stale_bn

    size = data.input_shape[1]
    levels = []
    if task == "detection":
        levels = sorted((T.Level(size // shape[1], shape[1], shape[2]) for head, shape in arch.output_shapes.items()
                         if head.endswith(".cls")), key=lambda lv: lv.stride)
    torch.manual_seed(seed)
    where = torch_device(device)
    model = build(arch, seed=seed).to(where, memory_format=CHANNELS_LAST)
    T.set_class_prior(model)
    optimizer = adamw(model.parameters(), lr=lr, weight_decay=1e-4)
    train = Batches(data.train, levels, where)
    rng = np.random.default_rng(seed)
    start = time.perf_counter()
    model.train()
    for step in range(steps):
        for group in optimizer.param_groups:
            group["lr"] = 0.5 * lr * (1 + np.cos(np.pi * step / steps))
        batch = train.take(rng.choice(len(train), batch_size, replace=False))
        loss = task_loss(task, _as_dict(arch, model(batch.images.contiguous(memory_format=CHANNELS_LAST))), batch,
                         levels)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    # FBNet's BN momentum (0.003) leaves the running statistics near 0 / 1 after a short training
    calibrate_stale_bn(model, data.train.images, steps, batch_size, where)
    if where.type == "cuda":
        torch.cuda.synchronize(where)
    seconds = time.perf_counter() - start
    metrics = evaluate(model, arch, task, Batches(data.valid, levels, where), levels, data.num_classes)
    metrics.update(train_seconds=seconds, train_loss=float(loss.detach()))
    return metrics
