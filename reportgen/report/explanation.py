"""The section "Why the network got it wrong" for the templates: the values `_explain.html.j2`
reads (the report's context gives them as `explain`), or, for a run made before
attributions.npz and features.npz, how to make them (`explain_absent`).

No MXNet: from attributions.npz and features.npz (run.explanation), the evaluation and the
section's figures (figures/attribution.py, figures/features.py).
"""

from __future__ import annotations

import shlex
from typing import TYPE_CHECKING, Any

from reportgen.data import DataRecord
from reportgen.report.filters import shown_path
from reportgen.run.evaluation import Evaluation
from reportgen.run.explanation import (
    ATTRIBUTIONS,
    FEATURES,
    STEPS,
    TOLERANCE,
    Attributions,
    Explained,
    Features,
)

if TYPE_CHECKING:
    from reportgen.report.figures import Figure

_TITLES = {
    "inspected": "The inspected digits",
    "worst": "The worst pair",
    "mistakes": "The most confident mistakes",
    "broken": "The images this run broke",
}


def _rows(attributions: Attributions, indices: list[int]) -> list[dict[str, Any]]:
    # Whether each image is complete: Attributions.complete, the one judgement of it that the
    # warnings, the tables and the figures share.
    totals, errors, complete = attributions.totals, attributions.completeness, attributions.complete
    rows = []
    for index in indices:
        i = attributions.position(index)
        target, versus = int(attributions.targets[i]), int(attributions.versus[i])
        rows.append(
            {
                "index": index,
                "label": versus if versus >= 0 else target,
                "prediction": target,
                "correct": versus < 0,
                "explained": f"full2[{target}] − full2[{versus}]" if versus >= 0 else f"full2[{target}]",
                "score_image": float(attributions.score_image[i]),
                "score_baseline": float(attributions.score_baseline[i]),
                "difference": float(attributions.score_image[i] - attributions.score_baseline[i]),
                "total": float(totals[i]),
                "error": float(errors[i]),
                "complete": bool(complete[i]),
                "steps": int(attributions.steps[i]),
            }
        )
    return rows


def section(
    attributions: Attributions | None,
    features: Features | None,
    explained: Explained,
    evaluation: Evaluation,
    figures: dict[str, Figure],
    with_baseline: bool = False,
    data: DataRecord | None = None,
) -> dict[str, Any] | None:
    """What `_explain.html.j2` reads; None for a run made before attributions.npz and
    features.npz (the template then says how to get the section)."""
    if attributions is None or features is None:
        return None
    groups = []
    for group, indices in explained.groups():
        if group == "broken" and not with_baseline:
            continue
        present = [i for i in indices if attributions.has(i)]
        groups.append(
            {
                "key": group,
                "title": _TITLES[group],
                "figure": figures.get(f"explain_{group}"),
                "rows": _rows(attributions, present),
                "missing": len(indices) - len(present),  # e.g. broken images of a baseline the build did not have
            }
        )
    errors = attributions.completeness
    neighbour_rows = []
    for mistake in evaluation.top_errors:
        try:
            r = features.row(mistake.index)
        except KeyError:
            continue
        labels = features.neighbour_labels[r]
        neighbour_rows.append(
            {
                "index": mistake.index,
                "label": mistake.label,
                "prediction": mistake.prediction,
                "neighbours": [
                    {"index": int(j), "label": int(label), "distance": float(d)}
                    for j, label, d in zip(features.neighbours[r], labels, features.neighbour_distances[r])
                ],
                "agree": int((labels == mistake.prediction).sum()),
            }
        )
    ratio = features.explained_variance_ratio
    return {
        "steps": STEPS,
        "tolerance": TOLERANCE,
        "window": attributions.occlusion_window,
        "stride": attributions.occlusion_stride,
        "explained_images": len(attributions),
        "worst_error": float(errors.max()) if len(errors) else 0.0,
        "complete": int(attributions.complete.sum()),
        "most_steps": int(attributions.steps.max()) if len(attributions) else STEPS,
        "warnings": attributions.warnings(),
        "groups": groups,
        "projection": figures.get("explain_projection"),
        "variance": [float(v) for v in ratio],
        "variance_total": float(ratio.sum()),
        "n_test": len(features.act3_pca),
        "train_images": features.train_images,
        # Whether that is the whole training file, or the first images, those the model learned from.
        "train_total": data.train_total if data is not None else None,
        "neighbours_figure": figures.get("explain_neighbours"),
        "neighbours": neighbour_rows,
        "k": features.neighbours.shape[1],
    }


def absent(attributions: Attributions | None, features: Features | None, data: DataRecord, cases: list[int]) -> dict:
    """For a run without the section's files: which are missing, and the command that makes
    them in the run folder (the same data and the same inspected digits), then renders again.
    No --train-limit: inspect loads the training images the run's model learned from, as its
    record says, and searches those, as the build did."""
    missing = [name for name, value in ((ATTRIBUTIONS, attributions), (FEATURES, features)) if value is None]
    options = [f"--case {index}" for index in cases]
    if data.dir is not None:
        options.append(f"--data-dir {shlex.quote(shown_path(data.dir))}")
    if data.test_images < data.test_total:
        options.append(f"--test-limit {data.test_images}")
    return {
        "missing": missing,
        "command": " ".join(["reportgen inspect --model RUN --out RUN", *options]),
        "then": "reportgen render RUN",
    }
