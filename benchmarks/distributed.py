"""One process against a distributed job of one and two workers, on this machine (README:
"Training on several machines").

Each case runs `reportgen train` from scratch: one process as `make report` would, or a
scheduler, one server and the workers, every node on 127.0.0.1 (tests/localjob.py). Training
images per second are those of the second epoch (the first also builds graphs), counting every
worker's images; the accuracy is rank 0's on the test images after the last epoch.

    .venv/bin/python benchmarks/distributed.py [--repeats 3] [--images 10000]

Two workers on one machine share its cores: each runs with OMP_NUM_THREADS=1 here, where one
process has them all. What this measures is the parameter server's cost, not a speed-up.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from localjob import LocalJob, reportgen  # noqa: E402

from reportgen import runtime  # noqa: E402


def train_args(images: int, out: Path) -> list[str]:
    return ["train", "-q", "--epochs", "2", "--train-limit", str(images), "--test-limit", "1000", "--out", str(out)]


def one_process(images: int, folder: Path) -> Path:
    out = folder / "run"
    environment = {**os.environ, **runtime.defaults(), "PYTHONPATH": str(ROOT)}
    subprocess.run(reportgen(*train_args(images, out)), cwd=ROOT, env=environment, check=True, timeout=600)
    return out


def job(images: int, folder: Path, workers: int) -> Path:
    outs = [folder / f"run{i}" for i in range(workers)]
    commands = [reportgen(*train_args(images, out), "--kvstore", "dist_sync") for out in outs]
    threads = str(max(1, (os.cpu_count() or 1) // workers))
    with LocalJob(folder / "job", commands, env={"OMP_NUM_THREADS": threads}) as running:
        codes = running.wait(600)
        if set(codes.values()) != {0}:
            raise SystemExit(f"the job failed: {codes}\n{running.nodes['worker0'].stderr[-2000:]}")
    (written,) = [out for out in outs if out.exists()]
    return written


def measure(case: str, images: int) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        started = time.perf_counter()
        run = one_process(images, Path(tmp)) if case == "one process" else job(images, Path(tmp), int(case[0]))
        wall = time.perf_counter() - started
        epochs = json.loads((run / "history.json").read_text())["epochs"]
    return {"images_per_second": epochs[-1]["images_per_second"], "accuracy": epochs[-1]["test_accuracy"], "wall": wall}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--images", type=int, default=10000)
    args = parser.parse_args()
    cases = ["one process", "1 worker", "2 workers"]
    rows: dict[str, list[dict]] = {case: [] for case in cases}
    for _ in range(args.repeats):  # interleaved, so a busy moment does not fall on one case
        for case in cases:
            rows[case].append(measure(case, args.images))
            print(case, json.dumps(rows[case][-1]), file=sys.stderr, flush=True)
    print(
        f"\n| {args.images} images, batch 100, 2nd epoch | images/s (median of {args.repeats}) | range "
        "| test accuracy | wall time (median) |"
    )
    print("|---|---:|---:|---:|---:|")
    for case, found in rows.items():
        rates = [r["images_per_second"] for r in found]
        accuracies = sorted({f"{r['accuracy']:.2%}" for r in found})
        print(
            f"| {case} | {statistics.median(rates):,.0f} | {min(rates):,.0f}-{max(rates):,.0f} "
            f"| {', '.join(accuracies)} | {statistics.median(r['wall'] for r in found):.1f} s |"
        )


if __name__ == "__main__":
    main()
