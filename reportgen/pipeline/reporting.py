"""The last two stages, figures -> report, from every value the earlier ones handed on
(`Gathered`): the figures into the staging folder, the report's values, report.html, and
report.pdf, laid out by a forked child while the figures are drawn where one may be forked
(pdfahead.py).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from reportgen import data
from reportgen.pipeline.pdfahead import PdfAhead
from reportgen.pipeline.settings import Say, Timer
from reportgen.report import context as report_context
from reportgen.report import pdf, templates
from reportgen.report.figures import Figure, FigureCache, make
from reportgen.run import archive, files
from reportgen.run.comparison import Baseline, Comparison
from reportgen.run.evaluation import Evaluation
from reportgen.run.explanation import Attributions, Features
from reportgen.run.files import MANIFEST
from reportgen.run.gates import Verdict
from reportgen.run.history import History
from reportgen.run.inspection import Inspection
from reportgen.run.record import RunRecord


@dataclass(frozen=True, eq=False)
class Gathered:
    """Every value the figures and the report are made from."""

    dataset: data.Dataset | data.Deferred  # a render's is read only if a figure must be drawn
    history: History
    evaluation: Evaluation
    inspection: Inspection
    pixels: str  # how the images entered the network: "unit" or "raw"
    baseline: Baseline | None = None
    comparison: Comparison | None = None
    verdicts: tuple[Verdict, ...] = ()
    attributions: Attributions | None = None  # None: a run made before attributions.npz
    features: Features | None = None  # None: a run made before features.npz


def draw(
    staged: Path,
    gathered: Gathered,
    formats: tuple[str, ...],
    timer: Timer,
    say: Say,
    run_dir: Path,
    early: Callable[[dict[str, Figure], frozenset[str]], None] | None = None,
) -> dict[str, Figure]:
    """Every figure into staged/figures/; those drawn before for the run folder at `run_dir`
    with the same values and code come from its cache, and this drawing's make the staged one.
    `early`: see figures.make (`lay_out_early` makes one); with it, each figure drawn is
    written as soon as it is, for the PDF's child to draw its pages meanwhile."""
    say("drawing figures")
    written: set[str] = set()

    def keep(figure: Figure) -> None:  # in the staging folder at once: the PDF's child reads it
        files.replace_bytes(staged / "figures" / figure.filename, figure.svg)
        written.add(figure.name)

    with timer.stage("figures", formats=",".join(formats)):
        drawn = make(
            gathered.dataset,
            gathered.history,
            gathered.evaluation,
            gathered.inspection,
            gathered.pixels,
            baseline=gathered.baseline,
            comparison=gathered.comparison,
            meanwhile=pdf.load_pdf_renderer if "pdf" in formats else None,
            cache=FigureCache(run_dir, staged),
            attributions=gathered.attributions,
            features=gathered.features,
            early=early,
            saved=keep if early is not None else None,
        )
    for figure in drawn.values():
        if figure.name not in written:
            keep(figure)
    return drawn


def render(
    staged: Path,
    run_record: RunRecord,
    gathered: Gathered,
    drawn: dict[str, Figure],
    formats: tuple[str, ...],
    user_templates: Path | None,
    timer: Timer,
    say: Say,
    ahead: PdfAhead | None = None,
    run_dir: Path | None = None,
) -> dict[str, Any]:
    """The report's values, and report.html if asked for; the PDF comes after the manifest
    it carries (`render_pdf`), laid out meanwhile by `ahead`'s child where one may be forked."""
    say("rendering " + " and ".join(formats))
    with timer.stage("render", formats=",".join(formats), templates=user_templates or "built-in"):
        values = _values(run_record, gathered, drawn)
        if ahead is not None and "pdf" in formats:
            ahead.start(staged, values, user_templates, run_dir)
        if "html" in formats:
            files.write_bytes(staged / "report.html", templates.render_html(values, user_templates).encode())
    return values


def lay_out_early(
    staged: Path,
    run_record: RunRecord,
    gathered: Gathered,
    formats: tuple[str, ...],
    user_templates: Path | None,
    ahead: PdfAhead,
    run_dir: Path,
) -> Callable[[dict[str, Figure], frozenset[str]], None] | None:
    """What `draw` calls once every figure's caption and size are known, before their SVGs
    are written: it starts `ahead`'s child laying out the PDF with placeholders of their size
    (pipeline/pdfahead.py), so the pages are laid out while the figures are drawn. Only with
    the built-in templates, which show each figure as an <img>: a user's templates may show
    one any other way (its SVG inline, say), where no placeholder can be swapped."""
    if "pdf" not in formats or user_templates is not None:
        return None

    def early(figures: dict[str, Figure], pending: frozenset[str]) -> None:
        ahead.start(staged, _values(run_record, gathered, figures), user_templates, run_dir, pending)

    return early


def _values(run_record: RunRecord, gathered: Gathered, drawn: dict[str, Figure]) -> dict[str, Any]:
    return report_context.context(
        run_record,
        gathered.history,
        gathered.evaluation,
        gathered.inspection,
        drawn,
        baseline=gathered.baseline,
        comparison=gathered.comparison,
        verdicts=gathered.verdicts,
        attributions=gathered.attributions,
        features=gathered.features,
    )


def seal(*folders: Path | None) -> archive.Sealed:
    """What a PDF about to be made will carry: the manifest (written next) and the run's data
    files, each from the first of `folders` that has it (a staging folder, then the run's)."""
    names = tuple(
        name
        for name in archive.EMBEDDABLE
        if name == MANIFEST or any(f is not None and (f / name).is_file() for f in folders)
    )
    return archive.Sealed(names, current=True)


def render_pdf(
    staged: Path,
    values: dict[str, Any],
    user_templates: Path | None,
    timer: Timer,
    run_dir: Path | None = None,
    ahead: PdfAhead | None = None,
) -> None:
    """report.pdf, carrying the staged manifest.json (written before it: its timings stop
    here) and the run's data files, then its checksum beside it (run/archive.py); written by
    `ahead`'s child if `render` started one."""
    with timer.stage("pdf"):
        if ahead is None or not ahead.finish():
            carried = archive.embedded(staged, run_dir)
            files.write_bytes(staged / archive.PDF, pdf.render_pdf(values, staged, user_templates, carried))
        archive.write_sidecar(staged)
