"""The site: one static folder that lists many finished runs, newest first.

`reportgen site RUN_DIR... --out SITE_DIR` gathers each run's manifest.json and
metrics.json into typed values first, refusing a folder that is not a finished run
before anything is written; then builds the index (one `Row` per run), draws the
accuracy chart, renders index.html through the report's sandboxed templates, and
writes the folder through a staging folder that replaces the previous site whole:

    SITE_DIR/
      index.html      the runs and the chart; relative links only, no script
      index.json      the same rows as data
      accuracy.svg    each run's test accuracy with its 95% interval
      runs/<name>/    report.html, report.pdf, figures/, metrics.json, manifest.json

Same runs, same bytes: the site records no time of its own making and sorts
everything. No mxnet, and no absolute path of the building machine in the index.
"""

from __future__ import annotations

import datetime as _dt
import math
import os
import shutil
import urllib.parse
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from reportgen import __version__, report, runfolder
from reportgen.errors import DataError, ReportgenError
from reportgen.evaluate import Evaluation
from reportgen.filters import shown_path
from reportgen.history import History
from reportgen.runfolder import TRAINED_HERE, RunRecord

if TYPE_CHECKING:
    from reportgen.figures import Figure

TITLE = "reportgen runs"
TEMPLATE = "site.html.j2"
INDEX_HTML = "index.html"
INDEX_JSON = "index.json"
CHART = "accuracy.svg"
RUNS = "runs"
# Everything the site writes at its top level, in the order it is swapped in: the runs
# first, the index last, so the index never links to a run that is not there yet.
WRITTEN = (RUNS, CHART, INDEX_JSON, INDEX_HTML)
NEEDED = (runfolder.MANIFEST, "metrics.json", "report.html")  # a finished run has them all
COPIED = ("report.html", "report.pdf", "metrics.json", runfolder.MANIFEST)  # and figures/


# -- a run's comparison with its baseline and its gates, as metrics.json keeps them ---------


@dataclass(frozen=True)
class Gate:
    name: str  # "fail-under", "max-drop", "fail-if-worse"
    threshold: float
    value: float
    passed: bool


@dataclass(frozen=True)
class Comparison:
    """The run against its baseline on the same test images."""

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
    comparison: Comparison | None  # None: the run had no baseline
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

    They are what `build --baseline` and the gates concluded (compare.Comparison.to_json,
    gates.Verdict.to_json), read back as the summary the index shows: the per-image detail
    behind them stays with the run.
    """
    try:
        compared = body.get("comparison")
        comparison = None
        if compared is not None:
            comparison = Comparison(
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
        raise DataError(f"{source}: not a reportgen metrics.json ({type(e).__name__}: {e})") from None


# -- gathering: each run folder into typed values -----------------------------------------


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


def _files(folder: Path, listed: dict[str, Any]) -> tuple[str, ...]:
    """The files to copy; each one the manifest lists must still be what the run wrote."""
    names = [name for name in COPIED if (folder / name).is_file()]
    figures = folder / "figures"
    if figures.is_dir():
        names += [f"figures/{p.name}" for p in sorted(figures.iterdir()) if p.is_file() and not p.name.startswith(".")]
    runfolder.check_listed(folder, listed, [name for name in names if name != runfolder.MANIFEST])
    return tuple(sorted(names))


def _training_seconds(folder: Path, record: RunRecord) -> float | None:
    """As the report's summary says it (report.training_seconds)."""
    kept = folder / "history.json"
    return report.training_seconds(record, History.load(kept) if kept.is_file() else History.empty())


def read_run(folder: Path, name: str) -> Run:
    """One run folder into typed values; a folder that is not a finished run is refused."""
    folder = Path(folder)
    runfolder.check_finished(folder, NEEDED)
    manifest = runfolder.read_json(folder / runfolder.MANIFEST)
    record = RunRecord.from_json(manifest, str(folder / runfolder.MANIFEST))
    _created(record.created, str(folder / runfolder.MANIFEST))
    metrics = runfolder.read_json(folder / "metrics.json")
    evaluation = Evaluation.from_json(metrics, str(folder / "metrics.json"))
    listed = manifest.get("files")
    return Run(
        folder=folder,
        name=name,
        record=record,
        evaluation=evaluation,
        extras=extras(metrics, str(folder / "metrics.json")),
        training_seconds=_training_seconds(folder, record),
        files=_files(folder, listed if isinstance(listed, dict) else {}),
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


# -- the index --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Row:
    """One run as the index shows it. Links are relative to the site folder."""

    name: str
    title: str
    created: str  # ISO 8601, as the run recorded it
    accuracy: float
    accuracy_lower: float  # the 95% Clopper-Pearson interval
    accuracy_upper: float
    kappa: float
    log_loss: float  # NaN when the run has none
    ece: float
    n_test: int
    epochs: int  # of the model evaluated
    training_seconds: float | None
    devices: tuple[str, ...]
    model: str  # "trained here", or the folder it was loaded from
    comparison: Comparison | None
    gates: tuple[Gate, ...]
    html: str
    pdf: str | None  # None: the run has no PDF
    metrics: str
    manifest: str

    def to_json(self) -> dict[str, Any]:
        return runfolder.jsonable(asdict(self))  # NaN as null, tuples as lists


@dataclass(frozen=True)
class Index:
    title: str
    rows: tuple[Row, ...]  # newest first; equal times by name
    generator: str = f"reportgen {__version__}"

    def to_json(self) -> dict[str, Any]:
        return {
            "generator": self.generator,
            "title": self.title,
            # What this site wrote at its top level: the next site removes what it no longer writes.
            "files": sorted(WRITTEN),
            "runs": [row.to_json() for row in self.rows],
        }


def _created(created: str, source: str) -> _dt.datetime:
    try:
        when = _dt.datetime.fromisoformat(created)
    except (TypeError, ValueError):
        raise DataError(f"{source}: created {created!r} is not an ISO 8601 time") from None
    return when if when.tzinfo is not None else when.replace(tzinfo=_dt.UTC)


def _link(name: str, file: str) -> str:
    return urllib.parse.quote(f"{RUNS}/{name}/{file}")


def row(run: Run) -> Row:
    record, overall = run.record, run.evaluation.overall
    comparison = run.extras.comparison
    return Row(
        name=run.name,
        title=record.title,
        created=record.created,
        accuracy=overall.accuracy,
        accuracy_lower=overall.accuracy_lower,
        accuracy_upper=overall.accuracy_upper,
        kappa=overall.kappa,
        log_loss=run.evaluation.overall.log_loss,
        ece=run.evaluation.calibration.ece,
        n_test=run.evaluation.n_test,
        epochs=record.model.epoch,
        training_seconds=run.training_seconds,
        devices=record.contexts,
        model=record.model.source if record.model.source == TRAINED_HERE else shown_path(record.model.source),
        comparison=None if comparison is None else replace(comparison, baseline=shown_path(comparison.baseline)),
        gates=run.extras.gates,
        html=_link(run.name, "report.html"),
        pdf=_link(run.name, "report.pdf") if "report.pdf" in run.files else None,
        metrics=_link(run.name, "metrics.json"),
        manifest=_link(run.name, runfolder.MANIFEST),
    )


def make_index(runs: Sequence[Run], title: str = TITLE) -> Index:
    """The rows, newest first by the time each run was built, equal times by name."""

    def newest_first(run: Run) -> tuple[float, str]:
        return (-_created(run.record.created, run.name).timestamp(), run.name)

    return Index(title=title, rows=tuple(row(run) for run in sorted(runs, key=newest_first)))


# -- what the template sees -------------------------------------------------------------------


def _built(created: str) -> str:
    """ "2026-11-30 06:09 UTC": runs of one sweep are built minutes apart."""
    return _created(created, "created").astimezone(_dt.UTC).strftime("%Y-%m-%d %H:%M UTC")


def _verdict(gates: tuple[Gate, ...]) -> str | None:
    if not gates:
        return None
    return "passed" if all(gate.passed for gate in gates) else "failed"


def context(index: Index, chart: Figure) -> dict[str, Any]:
    """Everything the site's templates see, gathered in one place."""
    rows = index.rows
    return {
        "title": index.title,
        "generator": index.generator,
        "runs": [{**vars(r), "built": _built(r.created), "verdict": _verdict(r.gates)} for r in rows],
        "columns": {
            "log_loss": any(math.isfinite(r.log_loss) for r in rows),
            "comparison": any(r.comparison is not None for r in rows),
            "gates": any(r.gates for r in rows),
        },
        "chart": {"src": CHART, "caption": chart.caption, "alt": chart.alt},
    }


# -- writing ----------------------------------------------------------------------------------


def _earlier_site(site: Path) -> frozenset[str] | None:
    """The top-level names an earlier reportgen site in this folder wrote; None if it is not one."""
    try:
        body = runfolder.read_json(site / INDEX_JSON)
    except ReportgenError:
        return None
    if not isinstance(body, dict) or not str(body.get("generator", "")).startswith("reportgen "):
        return None
    files = body.get("files")
    if not isinstance(files, list):
        return None
    # Plain names only: a hand-edited index.json must not point the clean-up elsewhere.
    return frozenset(f for f in files if isinstance(f, str) and f and f == Path(f).name and f not in (".", ".."))


def check_site(site: Path, folders: Sequence[Path]) -> frozenset[str]:
    """Refuse a SITE_DIR where writing would clobber what is not a site's; return what the
    earlier site there wrote (to remove what this one no longer writes)."""
    runfolder.check_out(site)
    if any(Path(folder).resolve() == site.resolve() for folder in folders):
        raise ReportgenError(f"--out {site}: is one of the runs; give the site a folder of its own")
    if not site.is_dir():
        return frozenset()
    earlier = _earlier_site(site)
    if earlier is None:
        ours = [name for name in sorted(WRITTEN) if (site / name).exists()]
        if ours:
            raise ReportgenError(
                f"--out {site}: holds {ours[0]} but is not a reportgen site; give a new or empty folder"
            )
        return frozenset()
    return earlier


def _swap_in(earlier: frozenset[str]) -> Callable[[Path, Path], None]:
    """How the staged site replaces the old one: each entry it writes replaced whole (so a
    run no longer given goes with the old runs/), and what only the earlier site wrote removed."""

    def finish(staged: Path, site: Path) -> None:
        site.mkdir(parents=True, exist_ok=True)
        for name in WRITTEN:
            runfolder.replace_entry(staged / name, site / name, staged)
        for name in sorted(earlier - set(WRITTEN)):
            stale = site / name
            if stale.is_dir() and not stale.is_symlink():
                os.replace(stale, staged / f".stale-{name}")  # deleted with the staging folder
            elif stale.exists() or stale.is_symlink():
                stale.unlink()

    return finish


def _copy(run: Run, into: Path) -> None:
    for name in run.files:
        target = into / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(run.folder / name, target)  # the bytes only: no times or modes to differ


def write(
    site: Path, runs: Sequence[Run], index: Index, chart: Figure, html: str, earlier: frozenset[str] = frozenset()
) -> None:
    with runfolder.staging(site, finish=_swap_in(earlier)) as staged:
        (staged / RUNS).mkdir()
        for run in runs:
            _copy(run, staged / RUNS / run.name)
        runfolder.write_bytes(staged / CHART, chart.svg)
        runfolder.write_json(staged / INDEX_JSON, index.to_json())
        runfolder.write_bytes(staged / INDEX_HTML, html.encode())


def build(folders: Sequence[Path], site: Path, title: str | None = None, templates: Path | None = None) -> Index:
    """`reportgen site`: read every run, then draw, render and write the site in one swap."""
    from reportgen.figures.site import accuracy_chart  # matplotlib: only once there is a site to draw

    site = Path(site)
    earlier = check_site(site, folders)
    report.environment(templates)  # a bad --templates fails before any run is read
    runs = gather(folders)
    index = make_index(runs, title or TITLE)
    chart = accuracy_chart(index.rows)
    html = report.render_page(TEMPLATE, context(index, chart), templates)
    write(site, runs, index, chart, html, earlier)
    return index
