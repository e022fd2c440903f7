"""Stage 7: the report. One context, rendered through Jinja into a standalone HTML file and a PDF.

`context()` is the only place that decides what the templates see. The HTML
(`report.html.j2`) and the PDF (`pdf.html.j2`) both extend `base.html.j2` and include
the same section partials; the PDF adds a title page and its page-numbered contents
through CSS print rules. The loader searches the user's `--templates` folder before
the built-in one, so overriding one partial keeps the rest. Templates run sandboxed:
they read the values and call the filters they are given, nothing else.
"""

from __future__ import annotations

import datetime as _dt
import traceback
import urllib.parse
import urllib.request
from dataclasses import asdict, replace
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

import jinja2
from jinja2.sandbox import ImmutableSandboxedEnvironment

from reportgen import compare, layers, seed
from reportgen.compare import Baseline, Comparison
from reportgen.data import PIXEL_SCALINGS
from reportgen.errors import RenderError
from reportgen.evaluate import Evaluation, WorstPair
from reportgen.filters import (
    FILTERS,
    fmt_pct,
    fmt_points,
    fmt_pvalue,
    is_missing,
    shown_command,
    shown_path,
    shown_value,
)
from reportgen.gates import Verdict
from reportgen.history import History
from reportgen.inspection import Inspection
from reportgen.runfolder import TRAINED_HERE, ModelRecord, RunRecord

if TYPE_CHECKING:
    from reportgen.figures import Figure

HTML_TEMPLATE = "report.html.j2"
PDF_TEMPLATE = "pdf.html.j2"

# The report's sections in the seed notebook's order, and their subsections.
SECTIONS = (
    ("summary", "Summary", ()),
    ("data", "Data", (("data-digits", "The first training digits"), ("data-counts", "Digits per class"))),
    ("network", "Network", ()),
    ("training", "Training", (("training-batches", "Per batch"), ("training-epochs", "Per epoch"))),
    (
        "evaluation",
        "Evaluation",
        (
            ("evaluation-confusion", "Confusion matrix"),
            ("evaluation-overall", "Overall statistics"),
            ("evaluation-classes", "Per-class statistics"),
            ("evaluation-calibration", "Calibration"),
            ("evaluation-ranking", "ROC and precision-recall"),
        ),
    ),
    ("worst", "The worst confusion", (("worst-cases", "Its images"), ("worst-top", "The most confident mistakes"))),
    ("inside", "Inside the network", (("inside-kernels", "The learned kernels"),)),
    (
        "reproducibility",
        "Reproducibility",
        (
            ("repro-command", "Command and arguments"),
            ("repro-versions", "Versions"),
            ("repro-data", "Data files"),
            ("repro-timings", "Timings"),
        ),
    ),
)

# Joins the contents after "evaluation" only when the run is compared with a baseline.
BASELINE_SECTION = (
    "baseline",
    "Against the baseline",
    (
        ("baseline-scores", "Side by side"),
        ("baseline-paired", "Image by image"),
        ("baseline-classes", "Per digit"),
        ("baseline-confusion", "Where the mistakes moved"),
        ("baseline-changed", "The images fixed and broken"),
        ("baseline-training", "Training and settings"),
    ),
)

# The ranking metrics of the evaluation: our key, what it means.
RANKING = (
    ("log_loss", "Log loss (natural log)"),
    ("roc_auc_macro", "ROC AUC, macro (mean over the digits)"),
    ("roc_auc_micro", "ROC AUC, micro (all scores pooled)"),
    ("average_precision_macro", "Average precision, macro"),
    ("average_precision_micro", "Average precision, micro"),
)

# caret's cm$overall, in its order: our key, what it means, caret's name.
OVERALL = (
    ("accuracy", "Accuracy", "Accuracy"),
    ("kappa", "Cohen's kappa", "Kappa"),
    ("accuracy_lower", "Accuracy, 95% CI lower bound", "AccuracyLower"),
    ("accuracy_upper", "Accuracy, 95% CI upper bound", "AccuracyUpper"),
    ("accuracy_null", "No-information rate", "AccuracyNull"),
    ("accuracy_p_value", "P-value, accuracy > no-information rate", "AccuracyPValue"),
    ("mcnemar_p_value", "McNemar's test p-value", "McnemarPValue"),
)

# caret's cm$byClass columns: our key, caret's name.
BY_CLASS = (
    ("sensitivity", "Sensitivity"),
    ("specificity", "Specificity"),
    ("pos_pred_value", "Pos Pred Value"),
    ("neg_pred_value", "Neg Pred Value"),
    ("precision", "Precision"),
    ("recall", "Recall"),
    ("f1", "F1"),
    ("prevalence", "Prevalence"),
    ("detection_rate", "Detection Rate"),
    ("detection_prevalence", "Detection Prevalence"),
    ("balanced_accuracy", "Balanced Accuracy"),
)

_MONTHS = (
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
)


# -- templates ---------------------------------------------------------------------------


def builtin_templates() -> Path:
    """The templates shipped with reportgen: the package reportgen.templates in a wheel,
    the repository's top-level templates/ in an editable install."""
    try:
        folder = Path(str(resources.files("reportgen.templates")))
    except (ModuleNotFoundError, TypeError):  # editable install: no such package
        folder = None
    if folder is None or not (folder / "base.html.j2").is_file():
        folder = Path(__file__).resolve().parent.parent / "templates"
    return folder


def environment(templates: Path | None = None) -> jinja2.Environment:
    """Sandboxed Jinja with autoescape, strict undefined values, the number filters, and
    the user's folder searched before the built-in one.

    Reports are built in CI from templates under review, so a template may read the values
    it is given and call the filters, but reach nothing else (no attributes starting with
    "_", no method that changes a value): ImmutableSandboxedEnvironment.
    """
    folders = []
    if templates is not None:
        templates = Path(templates)
        if not templates.is_dir():
            raise RenderError(f"{templates}: no such templates folder")
        folders.append(templates)
    folders.append(builtin_templates())
    env = ImmutableSandboxedEnvironment(
        loader=jinja2.ChoiceLoader([jinja2.FileSystemLoader(str(f)) for f in folders]),
        autoescape=True,  # a title like "<script>" is text, not markup
        undefined=jinja2.StrictUndefined,  # a misspelt name is an error, not an empty string
        # Not trim_blocks: a newline after "{% endif %}" in prose is the space between words.
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters.update(FILTERS)
    return env


def _user_frame(error: BaseException, templates: Path | None) -> str | None:
    """ "<file>, line N" of the innermost frame in one of the user's templates, if any.

    Jinja rewrites tracebacks so that template frames carry the template's file and line:
    an error that passed through the user's templates is the user's to fix.
    """
    if templates is None:
        return None
    root = Path(templates).resolve()
    frames: list[tuple[str, int | None]]
    if isinstance(error, jinja2.TemplateSyntaxError) and error.filename:
        frames = [(error.filename, error.lineno)]
    else:
        frames = [(f.filename, f.lineno) for f in traceback.extract_tb(error.__traceback__)]
    inside = [f"{name}, line {line}" for name, line in frames if Path(name).resolve().is_relative_to(root)]
    return inside[-1] if inside else None


def _render(name: str, values: dict[str, Any], templates: Path | None) -> str:
    """Render one template. An error the user's templates caused is a RenderError naming the
    template and line, chained to its cause; any other error is ours and goes up as it is."""
    env = environment(templates)
    try:
        return env.get_template(name).render(values)
    except Exception as e:
        where = _user_frame(e, templates)
        if where is None:
            raise
        message = e.message if isinstance(e, jinja2.TemplateError) else str(e)
        kind = "refused by the sandbox: " if isinstance(e, jinja2.exceptions.SecurityError) else ""
        raise RenderError(f"{where}: {kind}{message or type(e).__name__}") from e


# -- the context -------------------------------------------------------------------------


def _date(created: str | None) -> tuple[str, str]:
    """ISO timestamp for the metadata, "28 November 2026" for people."""
    try:
        when = _dt.datetime.fromisoformat(created) if created else None
    except ValueError:
        when = None
    if when is None:
        when = _dt.datetime.now(_dt.UTC).replace(microsecond=0)
    if when.tzinfo is None:
        when = when.replace(tzinfo=_dt.UTC)
    return when.isoformat(), f"{when.day} {_MONTHS[when.month - 1]} {when.year}"


def _sections(with_baseline: bool) -> list[tuple[str, str, tuple[tuple[str, str], ...]]]:
    sections = list(SECTIONS)
    if with_baseline:
        after = next(i for i, (sid, _, _) in enumerate(sections) if sid == "evaluation")
        sections.insert(after + 1, BASELINE_SECTION)
    return sections


def _toc(inspection_cases: list[dict[str, Any]], with_baseline: bool = False) -> list[dict[str, Any]]:
    """Contents entries (id, title, number, level); inspected cases join "Inside the network"."""
    entries = []
    for n, (sid, title, subsections) in enumerate(_sections(with_baseline), start=1):
        entries.append({"id": sid, "title": title, "number": str(n), "level": 1})
        subs = list(subsections)
        if sid == "inside":
            subs += [(case["id"], case["title"]) for case in inspection_cases]
        for m, (sub_id, sub_title) in enumerate(subs, start=1):
            entries.append({"id": sub_id, "title": sub_title, "number": f"{n}.{m}", "level": 2})
    return entries


def _confusion(matrix: list[list[int]], worst: WorstPair) -> dict[str, Any]:
    """Rows are predictions, columns the reference, as caret prints cm$table."""
    rows = []
    for p, counts in enumerate(matrix):
        rows.append(
            {
                "prediction": p,
                "total": sum(counts),
                "cells": [
                    {
                        "reference": r,
                        "value": int(v),
                        "diagonal": p == r,
                        "worst": worst.count > 0 and (p, r) == (worst.prediction, worst.reference),
                    }
                    for r, v in enumerate(counts)
                ],
            }
        )
    columns = [sum(row[r] for row in matrix) for r in range(len(matrix))]
    return {"classes": list(range(len(matrix))), "rows": rows, "column_totals": columns}


def training_seconds(record: RunRecord, history: History) -> float | None:
    """How long training took: the training stage, else the epochs of its history; None if neither."""
    if "train" in record.timings:
        return record.timings["train"]
    seconds = [e.seconds for e in history.epochs if not is_missing(e.seconds)]
    return sum(seconds) if seconds else None


def _images_per_second(history: History) -> float | None:
    """Training images over training seconds, all epochs together (None when nothing was trained)."""
    seconds = sum(e.seconds for e in history.epochs if not is_missing(e.seconds))
    images = sum(e.images_per_second * e.seconds for e in history.epochs if not is_missing(e.images_per_second))
    return images / seconds if seconds and images else None


# Why a loaded model has no node of its own for a layer.
_NO_NODE = {"flat": "full1 flattens its input", "softm": "added: the model ends at full2"}


def _own_names(model: ModelRecord) -> dict[str, dict[str, str | None]]:
    """Each layer's name in the loaded model, or why it has none; {} when the names are reportgen's."""
    if not model.names:
        return {}
    return {
        layer: {"name": model.names.get(layer), "missing": None if model.names.get(layer) else _NO_NODE.get(layer)}
        for layer in layers.LAYERS
    }


def _layers(model: ModelRecord) -> tuple[list[dict[str, Any]], int]:
    counts = layers.parameter_counts()
    own = _own_names(model)
    rows = [
        {
            "layer": layer,
            "own": own.get(layer),
            "kind": layers.KINDS[layer],
            "shape": layers.SHAPES[layer],
            "size": layers.size(layer),
            "parameters": counts[layer],
        }
        for layer in layers.LAYERS
    ]
    return rows, sum(counts.values())


def _pixels(model: ModelRecord) -> dict[str, str]:
    """How images entered the network, and why: the data and summary sections both say it."""
    return {
        "scaling": model.pixels,
        "text": PIXEL_SCALINGS.get(model.pixels, model.pixels),
        "origin": model.pixels_origin,
    }


def _inspection(inspection: Inspection | None, figures: dict[str, Figure], model: ModelRecord) -> list[dict[str, Any]]:
    """One entry per inspected digit: its figures in layer order and its summary rows."""
    if inspection is None:
        return []
    summaries = inspection.summaries()
    own = _own_names(model)
    cases = []
    for i, index in enumerate(inspection.indices):
        label, prediction = int(inspection.labels[i]), int(inspection.predictions[i])
        cases.append(
            {
                "case": i,
                "index": int(index),
                "label": label,
                "prediction": prediction,
                "correct": label == prediction,
                "id": f"inside-case-{i}",
                "title": f"Test image {int(index):,}: a {label}, predicted {prediction}",
                "input": figures.get(f"inside_{i}_input"),
                "layers": [
                    {
                        "layer": layer,
                        "own": own.get(layer),
                        "kind": layers.KINDS[layer],
                        "shape": layers.SHAPES[layer],
                        "reading": layers.READING[layer],
                        "figure": figures.get(f"inside_{i}_{layer}"),
                    }
                    for layer in layers.LAYERS
                ],
                "summary": [{**row, "shape": layers.SHAPES[row["layer"]]} for row in summaries if row["case"] == i],
            }
        )
    return cases


def _checksums(files: dict[str, str]) -> list[dict[str, Any]]:
    rows = []
    for name, digest in files.items():
        published = seed.MNIST_SHA256.get(name if name.endswith(".gz") else f"{name}.gz")
        rows.append(
            {
                "file": name,
                "sha256": digest,
                "published": None if published is None or not name.endswith(".gz") else digest == published,
            }
        )
    return rows


def _headline(record: RunRecord, history: History, evaluation: Evaluation) -> dict[str, Any]:
    table = evaluation.confusion_matrix
    correct = int(table.trace())
    accuracy = evaluation.overall.accuracy
    return {
        "accuracy": accuracy,
        "delta": None if is_missing(accuracy) else accuracy - seed.ACCURACY,
        "kappa": evaluation.overall.kappa,
        "n_test": evaluation.n_test,
        "correct": correct,
        "errors": evaluation.n_test - correct,
        "training_seconds": training_seconds(record, history),
        "images_per_second": _images_per_second(history),
        "contexts": list(record.contexts),
        "epochs_run": len(history.epochs),
    }


def _seed() -> dict[str, Any]:
    return {
        "accuracy": seed.ACCURACY,
        "overall": seed.OVERALL,
        "worst_pair": seed.WORST_PAIR,
        "first_labels": seed.FIRST_TRAIN_LABELS,
        "epochs": seed.EPOCHS,
        "confusion": [list(row) for row in seed.CONFUSION_TABLE],
    }


def _reproducibility(record: RunRecord) -> dict[str, Any]:
    # A report cannot time its own rendering: that figure is in the manifest only.
    timings = {stage: seconds for stage, seconds in record.timings.items() if stage != "render"}
    return {
        "command": shown_command(record.command),
        "arguments": {key: shown_value(value) for key, value in record.arguments.items()},
        "versions": dict(record.versions),
        "platform": record.platform,
        "checksums": _checksums(record.data.files),
        "timings": timings,
        "total_seconds": sum(v for v in timings.values() if not is_missing(v)) if timings else None,
    }


def _overall(evaluation: Evaluation) -> list[dict[str, Any]]:
    """caret's overall statistics beside the seed's."""
    overall = asdict(evaluation.overall)
    return [
        {"key": key, "label": label, "caret": caret, "value": overall[key], "seed": seed.OVERALL.get(key)}
        for key, label, caret in OVERALL
    ]


def _worst(evaluation: Evaluation) -> dict[str, Any]:
    worst = evaluation.worst_pair
    errors = evaluation.n_test - int(evaluation.confusion_matrix.trace())
    return {
        **{k: v for k, v in asdict(worst).items() if k != "probabilities"},
        "shown": min(len(worst.indices), 10),
        "share": worst.count / errors if errors else None,
    }


def _ranking(evaluation: Evaluation) -> dict[str, Any]:
    overall = asdict(evaluation.overall)
    return {
        "recorded": not is_missing(evaluation.overall.roc_auc_macro),
        "curves": evaluation.ranking is not None,
        "overall": [{"key": key, "label": label, "value": overall[key]} for key, label in RANKING],
        "by_class": [
            {"digit": row.digit, "roc_auc": row.roc_auc, "average_precision": row.average_precision}
            for row in evaluation.by_class
        ],
        "roc_auc_macro": evaluation.overall.roc_auc_macro,
        "roc_auc_micro": evaluation.overall.roc_auc_micro,
        "log_loss": evaluation.overall.log_loss,
    }


def _shown_model(record: RunRecord) -> str:
    return TRAINED_HERE if record.model.source == TRAINED_HERE else f"loaded from {record.model.source}"


def _settings_differences(before: RunRecord, after: RunRecord) -> list[dict[str, Any]]:
    """The settings that differ between the baseline's run and this one: hyperparameters,
    data, model source, devices and versions."""
    pairs: list[tuple[str, Any, Any]] = [
        (f"training: {key}", before.training.get(key), after.training.get(key))
        for key in sorted(before.training.keys() | after.training.keys())
    ]
    pairs += [
        ("model", _shown_model(before), _shown_model(after)),
        ("model epoch", before.model.epoch, after.model.epoch),
        ("training images", before.data.train_images, after.data.train_images),
        ("data folder", before.data.shown, after.data.shown),
        ("devices", ", ".join(before.contexts) or None, ", ".join(after.contexts) or None),
        ("reportgen", before.reportgen, after.reportgen),
    ]
    pairs += [
        (f"version: {key}", before.versions.get(key), after.versions.get(key))
        for key in sorted(before.versions.keys() | after.versions.keys())
    ]
    pairs.append(("platform", before.platform, after.platform))
    return [{"setting": name, "baseline": old, "current": new} for name, old, new in pairs if old != new]


def _scores(comparison: Comparison) -> list[dict[str, Any]]:
    rows = []
    for key, label, better in (
        ("accuracy", "Accuracy", "higher"),
        ("kappa", "Cohen's kappa", "higher"),
        ("log_loss", "Log loss", "lower"),
        ("ece", "Expected calibration error", "lower"),
    ):
        old, new = getattr(comparison.previous, key), getattr(comparison.current, key)
        difference = None if is_missing(old) or is_missing(new) else new - old
        rows.append(
            {"key": key, "label": label, "baseline": old, "current": new, "difference": difference, "better": better}
        )
    return rows


def _by_label(changes: tuple[compare.Change, ...], digit: int) -> int:
    return sum(1 for change in changes if change.label == digit)


def _against(record: RunRecord, baseline: Baseline, comparison: Comparison) -> dict[str, Any]:
    """What the section "Against the baseline" shows."""
    difference, lower, upper = (
        comparison.accuracy_difference,
        comparison.accuracy_difference_lower,
        comparison.accuracy_difference_upper,
    )
    return {
        "source": shown_path(baseline.source),
        "predicted_afresh": baseline.predicted_afresh,
        "has_history": baseline.history is not None,
        "record": baseline.record,
        "trained_here": baseline.record.model.source == TRAINED_HERE,
        "scores": _scores(comparison),
        "counts": comparison.counts,
        "difference": difference,
        "lower": lower,
        "upper": upper,
        "confidence": compare.CONFIDENCE,
        "method": compare.INTERVAL_METHOD,
        "verdict": "better" if lower > 0 else ("worse" if upper < 0 else "undecided"),
        "p_value": comparison.mcnemar_exact_p_value,
        "p_worse": comparison.mcnemar_exact_worse_p_value,
        "worse_level": compare.WORSE_LEVEL,
        "by_class": [
            {
                **row,
                "fixed": _by_label(comparison.fixed, row["class"]),
                "broken": _by_label(comparison.broken, row["class"]),
            }
            for row in comparison.by_class
        ],
        "shown": compare.SHOWN,
        "settings": _settings_differences(baseline.record, record),
    }


def _verdicts(verdicts: tuple[Verdict, ...]) -> list[dict[str, Any]]:
    rows = []
    for v in verdicts:  # value: max-drop's is the drop; shown as the change, signed
        if v.name == "fail-under":
            option, threshold, value = f"--fail-under {v.threshold:g}", fmt_pct(v.threshold), fmt_pct(v.value)
            what = "accuracy at least"
        elif v.name == "max-drop":
            option, threshold, value = (
                f"--max-drop {v.threshold:g}",
                f"{v.threshold:g} points",
                f"{fmt_points(-v.value / 100)} points",
            )
            what = "at most this many points below the baseline"
        else:
            option, threshold, value = (
                "--fail-if-worse",
                f"p \u2264 {v.threshold:g} fails",
                f"p = {fmt_pvalue(v.value)}",
            )
            what = "not worse than the baseline (one-sided exact McNemar)"
        rows.append(
            {
                "name": v.name,
                "option": option,
                "what": what,
                "threshold": threshold,
                "value": value,
                "passed": v.passed,
                "message": v.message,
            }
        )
    return rows


def context(
    record: RunRecord,
    history: History,
    evaluation: Evaluation,
    inspection: Inspection | None,
    figures: dict[str, Figure],
    baseline: Baseline | None = None,
    comparison: Comparison | None = None,
    verdicts: tuple[Verdict, ...] = (),
) -> dict[str, Any]:
    """Everything the templates see, gathered in one place.

    `figures` maps a figure's name to its Figure; templates ask `figures.get(name)` and show
    nothing for a missing one (no errors at all means no worst-case figure). `baseline` is
    None, and the section "Against the baseline" left out, without both a baseline and its
    comparison.
    """
    created, date = _date(record.created)
    layer_rows, parameters = _layers(record.model)
    cases = _inspection(inspection, figures, record.model)
    against = _against(record, baseline, comparison) if baseline is not None and comparison is not None else None
    toc = _toc(cases, against is not None)
    return {
        "title": record.title,
        "created": created,
        "date": date,
        "generator": f"reportgen {record.reportgen}",
        "toc": toc,
        "sections": {entry["id"]: entry for entry in toc},
        "seed": _seed(),
        "headline": _headline(record, history, evaluation),
        "data": replace(record.data, dir=None if record.data.dir is None else shown_path(record.data.dir)),
        "training": dict(record.training),
        "model": replace(record.model, source=shown_path(record.model.source)),
        "trained_here": record.model.source == TRAINED_HERE,
        "pixels": _pixels(record.model),
        "parameters_total": parameters,
        "layers": layer_rows,
        "own_names": bool(record.model.names),  # the loaded model names its layers otherwise
        "saturation": layers.SATURATION,
        "epochs": list(history.epochs),
        "batches": history.batches,
        "confusion": _confusion(evaluation.confusion_matrix.tolist(), evaluation.worst_pair),
        "overall": _overall(evaluation),
        "by_class_columns": [{"key": key, "caret": caret} for key, caret in BY_CLASS],
        "by_class": list(evaluation.by_class),
        "calibration": evaluation.calibration,
        "ranking": _ranking(evaluation),
        "baseline": against,
        "gates": _verdicts(verdicts),
        "worst": _worst(evaluation),
        "top_errors": list(evaluation.top_errors),
        "inspection": cases,
        "figures": figures,
        "reproducibility": _reproducibility(record),
    }


# -- output ------------------------------------------------------------------------------


def render_page(name: str, values: dict[str, Any], templates: Path | None = None) -> str:
    """Any page of the built-in templates (the site's index, say) through the same
    sandboxed environment, with the same errors, as the report."""
    return _render(name, values, templates)


def render_html(context: dict[str, Any], templates: Path | None = None) -> str:
    """One self-contained HTML file: CSS inlined, every figure a data: URI, no script."""
    return _render(HTML_TEMPLATE, {**context, "medium": "html"}, templates)


def check_url(url: str, run_dir: Path) -> None:
    """Allow data: URLs and file: URLs inside run_dir; raise RenderError for anything else."""
    refused = f"{url[:120]}: refused; the PDF may load only data: URLs and files inside {run_dir}"
    scheme = url.split(":", 1)[0].lower() if ":" in url else ""
    if scheme == "data":
        return
    if scheme != "file":
        raise RenderError(refused)
    parts = urllib.parse.urlsplit(url)
    if parts.netloc not in ("", "localhost"):
        raise RenderError(refused)
    # resolve() follows symbolic links and "..", so neither can lead outside the folder
    path = Path(urllib.request.url2pathname(parts.path)).resolve()
    if not path.is_relative_to(Path(run_dir).resolve()):
        raise RenderError(refused)


def url_fetcher(run_dir: Path):
    """A WeasyPrint URL fetcher bound to run_dir (see check_url); a refusal stops the PDF."""
    from weasyprint.urls import URLFetcher

    root = Path(run_dir).resolve()

    class RunFolderFetcher(URLFetcher):
        def fetch(self, url, headers=None):
            check_url(url, root)
            return super().fetch(url, headers)

    # fail_on_errors: a refused or missing resource ends the render instead of
    # leaving a hole in the PDF with only a log line to show for it.
    return RunFolderFetcher(fail_on_errors=True)


def load_pdf_renderer() -> None:
    """Import WeasyPrint (a third of a second: Pango, HarfBuzz, fontconfig), e.g. while other
    processes draw the figures, rather than when the PDF is due."""
    import weasyprint  # noqa: F401


def render_pdf(context: dict[str, Any], run_dir: Path, templates: Path | None = None) -> bytes:
    """The same sections as the HTML, through pdf.html.j2 and WeasyPrint: A4, a title
    page, contents with page numbers, bookmarks, metadata."""
    import weasyprint
    from weasyprint.urls import FatalURLFetchingError

    html = _render(PDF_TEMPLATE, {**context, "medium": "pdf"}, templates)
    run_dir = Path(run_dir).resolve()
    try:
        document = weasyprint.HTML(string=html, base_url=run_dir.as_uri() + "/", url_fetcher=url_fetcher(run_dir))
        return document.write_pdf()
    except FatalURLFetchingError as e:
        # A URL the templates asked for that the fetcher refused (check_url) or could not read.
        cause = e.__cause__
        message = str(cause) if isinstance(cause, RenderError) else f"PDF: {e}: {cause}"
        raise RenderError(message) from e
