"""The torch backend's average pooling (a depthwise convolution) vs ``torch.nn.AvgPool2d``, side by side.

NB201's ``avg_pool_3x3`` (stride 1, padding 1, padding not counted) at the shapes of its three stages and
HyTra's 2x2 downsampling pool, forward + backward, timed alternately over several rounds (medians). Printed:
milliseconds of each and the ratio torch/ours; ``--threads`` as the searches use them (1 by default).

    python benchmarks/avg_pool.py --json runs/avg_pool.json
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import torch
from torch import nn

from nas.backends.torch.ops import AvgPool

CASES = [  # (name, batch, channels, size, kernel, stride, padding, count_include_pad)
    ("nb201 stage 1 (C=8)", 32, 8, 32, 3, 1, 1, False),
    ("nb201 stage 2 (C=16)", 32, 16, 16, 3, 1, 1, False),
    ("nb201 stage 3 (C=32)", 32, 32, 8, 3, 1, 1, False),
    ("nb201 stage 1 (C=16, batch 64)", 64, 16, 32, 3, 1, 1, False),
    ("hytra 2x2 stride 2 (C=64, 16x16)", 16, 64, 16, 2, 2, 0, False),
]


def time_module(module: nn.Module, x: torch.Tensor, repeats: int) -> float:
    """Milliseconds of one forward + backward."""
    module(x).sum().backward()
    began = time.perf_counter()
    for _ in range(repeats):
        module(x).sum().backward()
    return (time.perf_counter() - began) / repeats * 1e3


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=50)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    rows = []
    print(f"| case | nn.AvgPool2d (ms) | ours (ms) | ratio | max abs diff |  (torch {torch.__version__}, "
          f"{args.threads} thread(s))")
    print("|---|---:|---:|---:|---:|")
    for name, n, c, size, k, s, p, include in CASES:
        x = torch.randn(n, c, size, size, requires_grad=True)
        ref = nn.AvgPool2d(k, s, p, count_include_pad=include)
        ours = AvgPool((k, k), (s, s), (p, p), include)
        t_ref, t_ours = [], []
        for _ in range(args.rounds):
            t_ref.append(time_module(ref, x, args.repeats))
            t_ours.append(time_module(ours, x, args.repeats))
        a, b = statistics.median(t_ref), statistics.median(t_ours)
        diff = float((ref(x) - ours(x)).detach().abs().max())
        rows.append({"case": name, "torch_ms": a, "ours_ms": b, "ratio": a / b, "max_abs_diff": diff})
        print(f"| {name} | {a:.3f} | {b:.3f} | {a / b:.2f}x | {diff:.1e} |", flush=True)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"threads": args.threads, "torch": torch.__version__, "cases": rows},
                                        indent=2) + "\n")
        print(f"-> {args.json}")


if __name__ == "__main__":
    main()
