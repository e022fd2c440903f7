"""One writer at a time: a lock file beside the folder a command writes, `.<name>.lock`.

The lock is flock(2) on that file: the kernel releases it when its process ends, however it
ends, so a lock left by a killed command is simply taken by the next one. The file also says
who holds it (pid and command line) for the message a second command gets. The holder
removes the file while it still holds the lock; a command that opened the file just before
checks, once it has the lock, that the file it locked is still the one at that name.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import stat
from collections.abc import Iterator
from pathlib import Path

from reportgen.errors import ReportgenError
from reportgen.run.swap import deferred_signals

_HOLDER_BYTES = 4096  # what is read of the holder's line


def lock_path(folder: Path) -> Path:
    """`.<name>.lock` beside the folder; two spellings of one folder (a link, "..") share it."""
    real = Path(os.path.realpath(folder))
    return real.with_name(f".{real.name}.lock")


def _open(path: Path) -> int:
    # O_NOFOLLOW: a link planted under the lock's name must not make us truncate its target;
    # O_NONBLOCK: nor may a FIFO there hang the open.
    flags = os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
    try:
        fd = os.open(path, flags, 0o644)
    except OSError as e:
        raise ReportgenError(f"{path}: cannot take the lock ({e.strerror})") from e
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise ReportgenError(f"{path}: not a regular file; remove it (it is where reportgen keeps its lock)")
    return fd


def _holder(fd: int) -> str:
    try:
        said = os.pread(fd, _HOLDER_BYTES, 0).decode("utf-8", "replace").strip()
    except OSError:
        said = ""
    pid, _, command = said.partition(" ")
    if not pid.isdigit():
        return "another reportgen"
    return f"another reportgen (pid {pid}: {command})" if command else f"another reportgen (pid {pid})"


def _missing_parents(folder: Path) -> list[Path]:
    """The folders above `folder` that do not exist yet, outermost first."""
    missing = [p for p in (folder, *folder.parents) if not p.exists()]
    return missing[::-1]


def _take(folder: Path, command: str) -> tuple[int, Path]:
    path = lock_path(folder)
    while True:
        fd = _open(path)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            who = _holder(fd)
            os.close(fd)
            raise ReportgenError(f"{folder}: in use by {who}; wait for it to end, or give another folder") from None
        try:
            same = os.path.samestat(os.fstat(fd), os.stat(path, follow_symlinks=False))
        except FileNotFoundError:
            same = False
        if same:
            break
        os.close(fd)  # its holder removed it as we opened it: take the new one
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"{os.getpid()} {command}\n".encode(), 0)
    return fd, path


@contextlib.contextmanager
def locked(folder: Path, command: str) -> Iterator[None]:
    """Hold the lock of `folder` inside the block; a folder another process holds is refused
    (exit code 2) naming that process."""
    taken: tuple[int, Path] | None = None
    made: list[Path] = []
    try:
        with deferred_signals():  # a signal in here is raised once `taken` is set
            made = _missing_parents(lock_path(folder).parent)
            for missing in made:
                missing.mkdir(exist_ok=True)
            taken = _take(Path(folder), command)
        yield
    finally:
        with deferred_signals():
            if taken is not None:
                with contextlib.suppress(FileNotFoundError):
                    taken[1].unlink()
                os.close(taken[0])
            for created in reversed(made):  # the folders made for the lock, if nothing else came
                with contextlib.suppress(OSError):
                    created.rmdir()
