"""The run record: how a run was made, the body of manifest.json less the files it lists."""

from __future__ import annotations

import datetime as _dt
import platform
from dataclasses import asdict, dataclass, field, fields
from importlib import metadata
from pathlib import Path
from typing import Any

from reportgen import __version__
from reportgen.data import DataRecord
from reportgen.errors import DataError
from reportgen.run import archive
from reportgen.run.files import MANIFEST, file_table, jsonable, read_json, write_json

TITLE = "LeNet on MNIST"  # a report's title unless --title gives another
LIBRARIES = ("mxnet", "numpy", "scipy", "matplotlib", "jinja2", "click", "weasyprint")


def library_versions() -> dict[str, str]:
    versions = {"python": platform.python_version(), "reportgen": __version__}
    for name in LIBRARIES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


@dataclass(frozen=True)
class ModelRecord:
    """The model part of the run record. Runs written before a field existed read its default:
    they all trained or loaded reportgen's own LeNet on unit pixels."""

    source: str  # "trained here", or --model as the user typed it
    epoch: int
    pixels: str = "unit"  # how images entered it: "unit" (divided by 255) or "raw" (0-255)
    # Where that scaling came from: "trained" (reportgen trained it so), "recorded" (the note
    # beside a model an earlier run loaded), "option" (--pixels), "default" (a model from elsewhere).
    pixels_origin: str = "trained"
    files: tuple[str, ...] = ()  # the symbol and parameter files read, by name; () when trained here
    # reportgen's layer -> the model's own name for it (None: the model has no node of its own,
    # e.g. Gluon's Dense flattens inside full1); {} when the names are reportgen's.
    names: dict[str, str | None] = field(default_factory=dict)
    head: str = "softmax"  # the model's last operator ("SoftmaxOutput", ...); "" when it ends at full2
    skipped: tuple[str, ...] = ()  # nodes passed over at inference, as "name (op)"

    @classmethod
    def from_json(cls, body: dict[str, Any]) -> ModelRecord:
        known = {f.name for f in fields(cls)}
        values = {key: value for key, value in body.items() if key in known}
        for key in ("files", "skipped"):
            if key in values:
                values[key] = tuple(values[key])
        return cls(**values)


TRAINED_HERE = "trained here"
NOT_KNOWN = "not known (a model trained elsewhere)"  # how reports and the site say it
# A model loaded from a reportgen run folder by a run older than trained_on: its settings and
# history came along, the images it learned from did not.
NOT_RECORDED = "not recorded (the run predates that record)"


def _count(value: Any, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise TypeError(f"{what} {value!r} is not a count")
    return value


@dataclass(frozen=True)
class TrainedOn:
    """What the evaluated model learned from, as the run that trained it recorded it: that
    run's data (its training images; its test images, on which its history's per-epoch
    accuracy was measured) and its training time. A loaded model's comes from the run folder
    it was loaded from; a model trained elsewhere has none (not known)."""

    data: DataRecord
    seconds: float | None  # that run's training stage (its timings' "train"); None: not recorded

    @property
    def train_images(self) -> int:
        return self.data.train_images

    @classmethod
    def from_json(cls, body: Any) -> TrainedOn:
        """Read back, every field checked: it comes from a model's folder, which may be anyone's."""
        data = DataRecord.from_json(body["data"])
        for name in ("train_images", "train_total", "test_images", "test_total"):
            _count(getattr(data, name), name)
        if data.train_images > data.train_total or data.test_images > data.test_total:
            raise ValueError("more images than the files hold")
        if not isinstance(data.files, dict) or not all(isinstance(v, str) for v in data.files.values()):
            raise TypeError("files is not a table of checksums")
        if data.dir is not None and not isinstance(data.dir, str):
            raise TypeError(f"dir {data.dir!r} is not a folder name")
        seconds = body.get("seconds")
        if seconds is not None and (isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or seconds < 0):
            raise TypeError(f"seconds {seconds!r} is not a time")
        return cls(data=data, seconds=None if seconds is None else float(seconds))


@dataclass(frozen=True)
class RunRecord:
    """How a run was made: the body of manifest.json, less the files it lists.

    The report shows it; `reportgen render` reads it back from manifest.json.
    """

    command: str  # as typed
    arguments: dict[str, Any]  # the options as the command received them
    contexts: tuple[str, ...]
    data: DataRecord
    model: ModelRecord
    training: dict[str, Any]  # the settings the model was trained with; {} when unknown
    # What the model learned from: `data` is what this run read and evaluated on, which for a
    # loaded model is not what it was trained on. None: not known (see trained()).
    trained_on: TrainedOn | None = None
    title: str = TITLE
    timings: dict[str, float] = field(default_factory=dict)  # seconds per stage, in order
    created: str = field(default_factory=lambda: _dt.datetime.now(_dt.UTC).replace(microsecond=0).isoformat())
    reportgen: str = __version__
    versions: dict[str, str] = field(default_factory=lambda: library_versions())
    platform: str = field(default_factory=platform.platform)

    def trained(self) -> TrainedOn | None:
        """What the model learned from; None: not known (a model trained elsewhere). A record
        written before `trained_on` existed says it only when the run trained its model."""
        if self.trained_on is not None:
            return self.trained_on
        if self.model.source == TRAINED_HERE:
            return TrainedOn(self.data, self.timings.get("train"))
        return None

    def to_json(self) -> dict[str, Any]:
        return jsonable({**asdict(self), "contexts": list(self.contexts)})

    @classmethod
    def from_json(cls, body: Any, source: str = MANIFEST) -> RunRecord:
        try:
            values = {f.name: body[f.name] for f in fields(cls) if f.name != "trained_on"}
            # A manifest written before trained_on existed has none: trained() says what it can.
            trained_on = body.get("trained_on")
            return cls(
                **{
                    **values,
                    "contexts": tuple(values["contexts"]),
                    "data": DataRecord.from_json(values["data"]),
                    "model": ModelRecord.from_json(values["model"]),
                    "trained_on": None if trained_on is None else TrainedOn.from_json(trained_on),
                }
            )
        except (KeyError, TypeError, ValueError, AttributeError) as e:
            raise DataError(f"{source}: not a reportgen manifest ({type(e).__name__}: {e})") from e


def manifest(
    record: RunRecord, files: dict[str, dict], pdf: archive.Sealed | None = None, **more: Any
) -> dict[str, Any]:
    """manifest.json: the run record, anything more (e.g. "rendered"), and every file's checksum;
    with `pdf`, how report.pdf is vouched for instead (run/archive.py: it carries this file)."""
    if pdf is None:
        return {**record.to_json(), **jsonable(more), "files": files}
    files = {name: entry for name, entry in files.items() if name not in (archive.PDF, archive.SIDECAR)}
    return {**record.to_json(), **jsonable(more), archive.KEY: pdf.to_json(), "files": files}


def write_manifest(
    staged: Path, record: RunRecord, keep: Path | None = None, pdf: archive.Sealed | None = None
) -> dict[str, Any]:
    """manifest.json for the staged files; with `keep` (the run folder they join), also the
    files an earlier command wrote there and left as they were, so the record still vouches
    for them (`evaluate` into a `train` folder, say)."""
    table = file_table(staged)
    if keep is not None and (keep / MANIFEST).is_file():
        earlier = read_json(keep / MANIFEST).get("files")
        if isinstance(earlier, dict):
            table = {**{k: v for k, v in earlier.items() if k not in table and (keep / k).is_file()}, **table}
    body = manifest(record, dict(sorted(table.items())), pdf)
    write_json(staged / MANIFEST, body)
    return body


def write_rendered_manifest(
    staged: Path, previous: dict[str, Any], record: RunRecord, again: RunRecord, pdf: archive.Sealed | None = None
) -> dict[str, Any]:
    """The manifest after a rendering: the run's record, and under "rendered" the rendering's
    own command, time, arguments, versions and timings (`again`); the run's other files,
    unchanged, recorded beside the new ones."""
    rendered = {key: getattr(again, key) for key in ("command", "created", "arguments", "versions", "timings")}
    listed = previous.get("files")
    table = {**(listed if isinstance(listed, dict) else {}), **file_table(staged)}
    body = manifest(record, table, pdf, rendered=rendered)
    write_json(staged / MANIFEST, body)
    return body
