"""Opening files inside a folder that came from someone else, without following any link.

Each step from the folder down is opened relative to the one above (openat) with O_NOFOLLOW,
so neither a link in the tree nor one swapped in between a check and the open can lead
outside. A hard link (a file with more than one name) is refused too: its other name may be
/etc/passwd. A link is refused, not followed, even one that points inside: git stores links, a
folder under review needs none, and following one to see where it goes would reopen the race.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
from collections.abc import Iterator
from pathlib import Path

from reportgen.errors import ReportgenError

_DIR = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_FILE = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC  # O_NONBLOCK: a FIFO must not hang us


class Refused(ReportgenError):
    """A path inside an outside folder that is a link, or not a regular file or folder."""


class Missing(Refused):
    """No such file (or a step on the way is not a folder)."""


def _parts(relative: str) -> list[str]:
    parts = [part for part in relative.split("/") if part not in ("", ".")]
    if not parts or any(part == ".." or "\0" in part for part in parts):
        raise Refused(f"{relative!r}: not a plain name inside the folder")
    return parts


def _refusal(root: Path, parts: list[str], depth: int, what: str, error: OSError | None) -> Refused:
    shown = root.joinpath(*parts[: depth + 1])
    try:
        mode = os.lstat(shown).st_mode
    except OSError:
        mode = 0
    if stat.S_ISLNK(mode):
        return Refused(f"{shown}: a symbolic link; {what} may hold only regular files and folders")
    if stat.S_ISDIR(mode) and error is None:
        return Refused(f"{shown}: a folder, where a file was expected")
    if error is not None and error.errno in (errno.ENOENT, errno.ENOTDIR):
        return Missing(f"{shown}: no such file")
    if error is not None and not mode:
        return Refused(f"{shown}: {error.strerror.lower() if error.strerror else 'cannot be opened'}")
    return Refused(f"{shown}: not a regular file or folder; {what} may hold only regular files and folders")


@contextlib.contextmanager
def _folder_fd(root: Path, parts: list[str], what: str) -> Iterator[int]:
    """The descriptor of root/parts..., each step opened without following a link."""
    fds = [os.open(os.path.realpath(root), _DIR)]
    try:
        for depth, part in enumerate(parts):
            try:
                fds.append(os.open(part, _DIR, dir_fd=fds[-1]))
            except OSError as e:
                raise _refusal(root, parts, depth, what, e) from e
        yield fds[-1]
    finally:
        for fd in fds:
            os.close(fd)


def open_inside(root: Path, relative: str, what: str = "the folder") -> int:
    """A read-only descriptor of the regular file root/relative, reached with no link on the way.

    `relative` uses "/"; `what` names the folder for the message ("a run folder").
    """
    parts = _parts(relative)
    with _folder_fd(root, parts[:-1], what) as folder:
        try:
            fd = os.open(parts[-1], _FILE, dir_fd=folder)
        except OSError as e:
            raise _refusal(root, parts, len(parts) - 1, what, e) from e
    status = os.fstat(fd)
    if not stat.S_ISREG(status.st_mode):
        os.close(fd)
        raise _refusal(root, parts, len(parts) - 1, what, None)
    if status.st_nlink > 1:  # the same file under another name, perhaps outside: /etc/passwd
        os.close(fd)
        raise Refused(f"{root.joinpath(*parts)}: a hard link (a file with other names); {what} may hold only its own")
    os.set_blocking(fd, True)
    return fd


def read_inside(root: Path, relative: str, what: str = "the folder", limit: int | None = None) -> bytes:
    """The bytes of root/relative (see open_inside); more than `limit` bytes is refused."""
    fd = open_inside(root, relative, what)
    with open(fd, "rb") as file:
        size = os.fstat(file.fileno()).st_size
        if limit is not None and size > limit:
            raise Refused(f"{Path(root) / relative}: {size:,} bytes, more than the {limit:,} allowed")
        return file.read() if limit is None else file.read(limit + 1)[:limit]


def files_inside(root: Path, relative: str, what: str = "the folder") -> list[str]:
    """The names of the regular files directly in root/relative, sorted; a link, or anything
    else that is not a regular file or folder, is refused without being followed."""
    parts = _parts(relative)
    with _folder_fd(root, parts, what) as folder, os.scandir(folder) as entries:
        names = []
        for entry in entries:
            if entry.is_symlink() or not (entry.is_file(follow_symlinks=False) or entry.is_dir(follow_symlinks=False)):
                raise _refusal(root, [*parts, entry.name], len(parts), what, None)
            if entry.is_file(follow_symlinks=False):
                names.append(entry.name)
    return sorted(names)


def is_link_free(root: Path, relative: str) -> bool:
    """Whether root/relative exists with no link on the way (the last step included)."""
    here = Path(os.path.realpath(root))
    for part in _parts(relative):
        here = here / part
        try:
            if stat.S_ISLNK(os.lstat(here).st_mode):
                return False
        except OSError:
            return False
    return True
