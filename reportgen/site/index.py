"""The site's index: one `Row` per run, newest first, and what its template sees."""

from __future__ import annotations

import datetime as _dt
import math
import urllib.parse
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from typing import TYPE_CHECKING, Any

from reportgen import __version__
from reportgen.report.filters import shown_path
from reportgen.run import files
from reportgen.run.record import NOT_KNOWN, TRAINED_HERE
from reportgen.site.runs import BaselineSummary, Gate, Run, created_time

if TYPE_CHECKING:
    from reportgen.report.figures.style import Figure

TITLE = "reportgen runs"
TEMPLATE = "site.html.j2"
INDEX_HTML = "index.html"
INDEX_JSON = "index.json"
CHART = "accuracy.svg"
RUNS = "runs"
# Everything the site writes at its top level, in the order it is swapped in: the runs
# first, the index last, so the index never links to a run that is not there yet.
WRITTEN = (RUNS, CHART, INDEX_JSON, INDEX_HTML)


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
    # How the model evaluated was trained, as its report says; None: not known (a model
    # trained elsewhere).
    epochs: int | None
    training_seconds: float | None
    train_images: int | None
    devices: tuple[str, ...]
    model: str  # "trained here", or the folder it was loaded from
    comparison: BaselineSummary | None
    gates: tuple[Gate, ...]
    html: str
    pdf: str | None  # None: the run has no PDF
    metrics: str
    manifest: str

    def to_json(self) -> dict[str, Any]:
        return files.jsonable(asdict(self))  # NaN as null, tuples as lists


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
        epochs=run.epochs,
        training_seconds=run.training_seconds,
        train_images=trained.train_images if (trained := record.trained()) is not None else None,
        devices=record.contexts,
        model=record.model.source if record.model.source == TRAINED_HERE else shown_path(record.model.source),
        comparison=None if comparison is None else replace(comparison, baseline=shown_path(comparison.baseline)),
        gates=run.extras.gates,
        html=_link(run.name, "report.html"),
        pdf=_link(run.name, "report.pdf") if "report.pdf" in run.files else None,
        metrics=_link(run.name, "metrics.json"),
        manifest=_link(run.name, files.MANIFEST),
    )


def make_index(runs: Sequence[Run], title: str = TITLE) -> Index:
    """The rows, newest first by the time each run was built, equal times by name."""

    def newest_first(run: Run) -> tuple[float, str]:
        return (-created_time(run.record.created, run.name).timestamp(), run.name)

    return Index(title=title, rows=tuple(row(run) for run in sorted(runs, key=newest_first)))


# -- what the template sees -------------------------------------------------------------------


def _built(created: str) -> str:
    """ "2026-11-30 06:09 UTC": runs of one sweep are built minutes apart."""
    return created_time(created, "created").astimezone(_dt.UTC).strftime("%Y-%m-%d %H:%M UTC")


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
        "not_known": NOT_KNOWN,
    }
