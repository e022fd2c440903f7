"""The stages, each a call with plain values: data -> model -> train -> evaluate -> inspect ->
figures -> report.

mxnet loads only inside the functions that train or run a network (reportgen.net), so
`reportgen render` works without it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from reportgen import data
from reportgen.errors import ReportgenError
from reportgen.pipeline.settings import DataSettings, RunSettings, Say, Timer
from reportgen.report import context as report_context
from reportgen.report import pdf, templates
from reportgen.report.figures import Figure, make
from reportgen.run import archive, files, inspection
from reportgen.run.comparison import Baseline, Comparison
from reportgen.run.evaluation import Evaluation, score
from reportgen.run.explanation import Attributions, Explained, Features
from reportgen.run.files import MANIFEST
from reportgen.run.gates import Verdict
from reportgen.run.history import History
from reportgen.run.inspection import WORST, Case, Inspection
from reportgen.run.record import TRAINED_HERE, ModelRecord, RunRecord

if TYPE_CHECKING:
    from reportgen.net.devices import Device
    from reportgen.net.distributed import Job
    from reportgen.net.model import LeNet, Network
    from reportgen.net.saved import Files
    from reportgen.net.train import Progress

CHECKPOINTS = ".checkpoint"  # inside the run folder; kept so --resume can continue


@dataclass(frozen=True)
class Obtained:
    """A network ready to evaluate, with what the run keeps of it."""

    network: Network  # its record says where it came from and how it is fed
    history: History
    training: dict[str, Any]  # the settings it was trained with; {} when unknown
    trained: LeNet | None = None  # the net trained here, exported into model/
    files: Files | None = None  # the loaded model's files, copied into model/


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
    attributions: Attributions | None = None  # None: a run made before attributions.npz
    features: Features | None = None  # None: a run made before features.npz


# -- data -----------------------------------------------------------------------------------


def load_data(settings: DataSettings) -> data.Dataset:
    return data.load(settings.data_dir, settings.train_limit, settings.test_limit)


def reload_data(record: RunRecord, data_dir: Path | None) -> data.Dataset:
    """A finished run's data again (the report shows digits); it must be the same files."""
    folder = data_dir if data_dir is not None else record.data.dir
    dataset = data.load(folder, record.data.train_images, record.data.test_images)
    if dataset.checksums != record.data.files:
        raise ReportgenError(
            f"{dataset.describe().shown}: the data files differ from those this run "
            f"was built from ({record.data.shown}); give the run's data with --data-dir"
        )
    return dataset


# -- model and training ----------------------------------------------------------------------


def contexts(spec: str) -> list[Device]:
    from reportgen.net import devices

    return devices.parse_contexts(spec)


def training_devices(spec: str, say: Say) -> list[Device]:
    """The devices to train (or run a --model) on; one line when `auto` found no GPU though nvidia-smi lists one
    (the CPU build of MXNet, most likely: README, "Two commands", on GPU=)."""
    from reportgen.net import devices

    found = devices.parse_contexts(spec)
    if spec.strip().lower() == "auto" and all(d.device_type == "cpu" for d in found):
        hint = devices.cpu_build_hint()
        if hint:
            say(hint)
    return found


def load_model(path: str, pixels: str | None, devices: list[Device], timer: Timer) -> Obtained:
    """A saved model (`path` as typed, `pixels` from --pixels or None), with its history and
    training settings when a reportgen run folder kept them."""
    from reportgen.net import saved

    with timer.stage("load model"):
        found = saved.find(path)
        network = saved.load(found, path, devices[0], pixels)
    run_dir = found.run_folder()
    history = History.empty()
    training: dict[str, Any] = {}
    if run_dir is not None:
        if (run_dir / "history.json").is_file():
            history = History.load(run_dir / "history.json")
        training = files.read_json(run_dir / MANIFEST).get("training", {})
    return Obtained(network, history, training, files=found)


_ORIGINS = {
    "trained": "as reportgen trained it",
    "recorded": "as recorded beside it",
    "option": "--pixels",
    "default": "the default for a model from elsewhere; give --pixels raw if it was trained on 0-255 values",
}


def loaded(record: ModelRecord) -> str:
    """What was loaded and how it will be fed, for the user: one line."""
    names = ", ".join(name for name in record.names.values() if name) if record.names else "conv1 ... softm"
    return (
        f"loaded {' and '.join(record.files)} (epoch {record.epoch}), layers {names}; "
        f"pixels {record.pixels} ({_ORIGINS.get(record.pixels_origin, record.pixels_origin)})"
    )


def train(
    run: RunSettings,
    dataset: data.Dataset,
    devices: list[Device],
    progress: Progress | None,
    timer: Timer,
    job: Job | None = None,
) -> Obtained:
    from reportgen.net import model
    from reportgen.net.train import TrainConfig, fit

    config = run.train or TrainConfig()
    with timer.stage("train"):
        net, history = fit(
            dataset,
            config,
            devices,
            checkpoint_dir=Path(run.out) / CHECKPOINTS,
            resume=run.resume,
            progress=progress,
            job=job,
        )
    training = config.describe()
    if job is not None:
        training["workers"] = job.workers
    network = model.network(net, ModelRecord(source=TRAINED_HERE, epoch=config.epochs))
    return Obtained(network, history, training, trained=net)


def save_model(got: Obtained, staged: Path) -> None:
    """The model into model/: exported if trained here, copied as it was if loaded."""
    from reportgen.net import model, saved

    if got.trained is not None:
        model.save(got.trained, staged / "model", got.network.record.epoch)
    elif got.files is not None:
        saved.keep(got.files, staged / "model", got.network.record)
    got.history.save(staged / "history.json")


# -- evaluate and inspect --------------------------------------------------------------------


def evaluate(network: Network, dataset: data.Dataset, device: Device, timer: Timer) -> Evaluation:
    from reportgen.net import predict

    with timer.stage("evaluate"):
        return score(predict.probabilities(network, dataset.test_x, device), dataset.test_y)


def inspect(
    network: Network,
    dataset: data.Dataset,
    cases: tuple[Case, ...],
    evaluation: Evaluation | None,
    device: Device,
    timer: Timer,
) -> Inspection:
    from reportgen.net import inside

    worst = worst_indices(evaluation) if evaluation is not None else []
    with timer.stage("inspect"):
        chosen = inspection.resolve_cases(cases, worst, len(dataset.test_y))
        return inside.run(network, dataset.test_x, dataset.test_y, chosen, device)


def explain(
    network: Network,
    dataset: data.Dataset,
    evaluation: Evaluation,
    inspected: Inspection,
    comparison: Comparison | None,
    device: Device,
    timer: Timer,
) -> tuple[Attributions, Features]:
    """Integrated gradients and occlusion for every image the report shows (run.explanation's
    Explained), act3's projection, and the confident mistakes' nearest training images among
    those the run loaded."""
    from reportgen.net import attribution, features

    assert evaluation.predictions is not None  # a fresh evaluation holds them
    explained = Explained.of(inspected.indices.tolist(), evaluation, comparison)
    with timer.stage("explain"):
        attributions = attribution.attributions(
            network, dataset.test_x, dataset.test_y, evaluation.predictions, explained.indices(), device
        )
        found = features.features(
            network, dataset.test_x, dataset.train_x, dataset.train_y, list(explained.mistakes), device
        )
    return attributions, found


def worst_indices(evaluation: Evaluation) -> list[int]:
    """The worst pair's images; with no mistake at all, the least confident image."""
    if evaluation.worst_pair.indices:
        return list(evaluation.worst_pair.indices)
    assert evaluation.probabilities is not None  # a fresh evaluation holds them
    return [int(evaluation.probabilities.max(axis=1).argmin())]


def needs_worst(cases: tuple[Case, ...]) -> bool:
    return WORST in cases


# -- record, figures and report --------------------------------------------------------------


def record(run: RunSettings, devices: list[Device], dataset: data.Dataset, got: Obtained, timer: Timer) -> RunRecord:
    """The run record from the values gathered; timings as they stand now."""
    return RunRecord(
        command=run.command,
        arguments=dict(run.arguments),
        contexts=tuple(str(c) for c in devices),
        data=dataset.describe(),
        model=got.network.record,
        training=dict(got.training),
        title=run.title,
        timings=dict(timer.seconds),
    )


def draw(staged: Path, gathered: Gathered, formats: tuple[str, ...], timer: Timer, say: Say) -> dict[str, Figure]:
    say("drawing figures")
    with timer.stage("figures"):
        drawn = make(
            gathered.dataset,
            gathered.history,
            gathered.evaluation,
            gathered.inspection,
            gathered.pixels,
            baseline=gathered.baseline,
            comparison=gathered.comparison,
            meanwhile=pdf.load_pdf_renderer if "pdf" in formats else None,
            attributions=gathered.attributions,
            features=gathered.features,
        )
    for figure in drawn.values():
        files.write_bytes(staged / "figures" / figure.filename, figure.svg)
    return drawn


def render(
    staged: Path,
    run_record: RunRecord,
    gathered: Gathered,
    drawn: dict[str, Figure],
    formats: tuple[str, ...],
    user_templates: Path | None,
    timer: Timer,
    say: Say,
) -> dict[str, Any]:
    """The report's values, and report.html if asked for; the PDF comes after the manifest
    it carries (`render_pdf`)."""
    say("rendering " + " and ".join(formats))
    with timer.stage("render"):
        values = report_context.context(
            run_record,
            gathered.history,
            gathered.evaluation,
            gathered.inspection,
            drawn,
            baseline=gathered.baseline,
            comparison=gathered.comparison,
            verdicts=gathered.verdicts,
            attributions=gathered.attributions,
            features=gathered.features,
        )
        if "html" in formats:
            files.write_bytes(staged / "report.html", templates.render_html(values, user_templates).encode())
    return values


def seal(*folders: Path | None) -> archive.Sealed:
    """What a PDF about to be made will carry: the manifest (written next) and the run's data
    files, each from the first of `folders` that has it (a staging folder, then the run's)."""
    names = tuple(
        name
        for name in archive.EMBEDDABLE
        if name == MANIFEST or any(f is not None and (f / name).is_file() for f in folders)
    )
    return archive.Sealed(names, current=True)


def render_pdf(
    staged: Path,
    values: dict[str, Any],
    user_templates: Path | None,
    timer: Timer,
    run_dir: Path | None = None,
) -> None:
    """report.pdf, carrying the staged manifest.json (written before it: its timings stop
    here) and the run's data files, then its checksum beside it (run/archive.py)."""
    with timer.stage("pdf"):
        carried = archive.embedded(staged, run_dir)
        files.write_bytes(staged / archive.PDF, pdf.render_pdf(values, staged, user_templates, carried))
        archive.write_sidecar(staged)
