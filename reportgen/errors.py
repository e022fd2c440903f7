"""The errors a user can act on, and the exit codes they end in. Only the cli catches them."""

from __future__ import annotations

import re
from typing import IO, Any

import click

# Exit codes: one meaning each, the same for every command.
OK = 0
INTERNAL = 1  # a bug: one line, the traceback with -v
BAD_INPUT = 2  # bad input or usage: one line, starting "error:"
GATE_FAILED = 3  # a CI gate failed; the run folder is written in full first
NODE_LOST = 4  # another node of a distributed job died or hung: start the job again

EXIT_CODES = {
    OK: "success",
    INTERNAL: "internal failure (-v shows the traceback)",
    BAD_INPUT: "bad input or usage",
    GATE_FAILED: "a gate (--fail-under, --max-drop, --fail-if-worse) failed; the run folder is written first",
    NODE_LOST: "another node of the distributed job died or hung",
}


def exit_codes(*codes: int) -> str:
    """The help's list of exit codes: 0, 1 and 2, and those of `codes`, one a line (click's
    \\b keeps the lines as they are)."""
    shown = [OK, INTERNAL, BAD_INPUT, *codes]
    return "\b\nExit codes:\n" + "\n".join(f"  {code}  {EXIT_CODES[code]}" for code in shown)


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


LONGEST = 1000  # characters of an error line; the rest of a value from outside is cut


def one_line(text: str) -> str:
    """A message as one line: control characters from outside (a newline in a node's name, a
    terminal's escape) shown escaped, and no longer than LONGEST characters."""
    text = re.sub(r"[\x00-\x1f\x7f]", lambda m: repr(m.group())[1:-1], text)
    return text if len(text) <= LONGEST else text[: LONGEST - 1] + "\u2026"


class ReportgenError(click.ClickException):
    """Bad input: a one-line message on stderr and exit code 2."""

    exit_code = BAD_INPUT

    def show(self, file: IO[Any] | None = None) -> None:
        click.echo(f"error: {one_line(self.format_message())}", err=True, file=file)


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

    exit_code = GATE_FAILED
