"""Moving a staged entry into place without a moment where neither it nor the old one is there,
and without an interrupt landing in the middle.

Linux swaps two paths in one step (renameat2 with RENAME_EXCHANGE); elsewhere, or on a file
system that cannot, the old entry is renamed aside and the new one renamed in, and a failure
of the second rename puts the old one back. Either way the step runs with SIGINT and SIGTERM
held back (`deferred_signals`), so Ctrl-C cannot fall between two renames.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import os
import signal
import threading
from collections.abc import Iterator
from pathlib import Path
from types import FrameType

_AT_FDCWD = -100
_RENAME_EXCHANGE = 1 << 1
_DEFERRED = (signal.SIGINT, signal.SIGTERM)


def _renameat2():
    try:
        function = ctypes.CDLL(None, use_errno=True).renameat2  # glibc 2.28 and later
    except (AttributeError, OSError):
        return None
    function.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    function.restype = ctypes.c_int
    return function


_exchange = _renameat2()


def exchange(a: Path, b: Path) -> None:
    """Swap the entries at `a` and `b` (files or folders; both must exist): afterwards `a` holds
    what `b` held and `b` what `a` held, with no moment where either path is missing."""
    if _exchange is not None:
        if _exchange(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) == 0:
            return
        code = ctypes.get_errno()
        if code not in (errno.EINVAL, errno.ENOSYS, errno.ENOTSUP):  # a real failure, not "cannot here"
            raise OSError(code, os.strerror(code), str(b))
    # Three renames through a name beside `a`; with signals deferred, only a crash of the machine
    # can stop between them, and then the old entry is still whole under one of the names.
    spare = a.with_name(a.name + ".exchange")
    os.rename(b, spare)
    try:
        os.rename(a, b)
    except OSError:
        os.rename(spare, b)
        raise
    os.rename(spare, a)


@contextlib.contextmanager
def deferred_signals() -> Iterator[None]:
    """SIGINT and SIGTERM that arrive inside are held back and delivered on the way out.

    signal.pthread_sigmask would not do: it masks one thread, MXNet's engine threads take the
    signal instead, and CPython then runs the Python handler in the main thread all the same
    (measured). So the Python handlers are swapped for one that notes the signal, and the
    noted signal is raised again once the originals are back. Only the main thread can do
    this; elsewhere the block runs as it is.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    noted: list[int] = []

    def note(signum: int, frame: FrameType | None) -> None:
        noted.append(signum)

    previous = {signum: signal.signal(signum, note) for signum in _DEFERRED}
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        if noted:
            signal.raise_signal(noted[0])
