"""The PDF laid out in a forked child while `render` writes report.html and the manifest
(pipeline/pdfahead.py): the same report.pdf as the serial render, the child's error is the
command's, and the child never outlives the command nor leaves its staging folder behind."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import digest

from reportgen.cli import main

ROOT = Path(__file__).resolve().parent.parent

# `reportgen render RUN` in a fresh interpreter (the test process has loaded MXNet, where no
# child is forked). The clock is stopped so that two renders write the same manifest, which
# the PDF carries. MODE: fork (as the command does), serial (no child), fail (the layout
# fails in the child), hang (the layout waits: a child to kill), noswap (the child cannot put
# the figures drawn meanwhile in place of their placeholders), missize (placeholders of
# another size than their figures), slow (the figures saved slowly), templates (a user's
# templates). NOTE.swap gets a line for each time the child tried to put the figures in place,
# and whether it could; NOTE.drawn one for each figure its pages waited for ("waited") or
# found written ("ready"); NOTE.parent one for each PDF the command made itself.
SCRIPT = r"""
import datetime as real, json, os, sys, time, types
from reportgen.pipeline import pdfahead, settings
from reportgen.report import pdf
from reportgen.run import record
from reportgen.errors import RenderError

run, mode, note = sys.argv[1], sys.argv[2], sys.argv[3]
settings.time = types.SimpleNamespace(perf_counter=lambda: 0.0)

class Fixed(real.datetime):
    @classmethod
    def now(cls, tz=None):
        return real.datetime(2026, 1, 2, 3, 4, 5, tzinfo=tz)

record._dt = types.SimpleNamespace(datetime=Fixed, UTC=real.UTC)
if mode == "serial":
    pdfahead.forkable = lambda: False
real_layout = pdf.layout

def layout(*args, **kwargs):
    with open(note, "w") as f:
        f.write(str(os.getpid()))
    if mode == "fail":
        raise RenderError("the layout failed on purpose")
    if mode == "hang":
        time.sleep(300)
    return real_layout(*args, **kwargs)

pdf.layout = layout
real_swap = pdf.fill_in

def swap(*args, **kwargs):
    done = real_swap(*args, **kwargs) if mode != "noswap" else False
    with open(note + ".swap", "a") as f:
        f.write(f"{done}\n")
    return done

pdf.fill_in = swap
real_render_pdf = pdf.render_pdf

def render_pdf(*args, **kwargs):
    with open(note + ".parent", "a") as f:
        f.write(f"{os.getpid()}\n")
    return real_render_pdf(*args, **kwargs)

pdf.render_pdf = render_pdf
real_drawn = pdfahead._drawn

def drawn(staged, placeholder, parent):  # whether the figure was there when its page came
    ready = (staged / "figures" / placeholder.filename).exists()
    with open(note + ".drawn", "a") as f:
        f.write("ready\n" if ready else "waited\n")
    return real_drawn(staged, placeholder, parent)

pdfahead._drawn = drawn
if mode == "slow":  # the figures saved slowly: the child's pages wait for them
    from reportgen.report.figures import style
    real_save = style.save
    style.save = lambda held: time.sleep(0.3) or real_save(held)
if mode == "missize":  # every placeholder says another viewBox than its figure's
    from reportgen.report.figures import style
    real_placeholder = style.placeholder
    style.placeholder = lambda *a: real_placeholder(*a).replace(b'viewBox="0 0 ', b'viewBox="0 0 1')
forked = []
real_start = pdfahead.PdfAhead.start
pdfahead.PdfAhead.start = lambda self, *a: forked.append(real_start(self, *a)) or forked[-1]
import atexit
atexit.register(lambda: print(json.dumps({"forked": forked, "pid": os.getpid()})))
from reportgen.cli import main
if mode == "templates":  # a user's templates (an empty folder: every template the built-in one)
    os.makedirs(note + ".templates", exist_ok=True)
    main(["render", "-q", "--templates", note + ".templates", run])
else:
    main(["render", "-q", run])  # as the command line runs it: its errors as exit codes
"""


def render(run: Path, mode: str, note: Path) -> subprocess.CompletedProcess:
    """The command from the run's parent, the run named alone: the manifest records the command."""
    return subprocess.run(
        [sys.executable, "-c", SCRIPT, run.name, mode, str(note)],
        cwd=run.parent,
        capture_output=True,
        text=True,
        timeout=600,
    )


def gone(pid: int) -> bool:
    """No such process, or only its exit status left (a zombie the container's init keeps)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return True
    return state in ("Z", "X")


def wait_until(condition, seconds: float = 60.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return condition()


def staging_left(run: Path) -> list[str]:
    return [p.name for p in run.parent.iterdir() if p.name.startswith(f".{run.name}.tmp-")]


@pytest.fixture(scope="module")
def built(trained_run, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("ahead") / "run"
    result = CliRunner().invoke(
        main, ["build", "-q", "--model", str(trained_run), "--test-limit", "300", "--format", "html", "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    # A render fills the figure cache with what a render of this run keys (a build leaves
    # some figures out of it): each test's render takes every figure from it, unless it empties it.
    result = CliRunner().invoke(main, ["render", "-q", str(out)])
    assert result.exit_code == 0, result.output
    return out


@pytest.fixture
def run(built, tmp_path) -> Path:
    copy = tmp_path / "run"
    shutil.copytree(built, copy)
    return copy


def test_the_forked_pdf_is_the_serial_one(run, tmp_path):
    serial = tmp_path / "serial" / "run"
    shutil.copytree(run, serial)
    forked = render(run, "fork", tmp_path / "note-fork")
    assert forked.returncode == 0, forked.stderr[-2000:]
    assert json.loads(forked.stdout.strip().splitlines()[-1])["forked"] == [True]  # once the values are known
    # The layout ran in another process than the command's.
    assert int((tmp_path / "note-fork").read_text()) != json.loads(forked.stdout.splitlines()[-1])["pid"]
    alone = render(serial, "serial", tmp_path / "note-serial")
    assert alone.returncode == 0, alone.stderr[-2000:]
    assert not any(json.loads(alone.stdout.strip().splitlines()[-1])["forked"])
    assert (run / "manifest.json").read_bytes() == (serial / "manifest.json").read_bytes()
    assert (run / "report.pdf").read_bytes() == (serial / "report.pdf").read_bytes()
    assert (run / "report.html").read_bytes() == (serial / "report.html").read_bytes()

    from pypdf import PdfReader

    attached = PdfReader(run / "report.pdf").attachments
    assert attached["manifest.json"] == [(run / "manifest.json").read_bytes()]  # the one written meanwhile
    assert staging_left(run) == []


@pytest.fixture(scope="module")
def cold_serial(built, tmp_path_factory) -> Path:
    """The run rendered with every figure drawn and no child: what each cold render must equal."""
    serial = tmp_path_factory.mktemp("serial") / "run"
    shutil.copytree(built, serial)
    shutil.rmtree(serial / ".cache")
    alone = render(serial, "serial", serial.parent / "note")
    assert alone.returncode == 0, alone.stderr[-2000:]
    assert not any(json.loads(alone.stdout.strip().splitlines()[-1])["forked"])
    assert not (serial.parent / "note.swap").exists()
    return serial


@pytest.mark.skipif((os.cpu_count() or 1) < 2, reason="one core: the figures are drawn in turn, before the PDF")
@pytest.mark.parametrize("mode", ["fork", "slow", "noswap", "missize"])
def test_the_pdf_laid_out_while_the_figures_are_drawn_is_the_serial_one(run, tmp_path, mode, cold_serial):
    # No cache: every figure is drawn, and the child lays the pages out with placeholders of
    # their size meanwhile, then puts the figures in their place (or, where it cannot, the
    # command makes the PDF itself).
    shutil.rmtree(run / ".cache")
    forked = render(run, mode, tmp_path / "note")
    assert forked.returncode == 0, forked.stderr[-2000:]
    assert json.loads(forked.stdout.strip().splitlines()[-1])["forked"] == [True, False]  # early, then a no-op
    assert (tmp_path / "note.swap").read_text() == ("False\n" if mode == "noswap" else "True\n")
    # Where the child could not put a figure in place, the command made the PDF itself.
    assert (tmp_path / "note.parent").exists() == (mode in ("noswap", "missize"))
    if mode == "slow":  # some page waited for its figure, and got it
        assert "waited" in (tmp_path / "note.drawn").read_text().split()
    for name in ("manifest.json", "report.pdf", "report.html"):
        assert (run / name).read_bytes() == (cold_serial / name).read_bytes(), name
    assert staging_left(run) == []


def test_with_a_user_s_templates_the_pdf_waits_for_the_figures(run, tmp_path, cold_serial):
    # A user's template may show a figure otherwise than as an <img> (its SVG inline, say),
    # where a placeholder could not be swapped: the child is forked once the figures are drawn.
    shutil.rmtree(run / ".cache")
    done = render(run, "templates", tmp_path / "note")
    assert done.returncode == 0, done.stderr[-2000:]
    assert json.loads(done.stdout.strip().splitlines()[-1])["forked"] == [True]
    assert not (tmp_path / "note.swap").exists() and not (tmp_path / "note.drawn").exists()
    assert (run / "report.pdf").exists() and staging_left(run) == []


def test_an_error_in_the_child_is_the_commands(run, tmp_path):
    before = digest(run)
    done = render(run, "fail", tmp_path / "note")
    assert done.returncode == 2, done.stderr[-2000:]  # a RenderError, as in the serial render
    assert "the layout failed on purpose" in done.stderr
    assert "Traceback" not in done.stderr
    assert digest(run) == before and staging_left(run) == []


@pytest.mark.parametrize("how", ["SIGTERM", "SIGKILL"])
def test_the_child_dies_with_the_command(run, tmp_path, how):
    if how == "SIGKILL" and not sys.platform.startswith("linux"):
        pytest.skip("the parent-death signal is Linux's")
    before = digest(run)
    note = tmp_path / "note"
    command = subprocess.Popen(
        [sys.executable, "-c", SCRIPT, str(run), "hang", str(note)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert wait_until(lambda: note.exists() and note.read_text() != "", 300), "the child never started"
        child = int(note.read_text())
        assert child != command.pid and not gone(child)
        command.send_signal(getattr(signal, how))
        command.communicate(timeout=120)
    finally:
        if command.poll() is None:
            command.kill()
        command.communicate()
    assert wait_until(lambda: gone(child), 30), "the child outlived the command"
    assert digest(run) == before
    if how == "SIGTERM":  # a SIGKILL leaves no chance to clean up: only the child's death is asked
        assert command.returncode == 128 + signal.SIGTERM
        assert staging_left(run) == []
    else:
        assert command.returncode == -signal.SIGKILL
        for left in staging_left(run):  # the test's own leftovers
            shutil.rmtree(run.parent / left)
