"""report.pdf laid out in a forked process while this one writes report.html and the manifest.

Most of a render's PDF is WeasyPrint laying the pages out, and none of that needs the manifest
the PDF carries; writing report.html and the manifest needs nothing of the PDF. So where it is
safe to fork (a process that has not loaded MXNet: figures/pool.py says why), `render` forks a
child once the report's values are known. The child lays the PDF out, then waits for the word
that the manifest is written, adds the attachments and writes staged/report.pdf; this process
meanwhile writes report.html and the manifest. The PDF is byte for byte the serial one.

The child is this process's alone: it is killed with it (Linux's parent-death signal; elsewhere
it finds its pipe closed and leaves without writing), killed and reaped by `PdfAhead.__exit__`
whenever the command ends before it has finished (an error; Ctrl-C or SIGTERM, which the command
line raises as exceptions: cli/main.py), before the staging folder is removed, and it writes
only through a temporary file and a rename inside the staging folder. An error in the child is raised again
here, as the same exception, so the command fails as the serial one would.
"""

from __future__ import annotations

import multiprocessing
import os
import pickle
import signal
import sys
from pathlib import Path
from typing import Any

from reportgen.errors import RenderError
from reportgen.report import pdf
from reportgen.run import archive, files
from reportgen.run.children import become_child_of

_SIGNALS = {signal.SIGINT, signal.SIGTERM}
_GO, _STOP = b"1", b"0"
_MAX_ERROR = 1 << 16  # bytes of a pickled exception coming back


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

    def start(self, staged: Path, values: dict[str, Any], user_templates: Path | None, run_dir: Path | None) -> bool:
        """Fork the child if it is safe here; whether it was."""
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
                document = pdf.layout(values, staged, user_templates)
                if os.read(go_r, 1) == _GO:  # the manifest is written; anything else: leave
                    carried = archive.embedded(staged, run_dir)
                    files.write_bytes(staged / archive.PDF, pdf.write(document, values, carried))
                    status = 0
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
        child (the caller writes the PDF itself). The child's error is raised here."""
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
