"""Install time and size of the core wheel vs the full one (``[all]``), side by side in fresh venvs.

Builds the wheel of this checkout (or takes ``--wheel``), then per round and variant: a fresh venv (no system
site-packages), ``pip install torch==2.13.0`` first (as the Makefile does), then the wheel (``core``) or
``wheel[all]`` (``full``). Printed: seconds of the torch step and of the wheel step, the venv's size on disk and
its number of distributions, and the ratios core/full. pip's cache is used as configured: the first round of a
variant may download what later rounds take from the cache, so each round is printed.

    python benchmarks/install_size.py --rounds 2 --json runs/install_size.json
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TORCH = "torch==2.13.0"
VARIANTS = {"core": "", "full": "[all]"}


def build_wheel(out: Path) -> Path:
    """The wheel of this checkout, built by ``python -m build`` in its isolated environment."""
    subprocess.run([sys.executable, "-m", "build", "--wheel", "--outdir", str(out), str(ROOT)], check=True,
                   capture_output=True)
    (wheel,) = out.glob("*.whl")
    return wheel


def disk_usage(path: Path) -> int:
    """Bytes the files under ``path`` occupy (blocks, as ``du``; hard links counted once)."""
    seen, total = set(), 0
    for folder, _, files in os.walk(path):
        for name in files:
            stat = os.lstat(os.path.join(folder, name))
            if (stat.st_dev, stat.st_ino) not in seen:
                seen.add((stat.st_dev, stat.st_ino))
                total += stat.st_blocks * 512
    return total


def timed(command: list[str]) -> float:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    began = time.perf_counter()
    subprocess.run(command, check=True, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    return time.perf_counter() - began


def install(wheel: Path, extras: str, work: Path) -> dict[str, float]:
    """One fresh venv with torch and the wheel (with ``extras``): seconds, size and distributions."""
    venv = work / "venv"
    shutil.rmtree(venv, ignore_errors=True)
    began = time.perf_counter()
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet"]
    torch_seconds = timed([*pip, TORCH])
    wheel_seconds = timed([*pip, f"{wheel}{extras}", TORCH])
    total = time.perf_counter() - began
    listing = subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "list", "--format=json"], check=True,
                             capture_output=True, text=True).stdout
    row = {"torch_s": torch_seconds, "wheel_s": wheel_seconds, "total_s": total, "size_mb": disk_usage(venv) / 2**20,
           "distributions": len(json.loads(listing))}
    shutil.rmtree(venv)
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--wheel", type=Path, default=None, help="an already built wheel (default: build one)")
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        wheel = args.wheel or build_wheel(work / "dist")
        rows = []
        print(f"| round | install | torch step (s) | wheel step (s) | total (s) | venv size (MiB) | distributions |"
              f"  ({wheel.name})")
        print("|---|---|---:|---:|---:|---:|---:|")
        for k in range(args.rounds):
            for variant, extras in VARIANTS.items():
                row = {"round": k + 1, "variant": variant, **install(wheel, extras, work)}
                rows.append(row)
                print(f"| {k + 1} | {variant} | {row['torch_s']:.0f} | {row['wheel_s']:.0f} | {row['total_s']:.0f} | "
                      f"{row['size_mb']:,.0f} | {row['distributions']} |", flush=True)
    medians = {variant: {key: statistics.median(r[key] for r in rows if r["variant"] == variant)
                         for key in ("wheel_s", "total_s", "size_mb", "distributions")} for variant in VARIANTS}
    ratios = {key: medians["core"][key] / medians["full"][key] for key in medians["core"]}
    print("core/full (medians): " + ", ".join(f"{key} {value:.2f}" for key, value in ratios.items()))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"wheel": wheel.name, "rows": rows, "medians": medians, "ratios": ratios},
                                        indent=2) + "\n")


if __name__ == "__main__":
    main()
