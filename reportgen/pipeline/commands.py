"""The commands, each the stages in order: gather every value first, then write.

The command line parses options into settings (pipeline.settings) and calls one function
here; each calls the stages (pipeline.stages) and writes the run folder through a staging
folder (run.folder.staging). The run record (manifest.json) is built once, at the end,
from the values the stages handed on; the command returns what it wrote, as `Written`,
and leaves the gates' verdicts for the command line to enforce once it has said so.

In a distributed job (--kvstore dist_sync) every worker runs train or build; only rank 0
writes a run folder, the others return None once their share of the training is done.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import shutil
import socket
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from reportgen.errors import ReportgenError
from reportgen.pipeline import baseline, checks, reporting, stages
from reportgen.pipeline.pdfahead import PdfAhead
from reportgen.pipeline.reporting import Gathered
from reportgen.pipeline.settings import RenderSettings, RunSettings, Say, Timer, Written, quiet
from reportgen.pipeline.stages import Obtained
from reportgen.report import templates
from reportgen.run import archive, finished, folder
from reportgen.run.comparison import Comparison
from reportgen.run.evaluation import PREDICTIONS, Evaluation
from reportgen.run.explanation import ATTRIBUTIONS, FEATURES
from reportgen.run.files import MANIFEST, read_json, write_json
from reportgen.run.gates import Verdict
from reportgen.run.history import History
from reportgen.run.record import RunRecord, write_manifest, write_rendered_manifest

if TYPE_CHECKING:
    from reportgen.data import DataRecord, Dataset
    from reportgen.net.devices import Device
    from reportgen.net.distributed import Job
    from reportgen.net.train import Progress

log = logging.getLogger(__name__)


def _written(
    out: Path,
    manifest: dict[str, Any],
    timer: Timer,
    data: DataRecord,
    workers: int | None = None,
    evaluation: Evaluation | None = None,
    comparison: Comparison | None = None,
    verdicts: tuple[Verdict, ...] = (),
    history: History | None = None,
    warnings: tuple[str, ...] = (),
) -> Written:
    listed = set(manifest.get("files", {}))
    if archive.KEY in manifest:  # report.pdf and its sidecar, vouched for outside the file table
        listed |= {archive.PDF, archive.SIDECAR}
    return Written(
        folder=Path(out),
        entries=tuple(sorted({name.split("/")[0] for name in listed})),
        seconds=sum(timer.seconds.values()),
        data=data,
        workers=workers,
        evaluation=evaluation,
        comparison=comparison,
        verdicts=verdicts,
        history=history,
        warnings=warnings,
    )


# -- a distributed job ----------------------------------------------------------------------


def _kvstore(run: RunSettings) -> str:
    from reportgen.net import distributed

    return run.train.kvstore if run.train is not None else distributed.DEFAULT_KVSTORE


def _check_kvstore(run: RunSettings) -> None:
    from reportgen.net import distributed

    distributed.check(_kvstore(run), resume=run.resume, model=run.model)


def _join(run: RunSettings, timer: Timer) -> Job | None:
    """This worker's place in the distributed job, or None on one machine."""
    from reportgen.net import distributed

    if not distributed.is_distributed(_kvstore(run)):
        return None
    with timer.stage("join"):  # waiting for every node of the job to start
        return distributed.join(_kvstore(run))


def _writes(job: Job | None) -> bool:
    """Whether this process writes the run folder: on one machine, or rank 0 of a job."""
    return job is None or job.rank == 0


def _done_elsewhere(job: Job) -> None:
    log.info(f"worker {job.rank} of {job.workers} on {socket.gethostname()}: done; rank 0 writes the run folder")


def _train(
    run: RunSettings,
    dataset: Dataset,
    devices: list[Device],
    progress: Progress | None,
    timer: Timer,
    job: Job | None,
    staged: Path | None,
) -> Obtained:
    """Train, checkpointing into the staging folder (None: a worker that writes nothing)."""
    checkpoints = folder.carry_checkpoint(run.out, staged, run.resume) if staged is not None else None
    # One progress bar per job, not one per worker.
    return stages.train(run, dataset, devices, progress if _writes(job) else None, timer, job, checkpoints)


# -- the commands -----------------------------------------------------------------------------


def _kept(out: Path, run: finished.FinishedRun | None = None) -> archive.Sealed | None:
    """The "pdf" entry of a manifest rewritten around a PDF this command leaves as it was: the
    earlier entry, no longer current (the PDF carries the earlier manifest). A rendering first
    checks the PDF against its sidecar: it will not vouch for a PDF changed since. evaluate and
    inspect keep an earlier entry as they keep the earlier files' (record.write_manifest)."""
    if run is not None:
        if run.pdf is not None and (Path(out) / archive.PDF).is_file():
            archive.check(out, run.pdf)
        return archive.kept(out, run.manifest)
    try:
        return archive.kept(out, read_json(Path(out) / MANIFEST))
    except ReportgenError:  # no manifest there, or not reportgen's: nothing to keep
        return None


def _claim(out: Path, command: str, stack: contextlib.ExitStack) -> folder.Previous:
    """Lock `out` until `stack` ends (one writer at a time), then check that it may be written:
    new, empty, or a run folder of reportgen's own. Both before any work."""
    stack.enter_context(folder.claimed(out, command))
    return folder.check_run_folder(out)


def _distributed(run: RunSettings) -> bool:
    from reportgen.net import distributed

    return distributed.is_distributed(_kvstore(run))


def _staging(run: RunSettings, previous: folder.Previous, job: Job | None, stack: contextlib.ExitStack) -> Path:
    """The staging folder of a command that trains: its checkpoint is written there, so the run
    folder's own is replaced only with the rest of the run. A distributed job's watchdog ends
    the process at once when a node is lost: it removes the folder first."""
    staged = stack.enter_context(folder.staging(run.out, previous.replaced()))
    if job is not None:
        from reportgen.net import distributed

        stack.enter_context(distributed.before_exit(functools.partial(shutil.rmtree, staged, ignore_errors=True)))
    return staged


def run_train(run: RunSettings, progress: Progress | None = None, say: Say = quiet) -> Written | None:
    """`reportgen train`: model/, history.json, manifest.json (None: another worker writes them)."""
    previous = folder.check_run_folder(run.out)  # every worker of a job, before any work
    _check_kvstore(run)
    checks.resume(run)
    with contextlib.ExitStack() as stack:
        if not _distributed(run):
            previous = _claim(run.out, run.command, stack)
        timer = Timer()
        devices = stages.training_devices(run.ctx, say)
        dataset = stages.load_data(run.data, timer)
        job = _join(run, timer)
        if job is not None and not _writes(job):
            _train(run, dataset, devices, progress, timer, job, None)
            _done_elsewhere(job)
            return None
        if job is not None:  # rank 0, known only now
            previous = _claim(run.out, run.command, stack)
        staged = _staging(run, previous, job, stack)
        got = _train(run, dataset, devices, progress, timer, job, staged)
        stages.save_model(got, staged)
        manifest = write_manifest(staged, stages.record(run, devices, dataset, got, timer))
    return _written(run.out, manifest, timer, dataset.describe(), job.workers if job else None, history=got.history)


def _model_run(run: RunSettings, timer: Timer, say: Say) -> tuple[list[Device], Dataset, Obtained]:
    """What evaluate and inspect start from: devices, a saved model (refused before any data
    is read if it is not the seed's LeNet) and the data."""
    if run.model is None:
        raise ReportgenError("give --model: the saved model to use")
    devices = stages.contexts(run.ctx)
    got = stages.load_model(run.model, run.pixels, devices, timer)
    dataset = stages.load_data(run.data, timer, got.trained_on)
    say(stages.loaded(got))
    return devices, dataset, got


def run_evaluate(run: RunSettings, say: Say = quiet) -> Written:
    """`reportgen evaluate`: metrics.json, predictions.npz, manifest.json."""
    with contextlib.ExitStack() as stack:
        _claim(run.out, run.command, stack)
        timer = Timer()
        devices, dataset, got = _model_run(run, timer, say)
        evaluation = stages.evaluate(got.network, dataset, devices[0], timer)
        with folder.staging(run.out) as staged:
            evaluation.save(staged / "metrics.json")
            evaluation.per_image().save(staged / PREDICTIONS)
            record = stages.record(run, devices, dataset, got, timer)
            manifest = write_manifest(staged, record, keep=run.out, pdf=_kept(run.out))
    return _written(run.out, manifest, timer, dataset.describe(), evaluation=evaluation)


def run_inspect(run: RunSettings, say: Say = quiet) -> Written:
    """`reportgen inspect`: inspection.npz, attributions.npz, features.npz, manifest.json.

    The explanations need the predictions (which images are mistakes, and what each was read
    as), so the model is evaluated on the test set first, whatever the cases."""
    with contextlib.ExitStack() as stack:
        _claim(run.out, run.command, stack)
        timer = Timer()
        devices, dataset, got = _model_run(run, timer, say)
        checks.cases(run.cases, len(dataset.test_y))
        evaluation = stages.evaluate(got.network, dataset, devices[0], timer)
        inspected = stages.inspect(got.network, dataset, run.cases, evaluation, devices[0], timer)
        attributions, features = stages.explain(got.network, dataset, evaluation, inspected, None, devices[0], timer)
        with folder.staging(run.out) as staged:
            inspected.save(staged / "inspection.npz")
            attributions.save(staged / ATTRIBUTIONS)
            features.save(staged / FEATURES)
            record = stages.record(run, devices, dataset, got, timer)
            manifest = write_manifest(staged, record, keep=run.out, pdf=_kept(run.out))
    return _written(run.out, manifest, timer, dataset.describe(), warnings=tuple(attributions.warnings()))


def run_build(run: RunSettings, progress: Progress | None = None, say: Say = quiet) -> Written | None:
    """`reportgen build`: every stage, then the whole run folder, with the gates judged (the
    command line enforces them, exit code 3, once the folder is complete). None: another
    worker of a distributed job writes the run folder."""
    previous = folder.check_run_folder(run.out)  # every worker of a job, before any work
    checks.formats(run.formats)
    checks.pixels(run)
    checks.gates(run.gates, run.baseline)
    _check_kvstore(run)
    checks.resume(run)
    templates.environment(run.templates)  # a bad --templates fails now, not after training
    with contextlib.ExitStack() as stack:
        trains_in_a_job = run.model is None and _distributed(run)
        if not trains_in_a_job:
            previous = _claim(run.out, run.command, stack)
        timer = Timer()
        devices = stages.training_devices(run.ctx, say)
        loaded = stages.load_model(run.model, run.pixels, devices, timer) if run.model is not None else None
        dataset = stages.load_data(run.data, timer, loaded.trained_on if loaded is not None else None)
        checks.cases(run.cases, len(dataset.test_y))
        opened = baseline.open_baseline(run.baseline, dataset.describe(), dataset.test_y) if run.baseline else None
        if loaded is not None:
            say(stages.loaded(loaded))
        job = _join(run, timer) if loaded is None else None
        if job is not None and not _writes(job):
            _train(run, dataset, devices, progress, timer, job, None)
            _done_elsewhere(job)
            return None
        if trains_in_a_job:  # rank 0, known only now
            previous = _claim(run.out, run.command, stack)
        staged = _staging(run, previous, job, stack)
        got = loaded or _train(run, dataset, devices, progress, timer, job, staged)
        say("evaluating")
        evaluation = stages.evaluate(got.network, dataset, devices[0], timer)
        other = baseline.evaluate_baseline(opened, dataset, lambda: devices, timer) if opened is not None else None
        comparison, verdicts = baseline.judge(run.gates, evaluation, other)
        say("inspecting")
        inspected = stages.inspect(got.network, dataset, run.cases, evaluation, devices[0], timer)
        say("explaining")
        attributions, features = stages.explain(
            got.network, dataset, evaluation, inspected, comparison, devices[0], timer
        )
        gathered = Gathered(
            dataset,
            got.history,
            evaluation,
            inspected,
            got.network.pixels,
            other,
            comparison,
            verdicts,
            attributions,
            features,
        )
        stages.save_model(got, staged)
        write_json(staged / "metrics.json", baseline.metrics(evaluation.to_json(), comparison, verdicts))
        evaluation.per_image().save(staged / PREDICTIONS)
        inspected.save(staged / "inspection.npz")
        attributions.save(staged / ATTRIBUTIONS)
        features.save(staged / FEATURES)
        drawn = reporting.draw(staged, gathered, run.formats, timer, say, run.out)
        record = stages.record(run, devices, dataset, got, timer)
        values = reporting.render(staged, record, gathered, drawn, run.formats, run.templates, timer, say)
        pdf = reporting.seal(staged) if "pdf" in run.formats else None
        manifest = write_manifest(staged, replace(record, timings=dict(timer.seconds)), pdf=pdf)
        if pdf is not None:
            reporting.render_pdf(staged, values, run.templates, timer)
    workers = job.workers if job else None
    warnings = tuple(attributions.warnings())
    return _written(
        run.out, manifest, timer, dataset.describe(), workers, evaluation, comparison, verdicts, warnings=warnings
    )


def run_render(settings: RenderSettings, say: Say = quiet) -> Written:
    """`reportgen render`: the report again from a finished run's files, no model, no mxnet
    (unless a --baseline without predictions.npz must be predicted afresh).

    The report still shows how the run was made (its command, its timings); this
    rendering is recorded under "rendered" in the manifest. With --baseline or a gate,
    metrics.json's comparison and gates become this rendering's.
    """
    checks.formats(settings.formats)
    checks.gates(settings.gates, settings.baseline)
    templates.environment(settings.templates)
    with folder.claimed(settings.run_dir, settings.command):
        run = finished.read(settings.run_dir, per_image=settings.baseline is not None)
        kept = None if "pdf" in settings.formats else _kept(settings.run_dir, run)  # a PDF left as it was
        folder.check_run_folder(settings.run_dir)  # nothing of anyone else's where render writes
        return _render(settings, run, kept, say)


def _render(settings: RenderSettings, run: finished.FinishedRun, kept: archive.Sealed | None, say: Say) -> Written:
    record = replace(run.record, title=settings.title or run.record.title)
    opened = baseline.open_baseline(settings.baseline, record.data) if settings.baseline is not None else None
    timer = Timer()
    with timer.stage("data", data_dir=settings.data_dir or record.data.shown):
        dataset = stages.reload_data(record, settings.data_dir)
    other = (
        baseline.evaluate_baseline(opened, dataset, lambda: stages.contexts("auto"), timer)
        if opened is not None
        else None
    )
    comparison, verdicts = baseline.judge(settings.gates, run.evaluation, other)
    if comparison is None and "comparison" in run.metrics:
        say(f"note: metrics.json compares with {run.metrics['comparison'].get('baseline')}; give --baseline to show it")
    gathered = Gathered(
        dataset,
        run.history,
        run.evaluation,
        run.inspection,
        record.model.pixels,
        other,
        comparison,
        verdicts,
        run.attributions,
        run.features,
    )
    with folder.staging(settings.run_dir) as staged, PdfAhead() as ahead:
        if opened is not None or settings.gates:
            write_json(staged / "metrics.json", baseline.metrics(run.metrics, comparison, verdicts))
        early = reporting.lay_out_early(
            staged, record, gathered, settings.formats, settings.templates, ahead, settings.run_dir
        )
        drawn = reporting.draw(staged, gathered, settings.formats, timer, say, settings.run_dir, early)
        values = reporting.render(
            staged, record, gathered, drawn, settings.formats, settings.templates, timer, say, ahead, settings.run_dir
        )
        again = RunRecord(
            command=settings.command,
            arguments=dict(settings.arguments),
            contexts=(),
            data=record.data,
            model=record.model,
            training={},
            timings=dict(timer.seconds),
        )
        pdf = reporting.seal(staged, settings.run_dir) if "pdf" in settings.formats else kept
        manifest = write_rendered_manifest(staged, run.manifest, record, again, pdf)
        if "pdf" in settings.formats:
            reporting.render_pdf(staged, values, settings.templates, timer, settings.run_dir, ahead)
    return _written(settings.run_dir, manifest, timer, record.data, None, run.evaluation, comparison, verdicts)
