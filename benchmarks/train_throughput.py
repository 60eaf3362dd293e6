"""Training throughput of the ``train`` evaluator vs a minimal hand-written PyTorch loop, and JAX vs torch.

One NB201 candidate, the same data (digits upsampled to 32x32), the same batch size and steps.
Printed: steps/s of each, measured alternately over several rounds (medians), and the ratios
ours/hand-written (goal >= 0.95) and jax/torch.

    python benchmarks/train_throughput.py --rounds 3 --steps 40
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import torch
from torch import nn

import nas
from nas.backends import get_backend
from nas.backends.training import TrainConfig
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


def ours(backend: str, arch, data, steps: int, batch: int, seed: int) -> float:
    """The train evaluator's loop for exactly ``steps`` steps (one epoch capped at ``steps``)."""
    train = get_backend(backend).train
    config = TrainConfig(epochs=1, batch_size=batch, lr=0.05, seed=seed, max_steps_per_epoch=steps)
    return train(arch, data, config)["steps_per_second"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--no-jax", action="store_true")
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
    rows: dict[str, list[float]] = {"hand-written torch": [], "nas train (torch)": [], "nas train (jax)": []}
    for r in range(args.rounds):
        rows["hand-written torch"].append(hand_written(arch, data, args.steps, args.batch, r))
        rows["nas train (torch)"].append(ours("torch", arch, data, args.steps, args.batch, r))
        if not args.no_jax:
            rows["nas train (jax)"].append(ours("jax", arch, data, args.steps, args.batch, r))
    med = {k: statistics.median(v) for k, v in rows.items() if v}
    for name, value in med.items():
        print(f"{name:<22} {value:8.2f} steps/s   (rounds: {', '.join(f'{v:.2f}' for v in rows[name])})")
    ratio = med["nas train (torch)"] / med["hand-written torch"]
    print(f"ratio ours/hand-written (torch): {ratio:.3f} (goal >= 0.95)")
    if "nas train (jax)" in med:
        print(f"ratio jax/torch (nas train):     {med['nas train (jax)'] / med['nas train (torch)']:.3f}")


if __name__ == "__main__":
    main()
