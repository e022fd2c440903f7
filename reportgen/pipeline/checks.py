"""Checks before any work: an option that cannot succeed is refused before training, not after."""

from __future__ import annotations

from pathlib import Path

from reportgen.errors import ReportgenError
from reportgen.pipeline.settings import FORMATS, RunSettings
from reportgen.run import inspection
from reportgen.run.gates import Gates
from reportgen.run.inspection import WORST, Case


def cases(chosen: tuple[Case, ...], n_test: int) -> None:
    """Refuse a --case index outside the test set."""
    indices = [case for case in chosen if case != WORST]
    if indices:
        inspection.resolve_cases(indices, [], n_test)


def formats(chosen: tuple[str, ...]) -> None:
    unknown = [f for f in chosen if f not in FORMATS]
    if unknown or not chosen:
        raise ReportgenError(f"--format {','.join(chosen)}: choose html, pdf or html,pdf")


def gates(asked: Gates, baseline: Path | None) -> None:
    needing = asked.needing_baseline()
    if needing and baseline is None:
        raise ReportgenError(
            f"{' and '.join(needing)} {'judges' if len(needing) == 1 else 'judge'} this run against a "
            "baseline, and none was given: add --baseline RUN_DIR"
        )


def resume(run: RunSettings) -> None:
    """Refuse --resume with no checkpoint to resume (training from scratch instead would not
    be what was asked); what a checkpoint holds is checked, and said, as training starts."""
    if not run.resume:
        return
    from reportgen.net.checkpoint import CHECKPOINT
    from reportgen.pipeline.stages import CHECKPOINTS

    if not (Path(run.out) / CHECKPOINTS / CHECKPOINT).is_file():
        raise ReportgenError(
            f"--resume: nothing to resume in {run.out}: no checkpoint; drop --resume to train from scratch"
        )


def pixels(run: RunSettings) -> None:
    if run.model is None and run.pixels not in (None, "unit"):
        raise ReportgenError(
            f"--pixels {run.pixels}: reportgen trains on unit pixels (divided by 255); "
            "--pixels is for a model given with --model"
        )
