"""The run folder's files: JSON, .npz and bytes, written whole and read back with a one-line
error for anything that is not what reportgen wrote; their checksums for the manifest.

A run folder may come from someone else (a --baseline, a run that `site` publishes), so the
readers check sizes before they read and shapes before they allocate: a file's size against a
bound, an .npz member's .npy header against its size, a JSON document's nesting and numbers.
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import os
import secrets
import stat
import struct
import tokenize
import zipfile
import zlib
from collections.abc import Callable, Collection
from pathlib import Path
from typing import IO, Any, BinaryIO

import numpy as np

from reportgen.errors import DataError, ReportgenError, reason

MANIFEST = "manifest.json"
# reportgen's own cache inside a run folder (the figures': report/figures/cache.py). Hidden: the
# manifest does not list it and `site` never publishes it; it is rewritten whole by every
# command that draws, and removed with the run.
CACHE = ".cache"
_ZIP_DATE = (1980, 1, 1, 0, 0, 0)  # a fixed member date: same arrays, same file bytes

# The largest JSON file read: manifest.json, metrics.json and index.json are kilobytes (16 MiB
# of numbers become about 128 MiB of Python objects); history.json, a record per batch, takes
# its own bound (run.history).
MAX_JSON_BYTES = 16 << 20
# How deep a JSON document may nest: reportgen writes four levels; values that are kept as
# they are (a run's arguments, metrics.json written back by render) must not reach Python's
# recursion limit when they are written again.
MAX_NESTING = 32
# The largest .npz read: predictions.npz of 10 million test images is 560 MB.
MAX_NPZ_BYTES = 1 << 30
_MAX_MEMBERS = 64  # reportgen's .npz files hold 3 (predictions) and 18 (inspection) arrays
_NPY_MAGIC = b"\x93NUMPY"
_NPY_HEADER = 10_000  # the longest .npy header read, as numpy >= 1.24 bounds it
_DEFLATE_RATIO = 1100  # deflate cannot expand more than 1032-fold: a larger declared size is forged
_CHUNK = 1 << 20


def cannot_write(path: Path, e: OSError) -> ReportgenError:
    """One line for a failed write (a full disk, a quota, no permission), naming the file, which
    the OSError of a write does not; exit code 2, as the environment, not reportgen, is at fault."""
    return ReportgenError(f"{path}: cannot write ({e.strerror or e})")


def write_bytes(path: Path, payload: bytes) -> Path:
    """Write a file, creating its folder (inside a staging folder, so no temp name)."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(payload)
    except OSError as e:
        raise cannot_write(path, e) from e
    return path


def replace_bytes(path: Path, payload: bytes) -> Path:
    """Write a file whole under another name, then rename it to its own: for a file another
    process may read while this one writes it (render's PDF child reads each figure as soon
    as it exists)."""
    return _replaced(Path(path), lambda file: file.write(payload))


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


def open_regular(path: Path, follow: bool = True) -> BinaryIO:
    """A regular file opened for reading; a FIFO (whose open would wait for a writer) or a
    device is refused (ReportgenError, naming it). With follow=False a link is refused too
    (OSError), for a file that must be the folder's own."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | (0 if follow else getattr(os, "O_NOFOLLOW", 0)))
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise ReportgenError(f"{path}: not a regular file")
    return os.fdopen(fd, "rb")


def read_bounded(path: Path, limit: int, what: str = "file") -> bytes:
    """A regular file's bytes, refused (one line naming it) if it is larger than `limit`:
    checked before reading; a device or a pipe, whose size says nothing, is refused too."""
    try:
        with open_regular(path) as file:
            status = os.fstat(file.fileno())
            if status.st_size > limit:
                raise ReportgenError(f"{path}: larger than {limit >> 20} MiB; not a {what} reportgen reads")
            payload = file.read(status.st_size + 1)  # read(n) allocates n: never more than the file
    except FileNotFoundError as e:
        raise ReportgenError(f"{path}: no such file") from e
    except OSError as e:
        raise ReportgenError(f"{path}: cannot read ({e.strerror or e})") from e
    if len(payload) > status.st_size:
        raise ReportgenError(f"{path}: grew while it was read")
    return payload


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):  # 1e400: JSON has no infinity, Python's float gives one
        raise ValueError(f"number {text[:20]} is too large")
    return value


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")  # Python's json reads NaN and Infinity; JSON has neither


def nesting(value: Any, limit: int) -> int:
    """How deep a parsed JSON value nests (a scalar 0, [] 1, [[1]] 2), counted no further than
    limit + 1; level by level, without recursion."""
    level, depth = [value], 0
    while depth <= limit:
        containers = [v for v in level if isinstance(v, (dict, list))]
        if not containers:
            break
        depth += 1
        level = [child for v in containers for child in (v.values() if isinstance(v, dict) else v)]
    return depth


def parse_json(payload: bytes | str, where: str, max_nesting: int | None = MAX_NESTING) -> Any:
    """A JSON document as Python values: strictly JSON (no NaN, no infinite numbers), nested
    no deeper than `max_nesting` (None: the caller checks every value itself)."""
    try:
        body = json.loads(payload, parse_float=_finite, parse_constant=_no_constant)
    except RecursionError as e:  # the C parser's own bound, far above any reportgen file
        raise ReportgenError(f"{where}: not readable JSON (nested too deep)") from e
    except ValueError as e:  # also UnicodeDecodeError, and an integer of more than 4,300 digits
        raise ReportgenError(f"{where}: not readable JSON ({str(e)[:200]})") from e
    if max_nesting is not None and nesting(body, max_nesting) > max_nesting:
        raise ReportgenError(f"{where}: not readable JSON (nested deeper than {max_nesting} levels)")
    return body


def read_json(path: Path, limit: int = MAX_JSON_BYTES, max_nesting: int | None = MAX_NESTING) -> dict[str, Any]:
    """A JSON file that holds an object, its size and nesting bounded (parse_json)."""
    body = parse_json(read_bounded(Path(path), limit, "JSON file"), str(path), max_nesting)
    if not isinstance(body, dict):
        raise ReportgenError(f"{path}: not a JSON object but {type(body).__name__}")
    return body


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
    return _replaced(Path(path), lambda file: _write_npz(file, arrays))


def _replaced(path: Path, write: Callable[[BinaryIO], object]) -> Path:
    """`write` into a new file beside `path`, then that file renamed to `path`: a reader sees
    the old file or the whole new one, never part of it; nothing is left behind on failure."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    try:
        with open(tmp, "xb") as f:
            write(f)
        os.replace(tmp, path)
    except OSError as e:
        tmp.unlink(missing_ok=True)
        raise cannot_write(path, e) from e
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


# An .npz member as its .npy header declares it: shape and dtype, read before its data.
Header = tuple[tuple[int, ...], np.dtype]


def _npy_header(member: IO[bytes], size: int, where: str) -> tuple[Header, bool, int]:
    """(shape, dtype), Fortran order and the header's length of one .npy member, refused
    unless it holds plain numbers (no pickled objects) filling exactly its declared size."""
    start = member.read(8)
    if len(start) < 8 or start[:6] != _NPY_MAGIC:
        raise ValueError(f"{where}: not an .npy array")
    version = (start[6], start[7])
    if version not in ((1, 0), (2, 0)):
        raise ValueError(f"{where}: .npy format {version[0]}.{version[1]}, not 1.0 or 2.0")
    form = "<H" if version == (1, 0) else "<I"
    length_bytes = member.read(struct.calcsize(form))
    if len(length_bytes) != struct.calcsize(form):
        raise ValueError(f"{where}: truncated .npy header")
    (length,) = struct.unpack(form, length_bytes)
    if length > _NPY_HEADER:
        raise ValueError(f"{where}: an .npy header of {length:,} bytes")
    header = member.read(length)
    if len(header) != length:
        raise ValueError(f"{where}: truncated .npy header")
    reader = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
    try:
        shape, fortran, dtype = reader(io.BytesIO(length_bytes + header))
    # numpy tokenizes a 1.0 header: an unterminated string in it is a tokenize.TokenError.
    except (ValueError, SyntaxError, TypeError, RecursionError, MemoryError, tokenize.TokenError) as e:
        raise ValueError(f"{where}: unreadable .npy header") from e
    if dtype.hasobject or dtype.fields is not None or dtype.shape != () or dtype.kind not in "biuf":
        raise ValueError(f"{where}: {dtype} is not an array of numbers (reportgen reads no pickled objects)")
    if any(not isinstance(n, int) or n < 0 for n in shape):
        raise ValueError(f"{where}: shape {shape}")
    offset = 8 + len(length_bytes) + length
    if math.prod(shape) * dtype.itemsize != size - offset:
        raise ValueError(f"{where}: shape {shape} of {dtype} does not fill its {size - offset:,} bytes")
    return (tuple(shape), dtype), bool(fortran), offset


def _npy_data(member: IO[bytes], header: Header, fortran: bool) -> np.ndarray:
    """The data after an .npy header, read in chunks: memory grows with the bytes that are
    there, not with the size a header claims."""
    (shape, dtype), wanted = header, math.prod(header[0]) * header[1].itemsize
    buffer = bytearray()
    while len(buffer) < wanted:
        chunk = member.read(min(_CHUNK, wanted - len(buffer)))
        if not chunk:
            raise ValueError("truncated array data")
        buffer += chunk
    return np.frombuffer(buffer, dtype=dtype).reshape(shape, order="F" if fortran else "C")


def read_npz(
    path: Path,
    what: str,
    names: Collection[str] | None = None,
    check: Callable[[dict[str, Header]], None] | None = None,
    limit: int = MAX_NPZ_BYTES,
) -> dict[str, np.ndarray]:
    """The arrays of an .npz file (those in `names`, else all); a missing or malformed file is
    a DataError naming `what`.

    Before any array is read: the file's size is bounded by `limit`, every member must be an
    .npy array of numbers whose header fills exactly its declared size, and `check` sees the
    wanted members' shapes and dtypes (it raises a DataError for shapes it does not take).
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: no such {what} file")
    try:
        with open_regular(path) as file:
            size = os.fstat(file.fileno()).st_size
            if size > limit:
                raise DataError(f"{path}: larger than {limit >> 20} MiB; not a {what} file reportgen reads")
            if file.read(len(_NPY_MAGIC)) == _NPY_MAGIC:
                raise DataError(f"{path}: a single .npy array, not an .npz archive")
            file.seek(0)
            with zipfile.ZipFile(file) as archive:
                members = _members(archive, path, limit)
                wanted = {name: info for name, info in members.items() if names is None or name in names}
                headers = {}
                for name, info in wanted.items():
                    with archive.open(info) as member:
                        headers[name] = _npy_header(member, info.file_size, f"array '{name}'")
                if check is not None:
                    check({name: header for name, (header, _, _) in headers.items()})
                arrays = {}
                for name, info in wanted.items():
                    header, fortran, offset = headers[name]
                    with archive.open(info) as member:
                        member.read(offset)
                        arrays[name] = _npy_data(member, header, fortran)
                return arrays
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, zlib.error, RuntimeError, NotImplementedError) as e:
        raise DataError(f"{path}: not a readable .npz file ({e.__class__.__name__}: {reason(e)})") from e


def _members(archive: zipfile.ZipFile, path: Path, limit: int) -> dict[str, zipfile.ZipInfo]:
    """The .npz's members by array name, checked from the zip's directory alone."""
    infos = archive.infolist()
    if len(infos) > _MAX_MEMBERS:
        raise DataError(f"{path}: {len(infos):,} members; reportgen's .npz files hold at most {_MAX_MEMBERS}")
    members: dict[str, zipfile.ZipInfo] = {}
    for info in infos:
        name = info.filename.removesuffix(".npy")
        if name == info.filename or name in members:
            raise DataError(f"{path}: member {info.filename!r} is not one .npy array")
        if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED) or info.flag_bits & 0x1:
            raise DataError(f"{path}: member {info.filename!r} is encrypted or compressed other than by deflate")
        if info.compress_type == zipfile.ZIP_DEFLATED and info.file_size > _DEFLATE_RATIO * info.compress_size + 4096:
            raise DataError(f"{path}: member {info.filename!r} declares more bytes than its data can hold")
        members[name] = info
    if sum(info.file_size for info in infos) > limit:
        raise DataError(f"{path}: its arrays would take more than {limit >> 20} MiB")
    return members


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
