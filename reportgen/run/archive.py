"""report.pdf, the run's archive: the files it carries, and the checksum beside it.

The PDF carries manifest.json, metrics.json and predictions.npz, byte for byte; so the
manifest cannot list the PDF's own SHA-256 (it would have to know the PDF that carries it).
Instead manifest.json is written first, listing every file but the PDF, and says under
"pdf" how the PDF is vouched for:

    "pdf": {"file": "report.pdf", "checksum": "report.pdf.sha256",
            "embeds": ["manifest.json", "metrics.json", "predictions.npz"], "current": true}

report.pdf.sha256 is written after the PDF, in sha256sum's format (`sha256sum -c
report.pdf.sha256` in the run folder checks it). "current" is true when the PDF carries this
very manifest.json and the folder's files named in "embeds"; false when a later command
(`render --format html`, `evaluate`) rewrote the manifest and left the PDF as it was, still
carrying the files of its time.
"""

from __future__ import annotations

import os
import re
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from reportgen.errors import DataError, ReportgenError
from reportgen.run.files import MANIFEST, sha256, write_bytes

PDF = "report.pdf"
SIDECAR = "report.pdf.sha256"
EMBEDDABLE = (MANIFEST, "metrics.json", "predictions.npz")  # in the order the PDF lists them
KEY = "pdf"  # manifest.json's entry

_LINE = re.compile(r"([0-9a-f]{64}) [ *]report\.pdf\n")  # sha256sum's text or binary mark
_MOST = 4096  # bytes: a sidecar holds one line of 77


@dataclass(frozen=True)
class Sealed:
    """The manifest's "pdf" entry, read."""

    embeds: tuple[str, ...]  # what the PDF carries, of EMBEDDABLE
    current: bool  # it carries this manifest.json (and the folder's embeds) as they are

    def to_json(self) -> dict[str, Any]:
        return {"file": PDF, "checksum": SIDECAR, "embeds": list(self.embeds), "current": self.current}

    def earlier(self) -> Sealed:
        """The entry once the manifest is rewritten and the PDF left as it was."""
        return Sealed(self.embeds, current=False)


def sealed(body: Any, source: str = MANIFEST) -> Sealed | None:
    """The manifest's "pdf" entry, None if it has none (a run without a PDF, or one written
    before the PDF carried its files, whose file table lists report.pdf). Only the names
    reportgen writes are accepted: a manifest from elsewhere points at nothing else."""
    entry = body.get(KEY) if isinstance(body, dict) else None
    if entry is None:
        return None
    embeds = entry.get("embeds") if isinstance(entry, dict) else None
    if (
        not isinstance(entry, dict)
        or entry.get("file") != PDF
        or entry.get("checksum") != SIDECAR
        or not isinstance(embeds, list)
        or not set(embeds) <= set(EMBEDDABLE)
        or not isinstance(entry.get("current"), bool)
    ):
        raise DataError(f'{source}: "{KEY}" is not what reportgen writes ({str(entry)[:120]})')
    return Sealed(tuple(embeds), entry["current"])


def write_sidecar(folder: Path) -> Path:
    """report.pdf.sha256 beside report.pdf, as `sha256sum report.pdf` prints it."""
    return write_bytes(folder / SIDECAR, f"{sha256(folder / PDF)}  {PDF}\n".encode())


def _regular(path: Path) -> bool:
    """A regular file, not a link (a link could point out of the run folder)."""
    try:
        return stat.S_ISREG(os.lstat(path).st_mode)
    except FileNotFoundError:
        return False


def recorded(folder: Path) -> str:
    """The SHA-256 report.pdf.sha256 records; a missing or malformed sidecar is refused."""
    path = Path(folder) / SIDECAR
    if not _regular(path):
        raise ReportgenError(
            f"{path}: missing (or not a regular file), and it vouches for {PDF}: reportgen render makes both again"
        )
    if path.stat().st_size > _MOST:
        raise ReportgenError(f"{path}: not a checksum file ({path.stat().st_size} bytes)")
    return digest_line(path.read_bytes(), path)


def digest_line(data: bytes, path: Path) -> str:
    """The SHA-256 in a sidecar's bytes (read from `path`), refused unless sha256sum's line."""
    found = _LINE.fullmatch(data[:_MOST].decode("ascii", errors="replace"))
    if found is None or len(data) > _MOST:
        raise ReportgenError(f"{path}: not sha256sum's line for {PDF}")
    return found[1]


def check(folder: Path, entry: Sealed) -> None:
    """Refuse a report.pdf its sidecar does not vouch for (changed since it was written)."""
    folder = Path(folder)
    if not _regular(folder / PDF):
        raise ReportgenError(f"{folder / PDF}: missing (or not a regular file), though its {MANIFEST} names it")
    if recorded(folder) != sha256(folder / PDF):
        raise ReportgenError(f"{folder / PDF}: differs from its {SIDECAR} (changed after the run was built?)")


def kept(folder: Path, body: Any) -> Sealed | None:
    """The "pdf" entry a manifest rewritten around an unchanged PDF keeps: the earlier one,
    no longer current, if the PDF and its sidecar are still there; else None."""
    entry = sealed(body)
    if entry is None or not (_regular(Path(folder) / PDF) and _regular(Path(folder) / SIDECAR)):
        return None
    return entry.earlier()


def embedded(*folders: Path | None) -> tuple[Path, ...]:
    """The files a new PDF carries, each from the first folder that has it (a staging folder
    first: what the command wrote, then the run folder: what it keeps)."""
    found = []
    for name in EMBEDDABLE:
        path = next((f / name for f in folders if f is not None and (f / name).is_file()), None)
        if path is not None:
            found.append(path)
    return tuple(found)
