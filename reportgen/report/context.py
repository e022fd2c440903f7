"""The report's context: everything the templates see, gathered in one place from the run's values.

`context()` is the only place that decides what the templates see; report.templates renders
it into HTML and report.pdf into the PDF.
"""

from __future__ import annotations

import datetime as _dt
from dataclasses import asdict, replace
from typing import TYPE_CHECKING, Any

from reportgen import layers, notebook
from reportgen.data import PIXEL_SCALINGS, training_files
from reportgen.report import against, explanation, sections
from reportgen.report.filters import article, is_missing, shown_command, shown_path, shown_value
from reportgen.run.comparison import Baseline, Comparison
from reportgen.run.evaluation import Evaluation
from reportgen.run.explanation import Attributions, Explained, Features
from reportgen.run.gates import Verdict
from reportgen.run.history import History, training_seconds
from reportgen.run.inspection import Inspection
from reportgen.run.record import NOT_KNOWN, NOT_RECORDED, TRAINED_HERE, ModelRecord, RunRecord
from reportgen.stats.mistakes import WorstPair

if TYPE_CHECKING:
    from reportgen.report.figures import Figure

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
                "title": f"Test image {int(index):,}: {article(label)} {label}, predicted {prediction}",
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
        published = notebook.MNIST_SHA256.get(name if name.endswith(".gz") else f"{name}.gz")
        rows.append(
            {
                "file": name,
                "sha256": digest,
                "published": None if published is None or not name.endswith(".gz") else digest == published,
            }
        )
    return rows


def _trained(record: RunRecord, history: History) -> dict[str, Any]:
    """What the model learned from, for how long and how many epochs: the run's own when it
    trained the model, the model's run record's when it was loaded from a run folder, and
    otherwise not known. Every section that speaks of training reads it from here."""
    trained = record.trained()
    epochs = record.training.get("epochs", len(history.epochs) or None)
    facts: dict[str, Any] = {
        "known": trained is not None,
        "not_known": NOT_RECORDED if record.training else NOT_KNOWN,
        "seconds": training_seconds(trained.seconds if trained is not None else None, history),
        "epochs": epochs if isinstance(epochs, int) else None,
    }
    if trained is None:
        return facts
    files = training_files(trained.data.files)
    return {
        **facts,
        "images": trained.data.train_images,
        "total": trained.data.train_total,
        "test_images": trained.data.test_images,  # its history's per-epoch test accuracy is on these
        "folder": shown_path(trained.data.shown),
        "same_files": files == training_files(record.data.files),
        "checksums": _checksums(files),
    }


def _headline(record: RunRecord, history: History, evaluation: Evaluation) -> dict[str, Any]:
    table = evaluation.confusion_matrix
    correct = int(table.trace())
    accuracy = evaluation.overall.accuracy
    return {
        "accuracy": accuracy,
        "delta": None if is_missing(accuracy) else accuracy - notebook.ACCURACY,
        "kappa": evaluation.overall.kappa,
        "n_test": evaluation.n_test,
        "correct": correct,
        "errors": evaluation.n_test - correct,
        "training_seconds": _trained(record, history)["seconds"],
        "images_per_second": _images_per_second(history),
        "contexts": list(record.contexts),
        "epochs_run": len(history.epochs),
    }


def _seed() -> dict[str, Any]:
    return {
        "accuracy": notebook.ACCURACY,
        "overall": notebook.OVERALL,
        "worst_pair": notebook.WORST_PAIR,
        "first_labels": notebook.FIRST_TRAIN_LABELS,
        "epochs": notebook.EPOCHS,
        "confusion": [list(row) for row in notebook.CONFUSION_TABLE],
    }


def _reproducibility(record: RunRecord) -> dict[str, Any]:
    # A report cannot time its own rendering: that figure is in the manifest only.
    timings = {stage: seconds for stage, seconds in record.timings.items() if stage not in ("render", "pdf")}
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
        {"key": key, "label": label, "caret": caret, "value": overall[key], "seed": notebook.OVERALL.get(key)}
        for key, label, caret in sections.OVERALL
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
        "overall": [{"key": key, "label": label, "value": overall[key]} for key, label in sections.RANKING],
        "by_class": [
            {"digit": row.digit, "roc_auc": row.roc_auc, "average_precision": row.average_precision}
            for row in evaluation.by_class
        ],
        "roc_auc_macro": evaluation.overall.roc_auc_macro,
        "roc_auc_micro": evaluation.overall.roc_auc_micro,
        "log_loss": evaluation.overall.log_loss,
    }


def context(
    record: RunRecord,
    history: History,
    evaluation: Evaluation,
    inspection: Inspection | None,
    figures: dict[str, Figure],
    baseline: Baseline | None = None,
    comparison: Comparison | None = None,
    verdicts: tuple[Verdict, ...] = (),
    attributions: Attributions | None = None,
    features: Features | None = None,
) -> dict[str, Any]:
    """Everything the templates see, gathered in one place.

    `figures` maps a figure's name to its Figure; templates ask `figures.get(name)` and show
    nothing for a missing one (no errors at all means no worst-case figure). `baseline` is
    None, and the section "Against the baseline" left out, without both a baseline and its
    comparison. `explain` is None, and the section says how to make it (`explain_absent`),
    without attributions.npz and features.npz.
    """
    created, date = _date(record.created)
    layer_rows, parameters = _layers(record.model)
    cases = _inspection(inspection, figures, record.model)
    compared = (
        against.against(record, baseline, comparison) if baseline is not None and comparison is not None else None
    )
    inspected = [int(i) for i in inspection.indices] if inspection is not None else []
    explained = Explained.of(inspected, evaluation, comparison)
    explain = explanation.section(
        attributions, features, explained, evaluation, figures, comparison is not None, record.data
    )
    toc = sections.toc(cases, compared is not None, explain is not None)
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
        "trained": _trained(record, history),
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
        "by_class_columns": [{"key": key, "caret": caret} for key, caret in sections.BY_CLASS],
        "by_class": list(evaluation.by_class),
        "calibration": evaluation.calibration,
        "ranking": _ranking(evaluation),
        "baseline": compared,
        "gates": against.verdicts(verdicts),
        "worst": _worst(evaluation),
        "top_errors": list(evaluation.top_errors),
        "inspection": cases,
        "explain": explain,
        "explain_absent": None if explain else explanation.absent(attributions, features, record.data, inspected),
        "figures": figures,
        "reproducibility": _reproducibility(record),
    }
