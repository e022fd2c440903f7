"""Writing what CI reads once a command has written its run (report/ci.py makes the text):
--summary FILE and --junit FILE written whole (a temporary file beside each, then a rename),
and GitHub Actions' step summary, $GITHUB_STEP_SUMMARY, appended to.

A file given explicitly is this command's: it is replaced whole. The step summary is the
runner's, shared by every command of the step: reportgen only appends, and appends nothing
that would take it past GitHub's 1 MiB (then one line saying so, if that fits)."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from reportgen.errors import ReportgenError
from reportgen.report import ci as ci_text
from reportgen.run.files import MANIFEST

STEP_SUMMARY = "GITHUB_STEP_SUMMARY"
STEP_LIMIT = 1024 * 1024  # bytes: what GitHub shows of one step's summary
LEFT_OUT = "\nreportgen: its summary is left out: this step's summary is near GitHub's 1 MiB.\n"


@dataclass(frozen=True)
class Outputs:
    """The files a command writes for CI, as given (--summary, --junit)."""

    summary: Path | None = None
    junit: Path | None = None

    def check(self, run_folder: Path) -> None:
        """Refuse, before any work, what writing them at the end would break: the same file
        for both, or a file inside the run folder (it would overwrite the run's own files, or
        leave one its manifest does not list)."""
        given = [(option, path) for option, path in (("--summary", self.summary), ("--junit", self.junit)) if path]
        if len(given) == 2 and _same(given[0][1], given[1][1]):
            raise ReportgenError(f"--summary and --junit: both {given[0][1]}; give each its own file")
        folder = Path(os.path.abspath(run_folder))
        for option, path in given:
            where = Path(os.path.abspath(path))
            if where.is_relative_to(folder) or where.resolve().is_relative_to(folder.resolve()):
                raise ReportgenError(
                    f"{option} {path}: inside the run folder {run_folder}, whose files its {MANIFEST} "
                    "lists; write it beside the run folder"
                )


def _same(a: Path, b: Path) -> bool:
    return Path(os.path.abspath(a)).resolve() == Path(os.path.abspath(b)).resolve()


def write_whole(path: Path, payload: bytes) -> None:
    """Replace `path` with `payload` in one step: a reader sees the old file or the new one."""
    path = Path(path)
    try:
        handle, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        try:
            with os.fdopen(handle, "wb") as f:
                f.write(payload)
            os.chmod(name, 0o644)
            os.replace(name, path)
        except BaseException:
            Path(name).unlink(missing_ok=True)
            raise
    except OSError as e:
        raise ReportgenError(f"{path}: cannot write ({e.strerror})") from e


def append_step_summary(path: Path, text: str) -> str | None:
    """Append `text` to the step summary, never past STEP_LIMIT; a warning to show, or None."""
    path = Path(path)
    try:
        size = path.stat().st_size if path.exists() else 0
        payload = ("\n" if size else "") + text
        if size + len(payload.encode()) > STEP_LIMIT:
            left_out = size + len(LEFT_OUT.encode()) <= STEP_LIMIT
            if left_out:
                with open(path, "a", encoding="utf-8") as f:
                    f.write(LEFT_OUT)
            return (
                f"warning: ${STEP_SUMMARY}: {size:,} bytes already, so the run's summary would pass GitHub's "
                f"1 MiB; left out{' (one line says so)' if left_out else ''}"
            )
        with open(path, "a", encoding="utf-8") as f:
            f.write(payload)
    except OSError as e:
        return f"warning: ${STEP_SUMMARY} ({path}): not written ({e.strerror})"
    return None


def write(
    command: str,
    outcome: ci_text.Outcome,
    outputs: Outputs,
    environ: Mapping[str, str] = os.environ,
    warn: Callable[[str], None] = lambda message: None,
) -> None:
    """The summary and the JUnit file a command was asked for, and the step summary under
    GitHub Actions (its one-line warning, if it could not be written, through `warn`)."""
    summary = ci_text.markdown(command, outcome)
    if outputs.summary is not None:
        write_whole(outputs.summary, summary.encode())
    if outputs.junit is not None:
        write_whole(outputs.junit, ci_text.junit(command, outcome))
    step = environ.get(STEP_SUMMARY)
    if step:
        trouble = append_step_summary(Path(step), summary)
        if trouble:
            warn(trouble)
