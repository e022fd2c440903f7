"""The stages in order, for each command: gather every value first, then write.

cli.py parses options into these plain settings and calls one function here;
each function calls the stage modules and writes the run folder through a
staging folder (runfolder.staging).
"""
from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import mxnet as mx

from reportgen import data, evaluate, figures, inspection, model, report, runfolder, train
from reportgen.errors import ReportgenError

CHECKPOINTS = ".checkpoint"  # inside the run folder; kept so --resume can continue
FORMATS = ("html", "pdf")


@dataclass(frozen=True)
class DataSettings:
    data_dir: Path | None = None
    train_limit: int | None = None
    test_limit: int | None = None


@dataclass(frozen=True)
class RunSettings:
    out: Path
    data: DataSettings = DataSettings()
    train: train.TrainConfig = train.TrainConfig()
    ctx: str = "auto"
    resume: bool = False
    model: Path | None = None  # load this model instead of training
    cases: tuple[str, ...] = ("worst",)
    title: str = "LeNet on MNIST"
    formats: tuple[str, ...] = FORMATS
    templates: Path | None = None
    arguments: dict = field(default_factory=dict)  # the options as given, for the record
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


def load_data(settings: DataSettings) -> data.Dataset:
    return data.load(settings.data_dir, settings.train_limit, settings.test_limit)


def _get_model(run: RunSettings, dataset: data.Dataset, contexts: list[mx.Context],
               progress: train.Progress | None, timer: Timer) -> tuple[model.LeNet, int, dict, dict]:
    """Train, or load with --model; return net, epoch, history and the model record."""
    if run.model is not None:
        with timer.stage("load model"):
            net, epoch = model.load(run.model, ctx=contexts[0])
        history_file = model.find_model_dir(run.model).parent / "history.json"
        history = (runfolder.read_json(history_file) if history_file.is_file()
                   else {"batches": [], "epochs": []})
        made = model.find_model_dir(run.model).parent / runfolder.MANIFEST
        training = runfolder.read_json(made).get("training", {}) if made.is_file() else {}
        return net, epoch, history, {"source": str(run.model), "epoch": epoch, "training": training}
    with timer.stage("train"):
        net, history = train.fit(dataset, run.train, contexts, checkpoint_dir=Path(run.out) / CHECKPOINTS,
                                 resume=run.resume, progress=progress)
    return net, run.train.epochs, history, {"source": "trained here", "epoch": run.train.epochs,
                                            "training": run.train.describe()}


def _manifest(run: RunSettings, contexts: list[mx.Context], dataset: data.Dataset,
              model_record: dict) -> dict:
    record = runfolder.new_manifest(run.command, run.arguments, [str(c) for c in contexts])
    record["data"] = dataset.describe()
    record["training"] = model_record.pop("training", {})
    record["model"] = model_record
    return record


def _loaded(run: RunSettings, epoch: int) -> dict:
    return {"source": str(run.model), "epoch": epoch}


def _finish(staged: Path, manifest: dict, timer: Timer) -> None:
    manifest["timings"] = timer.seconds
    manifest["files"] = runfolder.file_table(staged)
    runfolder.write_json(staged / runfolder.MANIFEST, manifest)


def run_train(run: RunSettings, progress: train.Progress | None = None) -> dict:
    """`reportgen train`: model/, history.json, manifest.json."""
    runfolder.check_out(run.out)
    timer = Timer()
    contexts = train.parse_contexts(run.ctx)
    with timer.stage("data"):
        dataset = load_data(run.data)
    net, epoch, history, model_record = _get_model(run, dataset, contexts, progress, timer)
    manifest = _manifest(run, contexts, dataset, model_record)
    with runfolder.staging(run.out) as staged:
        model.save(net, staged / "model", epoch)
        runfolder.write_json(staged / "history.json", history)
        _finish(staged, manifest, timer)
    return manifest


def _load_model_run(run: RunSettings, timer: Timer) -> tuple[list[mx.Context], data.Dataset, model.LeNet, int]:
    """What evaluate and inspect start from: devices, data and a saved model."""
    contexts = train.parse_contexts(run.ctx)
    with timer.stage("data"):
        dataset = load_data(run.data)
    with timer.stage("load model"):
        net, epoch = model.load(run.model, ctx=contexts[0])
    return contexts, dataset, net, epoch


def run_evaluate(run: RunSettings) -> dict:
    """`reportgen evaluate`: metrics.json, manifest.json."""
    runfolder.check_out(run.out)
    timer = Timer()
    contexts, dataset, net, epoch = _load_model_run(run, timer)
    with timer.stage("evaluate"):
        evaluation = evaluate.run(net, dataset, contexts[0])
    manifest = _manifest(run, contexts, dataset, _loaded(run, epoch))
    with runfolder.staging(run.out) as staged:
        runfolder.write_json(staged / "metrics.json", evaluation.to_json())
        _finish(staged, manifest, timer)
    return manifest


def run_inspect(run: RunSettings) -> dict:
    """`reportgen inspect`: inspection.npz, manifest.json."""
    runfolder.check_out(run.out)
    timer = Timer()
    contexts, dataset, net, epoch = _load_model_run(run, timer)
    worst: list[int] = []
    if any(case.strip().lower() == "worst" for case in run.cases):
        with timer.stage("evaluate"):
            worst = _worst_indices(evaluate.run(net, dataset, contexts[0]))
    with timer.stage("inspect"):
        cases = inspection.resolve_cases(list(run.cases), worst, len(dataset.test_y))
        result = inspection.run(net, dataset.test_x, dataset.test_y, cases, contexts[0])
    manifest = _manifest(run, contexts, dataset, _loaded(run, epoch))
    with runfolder.staging(run.out) as staged:
        result.save(staged / "inspection.npz")
        _finish(staged, manifest, timer)
    return manifest


def _worst_indices(evaluation: evaluate.Evaluation) -> list[int]:
    """The worst pair's images; with no mistake at all, the least confident image."""
    return evaluation.worst_pair["indices"] or [int(evaluation.probabilities.max(axis=1).argmin())]


def run_build(run: RunSettings, progress: train.Progress | None = None, say: Say = _quiet) -> dict:
    """`reportgen build`: every stage, then the whole run folder."""
    runfolder.check_out(run.out)
    timer = Timer()
    _check_formats(run.formats)
    contexts = train.parse_contexts(run.ctx)
    report.environment(run.templates)  # a bad --templates fails now, not after training
    with timer.stage("data"):
        dataset = load_data(run.data)
    _check_cases(run.cases, len(dataset.test_y))
    net, epoch, history, model_record = _get_model(run, dataset, contexts, progress, timer)
    say("evaluating")
    with timer.stage("evaluate"):
        evaluation = evaluate.run(net, dataset, contexts[0])
    metrics = evaluation.to_json()
    say("inspecting")
    with timer.stage("inspect"):
        cases = inspection.resolve_cases(list(run.cases), _worst_indices(evaluation), len(dataset.test_y))
        inspected = inspection.run(net, dataset.test_x, dataset.test_y, cases, contexts[0])
    manifest = _manifest(run, contexts, dataset, model_record)
    manifest["timings"] = timer.seconds  # the same dict: figures and render add to it
    with runfolder.staging(run.out) as staged:
        model.save(net, staged / "model", epoch)
        runfolder.write_json(staged / "history.json", history)
        runfolder.write_json(staged / "metrics.json", metrics)
        inspected.save(staged / "inspection.npz")
        _draw_and_render(staged, run, dataset, history, metrics, inspected, manifest, timer, say)
        _finish(staged, manifest, timer)
    return manifest


def run_render(run_dir: Path, formats: tuple[str, ...] = FORMATS, title: str | None = None,
               templates: Path | None = None, say: Say = _quiet, command: str = "reportgen render") -> dict:
    """`reportgen render`: the report again from a finished run's files, no model.

    The report still shows how the run was made (its command, its timings); this
    rendering is recorded under "rendered" in the manifest.
    """
    _check_formats(formats)
    report.environment(templates)
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise ReportgenError(f"{run_dir}: no such run folder")
    missing = [name for name in (runfolder.MANIFEST, "history.json", "metrics.json", "inspection.npz")
               if not (run_dir / name).is_file()]
    if missing:
        raise ReportgenError(f"{run_dir}: not a finished reportgen run (no {missing[0]}); "
                             f"make one with reportgen build")
    manifest = runfolder.read_json(run_dir / runfolder.MANIFEST)
    history = runfolder.read_json(run_dir / "history.json")
    metrics = runfolder.read_json(run_dir / "metrics.json")
    inspected = inspection.Inspection.load(run_dir / "inspection.npz")
    timer = Timer()
    with timer.stage("data"):
        dataset = _reload_data(manifest)
    run = RunSettings(out=run_dir, formats=formats, templates=templates,
                      title=title or manifest.get("title", RunSettings.title))
    with runfolder.staging(run_dir) as staged:
        _draw_and_render(staged, run, dataset, history, metrics, inspected, manifest, timer, say)
        again = runfolder.new_manifest(command, {"run_dir": str(run_dir), "formats": formats, "title": title,
                                        "templates": str(templates) if templates else None}, [])
        manifest["rendered"] = {key: again[key] for key in ("command", "created", "arguments", "versions")}
        manifest["rendered"]["timings"] = timer.seconds
        # The run's other files are unchanged: record them beside the new ones.
        manifest["files"] = {**manifest.get("files", {}), **runfolder.file_table(staged)}
        runfolder.write_json(staged / runfolder.MANIFEST, manifest)
    return manifest


def _draw_and_render(staged: Path, run: RunSettings, dataset: data.Dataset, history: dict,
                     metrics: dict, inspected: inspection.Inspection, manifest: dict,
                     timer: Timer, say: Say) -> None:
    say("drawing figures")
    with timer.stage("figures"):
        drawn = figures.make(dataset, history, metrics, inspected)
    for figure in drawn.values():
        runfolder.write_bytes(staged / "figures" / figure.filename, figure.svg)
    manifest["title"] = run.title
    # A report cannot time its own rendering: that figure is in the manifest only.
    shown = {**manifest, "timings": {k: v for k, v in manifest.get("timings", {}).items() if k != "render"}}
    say("rendering " + " and ".join(run.formats))
    with timer.stage("render"):
        context = report.context(run.title, shown, history, metrics, inspected, drawn)
        if "html" in run.formats:
            runfolder.write_bytes(staged / "report.html",
                                  report.render_html(context, run.templates).encode())
        if "pdf" in run.formats:
            runfolder.write_bytes(staged / "report.pdf", report.render_pdf(context, staged, run.templates))


def _check_cases(cases: tuple[str, ...], n_test: int) -> None:
    """Refuse a bad --case index before training rather than after."""
    indices = [case for case in cases if case.strip().lower() != "worst"]
    if indices:
        inspection.resolve_cases(indices, [], n_test)


def _check_formats(formats: tuple[str, ...]) -> None:
    unknown = [f for f in formats if f not in FORMATS]
    if unknown or not formats:
        raise ReportgenError(f"--format {','.join(formats)}: choose html, pdf or html,pdf")


def _reload_data(manifest: dict) -> data.Dataset:
    """The run's data again (the report shows digits); it must be the same files."""
    record = manifest.get("data", {})
    dataset = data.load(record.get("dir"), record.get("train_images"), record.get("test_images"))
    if dataset.checksums != record.get("files"):
        raise ReportgenError(f"{record.get('dir')}: the data files differ from those this run was built from")
    return dataset
