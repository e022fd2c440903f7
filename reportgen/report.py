"""Stage 6: the report. One context, rendered through Jinja into a standalone HTML file and a PDF.

`context()` is the only place that decides what the templates see. The HTML
(`report.html.j2`) and the PDF (`pdf.html.j2`) both extend `base.html.j2` and include
the same section partials; the PDF adds a title page and its page-numbered contents
through CSS print rules. The loader searches the user's `--templates` folder before
the built-in one, so overriding one partial keeps the rest.
"""
from __future__ import annotations

import datetime as _dt
import logging
import math
import numbers
import traceback
import urllib.parse
import urllib.request
from importlib import resources
from pathlib import Path
from typing import Any

import jinja2

from reportgen import __version__, model, seed
from reportgen.errors import RenderError

HTML_TEMPLATE = "report.html.j2"
PDF_TEMPLATE = "pdf.html.j2"
NA = "NA"  # what R prints for a missing value; caret users read it so
MINUS = "\u2212"  # a true minus sign: as wide as "+" and the digits

# The report's sections in the seed notebook's order, and their subsections.
SECTIONS = (
    ("summary", "Summary", ()),
    ("data", "Data", (("data-digits", "The first training digits"),
                      ("data-counts", "Digits per class"))),
    ("network", "Network", ()),
    ("training", "Training", (("training-batches", "Per batch"),
                              ("training-epochs", "Per epoch"))),
    ("evaluation", "Evaluation", (("evaluation-confusion", "Confusion matrix"),
                                  ("evaluation-overall", "Overall statistics"),
                                  ("evaluation-classes", "Per-class statistics"),
                                  ("evaluation-calibration", "Calibration"))),
    ("worst", "The worst confusion", (("worst-cases", "Its images"),
                                      ("worst-top", "The most confident mistakes"))),
    ("inside", "Inside the network", (("inside-kernels", "The learned kernels"),)),
    ("reproducibility", "Reproducibility", (("repro-command", "Command and arguments"),
                                            ("repro-versions", "Versions"),
                                            ("repro-data", "Data files"),
                                            ("repro-timings", "Timings"))),
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
    ("sensitivity", "Sensitivity"), ("specificity", "Specificity"),
    ("pos_pred_value", "Pos Pred Value"), ("neg_pred_value", "Neg Pred Value"),
    ("precision", "Precision"), ("recall", "Recall"), ("f1", "F1"),
    ("prevalence", "Prevalence"), ("detection_rate", "Detection Rate"),
    ("detection_prevalence", "Detection Prevalence"), ("balanced_accuracy", "Balanced Accuracy"),
)

_MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August",
           "September", "October", "November", "December")


# -- number filters ----------------------------------------------------------------------

def is_missing(x: Any) -> bool:
    """None, NaN and infinities: shown as NA."""
    if x is None:
        return True
    return isinstance(x, numbers.Real) and not math.isfinite(float(x))


def _minus(text: str) -> str:
    return text.replace("-", MINUS)


def fmt_fixed(x: Any, digits: int = 4) -> str:
    """Fixed decimals with thousands separators: 0.9890, 12,345.6."""
    return NA if is_missing(x) else _minus(f"{float(x):,.{digits}f}")


def fmt_pct(x: Any, digits: int = 2) -> str:
    """A share as a percentage: 0.9901 -> 99.01%."""
    return NA if is_missing(x) else _minus(f"{100 * float(x):,.{digits}f}%")


def fmt_int(x: Any) -> str:
    """A count with thousands separators: 60000 -> 60,000."""
    return NA if is_missing(x) else _minus(f"{round(float(x)):,}")


def fmt_seconds(x: Any) -> str:
    """Seconds as people say them: 0.42 s, 8.3 s, 42 s, 1 min 23 s, 2 h 05 min."""
    if is_missing(x):
        return NA
    s = float(x)
    if s < 10:
        return f"{s:.2f} s" if s < 1 else f"{s:.1f} s"
    if s < 59.5:
        return f"{s:.0f} s"
    s = round(s)
    if s < 3600:
        return f"{s // 60} min {s % 60} s"
    return f"{s // 3600} h {s % 3600 // 60:02d} min"


def fmt_pvalue(x: Any) -> str:
    """A p-value as R prints one: below machine precision it is "< 2.2e-16"."""
    if is_missing(x):
        return NA
    p = float(x)
    if p < 2.2e-16:
        return "< 2.2e\u221216"
    return _minus(f"{p:.2e}") if p < 1e-4 else f"{p:.4f}"


def fmt_points(x: Any, digits: int = 2) -> str:
    """A difference of two shares in percentage points, signed: +0.12, -0.35."""
    return NA if is_missing(x) else _minus(f"{100 * float(x):+.{digits}f}")


def fmt_shape(shape: Any) -> str:
    """(20, 24, 24) -> "20 × 24 × 24"."""
    return " \u00d7 ".join(str(n) for n in shape)


def fmt_value(x: Any) -> str:
    """Any value of the run record: numbers as above, lists joined, the rest as text."""
    if x is None or (isinstance(x, float) and is_missing(x)):
        return NA
    if isinstance(x, bool):
        return "yes" if x else "no"
    if isinstance(x, int):
        return str(x)
    if isinstance(x, float):  # 1e-05 reads as the seed wrote it, 0.00001
        text = f"{x:.10f}".rstrip("0").rstrip(".") if 1e-6 <= abs(x) < 1e9 else f"{x:g}"
        return _minus(text)
    if isinstance(x, (list, tuple)):
        return ", ".join(fmt_value(v) for v in x)
    return str(x)


FILTERS = {"fixed": fmt_fixed, "pct": fmt_pct, "thousands": fmt_int, "seconds": fmt_seconds,
           "pvalue": fmt_pvalue, "points": fmt_points, "shape": fmt_shape, "value": fmt_value}


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
    """Jinja with autoescape, strict undefined values, the number filters, and the
    user's folder searched before the built-in one."""
    folders = []
    if templates is not None:
        templates = Path(templates)
        if not templates.is_dir():
            raise RenderError(f"{templates}: no such templates folder")
        folders.append(templates)
    folders.append(builtin_templates())
    env = jinja2.Environment(
        loader=jinja2.ChoiceLoader([jinja2.FileSystemLoader(str(f)) for f in folders]),
        autoescape=True,  # a title like "<script>" is text, not markup
        undefined=jinja2.StrictUndefined,  # a misspelt name is an error, not an empty string
        # Not trim_blocks: a newline after "{% endif %}" in prose is the space between words.
        lstrip_blocks=True, keep_trailing_newline=True)
    env.filters.update(FILTERS)
    return env


def _template_line(tb) -> str:
    """"<file>, line N" of the innermost template frame (Jinja rewrites tracebacks so
    template frames carry the template's file name and line)."""
    where = "template"
    for frame in traceback.extract_tb(tb):
        if frame.filename.endswith((".j2", ".css", ".html")):
            where = f"{frame.filename}, line {frame.lineno}"
    return where


def _render(name: str, values: dict, templates: Path | None) -> str:
    env = environment(templates)
    try:
        return env.get_template(name).render(values)
    except jinja2.TemplateSyntaxError as e:
        raise RenderError(f"{e.filename or e.name}, line {e.lineno}: {e.message}") from None
    except jinja2.TemplateNotFound as e:
        searched = " and ".join(str(f) for f in (templates, builtin_templates()) if f is not None)
        raise RenderError(f"template {e.name} not found in {searched}") from None
    except RenderError:
        raise
    except Exception as e:  # noqa: BLE001 - a user's template can raise anything; say where
        message = e.message if isinstance(e, jinja2.TemplateError) else f"{type(e).__name__}: {e}"
        raise RenderError(f"{_template_line(e.__traceback__)}: {message}") from None


# -- the context -------------------------------------------------------------------------

def _date(created: str | None) -> tuple[str, str]:
    """ISO timestamp for the metadata, "28 November 2026" for people."""
    try:
        when = _dt.datetime.fromisoformat(created) if created else None
    except ValueError:
        when = None
    if when is None:
        when = _dt.datetime.now(_dt.timezone.utc).replace(microsecond=0)
    if when.tzinfo is None:
        when = when.replace(tzinfo=_dt.timezone.utc)
    return when.isoformat(), f"{when.day} {_MONTHS[when.month - 1]} {when.year}"


def _toc(inspection_cases: list[dict]) -> list[dict]:
    """Contents entries (id, title, number, level); inspected cases join section 7."""
    entries = []
    for n, (sid, title, subsections) in enumerate(SECTIONS, start=1):
        entries.append({"id": sid, "title": title, "number": str(n), "level": 1})
        subs = list(subsections)
        if sid == "inside":
            subs += [(case["id"], case["title"]) for case in inspection_cases]
        for m, (sub_id, sub_title) in enumerate(subs, start=1):
            entries.append({"id": sub_id, "title": sub_title, "number": f"{n}.{m}", "level": 2})
    return entries


def _confusion(matrix: list[list[int]], worst: dict) -> dict:
    """Rows are predictions, columns the reference, as caret prints cm$table."""
    rows = []
    for p, counts in enumerate(matrix):
        rows.append({"prediction": p, "total": sum(counts), "cells": [
            {"reference": r, "value": int(v), "diagonal": p == r,
             "worst": worst.get("count", 0) > 0 and (p, r) == (worst.get("prediction"),
                                                                worst.get("reference"))}
            for r, v in enumerate(counts)]})
    columns = [sum(row[r] for row in matrix) for r in range(len(matrix))]
    return {"classes": list(range(len(matrix))), "rows": rows, "column_totals": columns}


def _epochs(history: dict) -> list[dict]:
    return [dict(record) for record in history.get("epochs", [])]


def _training_seconds(manifest: dict, epochs: list[dict]) -> float | None:
    timings = manifest.get("timings", {})
    if "train" in timings:
        return timings["train"]
    seconds = [e.get("seconds") for e in epochs if e.get("seconds") is not None]
    return sum(seconds) if seconds else None


def _layers() -> tuple[list[dict], int]:
    counts = model.parameter_counts()
    rows = [{"layer": layer, "kind": model.KINDS[layer], "shape": model.SHAPES[layer],
             "size": math.prod(model.SHAPES[layer]), "parameters": counts[layer]}
            for layer in model.LAYERS]
    return rows, sum(counts.values())


def _inspection(inspection: Any, figures: dict) -> list[dict]:
    """One entry per inspected digit: its figures in layer order and its summary rows."""
    if inspection is None:
        return []
    summaries = inspection.summaries()
    cases = []
    for i, index in enumerate(inspection.indices):
        label, prediction = int(inspection.labels[i]), int(inspection.predictions[i])
        cases.append({
            "case": i, "index": int(index), "label": label, "prediction": prediction,
            "correct": label == prediction, "id": f"inside-case-{i}",
            "title": f"Test image {int(index):,}: a {label}, predicted {prediction}",
            "input": figures.get(f"inside_{i}_input"),
            "layers": [{"layer": layer, "kind": model.KINDS[layer], "shape": model.SHAPES[layer],
                        "figure": figures.get(f"inside_{i}_{layer}")} for layer in model.LAYERS],
            "summary": [{**row, "shape": model.SHAPES.get(row["layer"], ())}
                        for row in summaries if row["case"] == i],
        })
    return cases


def _checksums(files: dict[str, str]) -> list[dict]:
    rows = []
    for name, digest in files.items():
        published = seed.MNIST_SHA256.get(name if name.endswith(".gz") else f"{name}.gz")
        rows.append({"file": name, "sha256": digest,
                     "published": None if published is None or not name.endswith(".gz")
                     else digest == published})
    return rows


def context(title: str, manifest: dict, history: dict, metrics: dict, inspection: Any,
            figures: dict) -> dict:
    """Everything the templates see, gathered in one place.

    `figures` maps a figure's name to an object with name, caption, alt, svg and
    data_uri; templates ask `figures.get(name)` and show nothing for a missing one
    (no errors at all means no worst-case figure).
    """
    try:
        return _context(title, manifest, history, metrics, inspection, figures)
    except (KeyError, IndexError, TypeError) as e:
        raise RenderError(f"cannot assemble the report from the run's records: "
                          f"{type(e).__name__}: {e}") from None


def _context(title: str, manifest: dict, history: dict, metrics: dict, inspection: Any,
             figures: dict) -> dict:
    created, date = _date(manifest.get("created"))
    overall = metrics["overall"]
    matrix = [[int(v) for v in row] for row in metrics["confusion_matrix"]]
    n_test = int(metrics["n_test"])
    correct = sum(matrix[k][k] for k in range(len(matrix)))
    worst = dict(metrics["worst_pair"])
    epochs = _epochs(history)
    data = dict(manifest.get("data", {}))
    training = dict(manifest.get("training", {}))
    layers, parameters = _layers()
    cases = _inspection(inspection, figures)
    toc = _toc(cases)
    accuracy = overall.get("accuracy")
    timings = dict(manifest.get("timings", {}))
    return {
        "title": title,
        "created": created,
        "date": date,
        "generator": f"reportgen {manifest.get('reportgen', __version__)}",
        "toc": toc,
        "sections": {entry["id"]: entry for entry in toc},
        "seed": {"accuracy": seed.ACCURACY, "overall": seed.OVERALL, "worst_pair": seed.WORST_PAIR,
                 "first_labels": seed.FIRST_TRAIN_LABELS, "epochs": seed.EPOCHS,
                 "confusion": [list(row) for row in seed.CONFUSION_TABLE]},
        "headline": {
            "accuracy": accuracy,
            "delta": None if is_missing(accuracy) else accuracy - seed.ACCURACY,
            "kappa": overall.get("kappa"),
            "n_test": n_test, "correct": correct, "errors": n_test - correct,
            "training_seconds": _training_seconds(manifest, epochs),
            "contexts": list(manifest.get("contexts", [])),
            "epochs_run": len(epochs),
        },
        "data": data,
        "training": training,
        "model": dict(manifest.get("model", {})),
        "parameters_total": parameters,
        "layers": layers,
        "epochs": epochs,
        "batches": len(history.get("batches", [])),
        "confusion": _confusion(matrix, worst),
        "overall": [{"key": key, "label": label, "caret": caret, "value": overall.get(key),
                     "seed": seed.OVERALL.get(key)} for key, label, caret in OVERALL],
        "by_class_columns": [{"key": key, "caret": caret} for key, caret in BY_CLASS],
        "by_class": [dict(row) for row in metrics["by_class"]],
        "calibration": dict(metrics.get("calibration", {"bins": [], "ece": None})),
        "worst": {**worst, "shown": min(len(worst.get("indices", [])), 10),
                  "share": worst["count"] / (n_test - correct) if n_test > correct else None},
        "top_errors": [dict(row) for row in metrics.get("top_errors", [])],
        "inspection": cases,
        "figures": figures,
        "reproducibility": {
            "command": manifest.get("command", ""),
            "arguments": dict(manifest.get("arguments", {})),
            "versions": dict(manifest.get("versions", {})),
            "platform": manifest.get("platform", ""),
            "checksums": _checksums(dict(data.get("files", {}))),
            "timings": timings,
            "total_seconds": sum(v for v in timings.values() if not is_missing(v)) if timings else None,
        },
    }


# -- output ------------------------------------------------------------------------------

def render_html(context: dict, templates: Path | None = None) -> str:
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


def quiet_weasyprint() -> None:
    """WeasyPrint and fontTools chatter at INFO/DEBUG; keep warnings and errors only."""
    for name in ("weasyprint", "weasyprint.progress", "fontTools"):
        logging.getLogger(name).setLevel(logging.WARNING)


def render_pdf(context: dict, run_dir: Path, templates: Path | None = None) -> bytes:
    """The same sections as the HTML, through pdf.html.j2 and WeasyPrint: A4, a title
    page, contents with page numbers, bookmarks, metadata."""
    import weasyprint
    from weasyprint.urls import FatalURLFetchingError

    quiet_weasyprint()
    html = _render(PDF_TEMPLATE, {**context, "medium": "pdf"}, templates)
    run_dir = Path(run_dir).resolve()
    try:
        document = weasyprint.HTML(string=html, base_url=run_dir.as_uri() + "/",
                                   url_fetcher=url_fetcher(run_dir))
        return document.write_pdf()
    except FatalURLFetchingError as e:
        if isinstance(e.__cause__, RenderError):
            raise e.__cause__ from None
        raise RenderError(f"PDF: {e}: {e.__cause__}") from None
    except Exception as e:  # noqa: BLE001 - WeasyPrint's own failures, turned into one line
        raise RenderError(f"PDF: WeasyPrint failed: {type(e).__name__}: {e}") from None
