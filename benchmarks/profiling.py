"""Where the time goes inside a stage: MXNet's profiler for training, cProfile for the render.

    .venv/bin/python benchmarks/profiling.py train [--images 6000]   # per operator, one epoch
    .venv/bin/python benchmarks/profiling.py render RUN_DIR          # per function, the whole render

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
from reportgen.net import devices, train  # noqa: E402


def profile_training(images: int) -> None:
    import mxnet as mx

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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("what", choices=("train", "render"))
    parser.add_argument("run", nargs="?", help="render: a finished run folder")
    parser.add_argument("--images", type=int, default=6000)
    args = parser.parse_args()
    if args.what == "train":
        profile_training(args.images)
    else:
        profile_render(args.run)


if __name__ == "__main__":
    main()
