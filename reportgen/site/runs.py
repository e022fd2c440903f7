"""The site's runs: each finished run folder read into typed values, refused before anything
is written if it is not a finished run."""

from __future__ import annotations

import datetime as _dt
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from reportgen.errors import DataError
from reportgen.run import archive, files, schema
from reportgen.run import folder as run_folder
from reportgen.run.evaluation import Evaluation
from reportgen.run.history import History, training_seconds
from reportgen.run.record import RunRecord, moment

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


def _number(value: Any, where: str) -> float:
    """A finite JSON number, null as NaN."""
    return schema.number(value, where, null=True)


def _difference(value: Any, where: str) -> float:
    """A difference of two accuracies, in [-1, 1]; null as NaN."""
    return schema.number(value, where, -1.0, 1.0, null=True)


def _gate(body: Any, where: str) -> Gate:
    return Gate(
        schema.field(body, "name", where, schema.text),
        schema.field(body, "threshold", where, _number),
        schema.field(body, "value", where, _number),
        schema.field(body, "passed", where, schema.flag),
    )


def _summary(body: Any, where: str) -> BaselineSummary:
    def read(key: str, how: Any) -> Any:
        return schema.field(body, key, where, how)

    return BaselineSummary(
        baseline=read("baseline", schema.text),
        baseline_accuracy=read("baseline_accuracy", lambda v, w: schema.proportion(v, w, null=True)),
        accuracy_difference=read("accuracy_difference", _difference),
        accuracy_difference_lower=read("accuracy_difference_lower", _difference),
        accuracy_difference_upper=read("accuracy_difference_upper", _difference),
        fixed=read("fixed", schema.integer),
        broken=read("broken", schema.integer),
        mcnemar_exact_p_value=read("mcnemar_exact_p_value", lambda v, w: schema.proportion(v, w, null=True)),
    )


def extras(body: dict[str, Any], source: str = "metrics.json") -> Extras:
    """The comparison with a baseline and the gates, where metrics.json holds them.

    They are what `build --baseline` and the gates concluded (run.comparison.Comparison.to_json,
    run.gates.Verdict.to_json), read back as the summary the index shows: the per-image detail
    behind them stays with the run.
    """
    try:
        compared, judged = schema.obj(body, "").get("comparison"), body.get("gates")
        comparison = None if compared is None else _summary(compared, "comparison")
        gates = () if judged is None else tuple(schema.each(judged, "gates", _gate))
    except schema.Invalid as e:
        raise DataError(f"{source}: not a reportgen metrics.json ({e})") from e
    return Extras(comparison, gates)


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
    """When a run was built, in UTC; a DataError naming `source` if that is not a time."""
    try:
        return moment(created)
    except schema.Invalid as e:
        raise DataError(f"{source}: {e}") from e
