"""The stages in order, for each command: gather every value first, then write.

cli.py parses options into these plain settings and calls one function here; each
function calls the stage modules, data -> model -> train -> evaluate -> inspect ->
figures -> report, and writes the run folder through a staging folder
(runfolder.staging). The run record (manifest.json) is built once, at the end, from
the values the stages handed on.

mxnet loads only inside the functions that train or run a network, so `reportgen
render` works without it.

In a distributed job (--kvstore dist_sync) every worker runs train or build; only rank 0
writes a run folder, the others return None once their share of the training is done.
"""

from __future__ import annotations

import logging
import socket
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from reportgen import compare, data, distributed, evaluate, figures, gates, inspection, report, runfolder
from reportgen.compare import Baseline, Comparison
from reportgen.errors import ReportgenError
from reportgen.evaluate import PREDICTIONS, Evaluation, Predictions
from reportgen.gates import NO_GATES, Gates, Verdict
from reportgen.history import History
from reportgen.inspection import Inspection
from reportgen.runfolder import TRAINED_HERE, ModelRecord, RunRecord

if TYPE_CHECKING:
    import mxnet as mx

    from reportgen.distributed import Job
    from reportgen.model import LeNet, Network
    from reportgen.saved import Files
    from reportgen.train import Progress, TrainConfig

CHECKPOINTS = ".checkpoint"  # inside the run folder; kept so --resume can continue
FORMATS = ("html", "pdf")
TITLE = "LeNet on MNIST"

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DataSettings:
    data_dir: Path | None = None
    train_limit: int | None = None
    test_limit: int | None = None


@dataclass(frozen=True)
class RunSettings:
    out: Path
    data: DataSettings = DataSettings()
    train: TrainConfig | None = None  # None: the seed's configuration
    ctx: str = "auto"
    resume: bool = False
    model: str | None = None  # --model as typed: load this model instead of training
    pixels: str | None = None  # --pixels: "unit" or "raw"; None: what the model recorded, else unit
    cases: tuple[str, ...] = ("worst",)
    title: str = TITLE
    formats: tuple[str, ...] = FORMATS
    templates: Path | None = None
    baseline: Path | None = None  # a run folder to compare with, as the user typed it
    gates: Gates = NO_GATES
    arguments: dict[str, Any] = field(default_factory=dict)  # the options as given, for the record
    command: str = "reportgen"  # the command line as given, for the record


class Timer:
    """Seconds per stage, in the order the stages ran."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        started = time.perf_counter()
        yield
        self.seconds[name] = round(time.perf_counter() - started, 3)


Say = Callable[[str], None]  # how a stage tells the user what it is doing


def _quiet(message: str) -> None:
    pass


@dataclass(frozen=True)
class Obtained:
    """A network ready to evaluate, with what the run keeps of it."""

    network: Network  # its record says where it came from and how it is fed
    history: History
    training: dict[str, Any]  # the settings it was trained with; {} when unknown
    trained: LeNet | None = None  # the net trained here, exported into model/
    files: Files | None = None  # the loaded model's files, copied into model/


@dataclass(frozen=True)
class BaselineFolder:
    """A --baseline folder, checked before any work: its record and where its predictions come from."""

    source: str  # as the user typed it
    folder: Path
    record: RunRecord
    predictions: Predictions | None  # its predictions.npz, read; None: predict afresh with its model


@dataclass(frozen=True, eq=False)
class Gathered:
    """Every value the figures and the report are made from."""

    dataset: data.Dataset
    history: History
    evaluation: Evaluation
    inspection: Inspection
    pixels: str  # how the images entered the network: "unit" or "raw"
    baseline: Baseline | None = None
    comparison: Comparison | None = None
    verdicts: tuple[Verdict, ...] = ()


# -- the stages, each a call ---------------------------------------------------------------


def load_data(settings: DataSettings) -> data.Dataset:
    return data.load(settings.data_dir, settings.train_limit, settings.test_limit)


def _contexts(spec: str) -> list[mx.Context]:
    from reportgen import train

    return train.parse_contexts(spec)


def _load_model(path: str, pixels: str | None, contexts: list[mx.Context], timer: Timer) -> Obtained:
    """A saved model (`path` as typed, `pixels` from --pixels or None), with its history and
    training settings when a reportgen run folder kept them."""
    from reportgen import saved

    with timer.stage("load model"):
        files = saved.find(path)
        network = saved.load(files, path, contexts[0], pixels)
    run_dir = files.run_folder()
    history = History.empty()
    training: dict[str, Any] = {}
    if run_dir is not None:
        if (run_dir / "history.json").is_file():
            history = History.load(run_dir / "history.json")
        training = runfolder.read_json(run_dir / runfolder.MANIFEST).get("training", {})
    return Obtained(network, history, training, files=files)


_ORIGINS = {
    "trained": "as reportgen trained it",
    "recorded": "as recorded beside it",
    "option": "--pixels",
    "default": "the default for a model from elsewhere; give --pixels raw if it was trained on 0-255 values",
}


def _loaded(record: ModelRecord) -> str:
    """What was loaded and how it will be fed, for the user: one line."""
    names = ", ".join(name for name in record.names.values() if name) if record.names else "conv1 ... softm"
    return (
        f"loaded {' and '.join(record.files)} (epoch {record.epoch}), layers {names}; "
        f"pixels {record.pixels} ({_ORIGINS.get(record.pixels_origin, record.pixels_origin)})"
    )


def _train(
    run: RunSettings,
    dataset: data.Dataset,
    contexts: list[mx.Context],
    progress: Progress | None,
    timer: Timer,
    job: Job | None = None,
) -> Obtained:
    from reportgen import model, train

    config = run.train or train.TrainConfig()
    with timer.stage("train"):
        net, history = train.fit(
            dataset,
            config,
            contexts,
            checkpoint_dir=Path(run.out) / CHECKPOINTS,
            resume=run.resume,
            progress=progress if _writes(job) else None,  # one progress bar per job, not one per worker
            job=job,
        )
    training = config.describe()
    if job is not None:
        training["workers"] = job.workers
    network = model.network(net, ModelRecord(source=TRAINED_HERE, epoch=config.epochs))
    return Obtained(network, history, training, trained=net)


# -- a distributed job ----------------------------------------------------------------------


def _kvstore(run: RunSettings) -> str:
    return run.train.kvstore if run.train is not None else distributed.DEFAULT_KVSTORE


def _join(run: RunSettings, timer: Timer) -> Job | None:
    """This worker's place in the distributed job, or None on one machine."""
    if not distributed.is_distributed(_kvstore(run)):
        return None
    with timer.stage("join"):  # waiting for every node of the job to start
        return distributed.join(_kvstore(run))


def _writes(job: Job | None) -> bool:
    """Whether this process writes the run folder: on one machine, or rank 0 of a job."""
    return job is None or job.rank == 0


def _done_elsewhere(job: Job) -> None:
    log.info(f"worker {job.rank} of {job.workers} on {socket.gethostname()}: done; rank 0 writes the run folder")


def _evaluate(got: Obtained, dataset: data.Dataset, contexts: list[mx.Context], timer: Timer) -> Evaluation:
    with timer.stage("evaluate"):
        return evaluate.run(got.network, dataset, contexts[0])


def _inspect(
    got: Obtained,
    dataset: data.Dataset,
    cases: tuple[str, ...],
    evaluation: Evaluation | None,
    contexts: list[mx.Context],
    timer: Timer,
) -> Inspection:
    worst = _worst_indices(evaluation) if evaluation is not None else []
    with timer.stage("inspect"):
        chosen = inspection.resolve_cases(list(cases), worst, len(dataset.test_y))
        return inspection.run(got.network, dataset.test_x, dataset.test_y, chosen, contexts[0])


def _worst_indices(evaluation: Evaluation) -> list[int]:
    """The worst pair's images; with no mistake at all, the least confident image."""
    if evaluation.worst_pair.indices:
        return list(evaluation.worst_pair.indices)
    assert evaluation.probabilities is not None  # a fresh evaluation holds them
    return [int(evaluation.probabilities.max(axis=1).argmin())]


def open_baseline(path: Path, current: data.DataRecord) -> BaselineFolder:
    """Check a --baseline folder before any work: a reportgen run, evaluated on the same test
    images as this run, holding predictions.npz or a model to make them with."""
    folder = Path(path)
    made = folder / runfolder.MANIFEST
    if not made.is_file():
        raise ReportgenError(f"--baseline {path}: not a reportgen run folder (no {runfolder.MANIFEST})")
    record = RunRecord.from_json(runfolder.read_json(made), str(made))
    compare.check_same_test_images(record.data, current, str(path))
    if (folder / PREDICTIONS).is_file():  # read now: a damaged file is refused before training
        return BaselineFolder(str(path), folder, record, Predictions.load(folder / PREDICTIONS))
    if not (folder / "model").is_dir():
        raise ReportgenError(
            f"--baseline {path}: no {PREDICTIONS} and no model/ to make it with; rebuild the baseline "
            f"(reportgen build ... --out {path}) or evaluate its model (reportgen evaluate --model MODEL --out {path})"
        )
    from reportgen import graph, saved

    found = saved.find(str(folder))  # the files, and a network of the seed's shape, before training
    graph.match_text(found.symbol.read_text(), str(found.symbol))
    return BaselineFolder(str(path), folder, record, None)


def _baseline(
    opened: BaselineFolder, dataset: data.Dataset, contexts: Callable[[], list[mx.Context]], timer: Timer
) -> Baseline:
    """The baseline's evaluation from its predictions.npz, or from its model run afresh on
    this run's test images (the one place a baseline's model is loaded)."""
    with timer.stage("baseline"):
        if opened.predictions is not None:
            evaluation = evaluate.score(opened.predictions.probabilities, opened.predictions.labels)
        else:
            devices = contexts()
            got = _load_model(str(opened.folder), None, devices, Timer())
            evaluation = evaluate.run(got.network, dataset, devices[0])
    kept = opened.folder / "history.json"
    return Baseline(
        source=opened.source,
        record=opened.record,
        history=History.load(kept) if kept.is_file() else None,
        evaluation=evaluation,
        predicted_afresh=opened.predictions is None,
    )


def _compare(
    run_gates: Gates, evaluation: Evaluation, baseline: Baseline | None
) -> tuple[Comparison | None, tuple[Verdict, ...]]:
    comparison = compare.run(baseline.evaluation, evaluation, baseline.source) if baseline is not None else None
    return comparison, gates.judge(run_gates, evaluation, comparison)


def _metrics(body: dict[str, Any], comparison: Comparison | None, verdicts: tuple[Verdict, ...]) -> dict[str, Any]:
    """metrics.json: the evaluation, this command's gates, and its comparison, or the one the
    body already holds when this command compared with nothing (a render with a gate only)."""
    body = {key: value for key, value in body.items() if key != "gates"}
    if comparison is not None:
        body["comparison"] = comparison.to_json()
    if verdicts:
        body["gates"] = [verdict.to_json() for verdict in verdicts]
    return body


def _record(
    run: RunSettings, contexts: list[mx.Context], dataset: data.Dataset, got: Obtained, timer: Timer
) -> RunRecord:
    """The run record from the values gathered; timings as they stand now."""
    return RunRecord(
        command=run.command,
        arguments=dict(run.arguments),
        contexts=tuple(str(c) for c in contexts),
        data=dataset.describe(),
        model=got.network.record,
        training=dict(got.training),
        title=run.title,
        timings=dict(timer.seconds),
    )


def _save_model(got: Obtained, staged: Path) -> None:
    """The model into model/: exported if trained here, copied as it was if loaded."""
    from reportgen import model, saved

    if got.trained is not None:
        model.save(got.trained, staged / "model", got.network.record.epoch)
    elif got.files is not None:
        saved.keep(got.files, staged / "model", got.network.record)
    got.history.save(staged / "history.json")


def _finish(staged: Path, record: RunRecord, keep: Path | None = None) -> dict[str, Any]:
    """manifest.json for the staged files; with `keep` (the run folder they join), also the
    files an earlier command wrote there and left as they were, so the record still vouches
    for them (`evaluate` into a `train` folder, say)."""
    files = runfolder.file_table(staged)
    if keep is not None and (keep / runfolder.MANIFEST).is_file():
        earlier = runfolder.read_json(keep / runfolder.MANIFEST).get("files")
        if isinstance(earlier, dict):
            files = {**{k: v for k, v in earlier.items() if k not in files and (keep / k).is_file()}, **files}
    manifest = runfolder.manifest(record, dict(sorted(files.items())))
    runfolder.write_json(staged / runfolder.MANIFEST, manifest)
    return manifest


# -- the commands -----------------------------------------------------------------------------


def run_train(run: RunSettings, progress: Progress | None = None) -> dict[str, Any] | None:
    """`reportgen train`: model/, history.json, manifest.json (None: another worker writes them)."""
    runfolder.check_out(run.out)
    distributed.check(_kvstore(run), resume=run.resume)
    timer = Timer()
    contexts = _contexts(run.ctx)
    with timer.stage("data"):
        dataset = load_data(run.data)
    job = _join(run, timer)
    got = _train(run, dataset, contexts, progress, timer, job)
    if job is not None and not _writes(job):
        _done_elsewhere(job)
        return None
    with runfolder.staging(run.out) as staged:
        _save_model(got, staged)
        return _finish(staged, _record(run, contexts, dataset, got, timer))


def _model_run(run: RunSettings, timer: Timer) -> tuple[list[mx.Context], data.Dataset, Obtained]:
    """What evaluate and inspect start from: devices, a saved model (refused before any data
    is read if it is not the seed's LeNet) and the data."""
    if run.model is None:
        raise ReportgenError("give --model: the saved model to use")
    contexts = _contexts(run.ctx)
    got = _load_model(run.model, run.pixels, contexts, timer)
    with timer.stage("data"):
        dataset = load_data(run.data)
    return contexts, dataset, got


def run_evaluate(run: RunSettings) -> dict[str, Any]:
    """`reportgen evaluate`: metrics.json, manifest.json."""
    runfolder.check_out(run.out)
    timer = Timer()
    contexts, dataset, got = _model_run(run, timer)
    evaluation = _evaluate(got, dataset, contexts, timer)
    with runfolder.staging(run.out) as staged:
        evaluation.save(staged / "metrics.json")
        evaluation.per_image().save(staged / PREDICTIONS)
        return _finish(staged, _record(run, contexts, dataset, got, timer), keep=run.out)


def run_inspect(run: RunSettings) -> dict[str, Any]:
    """`reportgen inspect`: inspection.npz, manifest.json."""
    runfolder.check_out(run.out)
    timer = Timer()
    contexts, dataset, got = _model_run(run, timer)
    _check_cases(run.cases, len(dataset.test_y))
    needs_worst = any(case.strip().lower() == "worst" for case in run.cases)
    evaluation = _evaluate(got, dataset, contexts, timer) if needs_worst else None
    inspected = _inspect(got, dataset, run.cases, evaluation, contexts, timer)
    with runfolder.staging(run.out) as staged:
        inspected.save(staged / "inspection.npz")
        return _finish(staged, _record(run, contexts, dataset, got, timer), keep=run.out)


def _check_gates(run_gates: Gates, baseline: Path | None) -> None:
    if run_gates.needing_baseline() and baseline is None:
        raise ReportgenError(
            f"{' and '.join(run_gates.needing_baseline())} compare with a baseline: give --baseline RUN_DIR"
        )


def run_build(run: RunSettings, progress: Progress | None = None, say: Say = _quiet) -> dict[str, Any] | None:
    """`reportgen build`: every stage, then the whole run folder; then the gates (GateError,
    exit code 3, once the folder is complete). None: another worker of a distributed job
    writes the run folder."""
    runfolder.check_out(run.out)
    _check_formats(run.formats)
    _check_pixels(run)
    _check_gates(run.gates, run.baseline)
    distributed.check(_kvstore(run), resume=run.resume, model=run.model)
    report.environment(run.templates)  # a bad --templates fails now, not after training
    timer = Timer()
    contexts = _contexts(run.ctx)
    loaded = _load_model(run.model, run.pixels, contexts, timer) if run.model is not None else None
    with timer.stage("data"):
        dataset = load_data(run.data)
    _check_cases(run.cases, len(dataset.test_y))
    opened = open_baseline(run.baseline, dataset.describe()) if run.baseline is not None else None
    if loaded is not None:
        say(_loaded(loaded.network.record))
    job = _join(run, timer) if loaded is None else None
    got = loaded or _train(run, dataset, contexts, progress, timer, job)
    if job is not None and not _writes(job):
        _done_elsewhere(job)
        return None
    say("evaluating")
    evaluation = _evaluate(got, dataset, contexts, timer)
    baseline = _baseline(opened, dataset, lambda: contexts, timer) if opened is not None else None
    comparison, verdicts = _compare(run.gates, evaluation, baseline)
    say("inspecting")
    inspected = _inspect(got, dataset, run.cases, evaluation, contexts, timer)
    gathered = Gathered(dataset, got.history, evaluation, inspected, got.network.pixels, baseline, comparison, verdicts)
    with runfolder.staging(run.out) as staged:
        _save_model(got, staged)
        runfolder.write_json(staged / "metrics.json", _metrics(evaluation.to_json(), comparison, verdicts))
        evaluation.per_image().save(staged / PREDICTIONS)
        inspected.save(staged / "inspection.npz")
        drawn = _draw(staged, gathered, run.formats, timer, say)
        record = _record(run, contexts, dataset, got, timer)
        _render(staged, record, gathered, drawn, run.formats, run.templates, timer, say)
        manifest = _finish(staged, replace(record, timings=dict(timer.seconds)))
    gates.enforce(verdicts, manifest)
    return manifest


def run_render(
    run_dir: Path,
    formats: tuple[str, ...] = FORMATS,
    title: str | None = None,
    templates: Path | None = None,
    data_dir: Path | None = None,
    say: Say = _quiet,
    command: str = "reportgen render",
    arguments: dict[str, Any] | None = None,
    baseline: Path | None = None,
    run_gates: Gates = NO_GATES,
) -> dict[str, Any]:
    """`reportgen render`: the report again from a finished run's files, no model, no mxnet
    (unless a --baseline without predictions.npz must be predicted afresh).

    The report still shows how the run was made (its command, its timings); this
    rendering is recorded under "rendered" in the manifest. With --baseline or a gate,
    metrics.json's comparison and gates become this rendering's; then the gates.
    """
    _check_formats(formats)
    _check_gates(run_gates, baseline)
    report.environment(templates)
    run_dir = Path(run_dir)
    previous, record, history, evaluation, inspected = _read_run(run_dir, baseline is not None)
    record = replace(record, title=title or record.title)
    opened = open_baseline(baseline, record.data) if baseline is not None else None
    timer = Timer()
    with timer.stage("data"):
        dataset = _reload_data(record, data_dir)
    other = _baseline(opened, dataset, lambda: _contexts("auto"), timer) if opened is not None else None
    comparison, verdicts = _compare(run_gates, evaluation, other)
    metrics = runfolder.read_json(run_dir / "metrics.json")
    if comparison is None and "comparison" in metrics:
        say(f"note: metrics.json compares with {metrics['comparison'].get('baseline')}; give --baseline to show it")
    gathered = Gathered(dataset, history, evaluation, inspected, record.model.pixels, other, comparison, verdicts)
    with runfolder.staging(run_dir) as staged:
        if opened is not None or run_gates:
            runfolder.write_json(staged / "metrics.json", _metrics(metrics, comparison, verdicts))
        drawn = _draw(staged, gathered, formats, timer, say)
        _render(staged, record, gathered, drawn, formats, templates, timer, say)
        manifest = _rendered(staged, previous, record, command, arguments, timer)
    gates.enforce(verdicts, manifest)
    return manifest


def _read_run(run_dir: Path, per_image: bool) -> tuple[dict[str, Any], RunRecord, History, Evaluation, Inspection]:
    """A finished run's files; its predictions.npz, when kept, brings back the per-image
    arrays and curves (required with `per_image`, for a comparison)."""
    read = ["history.json", "metrics.json", "inspection.npz"]
    runfolder.check_finished(run_dir, (runfolder.MANIFEST, *read))
    previous = runfolder.read_json(run_dir / runfolder.MANIFEST)
    record = RunRecord.from_json(previous, str(run_dir / runfolder.MANIFEST))
    kept = run_dir / PREDICTIONS
    listed = previous.get("files")
    runfolder.check_listed(run_dir, listed if isinstance(listed, dict) else {}, read + ([PREDICTIONS] * kept.is_file()))
    evaluation = Evaluation.load(run_dir / "metrics.json")
    if kept.is_file():
        evaluation = evaluation.with_predictions(Predictions.load(kept), str(kept))
    elif per_image:
        raise ReportgenError(
            f"{run_dir}: no {PREDICTIONS} (made before reportgen kept it), so nothing to compare image by image; "
            f"rebuild it from its model (reportgen build --model {run_dir} --out {run_dir}, with its data options)"
        )
    return (
        previous,
        record,
        History.load(run_dir / "history.json"),
        evaluation,
        Inspection.load(run_dir / "inspection.npz"),
    )


def _rendered(
    staged: Path,
    previous: dict[str, Any],
    record: RunRecord,
    command: str,
    arguments: dict[str, Any] | None,
    timer: Timer,
) -> dict[str, Any]:
    """The manifest after a rendering: the run's record, this rendering under "rendered"."""
    again = RunRecord(
        command=command,
        arguments=arguments or {},
        contexts=(),
        data=record.data,
        model=record.model,
        training={},
        timings=dict(timer.seconds),
    )
    rendered = {key: getattr(again, key) for key in ("command", "created", "arguments", "versions", "timings")}
    # The run's other files are unchanged: record them beside the new ones.
    files = {**previous.get("files", {}), **runfolder.file_table(staged)}
    manifest = runfolder.manifest(record, files, rendered=rendered)
    runfolder.write_json(staged / runfolder.MANIFEST, manifest)
    return manifest


def _draw(
    staged: Path, gathered: Gathered, formats: tuple[str, ...], timer: Timer, say: Say
) -> dict[str, figures.Figure]:
    say("drawing figures")
    with timer.stage("figures"):
        drawn = figures.make(
            gathered.dataset,
            gathered.history,
            gathered.evaluation,
            gathered.inspection,
            gathered.pixels,
            baseline=gathered.baseline,
            comparison=gathered.comparison,
            meanwhile=report.load_pdf_renderer if "pdf" in formats else None,
        )
    for figure in drawn.values():
        runfolder.write_bytes(staged / "figures" / figure.filename, figure.svg)
    return drawn


def _render(
    staged: Path,
    record: RunRecord,
    gathered: Gathered,
    drawn: dict[str, figures.Figure],
    formats: tuple[str, ...],
    templates: Path | None,
    timer: Timer,
    say: Say,
) -> None:
    say("rendering " + " and ".join(formats))
    with timer.stage("render"):
        context = report.context(
            record,
            gathered.history,
            gathered.evaluation,
            gathered.inspection,
            drawn,
            baseline=gathered.baseline,
            comparison=gathered.comparison,
            verdicts=gathered.verdicts,
        )
        if "html" in formats:
            runfolder.write_bytes(staged / "report.html", report.render_html(context, templates).encode())
        if "pdf" in formats:
            runfolder.write_bytes(staged / "report.pdf", report.render_pdf(context, staged, templates))


# -- checks before any work ------------------------------------------------------------------


def _check_cases(cases: tuple[str, ...], n_test: int) -> None:
    """Refuse a bad --case index before training rather than after."""
    indices = [case for case in cases if case.strip().lower() != "worst"]
    if indices:
        inspection.resolve_cases(indices, [], n_test)


def _check_formats(formats: tuple[str, ...]) -> None:
    unknown = [f for f in formats if f not in FORMATS]
    if unknown or not formats:
        raise ReportgenError(f"--format {','.join(formats)}: choose html, pdf or html,pdf")


def _reload_data(record: RunRecord, data_dir: Path | None) -> data.Dataset:
    """The run's data again (the report shows digits); it must be the same files."""
    folder = data_dir if data_dir is not None else record.data.dir
    dataset = data.load(folder, record.data.train_images, record.data.test_images)
    if dataset.checksums != record.data.files:
        raise ReportgenError(
            f"{dataset.describe().shown}: the data files differ from those this run "
            f"was built from ({record.data.shown}); give the run's data with --data-dir"
        )
    return dataset


def _check_pixels(run: RunSettings) -> None:
    if run.model is None and run.pixels not in (None, "unit"):
        raise ReportgenError(
            f"--pixels {run.pixels}: reportgen trains on unit pixels (divided by 255); "
            "--pixels is for a model given with --model"
        )
