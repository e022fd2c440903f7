"""Drawing the report's figures on every core.

Each figure is a pure function of its values, and one takes matplotlib a tenth of a second or
more: on two cores, two processes draw the whole set in a little over half the time. The
workers are forked, so they start with the values already in memory and only a job's number
and its finished Figure cross between processes. Where fork is not available (macOS and Windows
start processes by spawning), or one core is all there is, the figures are drawn in turn.

The workers never outlive the command: an interrupt (Ctrl-C, SIGTERM) ends them before it ends
it, and on Linux each asks the kernel to kill it when its parent dies (PR_SET_PDEATHSIG), so
not even a SIGKILL of the command leaves one behind. Ctrl-C reaches every process of the
terminal's group: the workers ignore it and leave it to the command.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import sys
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor

from reportgen.report.figures.style import Figure
from reportgen.run.children import become_child_of
from reportgen.run.swap import deferred_signals

Job = Callable[[], Figure]

_jobs: list[Job] = []  # what forked workers inherit; set only while a pool runs
_parent = 0  # the pid that forked them
_SIGNALS = {signal.SIGINT, signal.SIGTERM}


def _run(index: int) -> Figure:
    return _jobs[index]()


def _start_worker() -> None:
    """A worker's first act (it starts with SIGINT and SIGTERM blocked, as its parent forked it)."""
    become_child_of(_parent)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, _SIGNALS)


def _end(pool: ProcessPoolExecutor) -> None:
    """Stop every worker now (they draw, and shutdown would wait for each job they hold)."""
    with deferred_signals():
        # ProcessPoolExecutor has no public way to stop its workers before Python 3.14.
        processes = list(getattr(pool, "_processes", {}).values())
        for process in processes:
            process.terminate()
        pool.shutdown(wait=True, cancel_futures=True)
        for process in processes:
            process.join()


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
    global _jobs, _parent
    _jobs, _parent = jobs, os.getpid()
    pool = ProcessPoolExecutor(processes, mp_context=multiprocessing.get_context("fork"), initializer=_start_worker)
    try:
        # The workers are forked inside map(), from this thread: with the signals blocked here,
        # each starts with them blocked until _start_worker has set its own handling.
        blocked = signal.pthread_sigmask(signal.SIG_BLOCK, _SIGNALS)
        try:
            drawn = pool.map(_run, range(len(jobs)))  # submitted now, collected below
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, blocked)
        if meanwhile is not None:
            meanwhile()
        figures = list(drawn)
    except BaseException:
        _end(pool)
        raise
    finally:
        _jobs = []
    pool.shutdown()
    return figures
