"""The report's sections and tables: their order, titles and contents entries."""

from __future__ import annotations

from typing import Any

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
        "explain",
        "Why the network got it wrong",
        (
            ("explain-pixels", "Which pixels decided"),
            ("explain-space", "Where the digits lie in act3"),
            ("explain-neighbours", "The nearest training images"),
        ),
    ),
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


def sections(with_baseline: bool) -> list[tuple[str, str, tuple[tuple[str, str], ...]]]:
    sections = list(SECTIONS)
    if with_baseline:
        after = next(i for i, (sid, _, _) in enumerate(sections) if sid == "evaluation")
        sections.insert(after + 1, BASELINE_SECTION)
    return sections


def toc(
    inspection_cases: list[dict[str, Any]], with_baseline: bool = False, with_explanations: bool = True
) -> list[dict[str, Any]]:
    """Contents entries (id, title, number, level); inspected cases join "Inside the network".
    Without the explanations (a run made before them) their section has no subsections: it
    only says how to make them."""
    entries = []
    for n, (sid, title, subsections) in enumerate(sections(with_baseline), start=1):
        entries.append({"id": sid, "title": title, "number": str(n), "level": 1})
        subs = list(subsections) if sid != "explain" or with_explanations else []
        if sid == "inside":
            subs += [(case["id"], case["title"]) for case in inspection_cases]
        for m, (sub_id, sub_title) in enumerate(subs, start=1):
            entries.append({"id": sub_id, "title": sub_title, "number": f"{n}.{m}", "level": 2})
    return entries
