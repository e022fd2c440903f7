"""Training throughput (images/s) under the settings that matter on this machine.

Each case runs in a fresh process, because OMP_NUM_THREADS only counts if it is
set before mxnet is imported. Prints a Markdown table; copy it into RESULTS.md.

    .venv/bin/python benchmarks/train_throughput.py [--images 10000] [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys

CASE = r"""
import json, sys
import mxnet as mx
from reportgen import data, train
images, ctx, sync = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
ds = data.load(train_limit=images, test_limit=1000)
_, history = train.fit(ds, train.TrainConfig(epochs=2), train.parse_contexts(ctx), sync_every=sync)
second = history.epochs[1]  # the first epoch also builds the graph
print(json.dumps({"rate": images // 100 * 100 / second.seconds}))
"""

CASES = [  # (label, OMP_NUM_THREADS or None for mxnet's default, --ctx, sync_every)
    ("mxnet's default threads, 1 context", None, "cpu", 50),
    ("OMP_NUM_THREADS=2, 1 context", "2", "cpu", 50),
    ("OMP_NUM_THREADS=2, 1 context, read loss every batch", "2", "cpu", 1),
    ("OMP_NUM_THREADS=2, 2 contexts (cpu:0,1)", "2", "cpu:0,1", 50),
]


def run(images: int, threads: str | None, ctx: str, sync: int) -> float:
    env = {k: v for k, v in os.environ.items() if k != "OMP_NUM_THREADS"}
    if threads:
        env["OMP_NUM_THREADS"] = threads
    out = subprocess.run(
        [sys.executable, "-c", CASE, str(images), ctx, str(sync)], env=env, capture_output=True, text=True, check=True
    ).stdout
    return json.loads(out.strip().splitlines()[-1])["rate"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=10000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    print(f"| case ({args.images} images, batch 100, 2nd epoch) | images/s (median of {args.repeats}) | range |")
    print("|---|---:|---:|")
    for label, threads, ctx, sync in CASES:
        rates = [run(args.images, threads, ctx, sync) for _ in range(args.repeats)]
        print(f"| {label} | {statistics.median(rates):,.0f} | {min(rates):,.0f}-{max(rates):,.0f} |", flush=True)


if __name__ == "__main__":
    main()
