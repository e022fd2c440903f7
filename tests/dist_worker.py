"""A worker of a distributed job that trains through the library, for tests/test_distributed.py.

    python tests/dist_worker.py OUT [--epochs 2] [--train-limit 1000] [--test-limit 200]
                                    [--batch-size 100] [--kvstore dist_sync] [--devices 1] [--pause 0]

Run under a scheduler and a server as a worker (DMLC_ROLE=worker): joins the job, calls
train.fit, saves its parameters to OUT/rank-<r>.npz and prints one JSON line (its rank,
the number of workers, the history's last test accuracy). --pause sleeps at every progress
update (every batch), so a test can kill a node mid-training.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import time
from pathlib import Path

import numpy as np

from reportgen import data
from reportgen.net import distributed, train


class Pausing:
    """Progress that says which batch it is at (stdout) and sleeps there."""

    def __init__(self, pause: float) -> None:
        self.pause = pause

    @contextlib.contextmanager
    def epoch(self, epoch, epochs, batches):
        def update(batches_done, loss, accuracy, images_per_second):
            print(f"epoch {epoch} batch {batches_done}", flush=True)
            time.sleep(self.pause)

        yield update

    def end_epoch(self, record):
        pass


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("out", type=Path)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--train-limit", type=int, default=1000)
    parser.add_argument("--test-limit", type=int, default=200)
    parser.add_argument("--batch-size", type=int, default=100)
    parser.add_argument("--kvstore", default="dist_sync")
    parser.add_argument("--devices", type=int, default=1)
    parser.add_argument("--pause", type=float, default=0.0)
    args = parser.parse_args()
    import mxnet as mx

    dataset = data.load(train_limit=args.train_limit, test_limit=args.test_limit)
    config = train.TrainConfig(epochs=args.epochs, batch_size=args.batch_size, kvstore=args.kvstore)
    job = distributed.join(config.kvstore)
    contexts = [mx.cpu(i) for i in range(args.devices)]
    progress = Pausing(args.pause) if args.pause else None
    net, history = train.fit(dataset, config, contexts, progress=progress, sync_every=1 if args.pause else 50, job=job)
    params = {name: p.data(contexts[0]).asnumpy() for name, p in net.collect_params().items()}
    np.savez(args.out / f"rank-{job.rank}.npz", **params)
    last = history.epochs[-1]
    print(json.dumps({"rank": job.rank, "workers": job.workers, "test_accuracy": last.test_accuracy}), flush=True)


if __name__ == "__main__":
    try:
        main()
    except BaseException as e:  # a worker that fails mid-job must not wait at ps-lite's exit barrier
        print(f"error: {type(e).__name__}: {e}", file=sys.stderr, flush=True)
        distributed.end(1)
