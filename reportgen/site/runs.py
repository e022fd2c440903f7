"""The site's runs: each finished run folder read into typed values, refused before anything
is written if it is not a finished run."""

from __future__ import annotations

import datetime as _dt
import hashlib
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from reportgen.errors import DataError
from reportgen.run import archive, files, paths, schema
from reportgen.run import folder as run_folder
from reportgen.run.evaluation import Evaluation
from reportgen.run.history import History, training_seconds
from reportgen.run.record import RunRecord, moment
from reportgen.site import markup, pdf

NEEDED = (files.MANIFEST, "metrics.json", "report.html")  # a finished run has them all
COPIED = ("report.html", archive.PDF, "metrics.json", files.MANIFEST)  # and figures/, and the PDF's sidecar
FIGURES = "figures"
FIGURE_KINDS = (".svg", ".png")
READ = (*COPIED, archive.SIDECAR, "history.json", FIGURES)  # what site reads of a run
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


def _files(folder: Path, manifest: dict[str, Any]) -> tuple[str, ...]:
    """The files to copy: those of COPIED there are, the figures (SVG or PNG), and report.pdf's
    sidecar where the manifest's "pdf" entry vouches for the PDF through it."""
    names = [name for name in COPIED if (folder / name).is_file()]
    if _sealed(folder, manifest, archive.PDF) and archive.PDF in names:
        names.append(archive.SIDECAR)
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


def _sealed(folder: Path, manifest: dict[str, Any], name: str) -> bool:
    """Whether `name` is report.pdf or its sidecar, vouched for by the sidecar (run/archive.py)
    rather than by the manifest's file table (the PDF carries the manifest)."""
    listed = manifest.get("files")
    return (
        name in (archive.PDF, archive.SIDECAR)
        and not (isinstance(listed, dict) and name in listed)
        and archive.sealed(manifest, str(folder / files.MANIFEST)) is not None
    )


def published_bytes(folder: Path, name: str, manifest: dict[str, Any], checked: bool = False) -> bytes:
    """A run's file as site publishes it: read with no link on the way, the bytes its
    manifest (or, for report.pdf, its sidecar) recorded, or refused; and, for a page, an SVG
    or a PDF, nothing that runs script or loads from outside the run (site/markup.py,
    site/pdf.py), unless `checked` already: the same SHA-256 is the same bytes."""
    data = paths.read_inside(folder, name, WHAT, limit=MAX_BYTES)
    digest = hashlib.sha256(data).hexdigest()
    if not _sealed(folder, manifest, name):
        listed = manifest.get("files")
        run_folder.check_recorded(folder, listed if isinstance(listed, dict) else {}, name, digest)
    elif name == archive.PDF and archive.recorded(folder) != digest:
        raise DataError(f"{folder / name}: differs from its {archive.SIDECAR} (changed after the run was built?)")
    elif name == archive.SIDECAR and archive.digest_line(data, folder / name) != archive.recorded(folder):
        raise DataError(f"{folder / name}: changed while it was read")
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
    _refuse_links(folder)
    manifest = files.read_json(folder / files.MANIFEST)
    record = RunRecord.from_json(manifest, str(folder / files.MANIFEST))
    created_time(record.created, str(folder / files.MANIFEST))
    metrics = files.read_json(folder / "metrics.json")
    evaluation = Evaluation.from_json(metrics, str(folder / "metrics.json"))
    history = _history(folder)
    names = _files(folder, manifest)
    for file in names:  # all of them checked before anything is written; copied later
        if file != files.MANIFEST:
            published_bytes(folder, file, manifest)
    return Run(
        folder=folder,
        name=name,
        record=record,
        evaluation=evaluation,
        extras=extras(metrics, str(folder / "metrics.json")),
        training_seconds=_training_seconds(record, history),
        epochs=_epochs(record, history),
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
    """When a run was built, in UTC; a DataError naming `source` if that is not a time."""
    try:
        return moment(created)
    except schema.Invalid as e:
        raise DataError(f"{source}: {e}") from e
