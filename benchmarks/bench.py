"""Where a report build spends its time, measured in one run on one machine: `make bench`.

Every trainer trains the seed's LeNet (batch 100, SGD lr 0.05, momentum 0.9, wd 1e-5) on the
same real MNIST images, loaded the way reportgen loads them (data.load, data.to_input), and is
timed on its second epoch (the first also builds graphs and warms caches). Each runs in a
fresh process with the environment reportgen runs with (runtime.defaults()), so settings
that MXNet reads at import or at its first copy count. Prints Markdown tables; RESULTS.md
keeps what they said.

    .venv/bin/python benchmarks/bench.py                 # everything, the full build included
    .venv/bin/python benchmarks/bench.py --quick         # a tiny configuration (the tests run it)
    .venv/bin/python benchmarks/bench.py --explain-only --explain output/run --explain ~/mnist/mnistModel=raw
                                                         # the explanations of saved models, by stage
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from reportgen import layers, runtime  # noqa: E402


def in_fresh_process(case: str, *args: str, env: dict[str, str] | None = None) -> dict:
    """Run one of cases.py's functions in a new interpreter; its JSON result."""
    environment = {**os.environ, **runtime.defaults(), **(env or {})}
    command = [sys.executable, "-m", "benchmarks.cases", case, *args]
    done = subprocess.run(command, cwd=ROOT, env=environment, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"benchmark case {case} failed:\n{done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def median_of(repeats: int, case: str, *args: str, env: dict[str, str] | None = None) -> tuple[float, float, float]:
    rates = [in_fresh_process(case, *args, env=env)["images_per_second"] for _ in range(repeats)]
    return statistics.median(rates), min(rates), max(rates)


# -- arithmetic -------------------------------------------------------------------------------


def flops_per_image() -> tuple[float, float]:
    """(training, inference) floating-point operations per image, counted from the layer shapes.

    A multiply-add is 2 operations. Inference: the convolutions and fully connected layers
    (tanh, pooling and softmax add under 1%). Training: the forward pass, the weight gradients
    (as many operations again) and the input gradients of every layer but conv1, whose input
    is the image and needs none.
    """
    macs = {
        "conv1": 24 * 24 * 20 * 5 * 5 * 1,
        "conv2": 8 * 8 * 50 * 5 * 5 * 20,
        "full1": 800 * 500,
        "full2": 500 * 10,
    }
    forward = 2 * sum(macs.values())
    training = forward + forward + (forward - 2 * macs["conv1"])
    assert layers.parameter_counts()["conv2"] == 50 * 20 * 5 * 5 + 50  # the shapes counted above
    return float(training), float(forward)


def peak_gflops() -> tuple[float | None, str]:
    """The machine's fp32 peak from its cores, clock and vector units, and how it was derived."""
    flags, mhz = set(), None
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags") and not flags:
                flags = set(line.split(":", 1)[1].split())
            if line.startswith("cpu MHz") and mhz is None:
                mhz = float(line.split(":", 1)[1])
    except OSError:
        return None, "no /proc/cpuinfo"
    cores = os.cpu_count() or 1
    # Two FMA pipes per core; an FMA on a vector of w floats is 2w operations.
    width = 16 if "avx512f" in flags else 8 if "avx2" in flags else 4
    per_cycle = 2 * 2 * width
    if mhz is None:
        return None, "no clock in /proc/cpuinfo"
    peak = cores * mhz / 1000 * per_cycle
    how = (
        f"{cores} cores x {mhz / 1000:.2f} GHz x {per_cycle} fp32 operations a cycle (2 FMA pipes x {width} floats x 2)"
    )
    return peak, how


# -- sections ---------------------------------------------------------------------------------


def trainers(images: int, repeats: int) -> list[tuple[str, float, float, float]]:
    rows = [
        ("reportgen `train.fit`", *median_of(repeats, "reportgen", str(images))),
        (
            "reportgen `train.fit`, MXNET_CPU_PARALLEL_SIZE=200000 (MXNet's default, set by the user)",
            *median_of(repeats, "reportgen", str(images), env={"MXNET_CPU_PARALLEL_SIZE": "200000"}),
        ),
        ("bare hybridized Gluon loop (net, loss, backward, step)", *median_of(repeats, "bare", str(images))),
        ("MXNet Module API fed by NDArrayIter (the seed's way)", *median_of(repeats, "module", str(images))),
        ("plain Gluon loop, not hybridized", *median_of(repeats, "imperative", str(images))),
    ]
    torch = in_fresh_process("torch_available")
    if torch["available"]:
        rows.append(
            (f"PyTorch {torch['version']} eager, its default threads", *median_of(repeats, "torch", str(images)))
        )
    else:
        print("\nPyTorch is not installed: `pip install -e '.[bench]'` adds it; its row is left out.")
    return rows


def print_trainers(rows: list[tuple[str, float, float, float]], images: int, repeats: int) -> None:
    ours = rows[0][1]
    print(f"\n### Training, {images:,} images, batch 100, second epoch, median of {repeats}\n")
    print("| trainer | images/s | range | reportgen / this |")
    print("|---|---:|---:|---:|")
    for label, median, low, high in rows:
        print(f"| {label} | {median:,.0f} | {low:,.0f}-{high:,.0f} | {ours / median:.2f} |")
    training, inference = flops_per_image()
    peak, how = peak_gflops()
    achieved = ours * training / 1e9
    print(
        f"\nFLOPs per image: {training / 1e6:.2f} M training, {inference / 1e6:.2f} M inference. "
        f"reportgen's trainer does {achieved:.1f} GFLOP/s",
        end="",
    )
    if peak:
        print(f", {achieved / peak:.1%} of the fp32 peak of {peak:.0f} GFLOP/s ({how}).")
    else:
        print(f" (peak unknown: {how}).")
    dot = in_fresh_process("sgemm")
    print(f"MXNet's own fp32 matrix product (4096 x 4096) reaches {dot['gflops']:.0f} GFLOP/s here.")


def passes(images: int) -> None:
    inference = in_fresh_process("inference", str(images))
    inspect = in_fresh_process("inspection")
    print("\n### Inference and inspection\n")
    print("| pass | seconds | images/s |")
    print("|---|---:|---:|")
    print(
        f"| predict.predict over {inference['images']:,} test images (batch 1000) | "
        f"{inference['seconds']:.2f} | {inference['images_per_second']:,.0f} |"
    )
    print(f"| inside.run, one digit, all eleven layers (graph built included) | {inspect['one']:.3f} | |")
    print(
        f"| inside.run, {inspect['many']:,} digits | {inspect['many_seconds']:.2f} | "
        f"{inspect['many'] / inspect['many_seconds']:,.0f} |"
    )


def build(args: list[str], out: Path) -> dict:
    started = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "reportgen", "build", "-q", *args, "--out", str(out)],
        cwd=ROOT,
        env={**os.environ, **runtime.defaults()},
        check=True,
    )
    manifest = json.loads((out / "manifest.json").read_text())
    return {
        "wall": time.perf_counter() - started,
        "timings": manifest["timings"],
        "accuracy": json.loads((out / "metrics.json").read_text())["overall"]["accuracy"],
    }


def render(run: Path, repeats: int) -> None:
    walls, stages = [], []
    for _ in range(repeats):
        started = time.perf_counter()
        subprocess.run(
            [sys.executable, "-m", "reportgen", "render", "-q", str(run)],
            cwd=ROOT,
            env={**os.environ, **runtime.defaults()},
            check=True,
        )
        walls.append(time.perf_counter() - started)
        stages.append(json.loads((run / "manifest.json").read_text())["rendered"]["timings"])
    split = in_fresh_process("render_split", str(run))
    print(f"\n### `reportgen render` of a saved run, median of {repeats}\n")
    print("| stage | seconds |")
    print("|---|---:|")
    print(f"| python, imports | {split['import']:.2f} |")
    for stage in ("data", "figures"):
        print(f"| {stage} | {statistics.median(s[stage] for s in stages):.2f} |")
    print(f"| HTML | {split['html']:.2f} |")
    print(f"| PDF | {split['pdf']:.2f} |")
    print(f"| **whole command, wall clock** | **{statistics.median(walls):.2f}** |")


def explanations(models: list[str], repeats: int, train_limit: int = 0) -> None:
    """The explanation stage of each saved model (MODEL or MODEL=PIXELS), by stage, the models'
    runs interleaved; each stage also as a multiple of the evaluation pass timed just before it
    in the same process (0.36 s on an idle machine: RESULTS.md), a yardstick on a shared one."""
    runs: dict[str, list[dict]] = {model: [] for model in models}
    for _ in range(repeats):
        for model in models:
            path, _, pixels = model.partition("=")
            runs[model].append(in_fresh_process("explanation", path, pixels or "note", str(train_limit)))
    for model, results in runs.items():
        first = results[0]
        print(
            f"\n### The explanations of `{model}`: {first['images']} images, {first['train_images']:,} training "
            f"images searched, median of {repeats}\n"
        )
        print(
            f"Integrated gradients: {first['intervals']:,} intervals in all, {first['refined']} images refined; "
            f"peak resident memory {statistics.median(r['rss_before_mb'] for r in results):.0f} MB before, "
            f"{statistics.median(r['rss_after_mb'] for r in results):.0f} MB after; Python's own peak "
            f"{statistics.median(r['python_peak_mb'] for r in results):.0f} MB.\n"
        )
        print("| stage | seconds, median (range) | in evaluation passes, median (range) |")
        print("|---|---:|---:|")

        def row(label: str, seconds: list[float], passes: list[float] | None = None) -> None:
            shown = f"{statistics.median(seconds):.2f} ({min(seconds):.2f}–{max(seconds):.2f})"
            ratio = f"{statistics.median(passes):.1f} ({min(passes):.1f}–{max(passes):.1f})" if passes else ""
            print(f"| {label} | {shown} | {ratio} |")

        for stage in first["seconds"]:
            row(stage, [r["seconds"][stage] for r in results], [r["seconds"][stage] / r["evaluation"] for r in results])
        totals = [sum(r["seconds"].values()) - r["seconds"]["the section's figures"] for r in results]
        row(
            "**the explain stage (all but the figures)**",
            totals,
            [t / r["evaluation"] for t, r in zip(totals, results)],
        )
        row("the evaluation pass (yardstick)", [r["evaluation"] for r in results])
        rss = [r["rss_after_mb"] - r["rss_before_mb"] for r in results]
        print(f"\nPeak resident memory added by the stage: {min(rss):.0f}–{max(rss):.0f} MB.")


def print_build(label: str, result: dict) -> None:
    print(f"\n### {label}: {result['wall']:.0f} s wall clock, test accuracy {result['accuracy']:.2%}\n")
    print("| stage | seconds |")
    print("|---|---:|")
    for stage, seconds in result["timings"].items():
        print(f"| {stage} | {seconds:.1f} |")
    # The manifest is written before the PDF that carries it: the PDF's time is in this row.
    print(f"| python, imports, the PDF, writing | {result['wall'] - sum(result['timings'].values()):.1f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=12000, help="training images per trainer case")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="a tiny configuration, no full build")
    parser.add_argument(
        "--explain",
        action="append",
        default=[],
        metavar="MODEL[=PIXELS]",
        help="also time the explanations of this saved model, by stage (repeatable; PIXELS unit or raw)",
    )
    parser.add_argument("--explain-only", action="store_true", help="only the --explain models")
    parser.add_argument("--train-limit", type=int, default=0, help="training images --explain searches (0: all)")
    args = parser.parse_args()
    if args.explain_only:
        explanations(args.explain, args.repeats, args.train_limit)
        return
    if args.quick:
        args.images, args.repeats = 400, 1
    print(
        f"Machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, Python "
        f"{platform.python_version()}; settings {runtime.defaults()}"
    )
    print_trainers(trainers(args.images, args.repeats), args.images, args.repeats)
    passes(1000 if args.quick else 10000)
    with tempfile.TemporaryDirectory() as tmp:
        quick = ["--epochs", "1", "--train-limit", "1000" if args.quick else "3000", "--test-limit", "1000"]
        result = build(quick, Path(tmp) / "quick")
        print_build(f"`reportgen build {' '.join(quick)}`", result)
        render(Path(tmp) / "quick", 1 if args.quick else 3)
        if not args.quick:
            print_build(
                "`reportgen build` (the seed's configuration: 20 epochs, 60,000 images)", build([], Path(tmp) / "full")
            )
    if args.explain:
        explanations(args.explain, args.repeats, args.train_limit)


if __name__ == "__main__":
    main()
