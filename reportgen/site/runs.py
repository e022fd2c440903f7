"""The site's runs: each finished run folder read into typed values, refused before anything
is written if it is not a finished run."""

from __future__ import annotations

import datetime as _dt
import hashlib
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from reportgen.errors import DataError
from reportgen.run import files, paths
from reportgen.run import folder as run_folder
from reportgen.run.evaluation import Evaluation
from reportgen.run.history import History, training_seconds
from reportgen.run.record import RunRecord
from reportgen.site import markup, pdf

NEEDED = (files.MANIFEST, "metrics.json", "report.html")  # a finished run has them all
COPIED = ("report.html", "report.pdf", "metrics.json", files.MANIFEST)  # and figures/
FIGURES = "figures"
FIGURE_KINDS = (".svg", ".png")
READ = (*COPIED, "history.json", FIGURES)  # what site reads of a run
MAX_BYTES = 256 * 2**20  # one published file; the default report.html is about 2 MB
WHAT = "a run folder that site publishes"


# -- a run's comparison with its baseline and its gates, as metrics.json keeps them ---------


@dataclass(frozen=True)
class Gate:
    name: str  # "fail-under", "max-drop", "fail-if-worse"
    threshold: float
    value: float
    passed: bool


@dataclass(frozen=True)
class BaselineSummary:
    """The run against its baseline on the same test images, as metrics.json concluded."""

    baseline: str  # the baseline as typed (an absolute path is shown by its last part)
    baseline_accuracy: float
    accuracy_difference: float  # this run minus the baseline
    accuracy_difference_lower: float  # its 95% interval
    accuracy_difference_upper: float
    fixed: int  # images the baseline got wrong and this run right
    broken: int  # the other way round
    mcnemar_exact_p_value: float


@dataclass(frozen=True)
class Extras:
    comparison: BaselineSummary | None  # None: the run had no baseline
    gates: tuple[Gate, ...]


def _number(value: Any) -> float:
    """A JSON number, null as NaN; anything else (a bool, a string) is not one."""
    if value is None:
        return math.nan
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{value!r} is not a number")
    return float(value)


def _flag(value: Any) -> bool:
    if not isinstance(value, bool):
        raise TypeError(f"{value!r} is not true or false")
    return value


def extras(body: dict[str, Any], source: str = "metrics.json") -> Extras:
    """The comparison with a baseline and the gates, where metrics.json holds them.

    They are what `build --baseline` and the gates concluded (run.comparison.Comparison.to_json,
    run.gates.Verdict.to_json), read back as the summary the index shows: the per-image detail
    behind them stays with the run.
    """
    try:
        compared = body.get("comparison")
        comparison = None
        if compared is not None:
            comparison = BaselineSummary(
                baseline=str(compared["baseline"]),
                baseline_accuracy=_number(compared["baseline_accuracy"]),
                accuracy_difference=_number(compared["accuracy_difference"]),
                accuracy_difference_lower=_number(compared["accuracy_difference_lower"]),
                accuracy_difference_upper=_number(compared["accuracy_difference_upper"]),
                fixed=int(compared["fixed"]),
                broken=int(compared["broken"]),
                mcnemar_exact_p_value=_number(compared["mcnemar_exact_p_value"]),
            )
        gates = tuple(
            Gate(str(g["name"]), _number(g["threshold"]), _number(g["value"]), _flag(g["passed"]))
            for g in body.get("gates") or ()
        )
        return Extras(comparison, gates)
    except (KeyError, TypeError, ValueError, AttributeError) as e:
        raise DataError(f"{source}: not a reportgen metrics.json ({type(e).__name__}: {e})") from e


@dataclass(frozen=True, eq=False)
class Run:
    """One finished run folder, read."""

    folder: Path  # as given; read from, never shown
    name: str  # its folder under runs/: the folder's name, made unique
    record: RunRecord
    evaluation: Evaluation
    extras: Extras
    training_seconds: float | None
    files: tuple[str, ...]  # what the site copies, relative to the folder, sorted
    manifest: dict[str, Any]  # manifest.json and metrics.json as read: the site writes its own copies
    metrics: dict[str, Any]


def _refuse_links(folder: Path) -> None:
    """A run's entries that site reads are regular files and folders, not links: a link to
    /etc/passwd is not published, nor `figures -> ~/.ssh` listed in a message."""
    for name in READ:
        path = folder / name
        if path.is_symlink():
            raise DataError(f"{path}: a symbolic link; {WHAT} may hold only regular files and folders")
        if os.path.lexists(path) and not (path.is_file() or path.is_dir()):
            raise DataError(f"{path}: not a regular file or folder; {WHAT} may hold only regular files and folders")


def _files(folder: Path) -> tuple[str, ...]:
    """The files to copy: those of COPIED there are, and the figures (SVG or PNG)."""
    names = [name for name in COPIED if (folder / name).is_file()]
    if (folder / FIGURES).is_dir():
        for name in paths.files_inside(folder, FIGURES, WHAT):
            if name.startswith("."):
                continue
            if not name.endswith(FIGURE_KINDS):
                raise DataError(
                    f"{folder / FIGURES / name}: not a figure (.svg or .png); {WHAT} publishes no other file"
                )
            names.append(f"{FIGURES}/{name}")
    return tuple(sorted(names))


def published_bytes(folder: Path, name: str, listed: dict[str, Any], checked: bool = False) -> bytes:
    """A run's file as site publishes it: read with no link on the way, the bytes its
    manifest recorded (or refused), and, for a page, an SVG or a PDF, nothing that runs
    script or loads from outside the run (site/markup.py, site/pdf.py), unless `checked`
    already: the same SHA-256 is the same bytes."""
    data = paths.read_inside(folder, name, WHAT, limit=MAX_BYTES)
    run_folder.check_recorded(folder, listed, name, hashlib.sha256(data).hexdigest())
    if checked:
        return data
    try:
        if name.endswith(".html"):
            markup.check_html(data, name)
        elif name.endswith(".svg"):
            markup.check_svg(data, page=name)
        elif name.endswith(".pdf"):
            pdf.check_pdf(data)
        elif name.endswith(".png") and not data.startswith(b"\x89PNG\r\n\x1a\n"):
            raise markup.Unsafe("not a PNG image")
    except markup.Unsafe as e:
        raise DataError(
            f"{folder / name}: {e}; site publishes nothing that runs script or loads from outside the run"
        ) from e
    return data


def _training_seconds(folder: Path, record: RunRecord) -> float | None:
    """As the report's summary says it."""
    kept = folder / "history.json"
    return training_seconds(record.timings, History.load(kept) if kept.is_file() else History.empty())


def read_run(folder: Path, name: str) -> Run:
    """One run folder into typed values; a folder that is not a finished run is refused."""
    folder = Path(folder)
    run_folder.check_finished(folder, NEEDED)
    _refuse_links(folder)
    manifest = files.read_json(folder / files.MANIFEST)
    record = RunRecord.from_json(manifest, str(folder / files.MANIFEST))
    created_time(record.created, str(folder / files.MANIFEST))
    metrics = files.read_json(folder / "metrics.json")
    evaluation = Evaluation.from_json(metrics, str(folder / "metrics.json"))
    listed = manifest.get("files")
    names = _files(folder)
    for file in names:  # all of them checked before anything is written; copied later
        if file != files.MANIFEST:
            published_bytes(folder, file, listed if isinstance(listed, dict) else {})
    return Run(
        folder=folder,
        name=name,
        record=record,
        evaluation=evaluation,
        extras=extras(metrics, str(folder / "metrics.json")),
        training_seconds=_training_seconds(folder, record),
        files=names,
        manifest=manifest,
        metrics=metrics,
    )


def unique_names(folders: Sequence[Path]) -> list[str]:
    """Each folder's name; a name met again becomes name-2, name-3, ... in the order given,
    skipping any name another folder already has."""
    names = [Path(os.path.abspath(folder)).name for folder in folders]
    taken: set[str] = set()
    unique = []
    for name in names:
        chosen, k = name, 2
        while chosen in taken or (chosen != name and chosen in names):
            chosen, k = f"{name}-{k}", k + 1
        taken.add(chosen)
        unique.append(chosen)
    return unique


def gather(folders: Sequence[Path]) -> list[Run]:
    """Every run, in the order given; the same folder given twice counts once."""
    seen: set[Path] = set()
    distinct = []
    for folder in map(Path, folders):
        key = folder.resolve()
        if key not in seen:
            seen.add(key)
            distinct.append(folder)
    return [read_run(folder, name) for folder, name in zip(distinct, unique_names(distinct))]


def created_time(created: str, source: str) -> _dt.datetime:
    try:
        when = _dt.datetime.fromisoformat(created)
    except (TypeError, ValueError) as e:
        raise DataError(f"{source}: created {created!r} is not an ISO 8601 time") from e
    return when if when.tzinfo is not None else when.replace(tzinfo=_dt.UTC)
