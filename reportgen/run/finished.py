"""A finished run folder read back into the values it was made from, for `render`."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from reportgen.errors import DataError, ReportgenError
from reportgen.run import archive, schema
from reportgen.run.evaluation import PREDICTIONS, Evaluation, Predictions
from reportgen.run.explanation import ATTRIBUTIONS, FEATURES, Attributions, Features
from reportgen.run.files import MANIFEST, read_json
from reportgen.run.folder import check_finished, check_listed
from reportgen.run.history import History
from reportgen.run.inspection import Inspection
from reportgen.run.record import RunRecord

HISTORY = "history.json"
METRICS = "metrics.json"
INSPECTION = "inspection.npz"


@dataclass(frozen=True, eq=False)
class FinishedRun:
    folder: Path
    manifest: dict[str, Any]  # as read: render keeps its file table and adds its own record
    record: RunRecord
    history: History
    evaluation: Evaluation  # with its per-image arrays and curves when predictions.npz was kept
    inspection: Inspection
    metrics: dict[str, Any]  # metrics.json as read: its comparison and gates, if any
    pdf: archive.Sealed | None = None  # how its report.pdf is vouched for, if the manifest says
    attributions: Attributions | None = None  # None: made before reportgen kept attributions.npz
    features: Features | None = None  # None: made before features.npz


def read(run_dir: Path, per_image: bool = False) -> FinishedRun:
    """A finished run's files, each checked against its manifest; its predictions.npz, when
    kept, brings back the per-image arrays and curves (required with `per_image`, for a
    comparison); attributions.npz and features.npz, when kept, the explanations."""
    run_dir = Path(run_dir)
    needed = [HISTORY, METRICS, INSPECTION]
    check_finished(run_dir, (MANIFEST, *needed))
    manifest = read_json(run_dir / MANIFEST)
    record = RunRecord.from_json(manifest, str(run_dir / MANIFEST))
    kept = run_dir / PREDICTIONS
    listed = manifest.get("files")
    pdf = archive.sealed(manifest, str(run_dir / MANIFEST))
    optional = [name for name in (PREDICTIONS, ATTRIBUTIONS, FEATURES) if (run_dir / name).is_file()]
    check_listed(run_dir, listed if isinstance(listed, dict) else {}, needed + optional, pdf)
    metrics = read_json(run_dir / METRICS)
    evaluation = Evaluation.from_json(metrics, str(run_dir / METRICS))
    _check_summary(metrics, str(run_dir / METRICS))
    if kept.is_file():
        evaluation = evaluation.with_predictions(Predictions.load(kept, evaluation.n_test), str(kept))
    elif per_image:
        raise ReportgenError(
            f"{run_dir}: no {PREDICTIONS} (made before reportgen kept it), so nothing to compare image by image; "
            f"rebuild it from its model (reportgen build --model {run_dir} --out {run_dir}, with its data options)"
        )
    return FinishedRun(
        folder=run_dir,
        manifest=manifest,
        record=record,
        history=History.load(run_dir / HISTORY),
        evaluation=evaluation,
        inspection=Inspection.load(run_dir / INSPECTION),
        metrics=metrics,
        pdf=pdf,
        attributions=Attributions.load(run_dir / ATTRIBUTIONS, evaluation.n_test) if ATTRIBUTIONS in optional else None,
        features=Features.load(run_dir / FEATURES, evaluation.n_test) if FEATURES in optional else None,
    )


def _check_summary(metrics: dict[str, Any], source: str) -> None:
    """What a rendering reads of metrics.json besides the evaluation: the comparison's baseline
    and the gates, kept and written again."""
    try:
        if metrics.get("comparison") is not None:
            schema.field(metrics["comparison"], "baseline", "comparison", schema.text)
        if metrics.get("gates") is not None:
            schema.each(metrics["gates"], "gates", schema.obj)
    except schema.Invalid as e:
        raise DataError(f"{source}: not a reportgen metrics.json ({e})") from e
