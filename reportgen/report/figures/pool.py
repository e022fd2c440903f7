"""Drawing the report's figures on every core.

Each figure is a pure function of its values, and one takes matplotlib a tenth of a second or
more: on two cores, two processes draw the whole set in a little over half the time. The
workers are forked, so they start with the values already in memory and only a job's number
and its finished Figure cross between processes. Where fork is not available (macOS and Windows
start processes by spawning), or one core is all there is, the figures are drawn in turn.

Building a figure (its artists, caption and alt text) is a fifth of its time; writing its SVG
is the rest. Where the caller wants the words before the pictures (`early`: `render` lays the
PDF out from every figure's caption and size while the SVGs are written), each worker builds
all the figures it takes first, says each one's words at once, then saves their SVGs.

The workers never outlive the command: an interrupt (Ctrl-C, SIGTERM) ends them before it ends
it, and on Linux each asks the kernel to kill it when its parent dies (PR_SET_PDEATHSIG), so
not even a SIGKILL of the command leaves one behind. Ctrl-C reaches every process of the
terminal's group: the workers ignore it and leave it to the command.
"""

from __future__ import annotations

import multiprocessing
import os
import pickle
import shutil
import signal
import sys
import tempfile
from collections.abc import Callable
from concurrent.futures import FIRST_EXCEPTION, Future, ProcessPoolExecutor, wait
from pathlib import Path
from typing import Any

from reportgen.report.figures import style
from reportgen.report.figures.style import Figure
from reportgen.run.children import become_child_of
from reportgen.run.swap import deferred_signals

Job = Callable[[], Figure]

# Where `early` asked, the PDF's pages are laid out and drawn by another process meanwhile,
# and that is the longest path: the workers yield to it. On two cores, which three processes
# then share, a cold render took 7.7-8.2 s instead of 8.5-9.0 (benchmarks/RESULTS.md, round
# four); 5 rather than 10 leaves the workers a fair share on a busy machine.
NICENESS = 5

# What forked workers inherit; set only while a pool runs.
_jobs: list[Job] = []
_parent = 0  # the pid that forked them
_next: Any = None  # a shared counter: the next job for whichever worker is free
_saving: Any = None  # shared flags, one per job: a worker saves (or has saved) its SVG
_told: Any = None  # where `early` asked: a queue of ("built" | "saved", job) ...
_spool: Path | None = None  # ... and the folder holding each of those Figures
_SIGNALS = {signal.SIGINT, signal.SIGTERM}


def _start_worker() -> None:
    """A worker's first act (it starts with SIGINT and SIGTERM blocked, as its parent forked it)."""
    become_child_of(_parent)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, _SIGNALS)
    if _told is not None:
        os.nice(NICENESS)


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


def draw(
    jobs: list[Job],
    processes: int | None = None,
    meanwhile: Callable[[], None] | None = None,
    early: Callable[[list[Figure]], None] | None = None,
    saved: Callable[[Figure], None] | None = None,
) -> list[Figure]:
    """Every job's Figure, in the jobs' order; the same figures whatever the number of processes
    (at most `processes`, and never more than workers() allows).

    `meanwhile` runs in this process while the workers draw (where there are workers), e.g.
    the imports the next stage needs, which would otherwise wait their turn. Where there are
    workers, `early` is called here with every figure's words and size (each Figure with a
    `style.placeholder` SVG, in the jobs' order) once all are built, before their SVGs are
    written, which is most of the time; then `saved` with each Figure as its SVG is written.
    `render` lays the PDF out meanwhile, and draws its pages as the figures come.
    """
    processes = workers() if processes is None else min(processes, workers())
    if processes <= 1 or len(jobs) <= 1:
        if meanwhile is not None:
            meanwhile()
        return [job() for job in jobs]
    global _jobs, _parent, _next, _saving, _told, _spool
    fork = multiprocessing.get_context("fork")
    _jobs, _parent, _next, _saving = jobs, os.getpid(), fork.Value("i", 0), fork.Array("b", len(jobs))
    if early is not None:
        _told, _spool = fork.SimpleQueue(), Path(tempfile.mkdtemp(prefix="reportgen-figures-"))
    pool = ProcessPoolExecutor(processes, mp_context=fork, initializer=_start_worker)
    try:
        # The workers are forked by submit(), from this thread: with the signals blocked here,
        # each starts with them blocked until _start_worker has set its own handling.
        blocked = signal.pthread_sigmask(signal.SIG_BLOCK, _SIGNALS)
        try:
            tasks = [pool.submit(_build_and_save) for _ in range(processes)]
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, blocked)
        if meanwhile is not None:
            meanwhile()
        found: dict[int, Figure] = {}
        if early is not None:
            found = _listen(tasks, len(jobs), early, saved)
        for task in tasks:
            found.update(task.result())
    except BaseException:
        _end(pool)
        raise
    finally:
        if _spool is not None:
            shutil.rmtree(_spool, ignore_errors=True)  # our own mkdtemp: what the workers spooled
        _jobs, _next, _saving, _told, _spool = [], None, None, None, None
    pool.shutdown()
    return [found[index] for index in range(len(jobs))]


def _listen(
    tasks: list[Future[list[tuple[int, Figure]]]],
    count: int,
    early: Callable[[list[Figure]], None],
    saved: Callable[[Figure], None] | None,
) -> dict[int, Figure]:
    """Every job's Figure, as the workers tell it (`_build_and_save`): `early` called once all
    are built, `saved` with each as it is saved. A worker's error is raised here."""
    assert _told is not None and _spool is not None
    built: dict[int, Figure] = {}
    found: dict[int, Figure] = {}
    while len(built) < count or len(found) < count:  # a figure may be saved (built again) first
        while not _told.empty():
            what, index = _told.get()
            figure = pickle.loads((_spool / f"{what}-{index}.pickle").read_bytes())  # our own
            if what == "built":
                built[index] = figure
                if len(built) == count:
                    early([built[i] for i in range(count)])
            else:
                found[index] = figure
                if saved is not None:
                    saved(figure)
        if len(built) < count or len(found) < count:
            done, _ = wait(tasks, timeout=0.005, return_when=FIRST_EXCEPTION)
            for task in done:
                task.result()  # a worker's exception (a dead worker's: BrokenProcessPool), raised again
            if len(done) == len(tasks) and _told.empty():
                raise RuntimeError(f"the figure workers told {len(found)} of {count} figures")
    return found


def _tell(what: str, index: int, figure: Figure) -> None:
    """Tell the parent a figure is built or saved: the Figure in a file of the spool, then a
    message naming it. The message is a few bytes, written whole by one write(2) (under
    PIPE_BUF), so a worker killed at any moment leaves no half message for the parent to wait
    on, and its death reaches the parent as a broken pool instead."""
    assert _told is not None and _spool is not None
    (_spool / f"{what}-{index}.pickle").write_bytes(pickle.dumps(figure))
    _told.put((what, index))


def _build_and_save() -> list[tuple[int, Figure]]:
    """A worker's one task: draw figures, taking the next job until none is left. Where `early`
    asked, it builds each figure and tells its words and size at once, then saves their SVGs
    and any another worker has built and not yet saved, telling each, and returns none."""
    done: list[tuple[int, Figure]] = []
    if _told is None:  # no one waits for the words: each figure saved as it is built
        while (index := _take()) is not None:
            _claim(index)
            done.append((index, _jobs[index]()))
        return done
    kept: list[tuple[int, style.Held]] = []
    with style.holding() as held:
        while (index := _take()) is not None:
            figure = _jobs[index]()
            _tell("built", index, figure)
            if not held:  # a job that saved its figure itself, not through `finish`
                if _claim(index):
                    _tell("saved", index, figure)
            elif len(held) == 1:
                kept.append((index, held.pop()))
            else:
                raise RuntimeError(f"{figure.name}: a figure job finished {len(held)} figures")
    for index, built in kept:
        if _claim(index):
            _tell("saved", index, style.save(built))
    # The saving is most of the time, and which worker built what depends on timing: one
    # that is done saves, built again here, what another built and has not yet saved
    # (the same bytes: a figure is a pure function of its values), from the end of the list.
    for index in reversed(range(len(_jobs))):
        if _claim(index):
            _tell("saved", index, _jobs[index]())
    return done


def _take() -> int | None:
    """The next job no worker has built yet, or None."""
    assert _next is not None
    with _next.get_lock():
        index: int = _next.value
        _next.value += 1
    return index if index < len(_jobs) else None


def _claim(index: int) -> bool:
    """Whether this worker saves job `index` (no other has, nor will)."""
    assert _saving is not None
    with _saving.get_lock():
        if _saving[index]:
            return False
        _saving[index] = 1
        return True
