"""Drawing the report's figures on every core.

Each figure is a pure function of its values, and one takes matplotlib a tenth of a second or
more: on two cores, two processes draw the whole set in a little over half the time. The
workers are forked, so they start with the values already in memory and only a job's number
and its finished Figure cross between processes. Where fork is not available (macOS and Windows
start processes by spawning), or one core is all there is, the figures are drawn in turn.
"""

from __future__ import annotations

import multiprocessing
import os
import sys
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor

from reportgen.report.figures.style import Figure

Job = Callable[[], Figure]

_jobs: list[Job] = []  # what forked workers inherit; set only while a pool runs


def _run(index: int) -> Figure:
    return _jobs[index]()


def workers() -> int:
    """Processes to draw with: one per core, at most four (more only wait on each other); one
    where forking is unsafe.

    A process that has loaded MXNet runs its engine's and OpenMP's threads, and a fork copies
    only the thread that forks: a child once failed to import matplotlib's Agg extension
    ("undefined symbol: __gcc_personality_v0"), the dynamic loader's state copied mid-change.
    So `build`, which trains, draws in turn (a second against minutes of training), while
    `render` and `site`, which never load MXNet, draw on every core.
    """
    if "mxnet" in sys.modules or "fork" not in multiprocessing.get_all_start_methods():
        return 1
    return min(4, os.cpu_count() or 1)


def draw(jobs: list[Job], processes: int | None = None, meanwhile: Callable[[], None] | None = None) -> list[Figure]:
    """Every job's Figure, in the jobs' order; the same figures whatever the number of processes
    (at most `processes`, and never more than workers() allows).

    `meanwhile` runs in this process while the workers draw (where there are workers), e.g.
    the imports the next stage needs, which would otherwise wait their turn.
    """
    processes = workers() if processes is None else min(processes, workers())
    if processes <= 1 or len(jobs) <= 1:
        if meanwhile is not None:
            meanwhile()
        return [job() for job in jobs]
    global _jobs
    _jobs = jobs
    try:
        with ProcessPoolExecutor(processes, mp_context=multiprocessing.get_context("fork")) as pool:
            drawn = pool.map(_run, range(len(jobs)))  # submitted now, collected below
            if meanwhile is not None:
                meanwhile()
            return list(drawn)
    finally:
        _jobs = []
