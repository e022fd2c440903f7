"""The site's runs: each finished run folder read into typed values, refused before anything
is written if it is not a finished run."""

from __future__ import annotations

import datetime as _dt
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from reportgen.errors import DataError
from reportgen.run import archive, files
from reportgen.run import folder as run_folder
from reportgen.run.evaluation import Evaluation
from reportgen.run.history import History, training_seconds
from reportgen.run.record import RunRecord

NEEDED = (files.MANIFEST, "metrics.json", "report.html")  # a finished run has them all
COPIED = ("report.html", archive.PDF, "metrics.json", files.MANIFEST)  # and figures/, and the PDF's sidecar


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
    epochs: int | None  # None: not known
    files: tuple[str, ...]  # what the site copies, relative to the folder, sorted


def _files(folder: Path, manifest: dict[str, Any]) -> tuple[str, ...]:
    """The files to copy; each one the manifest lists must still be what the run wrote, and
    report.pdf what its sidecar says (copied with it, so the site's copy can be checked too)."""
    listed = manifest.get("files")
    listed = listed if isinstance(listed, dict) else {}
    pdf = archive.sealed(manifest, str(folder / files.MANIFEST))
    names = [name for name in COPIED if (folder / name).is_file()]
    figures = folder / "figures"
    if figures.is_dir():
        names += [f"figures/{p.name}" for p in sorted(figures.iterdir()) if p.is_file() and not p.name.startswith(".")]
    run_folder.check_listed(folder, listed, [name for name in names if name != files.MANIFEST], pdf)
    if archive.PDF in names and archive.PDF not in listed and pdf is not None:
        names.append(archive.SIDECAR)  # checked with the PDF just now
    return tuple(sorted(names))


def _history(folder: Path) -> History:
    kept = folder / "history.json"
    return History.load(kept) if kept.is_file() else History.empty()


def _training_seconds(record: RunRecord, history: History) -> float | None:
    """As the report's summary says it."""
    trained = record.trained()
    return training_seconds(trained.seconds if trained is not None else None, history)


def _epochs(record: RunRecord, history: History) -> int | None:
    """The epochs the model was trained for, as the report's training section says them;
    None: not known (a model trained elsewhere: its file's epoch number is not a count)."""
    epochs = record.training.get("epochs", len(history.epochs) or None)
    return epochs if isinstance(epochs, int) and not isinstance(epochs, bool) else None


def read_run(folder: Path, name: str) -> Run:
    """One run folder into typed values; a folder that is not a finished run is refused."""
    folder = Path(folder)
    run_folder.check_finished(folder, NEEDED)
    manifest = files.read_json(folder / files.MANIFEST)
    record = RunRecord.from_json(manifest, str(folder / files.MANIFEST))
    created_time(record.created, str(folder / files.MANIFEST))
    metrics = files.read_json(folder / "metrics.json")
    evaluation = Evaluation.from_json(metrics, str(folder / "metrics.json"))
    history = _history(folder)
    return Run(
        folder=folder,
        name=name,
        record=record,
        evaluation=evaluation,
        extras=extras(metrics, str(folder / "metrics.json")),
        training_seconds=_training_seconds(record, history),
        epochs=_epochs(record, history),
        files=_files(folder, manifest),
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
