"""The run folder's files: JSON, .npz and bytes, written whole and read back with a one-line
error for anything that is not what reportgen wrote; their checksums for the manifest."""

from __future__ import annotations

import hashlib
import json
import math
import os
import secrets
import zipfile
import zlib
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from reportgen.errors import DataError, ReportgenError, reason

MANIFEST = "manifest.json"
_ZIP_DATE = (1980, 1, 1, 0, 0, 0)  # a fixed member date: same arrays, same file bytes


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
    except FileNotFoundError as e:
        raise ReportgenError(f"{path}: no such file") from e
    except (OSError, ValueError) as e:
        raise ReportgenError(f"{path}: not readable JSON ({e})") from e


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
        raise DataError(f"{path}: not a readable .npz file ({e.__class__.__name__}: {reason(e)})") from e


def sha256(path: Path) -> str:
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def file_table(root: Path) -> dict[str, dict]:
    """Every file under root but the manifest and hidden entries: sha256 and size."""
    table = {}
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root)
        if path.is_file() and rel.as_posix() != MANIFEST and not any(part.startswith(".") for part in rel.parts):
            table[rel.as_posix()] = {"sha256": sha256(path), "size": path.stat().st_size}
    return table
