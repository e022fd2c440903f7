"""The errors a user can act on. Only cli.py catches them."""

from __future__ import annotations

from typing import IO, Any

import click


def reason(e: BaseException) -> str:
    """One line on why a library call failed, for a message that names the file.

    MXNet's messages open with a C++ traceback and end with the reason, so
    the last line that says something is taken.
    """
    lines = [line.strip() for line in str(e).splitlines() if line.strip()]
    if not lines:
        return e.__class__.__name__
    last = lines[-1]
    for prefix in ("MXNetError: ", "Check failed: "):
        last = last.removeprefix(prefix)
    return last[:200]


class ReportgenError(click.ClickException):
    """Bad input: a one-line message on stderr and exit code 2."""

    exit_code = 2

    def show(self, file: IO[Any] | None = None) -> None:
        click.echo(f"error: {self.format_message()}", err=True, file=file)


class DataError(ReportgenError):
    """An IDX file is missing, malformed or inconsistent."""


class ModelError(ReportgenError):
    """A saved model is missing, corrupt or of another architecture."""


class TrainingError(ReportgenError):
    """Training cannot go on (a diverging loss, a checkpoint of other settings)."""


class ContextError(ReportgenError):
    """A device was asked for that this machine does not have."""


class DistributedError(ReportgenError):
    """A distributed job that cannot start: its DMLC_* variables, or an option it cannot take."""


class RenderError(ReportgenError):
    """A template or the PDF could not be rendered."""


class GateError(ReportgenError):
    """A CI gate (--fail-under, --max-drop, --fail-if-worse) failed; the run is written in full."""

    exit_code = 3

    def __init__(self, message: str, manifest: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.manifest = manifest  # the run's, written in full before the gate was judged
