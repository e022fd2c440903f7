"""What the commands take and give: their settings, parsed by the command line, and what
they wrote, as values; the clock that times each stage."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from reportgen.data import DataRecord
from reportgen.run.comparison import Comparison
from reportgen.run.evaluation import Evaluation
from reportgen.run.gates import NO_GATES, Gates, Verdict
from reportgen.run.history import History
from reportgen.run.inspection import Case
from reportgen.run.record import TITLE

if TYPE_CHECKING:
    from reportgen.net.train import TrainConfig

FORMATS = ("html", "pdf")

log = logging.getLogger(__name__)

Say = Callable[[str], None]  # how a stage tells the user what it is doing


def quiet(message: str) -> None:
    pass


@dataclass(frozen=True)
class DataSettings:
    data_dir: Path | None = None
    train_limit: int | None = None
    test_limit: int | None = None


@dataclass(frozen=True)
class RunSettings:
    """train, evaluate, inspect and build: what to make, and where."""

    out: Path
    data: DataSettings = DataSettings()
    train: TrainConfig | None = None  # None: the seed's configuration
    ctx: str = "auto"
    resume: bool = False
    model: str | None = None  # --model as typed: load this model instead of training
    pixels: str | None = None  # --pixels: "unit" or "raw"; None: what the model recorded, else unit
    cases: tuple[Case, ...] = ("worst",)
    title: str = TITLE
    formats: tuple[str, ...] = FORMATS
    templates: Path | None = None
    baseline: Path | None = None  # a run folder to compare with, as the user typed it
    gates: Gates = NO_GATES
    arguments: dict[str, Any] = field(default_factory=dict)  # the options as given, for the record
    command: str = "reportgen"  # the command line as given, for the record


@dataclass(frozen=True)
class RenderSettings:
    """render: a finished run's report again, from its folder."""

    run_dir: Path
    formats: tuple[str, ...] = FORMATS
    title: str | None = None  # None: the run's own
    templates: Path | None = None
    data_dir: Path | None = None  # where the run's data is now, if it moved
    baseline: Path | None = None
    gates: Gates = NO_GATES
    arguments: dict[str, Any] = field(default_factory=dict)
    command: str = "reportgen render"


@dataclass(frozen=True, eq=False)
class Written:
    """What a command wrote into its run folder."""

    folder: Path
    entries: tuple[str, ...]  # the top-level files and folders its manifest lists, sorted
    seconds: float  # this command's own time
    data: DataRecord
    workers: int | None = None  # a distributed job's workers; None on one machine
    evaluation: Evaluation | None = None  # what it evaluated, if it did
    comparison: Comparison | None = None
    verdicts: tuple[Verdict, ...] = ()  # the gates judged, for the command line to enforce
    history: History | None = None  # what it trained, if it did (train: the summary's last epoch)
    warnings: tuple[str, ...] = ()  # lines for the command line to print (attributions that missed completeness)


class Timer:
    """Seconds per stage, in the order the stages ran; each, with its settings, in the log
    (reportgen -v) as it ends."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}

    @contextmanager
    def stage(self, name: str, **settings: Any) -> Iterator[None]:
        started = time.perf_counter()
        yield
        self.seconds[name] = round(time.perf_counter() - started, 3)
        shown = ", ".join(f"{key} {value}" for key, value in settings.items())
        log.debug(f"{name}: {self.seconds[name]:.2f} s" + (f" ({shown})" if shown else ""))
