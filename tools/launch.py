"""MXNet's launcher for a distributed job (mxnet/tools/launch.py, shipped in the mxnet wheel),
made to run on Python 3.11.

    python tools/launch.py -n 2 -H hosts .venv/bin/reportgen train --kvstore dist_sync --out output/dist

The launcher's tracker (dmlc_tracker) calls Thread.isAlive, which Python 3.9 removed: on 3.11
it starts the job, then crashes instead of waiting for it, leaving the nodes to run on with no
launcher to stop them. This puts the old name back and runs the wheel's launcher with the
arguments given, unchanged (`python tools/launch.py --help` lists them; README: "Training on
several machines"); then it waits for every node, not only the scheduler, and exits with 1
if any node failed (0 otherwise), naming each failure's exit code on one line.

It imports neither reportgen nor mxnet: importing reportgen would set OMP_NUM_THREADS for this
machine, and the ssh launcher passes OMP_NUM_THREADS on to every node.
"""

from __future__ import annotations

import importlib.util
import re
import runpy
import subprocess
import sys
import threading
import warnings
from pathlib import Path


def launcher() -> Path:
    """Where the installed mxnet keeps its launcher."""
    spec = importlib.util.find_spec("mxnet")
    if spec is None or not spec.submodule_search_locations:
        sys.exit("error: mxnet is not installed for this Python; use the one of reportgen's .venv")
    return Path(next(iter(spec.submodule_search_locations))) / "tools" / "launch.py"


def exit_code(error: BaseException) -> int | None:
    """The exit code of a node, from the exception its launcher thread raised; None if not one."""
    if isinstance(error, subprocess.CalledProcessError):  # the ssh launcher
        return error.returncode
    found = re.match(r"Get nonzero return code=(-?\d+)", str(error))  # the local launcher
    return int(found.group(1)) if found else None


def main() -> int:
    threading.Thread.isAlive = threading.Thread.is_alive  # type: ignore[attr-defined]
    warnings.filterwarnings("ignore", "setDaemon", DeprecationWarning)  # the tracker's, harmless
    failed: list[int] = []

    def note(args: threading.ExceptHookArgs) -> None:
        code = exit_code(args.exc_value) if args.exc_value is not None else None
        if code is None:  # not a node's exit: a launcher thread failed; show it, and fail
            threading.__excepthook__(args)
            failed.append(1)
        else:  # one line instead of the thread's traceback and the node's whole environment
            failed.append(code)
            print(f"launch: a node of the job exited with code {code}", file=sys.stderr)

    threading.excepthook = note
    path = launcher()
    sys.argv = [str(path), *sys.argv[1:]]
    runpy.run_path(str(path), run_name="__main__")
    # The launcher waits for the scheduler alone, which ends as soon as the workers leave the
    # job; rank 0 may still be writing its report. Wait for every node.
    for thread in threading.enumerate():
        if thread is not threading.current_thread():
            thread.join()
    # The most telling code: 4 (a node lost the job) over 3 (a gate) over 2 (bad input) over 1.
    return max((code for code in failed if 0 < code < 128), default=1 if failed else 0)


if __name__ == "__main__":
    sys.exit(main())
