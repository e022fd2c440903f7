"""The run folder: what a command may write into, a staging folder moved into place, and
reading one back.

A command writes only into a new or empty folder or a run folder of reportgen's own, whose
files it checks against their manifest before any work (`check_run_folder`). It writes
everything under `<parent>/.<name>.tmp-XXXX/` and only at the end swaps each entry into
`<parent>/<name>/` (`publish`), so a failed or interrupted run never leaves a half-written
file and never clobbers a finished run's files early.
"""

from __future__ import annotations

import contextlib
import functools
import glob
import json
import os
import re
import secrets
import shutil
import stat
import tempfile
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from reportgen.errors import ReportgenError
from reportgen.run import archive, paths, swap
from reportgen.run.files import CACHE, MANIFEST, sha256
from reportgen.run.lock import locked


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


# What reportgen writes at the top of a run folder. Anything under these names that the
# folder's manifest does not list is someone else's, and a command refuses to write there.
CHECKPOINTS = ".checkpoint"  # the last epoch's checkpoint, for --resume; not listed (hidden)
OWNED = (
    "report.html",
    archive.PDF,
    archive.SIDECAR,
    "metrics.json",
    "predictions.npz",
    "history.json",
    "inspection.npz",
    "attributions.npz",
    "features.npz",
    "model",
    "figures",
    MANIFEST,
    CHECKPOINTS,
    CACHE,
)
# What net/checkpoint.py leaves in .checkpoint/ (and a save cut short, its temporary files).
_CHECKPOINT_FILE = re.compile(r"\.?(checkpoint\.json|epoch-\d{4,}\.(params|states))(\.tmp)?")
# What the figure cache holds in .cache/ (report/figures/cache.py): an entry under its key. Not
# listed in the manifest; whatever it says is checked when it is read (a forged entry is drawn
# afresh), so its name is what makes it reportgen's to replace.
_CACHE_FILE = re.compile(r"figures/[0-9a-f]{64}\.(svg|json)")


@dataclass(frozen=True)
class Previous:
    """What the folder a command writes held before: nothing, or a reportgen run."""

    folder: Path
    present: frozenset[str] = frozenset()  # the entries of OWNED on disk

    def replaced(self) -> Callable[[Path, Path], None]:
        """How a command that makes the run afresh (build, train) finishes: every entry it
        staged swapped in, and what the previous run had and this one does not (a report.pdf
        under --format html, a report beside a newly trained model) removed."""
        # The checkpoint stays unless this command trained (and staged its own): `build --model`
        # into a trained run keeps what `train --resume` continues from, as before.
        return functools.partial(publish, remove=self.present - {CHECKPOINTS})


def carry_checkpoint(out: Path, staged: Path, resume: bool) -> Path:
    """staged/.checkpoint, where training checkpoints; resuming, it starts as a copy of
    out/.checkpoint's files (what `--resume` reads): out's own is replaced only with the run."""
    into = staged / CHECKPOINTS
    into.mkdir(exist_ok=True)
    if resume and (out / CHECKPOINTS).is_dir():
        for name in paths.files_inside(out, CHECKPOINTS, "a run folder"):
            with open(paths.open_inside(out, f"{CHECKPOINTS}/{name}", "a run folder"), "rb") as source:
                with open(into / name, "xb") as target:
                    shutil.copyfileobj(source, target)
    return into


def _refuse_unlisted(out: Path, relative: str, listed: dict[str, Any], pdf: archive.Sealed | None) -> None:
    entry = listed.get(relative)
    recorded = entry.get("sha256") if isinstance(entry, dict) else None
    if relative == MANIFEST:
        return
    if relative in (archive.PDF, archive.SIDECAR) and recorded is None and pdf is not None:
        # report.pdf carries the manifest: its sidecar vouches for it (a sidecar alone is ours
        # if it is sha256sum's line for report.pdf: the PDF it vouched for was removed).
        try:
            archive.check(out, pdf) if relative == archive.PDF else archive.recorded(out)
        except ReportgenError as e:
            raise ReportgenError(f"{e}, and reportgen would replace it; move it away or give another --out") from e
        return
    top, _, rest = relative.partition("/")
    if top == CHECKPOINTS and _CHECKPOINT_FILE.fullmatch(rest):
        return
    if top == CACHE and _CACHE_FILE.fullmatch(rest):
        return
    if recorded is None:
        raise ReportgenError(
            f"{out / relative}: not among the files its {MANIFEST} lists, and reportgen would replace it; "
            "move it away or give another --out"
        )
    if recorded != sha256(out / relative):
        raise ReportgenError(
            f"{out / relative}: differs from what its {MANIFEST} lists (changed since reportgen wrote it), "
            "and reportgen would replace it; move it away or give another --out"
        )


def _walk(out: Path, top: str, listed: dict[str, Any], pdf: archive.Sealed | None) -> None:
    """Refuse anything under out/top that reportgen did not write: a link, a file its manifest
    does not list (or lists with other bytes), anything not a file or folder. A stack, not
    recursion: a folder nested ten thousand deep is refused like any other, not a crash."""
    stack = [top]
    while stack:
        relative = stack.pop()
        path = out / relative
        mode = os.lstat(path).st_mode
        if stat.S_ISLNK(mode):
            raise ReportgenError(
                f"{path}: a symbolic link, which reportgen never writes; move it away or give another --out"
            )
        if stat.S_ISDIR(mode):
            stack.extend(f"{relative}/{name}" for name in sorted(os.listdir(path), reverse=True))
        elif stat.S_ISREG(mode):
            _refuse_unlisted(out, relative, listed, pdf)
        else:
            raise ReportgenError(f"{path}: not a regular file or folder; move it away or give another --out")


_JSON_BYTES = 64 * 2**20  # a manifest or a site's index.json; a real one is a few kB


def _json(folder: Path, name: str) -> Any:
    """folder/name's JSON, read with no link on the way; None if it is not there or not JSON."""
    try:
        return json.loads(paths.read_inside(folder, name, "a run folder", limit=_JSON_BYTES))
    except (ReportgenError, OSError, ValueError):
        return None


def _listed(out: Path) -> tuple[dict[str, Any], archive.Sealed | None]:
    """The files out/manifest.json lists, and its "pdf" entry; refused if reportgen did not write it."""
    body = _json(out, MANIFEST)
    listed = body.get("files") if isinstance(body, dict) else None
    if not isinstance(listed, dict) or not isinstance(body.get("reportgen"), str):
        raise ReportgenError(f"{out / MANIFEST}: not a manifest reportgen wrote; give another --out")
    try:
        return listed, archive.sealed(body)
    except ReportgenError as e:
        raise ReportgenError(f"{out / MANIFEST}: not a manifest reportgen wrote ({e}); give another --out") from e


_BESIDE = re.compile(r"\..+\.(lock|tmp-\w+)")  # a run's lock or staging folder, beside it


def _of_reportgen(path: Path) -> bool:
    """Whether `path` is reportgen's: a run folder or a site (`output/quick` in `output/`,
    where the default run goes), or the lock or staging folder of one."""
    if _BESIDE.fullmatch(path.name):
        return True
    if path.is_symlink() or not path.is_dir():
        return False
    manifest, index = _json(path, MANIFEST), _json(path, "index.json")
    if isinstance(manifest, dict) and isinstance(manifest.get("reportgen"), str):
        return isinstance(manifest.get("files"), dict)
    return isinstance(index, dict) and str(index.get("generator", "")).startswith("reportgen ")


def _hidden(name: str) -> bool:
    return name.startswith(".") and name not in OWNED and not _BESIDE.fullmatch(name)


def check_run_folder(out: Path) -> Previous:
    """Refuse an --out that is neither new, nor empty, nor a reportgen run folder whose files
    under the names reportgen writes (OWNED) are all its manifest lists; before any work. A
    folder that holds only reportgen's own (other runs, a site) and hidden files (git's
    .gitkeep) counts as empty.

    A command never deletes or overwrites a file it did not write: the user's notes in
    model/, a figure of their own, a report.html of another tool.
    """
    out = Path(out)
    check_out(out)
    if not out.is_dir():
        return Previous(out)
    names = sorted(os.listdir(out))
    if MANIFEST not in names:
        # A hidden file of the user's or of git (output/.gitkeep, .gitignore, .DS_Store) is
        # under no name reportgen writes: it stays, and does not make the folder someone else's.
        others = [name for name in names if not _hidden(name) and not _of_reportgen(out / name)]
        if others:
            raise ReportgenError(
                f"{out}: not empty and not a reportgen run folder (no {MANIFEST}, and {others[0]} in it); "
                "reportgen writes only into a new or empty folder or a run folder of its own"
            )
        return Previous(out)
    listed, pdf = _listed(out)
    present = [name for name in names if name in OWNED]
    for name in present:
        try:
            _walk(out, name, listed, pdf)
        except OSError as e:  # a path too long to name, say: the entry it is in
            raise ReportgenError(f"{out / name}: cannot be read ({e.strerror}); give another --out") from e
    return Previous(out, frozenset(present))


@contextlib.contextmanager
def claimed(out: Path, command: str) -> Iterator[None]:
    """Inside, this process is the one writer of `out` (run/lock.py; `command` names it to a
    second one); the staging folders a killed writer left beside `out` are removed first."""
    with locked(out, command):
        out = Path(os.path.abspath(out))
        with contextlib.suppress(OSError):
            for left in out.parent.glob(f".{glob.escape(out.name)}.tmp-*"):
                if left.is_dir() and not left.is_symlink():
                    with swap.deferred_signals():
                        shutil.rmtree(left, ignore_errors=True)
        yield


@contextlib.contextmanager
def staging(out: Path, finish: Callable[[Path, Path], None] | None = None) -> Iterator[Path]:
    """Yield an empty folder beside `out`; on success move its entries into `out`.

    `finish(staged, out)` does the moving; `publish` unless given (keeping what it does not
    replace). The folder goes, with whatever the swap moved out of `out`, however the block
    ends; signals wait while it is made and removed, so none leaves it behind.
    """
    # Absolute, without resolving links: Path(".") has no name and is its own parent, which
    # would put the staging folder inside the run folder rather than beside it.
    out = Path(os.path.abspath(out))
    tmp: Path | None = None
    try:
        with swap.deferred_signals():
            try:
                out.parent.mkdir(parents=True, exist_ok=True)
                tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=out.parent))
            except OSError as e:
                raise ReportgenError(f"{out}: cannot write here ({e.strerror})") from e
        yield tmp
        (finish or publish)(tmp, out)
    finally:
        if tmp is not None:
            with swap.deferred_signals():
                shutil.rmtree(tmp, ignore_errors=True)


def publish(staged: Path, out: Path, remove: Iterable[str] = (), order: Sequence[str] = ()) -> None:
    """Move every entry of `staged` into `out`, each swapped with the one it replaces in one
    step, then take the entries named in `remove` (and not staged) out of `out`.

    The manifest goes last: while it still describes the old files, a reader can tell the
    folder is mid-update; `order` puts other names first. The entries replaced or removed end
    in `staged`, deleted with it. Signals wait until the whole swap is done; a failure part
    way (a rename the file system refuses) puts back every entry already moved.
    """
    if out.exists() and not out.is_dir():
        raise ReportgenError(f"{out}: exists and is not a folder")
    out.mkdir(parents=True, exist_ok=True)
    first = {name: k for k, name in enumerate(order)}
    entries = sorted(os.listdir(staged), key=lambda name: (name == MANIFEST, first.get(name, len(first)), name))
    removed = staged / f".removed-{secrets.token_hex(4)}"
    undo: list[Callable[[], None]] = []
    with swap.deferred_signals():
        try:
            for name in entries[:-1] if entries[-1:] == [MANIFEST] else entries:
                undo.append(_move_in(staged / name, out / name))
            for name in sorted(set(remove) - set(entries)):
                if os.path.lexists(out / name):
                    removed.mkdir(exist_ok=True)
                    os.rename(out / name, removed / name)
                    undo.append(functools.partial(os.rename, removed / name, out / name))
            if entries[-1:] == [MANIFEST]:
                undo.append(_move_in(staged / MANIFEST, out / MANIFEST))
        except OSError as e:
            for step in reversed(undo):
                with contextlib.suppress(OSError):
                    step()
            raise ReportgenError(f"{out}: cannot move the new files in ({e.strerror}); the folder is as it was") from e


def _move_in(entry: Path, target: Path) -> Callable[[], None]:
    """Put `entry` at `target`, the old one (if any) left at `entry`; return the undoing."""
    if os.path.lexists(target):
        swap.exchange(entry, target)
        return functools.partial(swap.exchange, entry, target)
    os.rename(entry, target)
    return functools.partial(os.rename, target, entry)


def check_finished(folder: Path, needed: tuple[str, ...]) -> None:
    """Refuse a folder that is not a finished run: no such folder, or one of `needed` missing."""
    if not folder.is_dir():
        raise ReportgenError(f"{folder}: no such run folder")
    missing = [name for name in needed if not (folder / name).is_file()]
    if missing:
        raise ReportgenError(f"{folder}: not a finished reportgen run (no {missing[0]}); make one with reportgen build")


def check_listed(folder: Path, listed: dict[str, Any], names: list[str], pdf: archive.Sealed | None = None) -> None:
    """Refuse files that are not what the run's manifest.json recorded: a later command wrote
    them, or something changed them since (a file copied into a run folder by hand, say).
    report.pdf, which carries the manifest, is vouched for by its sidecar where the manifest's
    `pdf` entry says so (run/archive.py)."""
    for name in names:
        if name == archive.PDF and name not in listed and pdf is not None:
            archive.check(folder, pdf)
            continue
        check_recorded(folder, listed, name, sha256(folder / name))


def check_recorded(folder: Path, listed: dict[str, Any], name: str, digest: str) -> None:
    """check_listed for one file whose SHA-256 (`digest`) is already taken."""
    entry = listed.get(name)
    recorded = entry.get("sha256") if isinstance(entry, dict) else None
    if recorded is None:
        raise ReportgenError(
            f"{folder / name}: not among the files its {MANIFEST} records (another command wrote the "
            "folder since); build the run again"
        )
    if recorded != digest:
        raise ReportgenError(f"{folder / name}: differs from the run's {MANIFEST} (changed after the run was built?)")
