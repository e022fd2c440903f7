"""Figures drawn once: each kept in the run folder under a key of everything that made it.

A figure is a pure function of its values and its code (figures/__init__.py), so a render
after only a template or a title changed, or the first render after a build, can take every
figure from the last drawing instead of drawing it again with matplotlib (half of a fresh
render's time). The key is a SHA-256 of:

- the code: every reportgen source file, reportgen's version, and the versions of matplotlib,
  numpy and Python (`code_fingerprint`): a change anywhere draws every figure again once,
  a cost only developers pay, and no constant a figure reads from elsewhere is missed;
- the figure function's module and name, and every value it is given: arrays by dtype, shape
  and bytes, dataclasses field by field, floats by repr (exact, NaN included); a Dataset read
  from files, or a run's data not yet read (data.Deferred), by its files' checksums and
  lengths. A value of any other kind makes its figure uncacheable: drawn every time, never
  a wrong hit.

Where: `RUN/.cache/figures/<key>.svg` and `<key>.json` (name, caption, alt). Hidden, so the
manifest leaves it out (run.files.file_table) and `site` never copies it. A command writes
the entries of the figures it used, old and new, into its staging folder, which replaces the
old cache with the rest of the run: the cache holds one report's figures and never outlives
a failed command's half.

The cache is the run folder's, and a run folder can come from anyone: what it says is
validated, never trusted. Its key is ours, but anyone can compute it (the code is public and
the values are the run folder's own files), so a file planted under the right key, its
content hash beside it, would pass any check made of the folder alone. What vouches for an
entry is therefore kept outside every run folder: a secret of this user's
(`$XDG_CACHE_HOME/reportgen/figure-cache.key`, made on first use, mode 0600), with which
each entry's record is signed: HMAC-SHA256 over its key, its name, caption and alt text and
the SHA-256 of its SVG bytes. An entry is used only if that signature and that hash hold, so
only figures this user's reportgen drew are ever taken; a run folder from elsewhere has every
figure drawn afresh once (and then signed with this user's secret). Even then the bytes are
checked as outside input: a regular file inside the folder (no link followed), of bounded
size, whose SVG is what matplotlib writes and nothing that can run or fetch (`check_svg`: no
script, no event attribute, no reference but `#id` and inline PNG, no DOCTYPE subset or
processing instruction), with a plain name and text. Anything else is drawn afresh. Without
a usable secret (no writable home) nothing is read from or written to the cache.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import hmac
import importlib.metadata
import json
import os
import platform
import re
import stat
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO
from xml.parsers import expat

import numpy as np

import reportgen
from reportgen.data import Dataset, Deferred
from reportgen.errors import ReportgenError
from reportgen.report.figures.figure import Drawing, Figure
from reportgen.run.files import CACHE, open_regular, write_bytes

Job = Callable[[], Figure]

FOLDER = Path(CACHE) / "figures"  # inside a run folder
MAX_SVG = 16 << 20  # bytes: the largest figure here is under 200 kB
MAX_META = 64 << 10
_NAME = re.compile(r"[A-Za-z0-9_-]{1,100}")
_BIG = 1 << 20  # bytes: an array this large is hashed once per make(), however many figures read it
_HEX = re.compile(r"[0-9a-f]{64}")
SECRET_BYTES = 32


class Uncacheable(TypeError):
    """A value the key cannot describe exactly: its figure is drawn every time."""


@functools.cache
def code_fingerprint() -> bytes:
    """Every reportgen source and the versions that decide a figure's bytes (read once a process,
    a few milliseconds; matplotlib's version is read from its metadata, not by importing it)."""
    root = Path(reportgen.__file__).resolve().parent
    h = hashlib.sha256()
    for path in sorted(root.rglob("*.py")):
        h.update(path.relative_to(root).as_posix().encode() + b"\0" + path.read_bytes() + b"\0")
    versions = (
        reportgen.__version__,
        importlib.metadata.version("matplotlib"),
        np.__version__,
        platform.python_version(),
    )
    h.update("\0".join(versions).encode())
    return h.digest()


def _feed(h: Any, value: Any, memo: dict[int, bytes]) -> None:
    if isinstance(value, (Dataset, Deferred)) and value.origin is not None:
        h.update(b"O%d:" % len(value.origin) + value.origin)
    elif isinstance(value, np.ndarray):
        if value.dtype.hasobject:
            raise Uncacheable("an array of Python objects")
        head = b"A" + value.dtype.str.encode() + repr(value.shape).encode()
        if value.nbytes >= _BIG:
            if id(value) not in memo:
                memo[id(value)] = hashlib.sha256(np.ascontiguousarray(value).data).digest()
            h.update(head + memo[id(value)])
        else:
            h.update(head + b":" + np.ascontiguousarray(value).tobytes())
    elif dataclasses.is_dataclass(value) and not isinstance(value, type):
        h.update(b"D" + f"{type(value).__module__}.{type(value).__qualname__}".encode())
        for f in dataclasses.fields(value):
            h.update(b"f" + f.name.encode())
            _feed(h, getattr(value, f.name), memo)
    elif isinstance(value, dict):
        h.update(b"{%d" % len(value))
        for k, v in value.items():
            _feed(h, k, memo)
            _feed(h, v, memo)
    elif isinstance(value, (list, tuple)):
        h.update((b"[" if isinstance(value, list) else b"(") + b"%d" % len(value))
        for v in value:
            _feed(h, v, memo)
    elif value is None or isinstance(value, (str, int, float, bool, np.generic)):
        h.update(b"s" + type(value).__name__.encode() + b":" + repr(value).encode() + b"\0")
    else:
        raise Uncacheable(type(value).__qualname__)


def _parts(job: Job) -> tuple[Any, tuple[Any, ...], dict[str, Any]]:
    if isinstance(job, functools.partial):
        return job.func, job.args, job.keywords
    return job, (), {}


def job_key(job: Job, memo: dict[int, bytes] | None = None) -> str | None:
    """The job's key, or None if a value it is given cannot be keyed."""
    func, args, kwargs = _parts(job)
    if isinstance(func, Drawing):
        name = func.qualname
    else:
        func = getattr(func, "__wrapped__", func)  # the function under style.styled
        name = f"{func.__module__}.{func.__qualname__}"
    h = hashlib.sha256(code_fingerprint())
    h.update(name.encode() + b"\0")
    try:
        _feed(h, args, {} if memo is None else memo)
        _feed(h, kwargs, {} if memo is None else memo)
    except Uncacheable:
        return None
    return h.hexdigest()


# -- what an entry may hold -------------------------------------------------------------------

_SVG = "http://www.w3.org/2000/svg"
_METADATA = (
    "http://www.w3.org/1999/02/22-rdf-syntax-ns#",
    "http://creativecommons.org/ns#",
    "http://purl.org/dc/elements/1.1/",
)
# What matplotlib's SVG backend writes (hatches as patterns, Gouraud shading as filters).
_ELEMENTS = frozenset(
    "svg g defs style path use clipPath rect image text tspan pattern linearGradient radialGradient stop "
    "filter feFlood feComposite feBlend mask circle ellipse line polyline polygon title desc metadata "
    "symbol marker".split()
)
_URL = re.compile(r"url\(\s*['\"]?\s*(?!#)", re.IGNORECASE)  # a url() to anything but "#id"
_ACTIVE = re.compile(r"javascript:|vbscript:|@import|expression\(|<script", re.IGNORECASE)


class _Refused(Exception):
    pass


def _check_text(text: str) -> None:
    if not any(c in text for c in "(:@<"):  # what every pattern below needs: most values pass here
        return
    squeezed = re.sub(r"\s+", "", text)
    if _URL.search(text) or _ACTIVE.search(squeezed):
        raise _Refused(text[:80])


def check_svg(svg: bytes) -> bool:
    """Whether `svg` is an SVG document of the kind matplotlib writes, with nothing in it that
    could run, fetch or declare: the only references are to its own ids and to inline PNGs."""
    parser = expat.ParserCreate(namespace_separator=" ")
    parser.SetParamEntityParsing(expat.XML_PARAM_ENTITY_PARSING_NEVER)
    depth = [0]
    style: list[str] | None = None  # a <style> element's text, checked whole (expat hands it in pieces)

    def refuse(*_args: Any) -> int:
        raise _Refused("declaration, entity or instruction")

    def doctype(name: str, _system: str | None, _public: str | None, internal_subset: int) -> None:
        if name != "svg" or internal_subset:
            raise _Refused("DOCTYPE")

    def start(name: str, attributes: dict[str, str]) -> None:
        nonlocal style
        space, _, local = name.rpartition(" ")
        if style is not None:
            raise _Refused("an element inside <style>")
        if depth[0] == 0 and (space, local) != (_SVG, "svg"):
            raise _Refused("root")
        if not (space == _SVG and local in _ELEMENTS) and space not in _METADATA:
            raise _Refused(name)
        for attribute, value in attributes.items():
            bare = attribute.rpartition(" ")[2].lower()
            if bare.startswith("on"):
                raise _Refused(attribute)
            if bare == "href" and not (value.startswith("#") or value.startswith("data:image/png;base64,")):
                raise _Refused(value[:80])
            _check_text(value)
        depth[0] += 1
        if local == "style":
            style = []

    def end(name: str) -> None:
        nonlocal style
        depth[0] -= 1
        if style is not None:
            _check_text("".join(style))
            style = None

    def characters(text: str) -> None:
        if style is not None:
            style.append(text)

    parser.StartDoctypeDeclHandler = doctype
    parser.EntityDeclHandler = refuse
    parser.UnparsedEntityDeclHandler = refuse
    parser.NotationDeclHandler = refuse
    parser.ProcessingInstructionHandler = refuse
    parser.ExternalEntityRefHandler = refuse
    parser.StartElementHandler = start
    parser.EndElementHandler = end
    parser.CharacterDataHandler = characters
    try:
        parser.Parse(svg, True)
    except (_Refused, expat.ExpatError, ValueError):
        return False
    return True


def _open(path: Path) -> tuple[BinaryIO, os.stat_result] | None:
    """A regular file of the folder's own, opened, and its status; None for a link, a FIFO,
    a folder or nothing: an entry that is not what the cache writes is drawn afresh."""
    try:
        f = open_regular(path, follow=False)
    except (ReportgenError, OSError):
        return None
    return f, os.fstat(f.fileno())


def _read(path: Path, limit: int) -> bytes | None:
    """A regular file's bytes, if it is one (no link followed, no FIFO waited on) and not too large."""
    opened = _open(path)
    if opened is None:
        return None
    f, info = opened
    with f:
        if info.st_size > limit:
            return None
        payload = f.read(limit + 1)
    return payload if len(payload) <= limit else None


# -- the secret that vouches for an entry ------------------------------------------------------


def secret_path() -> Path:
    """Where this user's cache secret is kept: beside the other caches of the user, never in a run folder."""
    home = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(home) / "reportgen" / "figure-cache.key"


def _own_secret(path: Path) -> bytes | None:
    """The secret in `path` if it is ours alone: a regular file (no link), owned by this user,
    readable by nobody else, of the right size."""
    opened = _open(path)
    if opened is None:
        return None
    f, info = opened
    with f:
        if info.st_size != SECRET_BYTES or info.st_mode & 0o077:
            return None
        if hasattr(os, "getuid") and info.st_uid != os.getuid():
            return None
        payload = f.read(SECRET_BYTES + 1)
    return payload if len(payload) == SECRET_BYTES else None


def secret() -> bytes | None:
    """This user's cache secret, made on first use (written whole under a temporary name, then
    linked into place, so two processes starting at once agree on one); None if there can be none."""
    path = secret_path()
    found = _own_secret(path)
    if found is not None or path.is_symlink() or path.exists():
        return found
    try:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o600)
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(os.urandom(SECRET_BYTES))
            try:
                os.link(tmp, path)  # fails if another process made it first: theirs is kept
            except FileExistsError:
                pass
        finally:
            tmp.unlink(missing_ok=True)
    except OSError:
        return None
    return _own_secret(path)


def signature(secret_key: bytes, key: str, name: str, caption: str, alt: str, svg_sha256: str) -> str:
    """The HMAC an entry's record carries: everything the entry says, its SVG by hash."""
    fields = json.dumps([key, name, caption, alt, svg_sha256], ensure_ascii=True).encode()
    return hmac.new(secret_key, fields, hashlib.sha256).hexdigest()


def _figure(meta: bytes, svg: bytes, key: str, secret_key: bytes) -> Figure | None:
    try:
        body = json.loads(meta)
    except ValueError:
        return None
    if not isinstance(body, dict):
        return None
    name, caption, alt = body.get("name"), body.get("caption"), body.get("alt")
    digest, mac = body.get("sha256"), body.get("hmac")
    if not (isinstance(name, str) and _NAME.fullmatch(name)):
        return None
    if not (isinstance(caption, str) and isinstance(alt, str) and len(caption) + len(alt) < MAX_META):
        return None
    if not (isinstance(digest, str) and _HEX.fullmatch(digest) and isinstance(mac, str) and _HEX.fullmatch(mac)):
        return None
    if not hmac.compare_digest(mac, signature(secret_key, key, name, caption, alt, digest)):
        return None  # not signed by this user's reportgen: planted, or from another user or machine
    if not hmac.compare_digest(digest, hashlib.sha256(svg).hexdigest()):
        return None  # the SVG is not the one signed for
    return Figure(name=name, caption=caption, alt=alt, svg=svg) if check_svg(svg) else None


class FigureCache:
    """The entries of one run folder's last drawing (`old`) and where this drawing's go (`new`,
    inside the staging folder); `hits` and `drawn` name the figures taken and drawn."""

    def __init__(self, run_dir: Path | None, staged: Path | None) -> None:
        self.secret = secret() if run_dir is not None or staged is not None else None
        usable = self.secret is not None
        self.old = _usable(Path(run_dir)) if run_dir is not None and usable else None
        self.new = Path(staged) / FOLDER if staged is not None and usable else None
        self.hits: list[str] = []
        self.drawn: list[str] = []

    def read(self, key: str) -> Figure | None:
        if self.old is None or self.secret is None:
            return None
        meta = _read(self.old / f"{key}.json", MAX_META)
        svg = _read(self.old / f"{key}.svg", MAX_SVG) if meta is not None else None
        return _figure(meta, svg, key, self.secret) if meta is not None and svg is not None else None

    def write(self, key: str, figure: Figure) -> None:
        if self.new is None or self.secret is None:
            return
        digest = hashlib.sha256(figure.svg).hexdigest()
        meta = {
            "name": figure.name,
            "caption": figure.caption,
            "alt": figure.alt,
            "sha256": digest,
            "hmac": signature(self.secret, key, figure.name, figure.caption, figure.alt, digest),
        }
        write_bytes(self.new / f"{key}.json", json.dumps(meta, ensure_ascii=False).encode())
        write_bytes(self.new / f"{key}.svg", figure.svg)


def _usable(run_dir: Path) -> Path | None:
    """RUN/.cache/figures if it is a folder of the run folder's own (no link out of it)."""
    folder = run_dir / FOLDER
    for part in (run_dir / FOLDER.parent, folder):
        try:
            if not stat.S_ISDIR(part.lstat().st_mode):
                return None
        except OSError:
            return None
    return folder


def _resolved(job: Job) -> Job:
    """The job with a deferred Dataset read (once, here, before any worker is forked)."""
    func, args, kwargs = _parts(job)
    if not any(isinstance(v, Deferred) for v in (*args, *kwargs.values())):
        return job
    ready = [v.load() if isinstance(v, Deferred) else v for v in args]
    return functools.partial(func, *ready, **{k: v.load() if isinstance(v, Deferred) else v for k, v in kwargs.items()})


def draw(
    jobs: list[Job],
    processes: int | None = None,
    meanwhile: Callable[[], None] | None = None,
    cache: FigureCache | None = None,
    early: Callable[[list[Figure], frozenset[str]], None] | None = None,
    saved: Callable[[Figure], None] | None = None,
) -> list[Figure]:
    """Every job's Figure, in order: from the cache where an entry for its key holds, drawn
    (report/figures/pool.py, which imports matplotlib) where not. `early` and `saved`: as
    pool.draw's, `early` called with the cache's figures and the placeholders of those being
    drawn, and the placeholders' names."""
    memo: dict[int, bytes] = {}
    keys = [job_key(job, memo) if cache is not None else None for job in jobs]
    found = [cache.read(key) if cache is not None and key is not None else None for key in keys]
    missing = [i for i, figure in enumerate(found) if figure is None]
    if missing:
        from reportgen.report.figures import pool

        def placed(drawing: list[Figure]) -> None:
            assert early is not None
            ahead = list(found)
            for i, figure in zip(missing, drawing):
                ahead[i] = figure
            early([figure for figure in ahead if figure is not None], frozenset(f.name for f in drawing))

        drawn = pool.draw(
            [_resolved(jobs[i]) for i in missing], processes, meanwhile, placed if early is not None else None, saved
        )
        for i, figure in zip(missing, drawn):
            found[i] = figure
    elif meanwhile is not None:
        meanwhile()
    figures = [figure for figure in found if figure is not None]
    assert len(figures) == len(jobs)
    if cache is not None:
        for i, (key, figure) in enumerate(zip(keys, figures)):
            (cache.drawn if i in missing else cache.hits).append(figure.name)
            if key is not None:
                cache.write(key, figure)
    return figures
