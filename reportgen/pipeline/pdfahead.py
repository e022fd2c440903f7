"""report.pdf laid out and drawn in a forked process while this one draws the figures and
writes report.html and the manifest.

Most of a render's PDF is WeasyPrint laying the pages out and drawing them, in one process,
and on two cores the figures' SVGs keep both busy. Laying out needs every figure's caption
and size, not its picture; drawing a page needs only that page's figures; and only the PDF's
attachments, added last, need the manifest. So where it is safe to fork (a process that has
not loaded MXNet: figures/pool.py says why), `render` with the built-in templates forks a
child as soon as every figure's words and size are known (reporting.lay_out_early), each figure
still being drawn standing in as an empty SVG of its size. The child lays the pages out, then
draws them, each figure put in its placeholder's place (report/pdf.fill_in) once this
process has written it to the staging folder; it adds the attachments when told that the
manifest is written, and writes staged/report.pdf. Where every figure came from the cache, or
a user's templates (which may show a figure otherwise than as an <img>) are used, the child
is forked once the report's values are known, and only the attachments wait. The PDF is byte
for byte the serial one. Where a figure cannot take its placeholder's place (another size, a
WeasyPrint that keeps its images otherwise), the child leaves, and this process makes the
PDF itself.

The child is this process's alone: it is killed with it (Linux's parent-death signal; elsewhere
it finds its pipe closed and leaves without writing), killed and reaped by `PdfAhead.__exit__`
whenever the command ends before it has finished (an error; Ctrl-C or SIGTERM, which the command
line raises as exceptions: cli/main.py), before the staging folder is removed, and it writes
only inside the staging folder, which takes the run folder's place only when the command
succeeds. An error in the child is raised again here, as the same exception, so the command
fails as the serial one would.
"""

from __future__ import annotations

import functools
import multiprocessing
import os
import pickle
import signal
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from reportgen.errors import RenderError
from reportgen.report import pdf
from reportgen.report.figures.figure import Figure
from reportgen.run import archive, files
from reportgen.run.children import become_child_of

_SIGNALS = {signal.SIGINT, signal.SIGTERM}
_GO, _STOP = b"1", b"0"
_MAX_ERROR = 1 << 16  # bytes of a pickled exception coming back
_LEFT, _REDO = 1, 3  # the child's exit statuses: told to leave; a figure it could not put in place


def forkable() -> bool:
    """Whether a child may be forked here: fork exists and MXNet's threads are not running."""
    return "mxnet" not in sys.modules and "fork" in multiprocessing.get_all_start_methods()


def _read_all(fd: int, limit: int) -> bytes:
    chunks, size = [], 0
    while size <= limit:
        chunk = os.read(fd, 65536)
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
    return b"".join(chunks)


class PdfAhead:
    """At most one child laying out report.pdf; a context manager that never leaves it running."""

    def __init__(self) -> None:
        self.pid: int | None = None
        self._go: int | None = None
        self._errors: int | None = None

    def __enter__(self) -> PdfAhead:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop()

    def start(
        self,
        staged: Path,
        values: dict[str, Any],
        user_templates: Path | None,
        run_dir: Path | None,
        pending: frozenset[str] = frozenset(),
    ) -> bool:
        """Fork the child if it is safe here; whether it was. `pending`: the names of figures
        that `values` holds as placeholders of their size (figures/pool.py), still being
        drawn: the child lays the pages out with those, then, told to go, puts each figure's
        SVG in its place from staged/figures/, which must be written by then."""
        if self.pid is not None or not forkable():
            return False
        go_r, go_w = os.pipe()
        err_r, err_w = os.pipe()
        parent = os.getpid()
        sys.stdout.flush()
        sys.stderr.flush()
        # Forked with SIGINT and SIGTERM blocked, so that none reaches the child before it has
        # put away the command's handlers (as the figure workers are: figures/pool.py).
        mask = signal.pthread_sigmask(signal.SIG_BLOCK, _SIGNALS)
        try:
            pid = os.fork()
        finally:
            if os.getpid() == parent:
                signal.pthread_sigmask(signal.SIG_SETMASK, mask)
        if pid == 0:  # the child: it never returns, and runs none of the parent's cleanup
            status = 1
            try:
                become_child_of(parent)
                signal.pthread_sigmask(signal.SIG_SETMASK, mask)
                os.close(go_w)
                os.close(err_r)
                status = _pdf(parent, values, staged, user_templates, run_dir, pending, go_r)
            except BaseException as e:  # noqa: BLE001 (whatever it was goes back to the parent)
                try:
                    os.write(err_w, pickle.dumps(e)[:_MAX_ERROR])
                except Exception:  # noqa: BLE001 (an exception that cannot be pickled)
                    os.write(err_w, pickle.dumps(RenderError(f"the PDF failed: {type(e).__name__}: {e}")))
            finally:
                os._exit(status)
        os.close(go_r)
        os.close(err_w)
        self.pid, self._go, self._errors = pid, go_w, err_r
        return True

    def finish(self) -> bool:
        """Tell the child the manifest is written and wait for report.pdf; False if there is no
        child, or it could not put a figure in place (the caller writes the PDF itself). The
        child's error is raised here."""
        if self.pid is None:
            return False
        assert self._go is not None and self._errors is not None
        try:
            os.write(self._go, _GO)
        except BrokenPipeError:
            pass  # the child has already ended: its error, if any, is in the other pipe
        os.close(self._go)
        self._go = None
        message = _read_all(self._errors, _MAX_ERROR)
        os.close(self._errors)
        self._errors = None
        _, status = os.waitpid(self.pid, 0)
        self.pid = None
        if message:
            try:
                error = pickle.loads(message)  # our own child's, through our own pipe
            except Exception:  # noqa: BLE001 (an exception that pickles but does not unpickle)
                error = RenderError("the PDF failed (its process's error could not be read back)")
            raise error if isinstance(error, BaseException) else RenderError(str(error))
        if os.waitstatus_to_exitcode(status) == _REDO:
            return False
        if status != 0:
            raise RenderError(f"the PDF's process ended with status {os.waitstatus_to_exitcode(status)}")
        return True

    def stop(self) -> None:
        """Kill the child if it still runs and reap it, so it writes nothing more."""
        for fd in (self._go, self._errors):
            if fd is not None:
                os.close(fd)
        self._go = self._errors = None
        if self.pid is None:
            return
        try:
            os.kill(self.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        os.waitpid(self.pid, 0)
        self.pid = None


class _Left(Exception):
    """The parent has gone, or closed the pipe without the word to go: it failed, or was stopped."""


def _pdf(
    parent: int,
    values: dict[str, Any],
    staged: Path,
    user_templates: Path | None,
    run_dir: Path | None,
    pending: frozenset[str],
    go: int,
) -> int:
    """The child's work, and its exit status: staged/report.pdf laid out, then drawn as the
    pending figures come, then given its attachments once the parent says the manifest is
    written (through `go`)."""
    images: dict[str, Any] = {}
    document = pdf.layout(values, staged, user_templates, images)
    figures: dict[str, Figure] = values["figures"]
    later = {figures[name].data_uri: functools.partial(_drawn, staged, figures[name], parent) for name in pending}
    if later and not pdf.fill_in(images, later):
        return _REDO  # the parent makes the PDF itself, from the figures

    def attachments() -> tuple[Path, ...]:
        if os.read(go, 1) != _GO:
            raise _Left
        return archive.embedded(staged, run_dir)

    try:
        written = pdf.write(document, values, attachments)
    except pdf.NotInPlace:
        return _REDO
    except _Left:
        return _LEFT
    files.write_bytes(staged / archive.PDF, written)
    return 0


def _drawn(staged: Path, placeholder: Figure, parent: int) -> str:
    """The data: URL of a figure still being drawn when the PDF's pages were laid out, once
    the parent has written it to the staging folder (reporting.draw): it waits till then."""
    path = staged / "figures" / placeholder.filename
    while not path.exists():  # written whole, then renamed (files.replace_bytes)
        if os.getppid() != parent:  # gone without a word (where no parent-death signal came)
            raise _Left
        time.sleep(0.005)
    return replace(placeholder, svg=path.read_bytes()).data_uri
