"""Where a report build spends its time, measured in one run on one machine: `make bench`.

Every trainer trains the seed's LeNet (batch 100, SGD lr 0.05, momentum 0.9, wd 1e-5) on the
same real MNIST images, loaded the way reportgen loads them (data.load, data.to_input), and is
timed on its second epoch (the first also builds graphs and warms caches). Each runs in a
fresh process with the environment reportgen runs with (runtime.defaults()), so settings
that MXNet reads at import or at its first copy count. Prints Markdown tables; RESULTS.md
keeps what they said.

Cases that are compared run interleaved: every round runs each case once, in an order rotated
by one each round (A B C, B C A, C A B, ...), and a ratio is taken round by round, between runs
that shared the machine's state; each table gives the median and range of those ratios. The
load average is printed before and after every round: on a shared machine a ratio can move by
factors, not percents (benchmarks/RESULTS.md, round two), so read only rounds run at a load
well under the number of cores.

    .venv/bin/python benchmarks/bench.py                 # everything, the full build included
    .venv/bin/python benchmarks/bench.py --quick         # a tiny configuration (the tests run it)
    .venv/bin/python benchmarks/bench.py --rounds 7 --json out.json   # more rounds; every value kept
    .venv/bin/python benchmarks/bench.py --only render --rounds 5      # one section (a few minutes)
    .venv/bin/python benchmarks/bench.py --only training --training module_bare,torch \
        --torch-python /tmp/torchenv/bin/python                        # PyTorch from another venv
    .venv/bin/python benchmarks/bench.py --explain-only --explain output/run --explain ~/mnist/mnistModel=raw
                                                         # the explanations of saved models, by stage
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
SPIN = "GOMP_SPINCOUNT"  # GNU OpenMP's spins at a barrier before a thread sleeps
LIBGOMP_SPIN = "300000"  # libgomp's own default, as a value: unset, `import reportgen` would set 1,000
# Read before reportgen is imported below, which sets it: PyTorch runs with the user's value or libgomp's.
USERS_SPIN = os.environ.get(SPIN)

from benchmarks.rounds import Case, as_json, interleave, load_average, ratios, spread  # noqa: E402
from reportgen import layers, runtime  # noqa: E402

UNSET = None  # an environment value that removes the variable for a case


def environment(env: dict[str, str | None] | None = None) -> dict[str, str]:
    """reportgen's environment, with `env`'s changes (None removes a variable)."""
    merged: dict[str, str | None] = {**os.environ, **runtime.defaults(), **(env or {})}
    return {k: v for k, v in merged.items() if v is not None}


def in_fresh_process(
    case: str, *args: str, env: dict[str, str | None] | None = None, python: str = sys.executable
) -> dict:
    """Run one of cases.py's functions in a new interpreter (`python`, this one unless named); its
    JSON result."""
    command = [python, "-m", "benchmarks.cases", case, *args]
    done = subprocess.run(command, cwd=ROOT, env=environment(env), capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"benchmark case {case} failed:\n{done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def wall_of(command: list[str], env: dict[str, str | None] | None = None) -> float:
    """Seconds a whole process takes, start-up included (what a user waits for)."""
    started = time.perf_counter()
    done = subprocess.run(command, cwd=ROOT, env=environment(env), capture_output=True, text=True)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"benchmark command {' '.join(command)} failed:\n{done.stderr[-2000:]}")
    return seconds


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


def trainers(images: int, torch_python: str = sys.executable) -> tuple[list[Case], list[tuple[str, str, str, str]]]:
    """The training cases, reportgen's first (the reference), and the pairs read apart from it:
    (label, top, bottom, what the ratio is held to). PyTorch runs in `torch_python`, which may
    be another environment's interpreter (torch is no dependency of reportgen's)."""

    def rate(
        case: str, env: dict[str, str | None] | None = None, python: str = sys.executable
    ) -> Callable[[int], float]:
        return lambda _round: float(in_fresh_process(case, str(images), env=env, python=python)["images_per_second"])

    cases = [
        Case("rg", "reportgen `train.fit`", rate("reportgen")),
        Case(
            "rg_copy",
            "reportgen `train.fit`, MXNET_CPU_PARALLEL_SIZE=200000 (MXNet's default, set by the user)",
            rate("reportgen", {"MXNET_CPU_PARALLEL_SIZE": "200000"}),
        ),
        Case(
            "rg_spin",
            f"reportgen `train.fit`, {SPIN}={LIBGOMP_SPIN} (libgomp's default)",
            rate("reportgen", {SPIN: LIBGOMP_SPIN}),
        ),
        Case("module_bare", "bare Module API loop (`forward_backward`, `update`, no metric)", rate("module_bare")),
        Case("bare", "bare hybridized Gluon loop (net, loss, backward, step)", rate("bare")),
        Case("module", "MXNet Module API fed by NDArrayIter, with its metric (the seed's way)", rate("module")),
        Case("imperative", "plain Gluon loop, not hybridized", rate("imperative")),
    ]
    pairs = [
        ("reportgen / the bare Module API loop", "rg", "module_bare", "issue 21: at least 1.0"),
        (
            f"reportgen, {SPIN}={runtime.SPIN_COUNT} (runtime.defaults()) / libgomp's default spin",
            "rg",
            "rg_spin",
            "near 1 on a quiet machine; above it under load",
        ),
    ]
    torch = in_fresh_process("torch_available", python=torch_python)
    if torch["available"]:
        # PyTorch at its own defaults: its bundled libgomp spins as libgomp does unless the user says
        # otherwise. Said as a value: the case imports reportgen, which would set an unset one.
        own = {SPIN: USERS_SPIN or LIBGOMP_SPIN}
        cases.append(
            Case("torch", f"PyTorch {torch['version']} eager, its default threads", rate("torch", own, torch_python))
        )
        pairs.append(("reportgen / PyTorch eager", "rg", "torch", "issue 21: at least 1.4"))
    else:
        print(
            "\nPyTorch is not installed: `pip install -e '.[bench]'` adds it, or --torch-python names an "
            "interpreter that has it; its row is left out."
        )
    return cases, pairs


def print_cases(
    heading: str, columns: str, cases: list[Case], per_round: Callable[[Case], list[float]], number: str
) -> None:
    """A section's table: each case's values (median, range, written with `number`) and its
    per-round ratio to the reference, as `per_round` takes it."""
    print(f"\n{heading}\n")
    print(columns)
    print("|---|---:|---:|---:|---:|")
    for case in cases:
        median, low_high = spread(per_round(case))
        v = [number.format(x) for x in (statistics.median(case.values), min(case.values), max(case.values))]
        print(f"| {case.label} | {v[0]} | {v[1]}-{v[2]} | {median} | {low_high} |")


def print_pairs(cases: list[Case], pairs: list[tuple[str, str, str, str]]) -> None:
    by_name = {c.name: c for c in cases}
    print("\n| pair | per round: median | range | held to |")
    print("|---|---:|---:|---|")
    for label, top, bottom, target in pairs:
        if top in by_name and bottom in by_name:
            median, low_high = spread(ratios(by_name[top], by_name[bottom]))
            print(f"| {label} | {median} | {low_high} | {target} |")


def print_trainers(cases: list[Case], pairs: list[tuple[str, str, str, str]], images: int) -> None:
    ours = cases[0]
    heading = f"### Training, {images:,} images, batch 100, second epoch; {len(ours.values)} rounds, interleaved"
    columns = "| trainer | images/s: median | range | reportgen / this, per round: median | range |"
    print_cases(heading, columns, cases, lambda case: ratios(ours, case), "{:,.0f}")
    print_pairs(cases, pairs)
    training, inference = flops_per_image()
    peak, how = peak_gflops()
    achieved = statistics.median(ours.values) * training / 1e9
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
        env=environment(),
        check=True,
    )
    manifest = json.loads((out / "manifest.json").read_text())
    return {
        "wall": time.perf_counter() - started,
        "timings": manifest["timings"],
        "accuracy": json.loads((out / "metrics.json").read_text())["overall"]["accuracy"],
    }


def renders(run: Path, work: Path) -> tuple[list[Case], list[tuple[str, str, str, str]]]:
    """The render cases on copies of `run` (a built run: its figure cache filled), WeasyPrint
    alone first (the reference), and the pairs read apart."""
    from reportgen.report.pdf import PDF_VARIANT

    render = [sys.executable, "-m", "reportgen", "render", "-q"]
    base = work / "base" / run.name
    shutil.copytree(run, base)
    wall_of([*render, str(base)])  # its cache filled by this version, whatever made the run
    copies = {}
    for name in ("pdf_input", "fresh", "title", "serial"):
        copies[name] = work / name / run.name  # the same name in each: the same manifest's size
        shutil.copytree(base, copies[name])
    pdf_input = work / "pdf_input.html"
    in_fresh_process("pdf_input", str(copies["pdf_input"]), str(pdf_input))

    def fresh(_round: int) -> float:
        shutil.rmtree(copies["fresh"] / ".cache", ignore_errors=True)  # before the clock starts
        return wall_of([*render, str(copies["fresh"])])

    alone = [sys.executable, "benchmarks/weasyprint_alone.py", str(pdf_input), str(copies["pdf_input"]), PDF_VARIANT]
    serial = [sys.executable, "-m", "benchmarks.cases", "render_serial", str(copies["serial"])]
    cases = [
        Case("weasyprint", "WeasyPrint alone, on the HTML reportgen hands it (the floor)", lambda _r: wall_of(alone)),
        Case(
            "title",
            "`reportgen render --title` (a title changed: every figure from the cache)",
            lambda r: wall_of([*render, "--title", f"Retitled {r}", str(copies["title"])]),
        ),
        Case("fresh", "`reportgen render`, its cache emptied (every figure drawn)", fresh),
        Case(
            "serial",
            "the same title change, the PDF made after the manifest in the same process (no child)",
            lambda r: wall_of([*serial, f"Retitled {r}"]),
        ),
    ]
    pairs = [
        ("render after a title change / WeasyPrint alone", "title", "weasyprint", "issue 21: at most 1.1"),
        ("render, every figure drawn / WeasyPrint alone", "fresh", "weasyprint", "issue 21 (a saved run): at most 1.3"),
        ("PDF in a forked child / in the same process, after a title change", "title", "serial", "kept below 1.0"),
    ]
    return cases, pairs


def print_renders(cases: list[Case], pairs: list[tuple[str, str, str, str]], run: Path) -> None:
    floor = cases[0]
    rounds = len(floor.values)
    heading = f"### `reportgen render` of a built run ({run.name}), whole processes; {rounds} rounds, interleaved"
    columns = "| case | seconds: median | range | this / WeasyPrint alone, per round: median | range |"
    print_cases(heading, columns, cases, lambda case: ratios(case, floor), "{:.2f}")
    print_pairs(cases, pairs)


def render_stages(run: Path) -> None:
    """One render's own clock by stage (figures drawn in this process: see the manifest of a
    render for the pool's), for the table RESULTS.md keeps."""
    split = in_fresh_process("render_split", str(run))
    print("\n| render stage (one process, every figure drawn) | seconds |")
    print("|---|---:|")
    for stage in ("import", "data", "figures", "html", "pdf"):
        print(f"| {stage} | {split[stage]:.2f} |")


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
    parser.add_argument("--rounds", type=int, default=5, help="rounds of interleaved cases")
    parser.add_argument("--quick", action="store_true", help="a tiny configuration, no full build")
    parser.add_argument("--json", type=Path, help="write every value measured here")
    parser.add_argument("--torch-python", default=sys.executable, help="the interpreter of the PyTorch case")
    parser.add_argument("--training", help="only these training cases, by name, comma-separated (rg always)")
    parser.add_argument("--only", choices=("training", "render"), help="one section alone")
    parser.add_argument("--run", type=Path, help="render this built run (a copy) instead of building one")
    parser.add_argument(
        "--explain",
        action="append",
        default=[],
        metavar="MODEL[=PIXELS]",
        help="also time the explanations of this saved model, by stage (repeatable; PIXELS unit or raw)",
    )
    parser.add_argument("--explain-only", action="store_true", help="only the --explain models")
    parser.add_argument("--train-limit", type=int, default=0, help="training images --explain searches (0: all)")
    parser.add_argument("--repeats", type=int, default=3, help="repeats of each --explain timing")
    args = parser.parse_args()
    if args.explain_only:
        explanations(args.explain, args.repeats, args.train_limit)
        return
    if args.quick:
        args.images, args.rounds = 400, 2
    print(
        f"Machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, Python "
        f"{platform.python_version()}; settings {runtime.defaults()}; load average {load_average()}"
    )
    kept: dict = {"settings": runtime.defaults(), "sections": []}
    if args.only != "render":
        cases, pairs = trainers(args.images, args.torch_python)
        if args.training or args.quick:
            # Quick: the cases of the pairs and one Gluon loop, so that a test's run stays short.
            chosen = args.training.split(",") if args.training else ["rg_spin", "module_bare", "bare"]
            cases = [c for c in cases if c.name in {"rg", *chosen}]
        loads = interleave("training", cases, args.rounds)
        kept["sections"].append(as_json("training", cases[0], cases, loads))
        print_trainers(cases, pairs, args.images)
    if args.only == "training":
        if args.json:
            args.json.write_text(json.dumps(kept, indent=1) + "\n")
        return
    if args.only is None:
        passes(1000 if args.quick else 10000)
    with tempfile.TemporaryDirectory() as tmp:
        quick = ["--epochs", "1", "--train-limit", "1000" if args.quick else "3000", "--test-limit", "1000"]
        run = Path(tmp) / "quick"
        if args.run is not None:
            run = args.run
        else:
            print_build(f"`reportgen build {' '.join(quick)}`", build(quick, run))
        if not args.quick and args.run is None:
            run = Path(tmp) / "full"
            print_build("`reportgen build` (the seed's configuration: 20 epochs, 60,000 images)", build([], run))
        cases, pairs = renders(run, Path(tmp) / "renders")
        loads = interleave("render", cases, args.rounds)
        kept["sections"].append(as_json("render", cases[0], cases, loads))
        print_renders(cases, pairs, run)
        render_stages(run)
    if args.json:
        args.json.write_text(json.dumps(kept, indent=1) + "\n")
    if args.explain:
        explanations(args.explain, args.repeats, args.train_limit)


if __name__ == "__main__":
    main()
