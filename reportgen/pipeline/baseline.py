"""The compare stage's inputs and outputs: a --baseline folder checked before any work, its
evaluation, the comparison with it, the gates, and metrics.json with them."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from reportgen import data
from reportgen.errors import ReportgenError
from reportgen.pipeline import stages
from reportgen.pipeline.settings import Timer
from reportgen.run import gates
from reportgen.run.comparison import Baseline, Comparison, check_same_test_images, compare
from reportgen.run.evaluation import PREDICTIONS, Evaluation, Predictions, score
from reportgen.run.files import MANIFEST, read_json
from reportgen.run.gates import Gates, Verdict
from reportgen.run.history import History
from reportgen.run.record import RunRecord

if TYPE_CHECKING:
    from reportgen.net.devices import Device


@dataclass(frozen=True)
class BaselineFolder:
    """A --baseline folder, checked before any work: its record and where its predictions come from."""

    source: str  # as the user typed it
    folder: Path
    record: RunRecord
    predictions: Predictions | None  # its predictions.npz, read; None: predict afresh with its model


def open_baseline(path: Path, current: data.DataRecord, labels: np.ndarray | None = None) -> BaselineFolder:
    """Check a --baseline folder before any work: a reportgen run, evaluated on the same test
    images as this run (with `labels`, those of this run's test images), holding
    predictions.npz or a model to make them with."""
    folder = Path(path)
    made = folder / MANIFEST
    if not made.is_file():
        raise ReportgenError(f"--baseline {path}: not a reportgen run folder (no {MANIFEST})")
    record = RunRecord.from_json(read_json(made), str(made))
    check_same_test_images(record.data, current, str(path))
    if (folder / PREDICTIONS).is_file():  # read and checked now: a damaged file is refused before training
        predictions = Predictions.load(folder / PREDICTIONS, current.test_images)
        if labels is not None and not np.array_equal(predictions.labels, labels):
            raise ReportgenError(f"--baseline {path}: its {PREDICTIONS} holds other test labels than this run's")
        return BaselineFolder(str(path), folder, record, predictions)
    if not (folder / "model").is_dir():
        raise ReportgenError(
            f"--baseline {path}: no {PREDICTIONS} and no model/ to make it with; rebuild the baseline "
            f"(reportgen build ... --out {path}) or evaluate its model (reportgen evaluate --model MODEL --out {path})"
        )
    from reportgen.net import graph, saved

    found = saved.find(str(folder))  # the files, a network of the seed's shape, finite weights: before training
    saved.parameters(found, graph.match(found.symbol))
    return BaselineFolder(str(path), folder, record, None)


def evaluate_baseline(
    opened: BaselineFolder, dataset: data.Dataset, devices: Callable[[], list[Device]], timer: Timer
) -> Baseline:
    """The baseline's evaluation from its predictions.npz, or from its model run afresh on
    this run's test images (the one place a baseline's model is loaded)."""
    with timer.stage("baseline"):
        if opened.predictions is not None:
            evaluation = score(opened.predictions.probabilities, opened.predictions.labels)
        else:
            chosen = devices()
            got = stages.load_model(str(opened.folder), None, chosen, Timer())
            evaluation = stages.evaluate(got.network, dataset, chosen[0], Timer())
    kept = opened.folder / "history.json"
    return Baseline(
        source=opened.source,
        record=opened.record,
        history=History.load(kept) if kept.is_file() else None,
        evaluation=evaluation,
        predicted_afresh=opened.predictions is None,
    )


def judge(
    asked: Gates, evaluation: Evaluation, baseline: Baseline | None
) -> tuple[Comparison | None, tuple[Verdict, ...]]:
    """The comparison with the baseline, if there is one, and the gates asked for."""
    comparison = compare(baseline.evaluation, evaluation, baseline.source) if baseline is not None else None
    return comparison, gates.judge(asked, evaluation, comparison)


def metrics(body: dict[str, Any], comparison: Comparison | None, verdicts: tuple[Verdict, ...]) -> dict[str, Any]:
    """metrics.json: the evaluation, this command's gates, and its comparison, or the one the
    body already holds when this command compared with nothing (a render with a gate only)."""
    body = {key: value for key, value in body.items() if key != "gates"}
    if comparison is not None:
        body["comparison"] = comparison.to_json()
    if verdicts:
        body["gates"] = [verdict.to_json() for verdict in verdicts]
    return body
