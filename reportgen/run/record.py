"""The run record: how a run was made, the body of manifest.json less the files it lists."""

from __future__ import annotations

import datetime as _dt
import os
import platform
from dataclasses import asdict, dataclass, field, fields
from importlib import metadata
from pathlib import Path
from typing import Any

from reportgen import __version__
from reportgen.data import DataRecord
from reportgen.errors import DataError
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
    title: str = TITLE
    timings: dict[str, float] = field(default_factory=dict)  # seconds per stage, in order
    created: str = field(default_factory=lambda: _dt.datetime.now(_dt.UTC).replace(microsecond=0).isoformat())
    reportgen: str = __version__
    versions: dict[str, str] = field(default_factory=lambda: library_versions())
    platform: str = field(default_factory=platform.platform)

    def to_json(self) -> dict[str, Any]:
        return jsonable({**asdict(self), "contexts": list(self.contexts)})

    @classmethod
    def from_json(cls, body: Any, source: str = MANIFEST) -> RunRecord:
        try:
            values = {f.name: body[f.name] for f in fields(cls)}
            return cls(
                **{
                    **values,
                    "contexts": tuple(values["contexts"]),
                    "data": DataRecord.from_json(values["data"]),
                    "model": ModelRecord.from_json(values["model"]),
                }
            )
        except (KeyError, TypeError, AttributeError) as e:
            raise DataError(f"{source}: not a reportgen manifest ({type(e).__name__}: {e})") from e


def manifest(record: RunRecord, files: dict[str, dict], **more: Any) -> dict[str, Any]:
    """manifest.json: the run record, anything more (e.g. "rendered"), and every file's checksum."""
    return {**record.to_json(), **jsonable(more), "files": files}


def _kept(earlier: dict[str, Any], staged: Path, folder: Path | None = None) -> dict[str, Any]:
    """The entries of an earlier manifest that stay true once `staged` is swapped in: not under
    a name staged (a staged figures/ replaces the old one whole, figures gone with it), and,
    given the `folder`, still there."""
    replaced = set(os.listdir(staged))
    return {
        name: entry
        for name, entry in earlier.items()
        if name.split("/")[0] not in replaced and (folder is None or (folder / name).is_file())
    }


def write_manifest(staged: Path, record: RunRecord, keep: Path | None = None) -> dict[str, Any]:
    """manifest.json for the staged files; with `keep` (the run folder they join), also the
    files an earlier command wrote there and left as they were, so the record still vouches
    for them (`evaluate` into a `train` folder, say)."""
    table = file_table(staged)
    if keep is not None and (keep / MANIFEST).is_file():
        earlier = read_json(keep / MANIFEST).get("files")
        if isinstance(earlier, dict):
            table = {**_kept(earlier, staged, keep), **table}
    body = manifest(record, dict(sorted(table.items())))
    write_json(staged / MANIFEST, body)
    return body


def write_rendered_manifest(
    staged: Path, previous: dict[str, Any], record: RunRecord, again: RunRecord
) -> dict[str, Any]:
    """The manifest after a rendering: the run's record, and under "rendered" the rendering's
    own command, time, arguments, versions and timings (`again`); the run's other files,
    unchanged, recorded beside the new ones."""
    rendered = {key: getattr(again, key) for key in ("command", "created", "arguments", "versions", "timings")}
    listed = previous.get("files")
    table = {**_kept(listed if isinstance(listed, dict) else {}, staged), **file_table(staged)}
    body = manifest(record, table, rendered=rendered)
    write_json(staged / MANIFEST, body)
    return body
