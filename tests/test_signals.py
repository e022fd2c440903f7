"""Ctrl-C and SIGTERM sent to a real reportgen process at the moments that matter: during
training (with a second command trying the same folder), while the figure workers draw, and
SIGKILL there too. Each time: the shell's exit code, one line, no process left, no staging
folder, the previous run whole (its checkpoint too). The swap itself is interrupted in
test_writing.py, in-process, where the moment can be chosen exactly."""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import copy_of, everything

from reportgen.run.files import CACHE

pytestmark = pytest.mark.slow

WAIT = 300  # seconds at most for a moment to come; the machine may be busy


def reportgen(*args: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "reportgen", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def children(pid: int) -> list[int]:
    """The processes whose parent is `pid`, from /proc (psutil is not installed)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry.name))
    return found


def alive(pid: int) -> bool:
    """Running, not a zombie waiting for init to reap it."""
    try:
        return (Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def wait_for(condition, what: str) -> None:
    deadline = time.monotonic() + WAIT
    while not condition():
        assert time.monotonic() < deadline, f"never {what}"
        time.sleep(0.05)


def without_cache(run: Path) -> Path:
    """The run with its figure cache removed: every figure is drawn again, in the workers."""
    shutil.rmtree(run / CACHE)
    return run


def staging(parent: Path) -> list[str]:
    return sorted(p.name for p in parent.iterdir() if ".tmp-" in p.name)


def test_sigterm_during_training_keeps_the_previous_run_and_its_checkpoint(built_run, tmp_path):
    run = copy_of(built_run, tmp_path / "run")
    before = everything(run)
    build = reportgen("build", "-q", "--epochs", "5", "--train-limit", "6000", "--test-limit", "300", "--seed", "7",
                      "--out", str(run))  # fmt: skip
    try:
        # Training has written an epoch's checkpoint: into the staging folder, not the run.
        wait_for(lambda: list(tmp_path.glob(".run.tmp-*/.checkpoint/checkpoint.json")), "checkpointed")
        second = subprocess.run(
            [sys.executable, "-m", "reportgen", "train", "-q", "--epochs", "1", "--out", str(run)],
            capture_output=True,
            text=True,
        )
        assert second.returncode == 2
        assert second.stderr == (
            f"error: {run}: in use by another reportgen (pid {build.pid}: reportgen build -q --epochs 5 "
            f"--train-limit 6000 --test-limit 300 --seed 7 --out {run}); wait for it to end, or give another folder\n"
        )
        build.send_signal(signal.SIGTERM)
        stdout, stderr = build.communicate(timeout=WAIT)
    finally:
        build.kill()
        build.communicate()
    assert (build.returncode, stderr, stdout) == (143, "error: interrupted\n", "")
    assert everything(run) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]  # no staging folder, no lock


@pytest.mark.parametrize("how, code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)], ids=["sigint", "sigterm"])
def test_an_interrupt_while_the_figures_are_drawn_leaves_no_worker(built_run, tmp_path, how, code):
    run = without_cache(copy_of(built_run, tmp_path / "run"))
    before = everything(run)
    render = reportgen("render", "-q", str(run))
    try:
        wait_for(lambda: len(children(render.pid)) >= 2, "drawing in two workers")
        workers = children(render.pid)
        render.send_signal(how)
        stdout, stderr = render.communicate(timeout=WAIT)
    finally:
        render.kill()
        render.communicate()
    assert (render.returncode, stderr, stdout) == (code, "error: interrupted\n", "")
    assert not [pid for pid in workers if alive(pid)]
    assert everything(run) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]


# A command interrupted, then one more SIGINT as Python shuts down (from atexit, after the
# command line has put its handlers back): the process still ends with 130 and one line.
LATE = r"""
import atexit, os, signal, sys
from reportgen.cli import main, run

@main.command("interrupted")
def interrupted():
    raise KeyboardInterrupt

atexit.register(lambda: os.kill(os.getpid(), signal.SIGINT))
sys.argv = ["reportgen", "interrupted"]
run()
"""


def test_a_second_interrupt_as_the_process_ends_keeps_its_exit_code():
    done = subprocess.run([sys.executable, "-c", LATE], capture_output=True, text=True, timeout=120)
    assert (done.returncode, done.stderr, done.stdout) == (130, "error: interrupted\n", "")


def test_a_killed_render_takes_its_workers_with_it_and_the_next_one_cleans_up(built_run, tmp_path):
    run = without_cache(copy_of(built_run, tmp_path / "run"))
    before = everything(run)
    render = reportgen("render", "-q", str(run), "--format", "html")
    wait_for(lambda: len(children(render.pid)) >= 2, "drawing in two workers")
    workers = children(render.pid)
    render.kill()  # SIGKILL: no handler runs; the kernel kills the workers (PR_SET_PDEATHSIG)
    render.communicate()
    wait_for(lambda: not [pid for pid in workers if alive(pid)], "ended the workers")
    assert everything(run) == before
    assert staging(tmp_path)  # what SIGKILL leaves: the staging folder, and the lock, not held
    again = subprocess.run([sys.executable, "-m", "reportgen", "render", "-q", str(run), "--format", "html"])
    assert again.returncode == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]
