"""benchmarks/bench.py (`make bench`) on a tiny configuration: it runs every case and prints
its tables. No speed is checked here: RESULTS.md keeps what a full run measured."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks import bench  # noqa: E402


def test_flops_per_image_by_hand():
    # conv1: 24x24 outputs x 20 filters x 5x5x1 weights; conv2: 8x8 x 50 x 5x5x20; full1 800x500; full2 500x10.
    macs = 24 * 24 * 20 * 25 + 8 * 8 * 50 * 25 * 20 + 800 * 500 + 500 * 10
    training, inference = bench.flops_per_image()
    assert inference == 2 * macs == 4_586_000
    assert training == 3 * 2 * macs - 2 * (24 * 24 * 20 * 25)  # conv1 needs no input gradient


def test_quick_run_prints_every_table():
    done = subprocess.run(
        [sys.executable, "benchmarks/bench.py", "--quick"], cwd=ROOT, capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stderr[-2000:]
    out = done.stdout
    rows = dict(
        re.findall(
            r"^\| (reportgen `train.fit`|bare hybridized[^|]*|MXNet Module API[^|]*|plain Gluon[^|]*) "
            r"\| ([\d,]+) \|",
            out,
            re.M,
        )
    )
    assert len(rows) == 4 and all(int(v.replace(",", "")) > 0 for v in rows.values())
    # The ratio column is reportgen's images/s over each row's.
    ours = float(rows["reportgen `train.fit`"].replace(",", ""))
    for label, ratio in re.findall(r"^\| ([^|]+) \| [\d,]+ \| [\d,]+-[\d,]+ \| ([\d.]+) \|$", out, re.M):
        images = float(re.search(rf"^\| {re.escape(label)} \| ([\d,]+) \|", out, re.M).group(1).replace(",", ""))
        # The table shows whole images a second: allow for their rounding on a slow machine.
        assert abs(float(ratio) - ours / images) <= 0.006 + ours / images * (1 / images + 1 / ours), label
    assert "FLOPs per image: 13.18 M training, 4.59 M inference." in out
    for section in ("### Inference and inspection", "### `reportgen build --epochs 1", "### `reportgen render`"):
        assert section in out, section
    assert re.search(r"\| \*\*whole command, wall clock\*\* \| \*\*[\d.]+\*\* \|", out)


def test_the_explanations_table(trained_run):
    """bench.py --explain-only on the session's model, 500 training images searched: each stage's row."""
    command = [sys.executable, "benchmarks/bench.py", "--explain-only", "--repeats", "1", "--train-limit", "500"]
    done = subprocess.run(
        [*command, "--explain", str(trained_run)], cwd=ROOT, capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "500 training images searched" in done.stdout
    for stage in ("integrated gradients", "occlusion", "PCA", "act3 of the training images and the neighbours"):
        seconds = r"[\d.]+ \([\d.]+–[\d.]+\)"
        assert re.search(rf"^\| {stage} \| {seconds} \| {seconds} \|$", done.stdout, re.M), stage
