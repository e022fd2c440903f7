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

from reportgen import data, distributed, evaluate, figures, inspection, report, runfolder
from reportgen.errors import ReportgenError
from reportgen.evaluate import Evaluation
from reportgen.history import History
from reportgen.inspection import Inspection
from reportgen.runfolder import TRAINED_HERE, ModelRecord, RunRecord

if TYPE_CHECKING:
    import mxnet as mx

    from reportgen.distributed import Job
    from reportgen.model import LeNet
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
    model: Path | None = None  # load this model instead of training
    cases: tuple[str, ...] = ("worst",)
    title: str = TITLE
    formats: tuple[str, ...] = FORMATS
    templates: Path | None = None
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
    """A network ready to evaluate, with what the record says of it."""

    net: LeNet
    epoch: int
    history: History
    model: ModelRecord
    training: dict[str, Any]  # the settings it was trained with; {} when unknown


# -- the stages, each a call ---------------------------------------------------------------


def load_data(settings: DataSettings) -> data.Dataset:
    return data.load(settings.data_dir, settings.train_limit, settings.test_limit)


def _contexts(spec: str) -> list[mx.Context]:
    from reportgen import train

    return train.parse_contexts(spec)


def _load_model(path: Path, contexts: list[mx.Context], timer: Timer) -> Obtained:
    """A saved model, with its history and training settings when its run folder kept them."""
    from reportgen import model

    with timer.stage("load model"):
        net, epoch = model.load(path, ctx=contexts[0])
    run_dir = model.find_model_dir(path).parent
    history = History.load(run_dir / "history.json") if (run_dir / "history.json").is_file() else History.empty()
    made = run_dir / runfolder.MANIFEST
    training = runfolder.read_json(made).get("training", {}) if made.is_file() else {}
    return Obtained(net, epoch, history, ModelRecord(source=str(path), epoch=epoch), training)


def _obtain_model(
    run: RunSettings,
    dataset: data.Dataset,
    contexts: list[mx.Context],
    progress: Progress | None,
    timer: Timer,
    job: Job | None = None,
) -> Obtained:
    """Train, or load with --model."""
    if run.model is not None:
        return _load_model(run.model, contexts, timer)
    from reportgen import train

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
    return Obtained(net, config.epochs, history, ModelRecord(source=TRAINED_HERE, epoch=config.epochs), training)


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
        return evaluate.run(got.net, dataset, contexts[0])


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
        return inspection.run(got.net, dataset.test_x, dataset.test_y, chosen, contexts[0])


def _worst_indices(evaluation: Evaluation) -> list[int]:
    """The worst pair's images; with no mistake at all, the least confident image."""
    if evaluation.worst_pair.indices:
        return list(evaluation.worst_pair.indices)
    assert evaluation.probabilities is not None  # a fresh evaluation holds them
    return [int(evaluation.probabilities.max(axis=1).argmin())]


def _record(
    run: RunSettings, contexts: list[mx.Context], dataset: data.Dataset, got: Obtained, timer: Timer
) -> RunRecord:
    """The run record from the values gathered; timings as they stand now."""
    return RunRecord(
        command=run.command,
        arguments=dict(run.arguments),
        contexts=tuple(str(c) for c in contexts),
        data=dataset.describe(),
        model=got.model,
        training=dict(got.training),
        title=run.title,
        timings=dict(timer.seconds),
    )


def _save_model(got: Obtained, staged: Path) -> None:
    from reportgen import model

    model.save(got.net, staged / "model", got.epoch)
    got.history.save(staged / "history.json")


def _finish(staged: Path, record: RunRecord, **more: Any) -> dict[str, Any]:
    manifest = runfolder.manifest(record, runfolder.file_table(staged), **more)
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
    got = _obtain_model(run, dataset, contexts, progress, timer, job)
    if job is not None and not _writes(job):
        _done_elsewhere(job)
        return None
    with runfolder.staging(run.out) as staged:
        _save_model(got, staged)
        return _finish(staged, _record(run, contexts, dataset, got, timer))


def _model_run(run: RunSettings, timer: Timer) -> tuple[list[mx.Context], data.Dataset, Obtained]:
    """What evaluate and inspect start from: devices, data and a saved model."""
    if run.model is None:
        raise ReportgenError("give --model: the saved model to use")
    contexts = _contexts(run.ctx)
    with timer.stage("data"):
        dataset = load_data(run.data)
    return contexts, dataset, _load_model(run.model, contexts, timer)


def run_evaluate(run: RunSettings) -> dict[str, Any]:
    """`reportgen evaluate`: metrics.json, manifest.json."""
    runfolder.check_out(run.out)
    timer = Timer()
    contexts, dataset, got = _model_run(run, timer)
    evaluation = _evaluate(got, dataset, contexts, timer)
    with runfolder.staging(run.out) as staged:
        evaluation.save(staged / "metrics.json")
        return _finish(staged, _record(run, contexts, dataset, got, timer))


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
        return _finish(staged, _record(run, contexts, dataset, got, timer))


def run_build(run: RunSettings, progress: Progress | None = None, say: Say = _quiet) -> dict[str, Any] | None:
    """`reportgen build`: every stage, then the whole run folder (None: another worker writes it)."""
    runfolder.check_out(run.out)
    _check_formats(run.formats)
    distributed.check(_kvstore(run), resume=run.resume, model=run.model)
    report.environment(run.templates)  # a bad --templates fails now, not after training
    timer = Timer()
    contexts = _contexts(run.ctx)
    with timer.stage("data"):
        dataset = load_data(run.data)
    _check_cases(run.cases, len(dataset.test_y))
    job = _join(run, timer)
    got = _obtain_model(run, dataset, contexts, progress, timer, job)
    if job is not None and not _writes(job):
        _done_elsewhere(job)
        return None
    say("evaluating")
    evaluation = _evaluate(got, dataset, contexts, timer)
    say("inspecting")
    inspected = _inspect(got, dataset, run.cases, evaluation, contexts, timer)
    with runfolder.staging(run.out) as staged:
        _save_model(got, staged)
        evaluation.save(staged / "metrics.json")
        inspected.save(staged / "inspection.npz")
        drawn = _draw(staged, dataset, got.history, evaluation, inspected, timer, say)
        record = _record(run, contexts, dataset, got, timer)
        _render(staged, record, got.history, evaluation, inspected, drawn, run.formats, run.templates, timer, say)
        return _finish(staged, replace(record, timings=dict(timer.seconds)))


def run_render(
    run_dir: Path,
    formats: tuple[str, ...] = FORMATS,
    title: str | None = None,
    templates: Path | None = None,
    data_dir: Path | None = None,
    say: Say = _quiet,
    command: str = "reportgen render",
    arguments: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """`reportgen render`: the report again from a finished run's files, no model, no mxnet.

    The report still shows how the run was made (its command, its timings); this
    rendering is recorded under "rendered" in the manifest.
    """
    _check_formats(formats)
    report.environment(templates)
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise ReportgenError(f"{run_dir}: no such run folder")
    missing = [
        name
        for name in (runfolder.MANIFEST, "history.json", "metrics.json", "inspection.npz")
        if not (run_dir / name).is_file()
    ]
    if missing:
        raise ReportgenError(
            f"{run_dir}: not a finished reportgen run (no {missing[0]}); make one with reportgen build"
        )
    previous = runfolder.read_json(run_dir / runfolder.MANIFEST)
    record = RunRecord.from_json(previous, str(run_dir / runfolder.MANIFEST))
    record = replace(record, title=title or record.title)
    history = History.load(run_dir / "history.json")
    evaluation = Evaluation.load(run_dir / "metrics.json")
    inspected = Inspection.load(run_dir / "inspection.npz")
    timer = Timer()
    with timer.stage("data"):
        dataset = _reload_data(record, data_dir)
    with runfolder.staging(run_dir) as staged:
        drawn = _draw(staged, dataset, history, evaluation, inspected, timer, say)
        _render(staged, record, history, evaluation, inspected, drawn, formats, templates, timer, say)
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
    staged: Path,
    dataset: data.Dataset,
    history: History,
    evaluation: Evaluation,
    inspected: Inspection,
    timer: Timer,
    say: Say,
) -> dict[str, figures.Figure]:
    say("drawing figures")
    with timer.stage("figures"):
        drawn = figures.make(dataset, history, evaluation, inspected)
    for figure in drawn.values():
        runfolder.write_bytes(staged / "figures" / figure.filename, figure.svg)
    return drawn


def _render(
    staged: Path,
    record: RunRecord,
    history: History,
    evaluation: Evaluation,
    inspected: Inspection,
    drawn: dict[str, figures.Figure],
    formats: tuple[str, ...],
    templates: Path | None,
    timer: Timer,
    say: Say,
) -> None:
    say("rendering " + " and ".join(formats))
    with timer.stage("render"):
        context = report.context(record, history, evaluation, inspected, drawn)
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
