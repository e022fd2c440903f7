"""The run folder: gather into a staging folder, then move into place; and reading one back.

A run writes everything under `<parent>/.<name>.tmp-XXXX/` and only at the end
moves each entry into `<parent>/<name>/`, so a failed or interrupted run never
leaves a half-written file and never clobbers a finished run's files early.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from reportgen.errors import ReportgenError
from reportgen.run import archive
from reportgen.run.files import MANIFEST, sha256


def check_out(out: Path) -> None:
    """Refuse an --out that cannot become a run folder before any work is done."""
    out = Path(out)
    if out.is_symlink() and not out.exists():  # a dangling link: writing would fail after all the work
        raise ReportgenError(f"{out}: a symbolic link to {os.readlink(out)}, which does not exist")
    if out.exists() and not out.is_dir():
        raise ReportgenError(f"{out}: exists and is not a folder")
    parent = next((p for p in (out, *out.parents) if p.exists()), Path("."))
    if not parent.is_dir():  # /dev/null/x: nothing can be made inside a file
        raise ReportgenError(f"{out}: {parent} is not a folder")
    if not os.access(parent, os.W_OK):
        raise ReportgenError(f"{out}: cannot write in {parent}")


@contextlib.contextmanager
def staging(out: Path, finish: Callable[[Path, Path], None] | None = None) -> Iterator[Path]:
    """Yield an empty folder beside `out`; on success move its entries into `out`.

    `finish(staged, out)` does the moving; `publish` unless given (the site replaces
    what its earlier version wrote instead of keeping it).
    """
    # Absolute, without resolving links: Path(".") has no name and is its own parent, which
    # would put the staging folder inside the run folder rather than beside it.
    out = Path(os.path.abspath(out))
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=out.parent))
    except OSError as e:
        raise ReportgenError(f"{out}: cannot write here ({e.strerror})") from e
    try:
        yield tmp
        (finish or publish)(tmp, out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def publish(staged: Path, out: Path) -> None:
    """Move every entry of `staged` into `out`, replacing what is there.

    Files are replaced with os.replace (atomic); a folder is swapped in by
    moving the old one aside first. Entries of `out` not in `staged` stay.
    """
    if out.exists() and not out.is_dir():
        raise ReportgenError(f"{out}: exists and is not a folder")
    out.mkdir(parents=True, exist_ok=True)
    # The manifest goes last: while it still describes the old files, a reader
    # can tell the folder is mid-update.
    entries = sorted(staged.iterdir(), key=lambda p: p.name == MANIFEST)
    for entry in entries:
        replace_entry(entry, out / entry.name, staged)


def replace_entry(entry: Path, target: Path, aside: Path) -> None:
    """Move one staged file or folder to `target`. A folder already there is first moved
    into `aside` (the staging folder, deleted at the end), so no old file survives in it."""
    if entry.is_dir() and target.exists():
        os.replace(target, aside / f".old-{entry.name}")
    os.replace(entry, target)


def check_finished(folder: Path, needed: tuple[str, ...]) -> None:
    """Refuse a folder that is not a finished run: no such folder, or one of `needed` missing."""
    if not folder.is_dir():
        raise ReportgenError(f"{folder}: no such run folder")
    missing = [name for name in needed if not (folder / name).is_file()]
    if missing:
        raise ReportgenError(f"{folder}: not a finished reportgen run (no {missing[0]}); make one with reportgen build")


def check_listed(folder: Path, listed: dict[str, Any], names: list[str], pdf: archive.Sealed | None = None) -> None:
    """Refuse files that are not what the run's manifest.json recorded: a later command wrote
    them, or something changed them since (a `train` into a built run folder, say, leaves the
    old report's metrics beside a new model). report.pdf, which carries the manifest, is
    vouched for by its sidecar where the manifest's `pdf` entry says so (run/archive.py)."""
    for name in names:
        if name == archive.PDF and name not in listed and pdf is not None:
            archive.check(folder, pdf)
            continue
        entry = listed.get(name)
        recorded = entry.get("sha256") if isinstance(entry, dict) else None
        if recorded is None:
            raise ReportgenError(
                f"{folder / name}: not among the files its {MANIFEST} records (another command wrote the "
                "folder since); build the run again"
            )
        if recorded != sha256(folder / name):
            raise ReportgenError(
                f"{folder / name}: differs from the run's {MANIFEST} (changed after the run was built?)"
            )
