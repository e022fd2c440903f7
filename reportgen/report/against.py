"""What the section "Against the baseline" shows, and the gates' verdicts."""

from __future__ import annotations

from typing import Any

from reportgen.report.filters import fmt_pct, fmt_points, fmt_pvalue, is_missing, shown_path
from reportgen.run.comparison import CONFIDENCE, INTERVAL_METHOD, SHOWN, WORSE_LEVEL, Baseline, Change, Comparison
from reportgen.run.gates import Verdict
from reportgen.run.record import NOT_KNOWN, TRAINED_HERE, RunRecord


def _shown_model(record: RunRecord) -> str:
    return TRAINED_HERE if record.model.source == TRAINED_HERE else f"loaded from {record.model.source}"


def _training_images(record: RunRecord) -> int | str:
    trained = record.trained()
    return NOT_KNOWN if trained is None else trained.train_images


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
        ("training images", _training_images(before), _training_images(after)),
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


def _by_label(changes: tuple[Change, ...], digit: int) -> int:
    return sum(1 for change in changes if change.label == digit)


def against(record: RunRecord, baseline: Baseline, comparison: Comparison) -> dict[str, Any]:
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
        "confidence": CONFIDENCE,
        "method": INTERVAL_METHOD,
        "verdict": "better" if lower > 0 else ("worse" if upper < 0 else "undecided"),
        "p_value": comparison.mcnemar_exact_p_value,
        "p_worse": comparison.mcnemar_exact_worse_p_value,
        "worse_level": WORSE_LEVEL,
        "by_class": [
            {
                "class": row.digit,
                "sensitivity": row.sensitivity,
                "precision": row.precision,
                "f1": row.f1,
                "fixed": _by_label(comparison.fixed, row.digit),
                "broken": _by_label(comparison.broken, row.digit),
            }
            for row in comparison.by_class
        ],
        "shown": SHOWN,
        "settings": _settings_differences(baseline.record, record),
    }


def verdicts(verdicts: tuple[Verdict, ...]) -> list[dict[str, Any]]:
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
