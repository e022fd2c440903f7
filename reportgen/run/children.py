"""What a process reportgen forks does first: leave Ctrl-C to the command and die with it.

A forked child inherits the command's signal handlers, which would raise the command's own
exceptions in it. So it ignores SIGINT (Ctrl-C reaches the whole terminal's group; the command
decides), takes SIGTERM's default, and on Linux asks the kernel to kill it when its parent dies
(PR_SET_PDEATHSIG), so not even a SIGKILL of the command leaves it running. The parent forks it
with SIGINT and SIGTERM blocked, so none arrives before this is done; the caller unblocks them.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import sys

_PR_SET_PDEATHSIG = 1  # linux/prctl.h


def become_child_of(parent: int) -> None:
    """The first act of a process forked by `parent` (a pid); it exits at once if `parent` has
    already died."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    if sys.platform.startswith("linux"):
        with contextlib.suppress(AttributeError, OSError):
            ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0)
    if os.getppid() != parent:  # the parent died before the request above took effect
        os._exit(1)
