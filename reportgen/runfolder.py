"""The run folder: gather into a staging folder, then move into place; the manifest.

A run writes everything under `<parent>/.<name>.tmp-XXXX/` and only at the end
moves each entry into `<parent>/<name>/`, so a failed or interrupted run never
leaves a half-written file and never clobbers a finished run's files early.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import hashlib
import json
import math
import os
import platform
import secrets
import shutil
import tempfile
import zipfile
import zlib
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field, fields
from importlib import metadata
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from reportgen import __version__
from reportgen.data import DataRecord
from reportgen.errors import DataError, ReportgenError, reason

MANIFEST = "manifest.json"
_ZIP_DATE = (1980, 1, 1, 0, 0, 0)  # a fixed member date: same arrays, same file bytes
LIBRARIES = ("mxnet", "numpy", "scipy", "matplotlib", "jinja2", "click", "weasyprint")


def check_out(out: Path) -> None:
    """Refuse an --out that cannot become a run folder before any work is done."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise ReportgenError(f"{out}: exists and is not a folder")
    parent = next((p for p in (out, *out.parents) if p.exists()), Path("."))
    if not os.access(parent, os.W_OK):
        raise ReportgenError(f"{out}: cannot write in {parent}")


@contextlib.contextmanager
def staging(out: Path, finish: Callable[[Path, Path], None] | None = None) -> Iterator[Path]:
    """Yield an empty folder beside `out`; on success move its entries into `out`.

    `finish(staged, out)` does the moving; `publish` unless given (the site replaces
    what its earlier version wrote instead of keeping it).
    """
    # Absolute, without resolving links: Path(".") has no name and is its own parent, which
    # would put the staging folder inside the run folder rather than beside it.
    out = Path(os.path.abspath(out))
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=out.parent))
    except OSError as e:
        raise ReportgenError(f"{out}: cannot write here ({e.strerror})") from None
    try:
        yield tmp
        (finish or publish)(tmp, out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def publish(staged: Path, out: Path) -> None:
    """Move every entry of `staged` into `out`, replacing what is there.

    Files are replaced with os.replace (atomic); a folder is swapped in by
    moving the old one aside first. Entries of `out` not in `staged` stay.
    """
    if out.exists() and not out.is_dir():
        raise ReportgenError(f"{out}: exists and is not a folder")
    out.mkdir(parents=True, exist_ok=True)
    # The manifest goes last: while it still describes the old files, a reader
    # can tell the folder is mid-update.
    entries = sorted(staged.iterdir(), key=lambda p: p.name == MANIFEST)
    for entry in entries:
        replace_entry(entry, out / entry.name, staged)


def replace_entry(entry: Path, target: Path, aside: Path) -> None:
    """Move one staged file or folder to `target`. A folder already there is first moved
    into `aside` (the staging folder, deleted at the end), so no old file survives in it."""
    if entry.is_dir() and target.exists():
        os.replace(target, aside / f".old-{entry.name}")
    os.replace(entry, target)


def write_bytes(path: Path, payload: bytes) -> Path:
    """Write a file, creating its folder (inside a staging folder, so no temp name)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(payload)
    return path


def nan_for_none(value: Any) -> Any:
    """JSON's null back to NaN, where jsonable wrote NaN as null (or an older run left a field out)."""
    return math.nan if value is None else value


def jsonable(value):
    """NaN and infinities become null, numpy scalars and arrays plain Python."""
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if hasattr(value, "tolist"):  # numpy scalar or array
        return jsonable(value.tolist())
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def write_json(path: Path, obj) -> Path:
    text = json.dumps(jsonable(obj), indent=2, allow_nan=False) + "\n"
    return write_bytes(path, text.encode())


def read_json(path: Path) -> dict:
    try:
        return json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise ReportgenError(f"{path}: no such file") from None
    except (OSError, ValueError) as e:
        raise ReportgenError(f"{path}: not readable JSON ({e})") from None


def _write_npz(file: BinaryIO, arrays: dict[str, np.ndarray]) -> None:
    # What np.savez writes, minus the wall-clock date it stamps on every member.
    with zipfile.ZipFile(file, "w", compression=zipfile.ZIP_STORED) as archive:
        for name, array in arrays.items():
            info = zipfile.ZipInfo(f"{name}.npy", date_time=_ZIP_DATE)
            with archive.open(info, "w", force_zip64=True) as member:
                np.lib.format.write_array(member, np.ascontiguousarray(array), allow_pickle=False)


def write_npz(path: Path, arrays: dict[str, np.ndarray]) -> Path:
    """Write an .npz file atomically (a temporary file beside it, then a rename), with
    deterministic bytes: the same arrays give the same file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    try:
        with open(tmp, "xb") as f:
            _write_npz(f, arrays)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def read_npz(path: Path, what: str) -> dict[str, np.ndarray]:
    """Every array of an .npz file; a missing or malformed file is a DataError naming `what`."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: no such {what} file")
    try:
        # Our own file object: np.load leaks the one it opens when the zip is unreadable.
        with open(path, "rb") as file:
            loaded = np.load(file, allow_pickle=False)
            if not isinstance(loaded, np.lib.npyio.NpzFile):
                raise DataError(f"{path}: a single .npy array, not an .npz archive")
            with loaded as npz:
                return {name: npz[name] for name in npz.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, zlib.error) as e:
        raise DataError(f"{path}: not a readable .npz file ({e.__class__.__name__}: {reason(e)})") from None


def sha256(path: Path) -> str:
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def check_finished(folder: Path, needed: tuple[str, ...]) -> None:
    """Refuse a folder that is not a finished run: no such folder, or one of `needed` missing."""
    if not folder.is_dir():
        raise ReportgenError(f"{folder}: no such run folder")
    missing = [name for name in needed if not (folder / name).is_file()]
    if missing:
        raise ReportgenError(f"{folder}: not a finished reportgen run (no {missing[0]}); make one with reportgen build")


def check_listed(folder: Path, listed: dict[str, Any], names: list[str]) -> None:
    """Refuse files that are not what the run's manifest.json recorded: a later command wrote
    them, or something changed them since (a `train` into a built run folder, say, leaves the
    old report's metrics beside a new model)."""
    for name in names:
        entry = listed.get(name)
        recorded = entry.get("sha256") if isinstance(entry, dict) else None
        if recorded is None:
            raise ReportgenError(
                f"{folder / name}: not among the files its {MANIFEST} records (another command wrote the "
                "folder since); build the run again"
            )
        if recorded != sha256(folder / name):
            raise ReportgenError(
                f"{folder / name}: differs from the run's {MANIFEST} (changed after the run was built?)"
            )


def file_table(root: Path) -> dict[str, dict]:
    """Every file under root but the manifest and hidden entries: sha256 and size."""
    table = {}
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root)
        if path.is_file() and rel.as_posix() != MANIFEST and not any(part.startswith(".") for part in rel.parts):
            table[rel.as_posix()] = {"sha256": sha256(path), "size": path.stat().st_size}
    return table


def library_versions() -> dict[str, str]:
    versions = {"python": platform.python_version(), "reportgen": __version__}
    for name in LIBRARIES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


# -- the run record ----------------------------------------------------------------------


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
    title: str = "LeNet on MNIST"
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
            raise DataError(f"{source}: not a reportgen manifest ({type(e).__name__}: {e})") from None


def manifest(record: RunRecord, files: dict[str, dict], **more: Any) -> dict[str, Any]:
    """manifest.json: the run record, anything more (e.g. "rendered"), and every file's checksum."""
    return {**record.to_json(), **jsonable(more), "files": files}
