"""The stages, each a call with plain values: data -> model -> train -> evaluate -> inspect ->
figures -> report.

mxnet loads only inside the functions that train or run a network (reportgen.net), so
`reportgen render` works without it.
"""

from __future__ import annotations

import logging
import math
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from reportgen import data
from reportgen.errors import ReportgenError
from reportgen.pipeline.settings import DataSettings, RunSettings, Say, Timer
from reportgen.run import files, inspection
from reportgen.run.comparison import Comparison
from reportgen.run.evaluation import Evaluation, score
from reportgen.run.explanation import Attributions, Explained, Features
from reportgen.run.files import MANIFEST
from reportgen.run.folder import CHECKPOINTS
from reportgen.run.history import History, training_seconds
from reportgen.run.inspection import Case, Inspection
from reportgen.run.record import NOT_KNOWN, TRAINED_HERE, ModelRecord, RunRecord, TrainedOn

if TYPE_CHECKING:
    from reportgen.net.devices import Device
    from reportgen.net.distributed import Job
    from reportgen.net.model import LeNet, Network
    from reportgen.net.saved import Files
    from reportgen.net.train import Progress

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Obtained:
    """A network ready to evaluate, with what the run keeps of it."""

    network: Network  # its record says where it came from and how it is fed
    history: History
    training: dict[str, Any]  # the settings it was trained with; {} when unknown
    trained: LeNet | None = None  # the net trained here, exported into model/
    files: Files | None = None  # the loaded model's files, copied into model/
    # A loaded model's training data and time, from the run folder it came from; None: not
    # known. A model trained here has the run's own (record()).
    trained_on: TrainedOn | None = None
    earlier_seconds: float = 0.0  # trained here after --resume: the training time of the epochs resumed


# -- data -----------------------------------------------------------------------------------


def load_data(settings: DataSettings, timer: Timer, trained_on: TrainedOn | None = None) -> data.Dataset:
    """The data; for a loaded model whose run record names these same training files, only
    the training images it learned from, so the report's data figures show what it saw."""
    shown = {key: value for key, value in vars(settings).items() if value is not None}
    with timer.stage("data", **shown):
        dataset = data.load(settings.data_dir, settings.train_limit, settings.test_limit)
    if trained_on is None or data.training_files(trained_on.data.files) != data.training_files(dataset.checksums):
        return dataset
    n = trained_on.train_images
    return replace(dataset, train_x=dataset.train_x[:n], train_y=dataset.train_y[:n])


def reload_data(record: RunRecord, data_dir: Path | None) -> data.Deferred:
    """A finished run's data again (the report shows digits); it must be the same files. Only
    their checksums are read now: the images are read if a figure must be drawn."""
    folder = data_dir if data_dir is not None else record.data.dir
    dataset = data.Deferred(folder, record.data.train_images, record.data.test_images)
    if dataset.checksums != record.data.files:
        shown = data.EMBEDDED if folder is None else str(folder)
        raise ReportgenError(
            f"{shown}: the data files differ from those this run "
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
    """A saved model (`path` as typed, `pixels` from --pixels or None), with its history,
    training settings and training data when a reportgen run folder kept them."""
    from reportgen.net import saved

    with timer.stage("load model", model=path, pixels=pixels or "as recorded"):
        found = saved.find(path)
        network = saved.load(found, path, devices[0], pixels)
    record, history = own_record(found)
    if record is None:
        return Obtained(network, history, {}, files=found)
    return Obtained(network, history, dict(record.training), files=found, trained_on=record.trained())


def own_record(found: Files) -> tuple[RunRecord | None, History]:
    """The run record and history of the reportgen run folder a model was loaded from, if
    its manifest vouches for the model's files (and for history.json, for the history);
    (None, no history) for a model from elsewhere, and, with a warning, for a record that
    does not vouch for it."""
    run_dir = found.run_folder()
    if run_dir is None:
        return None, History.empty()

    def not_known(why: str) -> tuple[None, History]:
        log.warning(f"warning: {why}: how the model was trained is taken as not known")
        return None, History.empty()

    try:
        manifest = files.read_json(run_dir / MANIFEST)
        record = RunRecord.from_json(manifest, str(run_dir / MANIFEST))
    except ReportgenError as e:
        return not_known(e.format_message())
    listed = manifest.get("files")

    def vouched(path: Path) -> bool:
        entry = listed.get(path.relative_to(run_dir).as_posix()) if isinstance(listed, dict) else None
        return isinstance(entry, dict) and path.is_file() and entry.get("sha256") == files.sha256(path)

    if not (vouched(found.symbol) and vouched(found.params)):
        return not_known(f"{run_dir / MANIFEST} does not vouch for {found.params.name} (changed since the run?)")
    kept = run_dir / "history.json"
    return record, History.load(kept) if vouched(kept) else History.empty()


_ORIGINS = {
    "trained": "as reportgen trained it",
    "recorded": "as recorded beside it",
    "option": "--pixels",
    "default": "the default for a model from elsewhere; give --pixels raw if it was trained on 0-255 values",
}


def loaded(got: Obtained) -> str:
    """What was loaded, how it will be fed and what is known of its training, for the user:
    two lines."""
    record = got.network.record
    names = ", ".join(name for name in record.names.values() if name) if record.names else "conv1 ... softm"
    where = f" from {got.files.symbol.parent}" if got.files is not None else ""
    first = (
        f"loaded {' and '.join(record.files)}{where} (epoch {record.epoch}), layers {names}; "
        f"pixels {record.pixels} ({_ORIGINS.get(record.pixels_origin, record.pixels_origin)})"
    )
    return f"{first}\n{provenance(got)}"


def provenance(got: Obtained) -> str:
    """One line on what a loaded model learned from, as its run folder recorded it."""
    trained = got.trained_on
    if trained is None:
        return f"how it was trained: {NOT_KNOWN}"
    epochs = got.training.get("epochs", len(got.history.epochs) or None)
    seconds = training_seconds(trained.seconds, got.history)
    return (
        f"trained on {trained.train_images:,} of the {trained.data.train_total:,} training images"
        + (f", {epochs} epoch{'' if epochs == 1 else 's'}" if isinstance(epochs, int) else "")
        + (f", in {seconds:.1f} s" if seconds is not None else "")
        + " (its run folder's record)"
    )


def train(
    run: RunSettings,
    dataset: data.Dataset,
    devices: list[Device],
    progress: Progress | None,
    timer: Timer,
    job: Job | None = None,
    checkpoints: Path | None = None,
) -> Obtained:
    """Train as `run` says; each epoch's checkpoint into `checkpoints` (--resume reads the one
    there: the staging folder's copy of the run folder's), none if None."""
    from reportgen.net import checkpoint, model
    from reportgen.net.train import TrainConfig, fit

    config = run.train or TrainConfig()
    resumed_after = (checkpoint.saved_epoch(checkpoints) or 0) if run.resume and checkpoints is not None else 0
    with timer.stage("train", **asdict(config), devices=len(devices), resume=run.resume):
        net, history = fit(
            dataset,
            config,
            devices,
            checkpoint_dir=checkpoints,
            resume=run.resume,
            progress=progress,
            job=job,
            shown_as=Path(run.out) / CHECKPOINTS,
        )
    training = config.describe()
    if job is not None:
        training["workers"] = job.workers
    network = model.network(net, ModelRecord(source=TRAINED_HERE, epoch=config.epochs))
    # This run's training stage leaves out the epochs a checkpoint brought: their own time counts.
    earlier = [e.seconds + e.eval_seconds for e in history.epochs if e.epoch <= resumed_after]
    return Obtained(network, history, training, trained=net, earlier_seconds=sum(filter(math.isfinite, earlier)))


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

    with timer.stage("evaluate", images=len(dataset.test_y), device=device):
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
    with timer.stage("inspect", cases=", ".join(map(str, cases)), device=device):
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


# -- record ---------------------------------------------------------------------------------------


def record(run: RunSettings, devices: list[Device], dataset: data.Dataset, got: Obtained, timer: Timer) -> RunRecord:
    """The run record from the values gathered; timings as they stand now."""
    here = dataset.describe()
    return RunRecord(
        command=run.command,
        arguments=dict(run.arguments),
        contexts=tuple(str(c) for c in devices),
        data=here,
        model=got.network.record,
        training=dict(got.training),
        trained_on=_trained_here(here, got, timer) if got.trained is not None else got.trained_on,
        title=run.title,
        timings=dict(timer.seconds),
    )


def _trained_here(here: data.DataRecord, got: Obtained, timer: Timer) -> TrainedOn:
    seconds = timer.seconds.get("train")
    return TrainedOn(here, None if seconds is None else round(seconds + got.earlier_seconds, 3))
