"""benchmarks/bench.py (`make bench`) on a tiny configuration: it runs every case in interleaved
rounds and prints its tables. No speed is checked here: RESULTS.md keeps what a full run
measured. What is checked is the arithmetic: each printed ratio is the median and range of the
per-round ratios of the values the run kept (--json), recomputed here."""

from __future__ import annotations

import json
import re
import statistics
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks import bench  # noqa: E402


def test_flops_per_image_by_hand():
    # conv1: 24x24 outputs x 20 filters x 5x5x1 weights; conv2: 8x8 x 50 x 5x5x20; full1 800x500; full2 500x10.
    macs = 24 * 24 * 20 * 25 + 8 * 8 * 50 * 25 * 20 + 800 * 500 + 500 * 10
    training, inference = bench.flops_per_image()
    assert inference == 2 * macs == 4_586_000
    assert training == 3 * 2 * macs - 2 * (24 * 24 * 20 * 25)  # conv1 needs no input gradient


def test_rounds_rotate_the_order_and_ratios_pair_rounds(capsys):
    ran: list[str] = []

    def case(name: str, values: list[float]) -> bench.Case:
        return bench.Case(name, name, lambda r: (ran.append(name), values[r])[1])

    a, b, c = case("a", [10.0, 30.0, 20.0]), case("b", [5.0, 10.0, 40.0]), case("c", [1.0, 1.0, 1.0])
    loads = bench.interleave("t", [a, b, c], 3)
    assert ran == ["a", "b", "c", "b", "c", "a", "c", "a", "b"]
    assert bench.ratios(a, b) == [2.0, 3.0, 0.5]
    assert bench.spread(bench.ratios(a, b)) == ("2.00", "0.50-3.00")
    assert len(loads) == 3 and all({"before", "after"} <= set(entry) for entry in loads)
    assert capsys.readouterr().out.count("load average") == 3


def test_environment_sets_reportgens_defaults_and_removes_what_a_case_unsets(monkeypatch):
    monkeypatch.setenv("GOMP_SPINCOUNT", "5")
    env = bench.environment({"GOMP_SPINCOUNT": bench.UNSET, "X_BENCH": "1"})
    assert "GOMP_SPINCOUNT" not in env and env["X_BENCH"] == "1"
    assert env["MXNET_CPU_PARALLEL_SIZE"] == bench.runtime.PARALLEL_COPY_OFF


def test_the_libgomp_default_row_runs_libgomps_default_and_reportgens_row_its_own():
    # A case imports reportgen, which sets an unset spin count: the reference row must say its value.
    assert bench.in_fresh_process("settings", env={bench.SPIN: bench.LIBGOMP_SPIN})[bench.SPIN] == "300000"
    assert bench.in_fresh_process("settings")[bench.SPIN] == bench.runtime.SPIN_COUNT
    assert bench.in_fresh_process("settings", env={bench.SPIN: bench.UNSET})[bench.SPIN] == bench.runtime.SPIN_COUNT


def table_rows(out: str, header: str) -> dict[str, list[str]]:
    """The rows of the table under `header`, by their first cell."""
    block = out.split(header, 1)[1].split("\n\n", 2)[1]
    rows = [line.strip("|").split(" | ") for line in block.splitlines() if line.startswith("| ")]
    return {cells[0].strip(): [c.strip() for c in cells[1:]] for cells in rows[1:] if not cells[0].startswith("-")}


@pytest.fixture(scope="module")
def quick(tmp_path_factory) -> tuple[str, dict]:
    kept = tmp_path_factory.mktemp("bench") / "bench.json"
    done = subprocess.run(
        [sys.executable, "benchmarks/bench.py", "--quick", "--json", str(kept)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=1500,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout, json.loads(kept.read_text())


def test_quick_run_prints_every_table(quick):
    out, kept = quick
    assert "FLOPs per image: 13.18 M training, 4.59 M inference." in out
    for section in (
        "### Training, 400 images",
        "### Inference and inspection",
        "### `reportgen build --epochs 1",
        "### `reportgen render` of a built run",
    ):
        assert section in out, section
    training, render = kept["sections"]
    names = {c["name"] for c in training["cases"]}
    assert names == {"rg", "rg_spin", "module_bare", "bare"}  # quick: the pairs' cases and one loop
    assert [c["name"] for c in render["cases"]] == ["weasyprint", "title", "fresh", "serial"]
    for section in (training, render):
        assert all(len(c["values"]) == 2 and min(c["values"]) > 0 for c in section["cases"])
        assert len(section["loads"]) == 2
    assert len(re.findall(r"^(training|render), round \d of 2 \(.*\): load average [\d.]+, ", out, re.M)) == 4


def test_each_printed_ratio_is_the_median_and_range_of_the_rounds(quick):
    out, kept = quick
    training, render = kept["sections"]
    headers = {"training": "### Training", "render": "### `reportgen render`"}
    for section in (training, render):
        rows = table_rows(out, headers[section["title"]])
        reference = next(c for c in section["cases"] if c["name"] == section["reference"])
        for case in section["cases"]:
            if section["title"] == "training":  # reportgen / this
                per_round = [r / v for r, v in zip(reference["values"], case["values"])]
            else:  # this / WeasyPrint alone
                per_round = [v / r for r, v in zip(reference["values"], case["values"])]
            median, low, high = statistics.median(per_round), min(per_round), max(per_round)
            cells = rows[case["label"]]
            assert cells[2] == f"{median:.2f}" and cells[3] == f"{low:.2f}-{high:.2f}", case["name"]
            values = case["values"]
            if section["title"] == "training":
                assert cells[0] == f"{statistics.median(values):,.0f}", case["name"]
            else:
                assert cells[0] == f"{statistics.median(values):.2f}", case["name"]
    # The named pairs: the spin count's, from its own two rows.
    spin = {c["name"]: c["values"] for c in training["cases"]}
    per_round = [a / b for a, b in zip(spin["rg"], spin["rg_spin"])]
    line = next(x for x in out.splitlines() if x.startswith("| reportgen, GOMP_SPINCOUNT=1000 (runtime.defaults())"))
    assert f"| {statistics.median(per_round):.2f} | {min(per_round):.2f}-{max(per_round):.2f} |" in line


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
