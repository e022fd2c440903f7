"""Writing run folders, tried as an attacker (or a careless user) would: a folder that is not a
run, files reportgen did not write, links, a second writer, a killed writer, an interrupt or
a failure in the middle of the swap."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from conftest import copy_of, everything

from reportgen.cli import main
from reportgen.errors import ReportgenError
from reportgen.run import folder, swap
from reportgen.run.lock import lock_path

QUICK = ["--epochs", "1", "--train-limit", "1000", "--test-limit", "300"]


def fake_run(out: Path, files: dict[str, bytes]) -> Path:
    """A run folder by hand: the files, and a manifest as reportgen writes one listing them."""
    for name, payload in files.items():
        (out / name).parent.mkdir(parents=True, exist_ok=True)
        (out / name).write_bytes(payload)
    listed = {name: {"sha256": hashlib.sha256(p).hexdigest(), "size": len(p)} for name, p in files.items()}
    (out / "manifest.json").write_text(
        json.dumps({"reportgen": "0.1.0", "command": "reportgen build", "files": listed})
    )
    return out


def not_a_run(root: Path) -> Path:
    """The issue's folder: a project of someone's, with notes, another model and a figure."""
    proj = root / "proj"
    for name, payload in {
        "model/NOTES.txt": b"my notes",
        "model/other-0003.params": b"\x00\x01weights",
        "figures/mine.png": b"\x89PNG\r\n\x1a\nmine",
        "report.html": b"<p>my report</p>",
    }.items():
        (proj / name).parent.mkdir(parents=True, exist_ok=True)
        (proj / name).write_bytes(payload)
    return proj


def one_line(result, code: int, *fragments: str) -> str:
    assert result.exit_code == code, result.output
    (line,) = result.stderr.splitlines()
    assert line.startswith("error: ") and all(f in line for f in fragments), line
    return line


# -- what may be written ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "command",
    [
        ["build", *QUICK],
        ["train", *QUICK],
        ["evaluate", "--model", "MODEL"],
        ["inspect", "--model", "MODEL"],
    ],
    ids=["build", "train", "evaluate", "inspect"],
)
def test_a_folder_that_is_not_a_run_is_refused_before_any_work(command, tmp_path, runner, monkeypatch, trained_run):
    from reportgen.pipeline import stages

    def no_work(*args, **kwargs):
        raise AssertionError("work began")

    monkeypatch.setattr(stages, "load_data", no_work)
    monkeypatch.setattr(stages, "load_model", no_work)
    proj = not_a_run(tmp_path)
    before = everything(tmp_path)
    args = [str(trained_run) if a == "MODEL" else a for a in command]
    result = runner.invoke(main, [*args, "-q", "--out", str(proj)])
    one_line(result, 2, str(proj), "not a reportgen run folder")
    assert everything(tmp_path) == before  # no staging folder, no lock left either


def test_files_a_run_folders_manifest_does_not_list_are_refused_not_replaced(tmp_path):
    run = fake_run(tmp_path / "run", {"model/lenet-0001.params": b"w", "report.html": b"<p>r</p>"})
    assert folder.check_run_folder(run).present == {"model", "report.html", "manifest.json"}
    (run / "model" / "NOTES.txt").write_text("mine")
    with pytest.raises(ReportgenError, match=r"model/NOTES.txt: not among the files its manifest.json lists"):
        folder.check_run_folder(run)
    (run / "model" / "NOTES.txt").unlink()
    (run / "report.html").write_text("<p>edited by hand</p>")  # listed, but not what reportgen wrote
    with pytest.raises(ReportgenError, match=r"report.html: differs from what its manifest.json lists"):
        folder.check_run_folder(run)


def test_links_in_a_run_folder_are_refused_without_being_followed(tmp_path):
    secrets = tmp_path / "ssh"
    secrets.mkdir()
    (secrets / "id_rsa").write_text("KEY")
    run = fake_run(tmp_path / "run", {"report.html": b"<p>r</p>"})
    (run / "figures").symlink_to(secrets)
    with pytest.raises(ReportgenError, match="figures: a symbolic link") as refused:
        folder.check_run_folder(run)
    assert "id_rsa" not in refused.value.format_message()
    (run / "figures").unlink()
    (run / "model").mkdir()
    (run / "model" / "lenet-0001.params").symlink_to("/etc/passwd")
    with pytest.raises(ReportgenError, match="lenet-0001.params: a symbolic link"):
        folder.check_run_folder(run)


def test_a_folder_of_runs_counts_as_empty_and_files_outside_reportgens_names_stay(tmp_path):
    output = tmp_path / "output"
    fake_run(output / "quick", {"report.html": b"<p>q</p>"})
    (output / ".quick.lock").write_text("")
    assert folder.check_run_folder(output).present == frozenset()  # README's output/ and output/quick
    (output / ".gitkeep").write_text("")  # as the repository ships output/
    assert folder.check_run_folder(output).present == frozenset()
    (output / ".checkpoint").mkdir()  # a name reportgen writes, in a folder that is not a run
    with pytest.raises(ReportgenError, match=r"not a reportgen run folder .*\.checkpoint in it"):
        folder.check_run_folder(output)
    (output / ".checkpoint").rmdir()
    run = fake_run(tmp_path / "run", {"report.pdf": b"%PDF", "report.html": b"<p>old</p>"})
    (run / "NOTES.md").write_text("mine, beside the run")
    previous = folder.check_run_folder(run)
    with folder.staging(run, previous.replaced()) as staged:
        (staged / "report.html").write_text("<p>new</p>")
        (staged / "manifest.json").write_text("{}")
    # The new run has no PDF: the old one goes (its manifest listed it); the notes stay.
    assert sorted(p.name for p in run.iterdir()) == ["NOTES.md", "manifest.json", "report.html"]
    assert (run / "report.html").read_text() == "<p>new</p>"


# -- the swap ---------------------------------------------------------------------------------


def staged_pair(tmp_path: Path) -> tuple[Path, Path, Path]:
    out = fake_run(tmp_path / "run", {"model/old.params": b"old", "history.json": b"[1]"})
    staged = tmp_path / ".run.tmp-test"
    for name, payload in {"model/new.params": b"new", "history.json": b"[2]", "manifest.json": b"{}"}.items():
        (staged / name).parent.mkdir(parents=True, exist_ok=True)
        (staged / name).write_bytes(payload)
    return out, staged, tmp_path


def test_an_interrupt_during_the_swap_waits_until_it_is_done(tmp_path, monkeypatch):
    out, staged, _ = staged_pair(tmp_path)
    exchange = swap.exchange

    def interrupted(a, b):
        os.kill(os.getpid(), signal.SIGINT)  # Ctrl-C between the first entry and the rest
        exchange(a, b)

    monkeypatch.setattr(swap, "exchange", interrupted)
    with pytest.raises(KeyboardInterrupt):
        folder.publish(staged, out)
    assert (out / "model" / "new.params").read_bytes() == b"new" and not (out / "model" / "old.params").exists()
    assert (out / "history.json").read_bytes() == b"[2]" and (out / "manifest.json").read_bytes() == b"{}"
    assert (staged / "model" / "old.params").read_bytes() == b"old"  # the old entry, to go with the staging


@pytest.mark.parametrize("renameat2", [True, False], ids=["exchange", "three-renames"])
def test_a_failure_during_the_swap_puts_every_entry_back(tmp_path, monkeypatch, renameat2):
    out, staged, _ = staged_pair(tmp_path)
    before = everything(out)
    if not renameat2:
        monkeypatch.setattr(swap, "_exchange", None)  # as on a system without renameat2
    calls = []
    exchange = swap.exchange

    def fails_second(a, b):
        calls.append(b.name)
        if len(calls) == 2:
            raise OSError(5, "Input/output error")
        exchange(a, b)

    monkeypatch.setattr(swap, "exchange", fails_second)
    with pytest.raises(ReportgenError, match="cannot move the new files in .* the folder is as it was"):
        folder.publish(staged, out)
    assert everything(out) == before


def test_a_folder_is_exchanged_whole_with_no_moment_without_it(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    (a / "x").mkdir(parents=True)
    b.mkdir()
    (b / "y").write_text("b")
    swap.exchange(a, b)
    assert [p.name for p in a.iterdir()] == ["y"] and [p.name for p in b.iterdir()] == ["x"]


# -- one writer at a time ---------------------------------------------------------------------

HOLDER = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from reportgen.run import folder
    with folder.claimed(Path(sys.argv[1]), "reportgen build --out x"):
        print("held", flush=True)
        time.sleep(600)
    """
)


def test_a_second_writer_is_refused_naming_the_first_and_a_killed_ones_lock_is_taken(tmp_path):
    out = tmp_path / "run"
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(out)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline() == "held\n"
        with pytest.raises(ReportgenError) as refused:
            with folder.claimed(out, "reportgen train"):
                pass
        assert refused.value.format_message() == (
            f"{out}: in use by another reportgen (pid {holder.pid}: reportgen build --out x); "
            "wait for it to end, or give another folder"
        )
        (tmp_path / ".run.tmp-left").mkdir()  # what a killed writer leaves beside the folder
    finally:
        holder.kill()  # kill -9: no `finally` of its own runs
        holder.wait()
        holder.stdout.close()
    assert lock_path(out).exists()
    with folder.claimed(out, "reportgen train"):
        assert f"{os.getpid()} reportgen train" in lock_path(out).read_text()
        assert not (tmp_path / ".run.tmp-left").exists()
    assert not lock_path(out).exists()


def test_a_link_planted_as_the_lock_is_not_followed(tmp_path):
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    lock_path(tmp_path / "run").symlink_to(victim)
    with pytest.raises(ReportgenError, match=r"\.run\.lock: cannot take the lock"):
        with folder.claimed(tmp_path / "run", "reportgen build"):
            pass
    assert victim.read_text() == "precious"


# -- what build and train publish -------------------------------------------------------------


def test_format_html_removes_the_old_pdf_and_site_takes_the_run(built_run, tmp_path, runner):
    run = copy_of(built_run, tmp_path / "run")
    result = runner.invoke(
        main, ["build", "-q", "--model", str(run), "--test-limit", "300", "--format", "html", "--out", str(run)]
    )
    assert result.exit_code == 0, result.output
    listed = json.loads((run / "manifest.json").read_text())["files"]
    hidden = {".checkpoint", ".cache"}  # the working folders, not listed
    on_disk = {p.relative_to(run).as_posix() for p in run.rglob("*") if p.is_file() and not hidden & set(p.parts)}
    assert "report.pdf" not in on_disk and on_disk == set(listed) | {"manifest.json"}
    assert (run / ".checkpoint").is_dir()  # build --model trained nothing: the checkpoint stays
    result = runner.invoke(main, ["site", "-q", str(run), "--out", str(tmp_path / "site")])
    assert result.exit_code == 0, result.output


def test_a_training_that_fails_leaves_the_run_and_its_checkpoint(trained_run, tmp_path, runner):
    run = copy_of(trained_run, tmp_path / "run")
    before = everything(run)
    result = runner.invoke(
        main, ["train", "-q", "--epochs", "2", "--lr", "1e20", "--train-limit", "1000", "--out", str(run)]
    )
    one_line(result, 2, "the loss became")
    assert everything(run) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]
