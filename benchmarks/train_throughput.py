"""Training throughput of the ``train`` evaluator vs a minimal hand-written PyTorch loop, and JAX vs torch.

One NB201 candidate, the same data (digits upsampled to 32x32), the same batch size and steps.
Printed: steps/s of each, measured alternately over several rounds (medians), and the ratios
ours/hand-written (goal >= 0.95), jax/torch, and augmented/plain: the CIFAR recipes' kornia batch
augmentation (pad-4 crop, flip, cutout 16) on vs off, whose cost must stay <= 15% of a step.

    python benchmarks/train_throughput.py --rounds 3 --steps 40 --json runs/train_throughput.json
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

import nas
from nas.backends import get_backend
from nas.backends.training import Augment, TrainConfig
from nas.data import load_dataset

CELL = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_1x1~2|"


def hand_written(arch, data, steps: int, batch: int, seed: int) -> float:
    """The loop a researcher writes by hand: SGD, cross-entropy, fixed batches. Returns steps/s."""
    from nas.backends.torch import build

    torch.manual_seed(seed)
    model = build(arch, seed=seed).train()
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, nesterov=True, weight_decay=5e-4)
    x, y = torch.from_numpy(data.train_x), torch.from_numpy(data.train_y)
    rng = np.random.default_rng(seed)
    per_epoch = len(x) // batch
    start = time.perf_counter()
    for step in range(steps):
        if step % per_epoch == 0:
            order = torch.from_numpy(rng.permutation(len(x)))
        idx = order[(step % per_epoch) * batch:(step % per_epoch + 1) * batch]
        loss = nn.functional.cross_entropy(model(x[idx]), y[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
    return steps / (time.perf_counter() - start)


CIFAR_AUGMENT = Augment(crop_padding=4, flip=True, cutout=16)


def ours(backend: str, arch, data, steps: int, batch: int, seed: int, augment: Augment | None = None) -> float:
    """The train evaluator's loop for exactly ``steps`` steps (one epoch capped at ``steps``)."""
    train = get_backend(backend).train
    config = TrainConfig(epochs=1, batch_size=batch, lr=0.05, seed=seed, max_steps_per_epoch=steps,
                         augment=augment or Augment())
    return train(arch, data, config)["steps_per_second"]


def augmentation_seconds(data, batch: int, calls: int = 20) -> float:
    """Seconds per call of the CIFAR recipes' kornia augmentation on one training batch (median)."""
    from nas.backends.torch.augment import BatchAugment

    ops = BatchAugment(CIFAR_AUGMENT, data.train_x)
    x = torch.from_numpy(data.train_x[:batch])
    ops(x)
    times = []
    for _ in range(calls):
        start = time.perf_counter()
        ops(x)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--no-jax", action="store_true")
    parser.add_argument("--json", type=Path, default=None, help="write the figures here")
    args = parser.parse_args()
    data = load_dataset("digits", resolution=32)
    space = nas.space("nb201", num_classes=10, input_shape=list(data.input_shape))
    arch = space.decode(space.parse(CELL))
    print(f"NB201 cell {CELL}\n{nas.cost(space.parse(CELL))}, batch {args.batch}, {args.steps} steps, "
          f"{torch.get_num_threads()} torch threads")
    ours("torch", arch, data, 5, args.batch, 0)  # warm-up (allocator, kernels)
    hand_written(arch, data, 5, args.batch, 0)
    if not args.no_jax:
        ours("jax", arch, data, args.steps, args.batch, 0)  # compile once
    rows: dict[str, list[float]] = {"hand-written torch": [], "nas train (torch)": [],
                                    "nas train (torch, augmented)": [], "nas train (jax)": []}
    for r in range(args.rounds):
        rows["hand-written torch"].append(hand_written(arch, data, args.steps, args.batch, r))
        rows["nas train (torch)"].append(ours("torch", arch, data, args.steps, args.batch, r))
        rows["nas train (torch, augmented)"].append(ours("torch", arch, data, args.steps, args.batch, r,
                                                         CIFAR_AUGMENT))
        if not args.no_jax:
            rows["nas train (jax)"].append(ours("jax", arch, data, args.steps, args.batch, r))
    med = {k: statistics.median(v) for k, v in rows.items() if v}
    for name, value in med.items():
        print(f"{name:<30} {value:8.2f} steps/s   (rounds: {', '.join(f'{v:.2f}' for v in rows[name])})")
    figures = {"steps_per_second": med, "ours_over_hand_written": med["nas train (torch)"] / med["hand-written torch"]}
    print(f"ratio ours/hand-written (torch): {figures['ours_over_hand_written']:.3f} (goal >= 0.95)")
    paired = [a / b for a, b in zip(rows["nas train (torch, augmented)"], rows["nas train (torch)"])]
    figures["augmented_over_plain"] = statistics.median(paired)
    figures["augmentation_cost"] = 1.0 - figures["augmented_over_plain"]
    print(f"ratio augmented/plain (torch):   {figures['augmented_over_plain']:.3f} per round, median: "
          f"augmentation costs {100 * figures['augmentation_cost']:.1f}% of a step (goal <= 15%)")
    aug = augmentation_seconds(data, args.batch)
    figures["augmentation_seconds"] = aug
    figures["augmentation_share_of_step"] = aug * med["nas train (torch)"]
    print(f"augmentation alone: {1000 * aug:.2f} ms per batch = {100 * figures['augmentation_share_of_step']:.2f}% "
          "of a plain step (median step time)")
    if "nas train (jax)" in med:
        figures["jax_over_torch"] = med["nas train (jax)"] / med["nas train (torch)"]
        print(f"ratio jax/torch (nas train):     {figures['jax_over_torch']:.3f}")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({**figures, "rounds": rows, "batch": args.batch, "steps": args.steps},
                                        indent=2) + "\n")
        print(f"-> {args.json}")


if __name__ == "__main__":
    main()
