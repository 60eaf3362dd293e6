"""Step time of the FBNetV5 multitask search with 1, 2 and 3 tasks: one pass for all tasks vs one pass per task.

The same supernet (by default the ``fbnetv5`` space's ``cpu`` preset on 64-pixel digit canvases; ``--preset A
--size 224`` for FBNetV3-A's widths and depths at 224 pixels; all heads built, classes from the data), the same
batches and the same optimiser, on ``--device`` (cpu, or cuda: each step is then synchronised before the clock
is read). "ours" is ``MultitaskSearch.step`` (one mask from the proposal,
one forward/backward pass yielding every task's loss, REINFORCE for every task); "naive" is
``naive_step`` (one mask per task from its own distribution, one forward/backward pass per task). Task
sets: each single task, then classification+segmentation, then all three. Steps are timed after the
warm-up phase (distributions live), one step of every configuration in turn, ``rounds * steps`` times, so
load from other processes hits all configurations alike; the median and minimum per configuration are
printed, with the ratio of the medians to the one-task step time: the mean of the three single-task steps,
and the slowest single task (goal for ours: 3 tasks <= 1.15x one task). A last line pairs each 3-task step
with the single-task steps of the same round and takes the median of those ratios, which cancels load
that drifts between rounds.

    OMP_NUM_THREADS=1 python benchmarks/fbnetv5_tasks.py --rounds 8 --steps 5
    OMP_NUM_THREADS=1 python benchmarks/fbnetv5_tasks.py --preset A --size 224 --batch 8 --rounds 2 --steps 3
    python benchmarks/fbnetv5_tasks.py --preset A --size 224 --batch 64 --device cuda
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from nas.data.multitask import make_canvases
from nas.evaluators.multitask._batches import SHORT
from nas.searchers.fbnetv5._search import MultitaskSearch, SearchConfig
from nas.spaces.fbnet.fbnetv5 import FBNetV5Space

TASK_SETS = (("classification",), ("segmentation",), ("detection",), ("classification", "segmentation"),
             ("classification", "segmentation", "detection"))


def one_step(search: MultitaskSearch, naive: bool) -> float:
    start = time.perf_counter()
    (search.naive_step if naive else search.step)()
    if search.device.type == "cuda":
        torch.cuda.synchronize(search.device)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--preset", default="cpu", help="fbnetv5 preset (cpu, A, C, F, AR, AC)")
    parser.add_argument("--device", default="cpu", help="cpu, cuda, cuda:N")
    parser.add_argument("--canvases", type=int, default=256)
    args = parser.parse_args()
    data = make_canvases("digits", n=args.canvases, size=args.size, seed=0, valid=32)
    space = FBNetV5Space(args.preset, input_shape=[1, args.size, args.size], resolution=args.size,
                         num_classes=data.num_classes, seg_classes=data.num_classes + 1, det_classes=data.num_classes)
    plan = space.plan()
    searches = {}
    for tasks in TASK_SETS:
        config = SearchConfig(steps=10**6, warmup=0, batch_size=args.batch, device=args.device)
        search = MultitaskSearch(plan, data, tasks, config)
        searches[tasks] = search
    for search in searches.values():  # first calls build each task set's schedule
        search.step()
        search.naive_step()
    times: dict[tuple[tuple[str, ...], bool], list[float]] = {}
    for _ in range(args.rounds * args.steps):  # one step of every configuration in turn
        for tasks, search in searches.items():
            for naive in (False, True):
                times.setdefault((tasks, naive), []).append(one_step(search, naive))
    best = {key: min(values) for key, values in times.items()}
    middle = {key: statistics.median(values) for key, values in times.items()}
    singles = [middle[((t,), False)] for t in ("classification", "segmentation", "detection")]
    mean, slowest = statistics.mean(singles), max(singles)
    where = f"{args.device} ({torch.cuda.get_device_name(args.device)})" if args.device.startswith("cuda") else \
        f"cpu, torch threads {torch.get_num_threads()}"
    print(f"preset {args.preset}, {where}, batch {args.batch}, {args.size} px, {args.rounds * args.steps} "
          f"steps per configuration; ratios of medians; one task = mean ({mean:.3f} s) and slowest ({slowest:.3f} s) "
          f"of the single-task medians")
    print(f"{'tasks':<40} {'ours median (min)':>18} {'naive median (min)':>19} {'ours/mean':>9} {'ours/slowest':>12} "
          f"{'naive/mean':>10}")
    for tasks in TASK_SETS:
        ours, naive = middle[(tasks, False)], middle[(tasks, True)]
        both = f"{ours:.3f} ({best[(tasks, False)]:.3f})", f"{naive:.3f} ({best[(tasks, True)]:.3f})"
        print(f"{'+'.join(tasks):<40} {both[0]:>18} {both[1]:>19} {ours / mean:>9.2f} {ours / slowest:>12.2f} "
              f"{naive / mean:>10.2f}")
    all_three = times[(TASK_SETS[-1], False)]
    paired = {t: statistics.median(a / b for a, b in zip(all_three, times[((t,), False)]))
              for t in ("classification", "segmentation", "detection")}
    rounds_mean = [statistics.mean(v) for v in zip(*(times[((t,), False)] for t in paired))]
    paired_mean = statistics.median(a / b for a, b in zip(all_three, rounds_mean))
    print("paired (each 3-task step over the single-task steps of the same round, median over rounds): "
          + ", ".join(f"/{SHORT[t]} {r:.2f}" for t, r in paired.items()) + f", /mean of the three {paired_mean:.2f}")


if __name__ == "__main__":
    main()
