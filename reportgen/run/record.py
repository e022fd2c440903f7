"""The run record: how a run was made, the body of manifest.json less the files it lists."""

from __future__ import annotations

import datetime as _dt
import math
import platform
from dataclasses import asdict, dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

from reportgen import __version__
from reportgen.data import PIXELS, DataRecord
from reportgen.errors import DataError
from reportgen.run import archive, schema
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
    def from_json(cls, body: Any, where: str = "model") -> ModelRecord:
        """The model's record, every value checked (schema.Invalid names the first wrong one);
        a field a later version added may be missing."""
        read = schema.field
        return cls(
            source=read(body, "source", where, schema.text),
            epoch=read(body, "epoch", where, schema.integer),
            pixels=schema.optional(body, "pixels", where, lambda v, w: schema.one_of(v, w, PIXELS), "unit"),
            pixels_origin=schema.optional(body, "pixels_origin", where, _origin, "trained"),
            files=schema.optional(body, "files", where, _strings, ()),
            names=schema.optional(body, "names", where, _names, {}),
            head=schema.optional(body, "head", where, schema.text, "softmax"),
            skipped=schema.optional(body, "skipped", where, _strings, ()),
        )


ORIGINS = ("trained", "recorded", "option", "default")


def _origin(value: Any, where: str) -> str:
    return schema.one_of(value, where, ORIGINS)


def _strings(value: Any, where: str) -> tuple[str, ...]:
    return tuple(schema.each(value, where, schema.text))


def _names(value: Any, where: str) -> dict[str, str | None]:
    return schema.values(value, where, schema.optional_text)


TRAINED_HERE = "trained here"
NOT_KNOWN = "not known (a model trained elsewhere)"  # how reports and the site say it
# A model loaded from a reportgen run folder by a run older than trained_on: its settings and
# history came along, the images it learned from did not.
NOT_RECORDED = "not recorded (the run predates that record)"


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
        """The run record from manifest.json's body, every value's type and range checked:
        anything not shaped like reportgen's manifest is a DataError naming `source` and the value."""
        try:
            return _read_record(body)
        except schema.Invalid as e:
            raise DataError(f"{source}: not a reportgen manifest ({e})") from e


def moment(created: str, where: str = "created") -> _dt.datetime:
    """An ISO 8601 time as an aware time in UTC (a time without an offset is taken as UTC);
    schema.Invalid for one that is not a time, or that UTC cannot hold (year 9999 at -23:59)."""
    try:
        when = _dt.datetime.fromisoformat(created)
        when = when if when.tzinfo is not None else when.replace(tzinfo=_dt.UTC)
        when = when.astimezone(_dt.UTC)
        when.timestamp()
    except (TypeError, ValueError, OverflowError, OSError) as e:
        raise schema.Invalid(f"{where}: {created!r:.60} is not an ISO 8601 time reportgen can place") from e
    return when


def _data(body: Any, where: str) -> DataRecord:
    def count(key: str) -> int:
        return schema.field(body, key, where, lambda v, w: schema.integer(v, w, 1))

    record = DataRecord(
        dir=schema.field(body, "dir", where, schema.optional_text),
        files=schema.field(body, "files", where, lambda v, w: schema.values(v, w, schema.text)),
        published_mnist=schema.field(body, "published_mnist", where, schema.flag),
        train_images=count("train_images"),
        test_images=count("test_images"),
        train_total=count("train_total"),
        test_total=count("test_total"),
    )
    for split in ("train", "test"):
        if getattr(record, f"{split}_images") > getattr(record, f"{split}_total"):
            raise schema.Invalid(f"{where}.{split}_images: more than the {split}_total the file holds")
    return record


def _seconds(value: Any, where: str) -> float:
    return schema.number(value, where, 0.0, math.inf)


def _trained_on(body: Any, where: str) -> TrainedOn | None:
    """What the model learned from, read back (null: not known); it comes from a model's
    folder, which may be anyone's."""
    if body is None:
        return None
    seconds = schema.optional(body, "seconds", where, lambda v, w: None if v is None else _seconds(v, w), None)
    return TrainedOn(data=schema.field(body, "data", where, _data), seconds=seconds)


def _read_record(body: Any) -> RunRecord:
    read = schema.field
    created = read(body, "created", "", schema.text)
    moment(created)
    return RunRecord(
        command=read(body, "command", "", schema.text),
        arguments=read(body, "arguments", "", schema.obj),
        contexts=read(body, "contexts", "", _strings),
        data=read(body, "data", "", _data),
        model=read(body, "model", "", ModelRecord.from_json),
        training=read(body, "training", "", schema.obj),
        # A manifest written before trained_on existed has none: trained() says what it can.
        trained_on=schema.optional(body, "trained_on", "", _trained_on, None),  # null: not known
        title=read(body, "title", "", schema.text),
        timings=read(body, "timings", "", lambda v, w: schema.values(v, w, _seconds)),
        created=created,
        reportgen=read(body, "reportgen", "", schema.text),
        versions=read(body, "versions", "", lambda v, w: schema.values(v, w, schema.text)),
        platform=read(body, "platform", "", schema.text),
    )


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
