"""Where the time goes inside a stage: MXNet's profiler for training, cProfile for the render.

    .venv/bin/python benchmarks/profiling.py train [--images 6000]   # per operator, one epoch
    .venv/bin/python benchmarks/profiling.py render RUN_DIR          # per function, the whole render
    .venv/bin/python benchmarks/profiling.py update                  # the SGD update, two ways
    .venv/bin/python benchmarks/profiling.py timeline RUN_DIR        # a cold render, process by process

MXNet's aggregate statistics sum every operator's time over a second epoch (the first builds
the graph); printed sorted by total time, with each operator's share. MXNet runs a hybridized
graph's operators in bulk segments, which the profiler shows as one entry; set
MXNET_EXEC_BULK_EXEC_TRAIN=0 to see every operator on its own (a little slower).
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import pstats
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from reportgen import data  # noqa: E402  (reportgen first: runtime settings before mxnet)


def profile_training(images: int) -> None:
    import mxnet as mx

    from reportgen.net import devices, train  # here: `timeline` must not load MXNet (no fork)

    dataset = data.load(train_limit=images, test_limit=1000)
    config = train.TrainConfig(epochs=1)
    net_contexts = devices.parse_contexts("cpu")
    train.fit(dataset, config, net_contexts)  # warm: graphs built, caches filled
    with tempfile.TemporaryDirectory() as tmp:
        # Operators only (no API calls, whose time is mostly waiting for the operators).
        mx.profiler.set_config(
            profile_symbolic=True,
            profile_imperative=True,
            profile_memory=False,
            profile_api=False,
            aggregate_stats=True,
            filename=str(Path(tmp) / "profile.json"),
        )
        mx.profiler.set_state("run")
        train.fit(dataset, config, net_contexts)
        mx.nd.waitall()
        mx.profiler.set_state("stop")
        stats = json.loads(mx.profiler.dumps(format="json", sort_by="total", ascending=False))
    rows = [
        (name, entry["Total"], entry["Count"]) for domain in stats["Time"].values() for name, entry in domain.items()
    ]
    total = sum(t for _, t, _ in rows)
    print(f"| operator | calls | ms in all | share | ms per batch |  ({images // 100} batches)")
    print("|---|---:|---:|---:|---:|")
    for name, ms, count in sorted(rows, key=lambda r: -r[1])[:25]:
        print(f"| {name} | {count:,} | {ms:,.0f} | {ms / total:.1%} | {ms / (images // 100):.2f} |")


def profile_render(run: str) -> None:
    from reportgen import pipeline
    from reportgen.report.figures import pool

    pool.workers = lambda: 1  # cProfile sees one process: draw the figures in this one
    profiler = cProfile.Profile()
    profiler.enable()
    pipeline.run_render(pipeline.RenderSettings(Path(run)))
    profiler.disable()
    out = io.StringIO()
    pstats.Stats(profiler, stream=out).sort_stats("cumulative").print_stats(30)
    print(out.getvalue())


def render_timeline(run: str) -> None:
    """A render of a copy of RUN with its figure cache emptied (every figure drawn), each
    process's steps printed with the seconds since the command started: which of the figure
    workers, the PDF's child and this process waits on which."""
    import functools
    import os
    import shutil
    import time

    from reportgen.cli import main
    from reportgen.pipeline import pdfahead, reporting
    from reportgen.report import pdf
    from reportgen.report.figures import pool, style

    started = time.perf_counter()

    def said(what: str) -> None:
        print(f"{time.perf_counter() - started:6.2f} s  pid {os.getpid()}  {what}", flush=True)

    def timed(module, name: str, label: str, start: bool = True) -> None:
        real = getattr(module, name)

        @functools.wraps(real)
        def wrapper(*args, **kwargs):
            if start:
                said(f"{label} starts")
            try:
                return real(*args, **kwargs)
            finally:
                said(f"{label} ends" if start else f"{label} {args[0].name}")

        setattr(module, name, wrapper)

    timed(reporting, "draw", "figures (this process)")
    timed(pdf, "load_pdf_renderer", "import WeasyPrint")
    timed(pool, "_build_and_save", "a worker's figures")
    timed(style, "save", "saved", start=False)
    timed(pdfahead.PdfAhead, "start", "forking the PDF's child")
    timed(pdf, "layout", "PDF layout")
    timed(pdf, "write", "PDF drawing and writing")
    timed(pdfahead.PdfAhead, "finish", "the manifest written: waiting for the PDF")
    with tempfile.TemporaryDirectory() as tmp:
        copy = Path(tmp) / Path(run).name
        shutil.copytree(run, copy, symlinks=True)
        shutil.rmtree(copy / ".cache", ignore_errors=True)
        started = time.perf_counter()
        main(["render", "-q", str(copy)], standalone_mode=False)
        said("render done")


def time_update(repeats: int = 200) -> None:
    """The SGD step over LeNet's 8 parameters: one `multi_sgd_mom_update` over all of them (the
    operator Trainer.step calls, four parameters a call) against `sgd_mom_update` once per
    parameter (net/sgd.py), interleaved in rounds; and whether both give the same weights."""
    import statistics
    import time

    import mxnet as mx
    import numpy as np

    shapes = [(20, 1, 5, 5), (20,), (50, 20, 5, 5), (50,), (500, 800), (500,), (10, 500), (10,)]
    settings = {"momentum": 0.9, "rescale_grad": 0.01}

    def arrays() -> tuple[list, list, list]:
        """Weights, gradients and momenta: the same values at every call."""
        rng = np.random.default_rng(0)
        normal = [mx.nd.array(rng.standard_normal(s).astype(np.float32)) for s in shapes + shapes]
        return normal[: len(shapes)], normal[len(shapes) :], [mx.nd.zeros(s) for s in shapes]

    def multi(w: list, g: list, m: list) -> None:
        flat = [a for trio in zip(w, g, m) for a in trio]
        n = len(w)
        mx.nd.multi_sgd_mom_update(*flat, out=w, lrs=(0.05,) * n, wds=(1e-5,) * n, num_weights=n, **settings)

    def single(w: list, g: list, m: list) -> None:
        for weight, grad, mom in zip(w, g, m):
            mx.nd.sgd_mom_update(weight, grad, mom, out=weight, lr=0.05, wd=1e-5, **settings)

    state = {"multi": arrays(), "single": arrays()}
    ms: dict[str, list[float]] = {"multi": [], "single": []}
    for _ in range(5):
        for name, update in (("multi", multi), ("single", single)):
            mx.nd.waitall()
            started = time.perf_counter()
            for _ in range(repeats):
                update(*state[name])
            mx.nd.waitall()
            ms[name].append((time.perf_counter() - started) / repeats * 1e3)
    for name, values in ms.items():
        print(f"{name}: {statistics.median(values):.2f} ms a step ({min(values):.2f}-{max(values):.2f}, 5 rounds)")
    a, b = arrays(), arrays()
    for _ in range(20):
        multi(*a)
        single(*b)
    same = all(np.array_equal(x.asnumpy(), y.asnumpy()) for x, y in zip(a[0], b[0]))
    print(f"the same weights after 20 steps, bit for bit: {same}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("what", choices=("train", "render", "update", "timeline"))
    parser.add_argument("run", nargs="?", help="render, timeline: a finished run folder")
    parser.add_argument("--images", type=int, default=6000)
    args = parser.parse_args()
    if args.what == "train":
        profile_training(args.images)
    elif args.what == "update":
        time_update()
    elif args.what == "timeline":
        render_timeline(args.run)
    else:
        profile_render(args.run)


if __name__ == "__main__":
    main()
