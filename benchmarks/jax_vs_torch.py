"""JAX vs torch on this machine: train-step throughput per space, compilation per new architecture, supernets.

1. ``train_ratio_<space>``: steps/s of the ``train`` evaluator's loop with the JAX backend over the torch backend,
   the same architecture (``sample(0)`` of NB201 default, NASNet small, HyTra cpu), the same batch, the same
   number of steps, measured alternately over ``--rounds`` (medians; JAX's rate is after its compilation).
2. ``compile_s_median_cold`` / ``compile_s_median_warm``: seconds to build and compile a new NB201 architecture's
   train step and prediction (what a trial pays before its first step), median over ``--cells`` cells, each in a
   fresh process-wide state: first with an empty persistent compilation cache (cold), then again with the cache
   the cold pass filled (warm: another trial, worker, run or test compiling the same cell).
3. ``supernet_ratio_bossnas`` / ``supernet_ratio_fbnetv5``: the supernet step ratio once the supernets exist in
   Flax; null (with the reason) until then.

    OMP_NUM_THREADS=1 python benchmarks/jax_vs_torch.py --json runs/jax_vs_torch.json
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

SPACES = (("nb201", "default"), ("nasnet", "small"), ("hytra", "cpu"))
NO_SUPERNET = "no Flax supernet yet: the BossNAS and FBNetV5 supernets are torch only (backend=jax is refused)"

COMPILE_PROGRAM = """
import json, sys, time
import jax.numpy as jnp
from flax import nnx
import nas
from nas.backends.jax import COMPILATION_CACHE, build
from nas.backends.jax.train import make_optimizer, make_steps
from nas.backends.training import TrainConfig

space, batch, seeds = nas.space("nb201"), int(sys.argv[1]), [int(s) for s in sys.argv[2].split(",")]
assert COMPILATION_CACHE is not None
times = []
for seed in seeds:
    start = time.perf_counter()
    arch = space.decode(space.sample(seed))
    model = build(arch, seed=0)
    tx = make_optimizer(TrainConfig(batch_size=batch, epochs=1), 10)
    train_step, predict = make_steps(model, tx)
    params, rest = nnx.state(model, nnx.Param), nnx.state(model, nnx.Not(nnx.Param))
    x = jnp.zeros((batch, *arch.input_shape), jnp.float32)
    train_step.lower(params, rest, tx.init(params), x, jnp.zeros((batch,), jnp.int32)).compile()
    predict.lower(params, rest, x).compile()
    times.append(time.perf_counter() - start)
print(json.dumps(times))
"""


def synthetic(shape: tuple[int, ...], classes: int, count: int, seed: int):
    """Random images and labels of ``shape`` (throughput does not depend on the pixels)."""
    from nas.data.base import ArrayDataset

    rng = np.random.default_rng(seed)
    x = lambda n: rng.standard_normal((n, *shape)).astype(np.float32)  # noqa: E731
    y = lambda n: rng.integers(0, classes, n).astype(np.int64)  # noqa: E731
    return ArrayDataset("synthetic", x(count), y(count), x(64), y(64), x(64), y(64), classes)


DEVICES = {"cpu": {"torch": "cpu", "jax": "cpu"}, "gpu": {"torch": "cuda", "jax": "gpu"}}


def steps_per_second(backend: str, arch, data, steps: int, batch: int, seed: int, device: str = "cpu") -> float:
    from nas.backends import get_backend
    from nas.backends.training import TrainConfig

    config = TrainConfig(epochs=1, batch_size=batch, lr=0.05, seed=seed, max_steps_per_epoch=steps)
    train = get_backend(backend).train
    return float(train(arch, data, config, device=DEVICES[device][backend])["steps_per_second"])


def train_ratios(rounds: int, steps: int, batch: int, device: str = "cpu") -> dict[str, dict[str, object]]:
    import nas

    out = {}
    for name, preset in SPACES:
        space = nas.space(name, preset=preset)
        arch = space.decode(space.sample(0))
        data = synthetic(tuple(space.macro["input_shape"]), int(space.macro["num_classes"]), batch * steps, 0)
        steps_per_second("torch", arch, data, 3, batch, 0, device)  # warm-up: allocator, kernels
        steps_per_second("jax", arch, data, 3, batch, 0, device)  # compile once (the rate below is after it)
        rows: dict[str, list[float]] = {"torch": [], "jax": []}
        for r in range(rounds):
            for backend in ("torch", "jax"):
                rows[backend].append(steps_per_second(backend, arch, data, steps, batch, r, device))
        med = {k: statistics.median(v) for k, v in rows.items()}
        out[name] = {"preset": preset, "torch_steps_s": med["torch"], "jax_steps_s": med["jax"],
                     "ratio": med["jax"] / med["torch"], "rounds": rows}
        print(f"{name:<7} ({preset:<7}) torch {med['torch']:6.2f} steps/s  jax {med['jax']:6.2f} steps/s  "
              f"jax/torch {med['jax'] / med['torch']:.3f}", flush=True)
    return out


def compile_seconds(cache: Path, cells: int, batch: int) -> list[float]:
    """Per-cell build + compile seconds in one fresh process using ``cache``."""
    done = subprocess.run([sys.executable, "-c", COMPILE_PROGRAM, str(batch), ",".join(map(str, range(cells)))],
                          capture_output=True, text=True, env={**os.environ, "NAS_JAX_CACHE_DIR": str(cache)},
                          timeout=3600)
    if done.returncode != 0:
        raise SystemExit(f"error: the compile probe failed: {done.stderr.strip().splitlines()[-1:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--cells", type=int, default=20, help="NB201 cells for the compilation times")
    parser.add_argument("--device", choices=sorted(DEVICES), default="cpu",
                        help="gpu: torch on cuda, JAX on its gpu platform (the compilation probe uses JAX's default)")
    parser.add_argument("--skip-train", action="store_true", help="only the compilation times")
    parser.add_argument("--json", type=Path, default=None, help="write the figures here")
    args = parser.parse_args()
    for option in ("rounds", "steps", "batch", "cells"):
        if getattr(args, option) < 1:
            parser.error(f"--{option} must be at least 1, got {getattr(args, option)}")
    import torch

    print(f"{torch.get_num_threads()} torch threads, batch {args.batch}, {args.steps} steps x {args.rounds} rounds",
          flush=True)
    figures: dict[str, object] = {"device": args.device}
    if not args.skip_train:
        ratios = train_ratios(args.rounds, args.steps, args.batch, args.device)
        figures.update({f"train_ratio_{name}": row["ratio"] for name, row in ratios.items()})
        figures["train"] = ratios
    with tempfile.TemporaryDirectory(prefix="nas-jax-cache-") as tmp:
        cold = compile_seconds(Path(tmp), args.cells, args.batch)
        warm = compile_seconds(Path(tmp), args.cells, args.batch)
    figures.update(compile_s_median_cold=statistics.median(cold), compile_s_median_warm=statistics.median(warm),
                   compile_s_cold=cold, compile_s_warm=warm)
    print(f"compile per new NB201 cell ({args.cells} cells, batch {args.batch}): median cold "
          f"{figures['compile_s_median_cold']:.2f} s (range {min(cold):.2f}-{max(cold):.2f}), warm cache "
          f"{figures['compile_s_median_warm']:.2f} s (range {min(warm):.2f}-{max(warm):.2f})", flush=True)
    figures.update(supernet_ratio_bossnas=None, supernet_ratio_fbnetv5=None, supernet_note=NO_SUPERNET)
    print(f"supernet step ratios: {NO_SUPERNET}")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(figures, indent=2) + "\n")
        print(f"-> {args.json}")


if __name__ == "__main__":
    main()
