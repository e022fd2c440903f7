"""Training on several machines: MXNet's distributed kvstore (ps-lite), started as MXNet starts it.

A distributed job is a scheduler, one or more servers and the workers, each a process started
with DMLC_ROLE and the scheduler's address in its environment (mxnet's tools/launch.py sets
them; README: "Training on several machines"). Every node runs the same reportgen command:

- a server or the scheduler runs inside `import mxnet`, which leaves the process when the job
  ends; the command line (cli.main) hands those roles to `serve()` before it parses anything, so a server needs
  neither the data nor the options to make sense on its machine;
- a worker joins the job (`join()`, which waits for every node to register), trains its share
  of every batch, and leaves it as soon as training ends (`Job.release()`), so the other nodes
  finish while rank 0 evaluates and writes the run folder.

ps-lite never notices a node that died: the others would wait for it forever, in C++, where
no Python signal handler runs. So every node runs a `Watchdog` thread that ends the process
with one line on stderr and exit code 4 when the job has lost a node or stopped moving.

mxnet is imported only inside functions here: the command line imports this module.
"""

from __future__ import annotations

import contextlib
import gc
import hashlib
import json
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NoReturn

from reportgen.errors import NODE_LOST, DistributedError

if TYPE_CHECKING:
    import mxnet as mx

KVSTORES = ("local", "device", "dist_sync", "dist_device_sync")
DEFAULT_KVSTORE = "device"  # gradients summed on the devices of one machine, as before distributed training
SERVING = ("server", "scheduler")  # the roles that run inside `import mxnet`
SETTINGS_KEY = 1_000_000  # the kvstore key of rank 0's settings; the trainer's keys count from 0
REQUIRED = ("DMLC_ROLE", "DMLC_PS_ROOT_URI", "DMLC_PS_ROOT_PORT", "DMLC_NUM_SERVER", "DMLC_NUM_WORKER")

TIMEOUT_VARIABLE = "REPORTGEN_DIST_TIMEOUT"
DEFAULT_TIMEOUT = 120.0  # seconds; well above rank 0's evaluation and checkpoint after an epoch
GRACE = 3.0  # seconds a lost connection may stay lost: a normal ending closes them all within it
POLL = 0.5  # seconds between two looks

# The jobs this process has joined and not left: each holds a kvstore, whose destructor waits
# for the other workers (process-wide, as the kvstore is).
_joined: list[Job] = []


def is_distributed(kvstore: str) -> bool:
    return kvstore.startswith("dist")


def role() -> str | None:
    """This process's role in a distributed job, or None outside one."""
    return os.environ.get("DMLC_ROLE") or None


def timeout() -> float:
    """How long a node waits for the job to form, or a worker for its next step, before giving up."""
    value = os.environ.get(TIMEOUT_VARIABLE, "")
    try:
        seconds = float(value) if value.strip() else DEFAULT_TIMEOUT
    except ValueError:
        seconds = -1.0
    if not seconds > 0:
        raise DistributedError(f"{TIMEOUT_VARIABLE}={value}: expected a number of seconds above 0")
    return seconds


def check(kvstore: str, resume: bool = False, model: object | None = None) -> int:
    """Refuse a kvstore this process cannot use, before any work; the number of workers.

    A worker that refuses before joining leaves the other nodes to their own deadlines;
    these checks read only options and the environment, so every worker of a job started
    with one command refuses alike.
    """
    if kvstore not in KVSTORES:
        raise DistributedError(f"--kvstore {kvstore}: choose one of {', '.join(KVSTORES)}")
    if not is_distributed(kvstore):
        if role() is not None:
            raise DistributedError(
                f"DMLC_ROLE={role()} makes this a node of a distributed job, but --kvstore is {kvstore}: "
                "give --kvstore dist_sync or dist_device_sync, or unset the DMLC_* variables"
            )
        return 1
    _require_environment(f"--kvstore {kvstore} runs in a distributed job")
    if role() != "worker":
        raise DistributedError(f"DMLC_ROLE={role()}: only a worker trains; expected worker, server or scheduler")
    if model is not None:
        raise DistributedError(f"--kvstore {kvstore} trains, and --model loads a model: give one or the other")
    if resume:
        raise DistributedError(
            f"--resume cannot continue a {kvstore} job: only rank 0 keeps a checkpoint, and every "
            "worker would need it; start afresh, or resume on one machine with --kvstore device"
        )
    timeout()
    return _count("DMLC_NUM_WORKER")


def _require_environment(what: str) -> None:
    missing = [name for name in REQUIRED if not os.environ.get(name)]
    if missing:
        raise DistributedError(
            f"{what}, and {', '.join(missing)} {'is' if len(missing) == 1 else 'are'} not set: "
            "start it with mxnet's tools/launch.py "
            "or set the DMLC_* variables (README)"
        )
    _count("DMLC_NUM_WORKER")
    _count("DMLC_NUM_SERVER")


def _expected(node: str) -> Connections:
    return Connections.of(node, _count("DMLC_NUM_WORKER"), _count("DMLC_NUM_SERVER"))


def _count(name: str) -> int:
    value = os.environ.get(name, "")
    if not value.isdigit() or int(value) < 1:
        raise DistributedError(f"{name}={value}: expected a whole number of at least 1")
    return int(value)


# -- the watchdog ---------------------------------------------------------------------------


def _socket_inodes() -> set[str]:
    inodes = set()
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:  # closed since listed
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    return inodes


def established_connections() -> int:
    """This process's ESTABLISHED TCP connections (Linux's /proc; 0 where there is none).

    ps-lite keeps one connection open to every peer it talks to, and one from it, for the
    whole job; when a peer process dies its kernel closes them, and the count here drops.
    """
    try:
        mine = _socket_inodes()
    except OSError:
        return 0
    lines: list[str] = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table) as f:
                lines += f.readlines()[1:]  # after the header
        except OSError:
            continue
    return count_established(lines, mine)


def count_established(lines: list[str], mine: set[str]) -> int:
    """How many sockets of `mine` (inodes) the lines of /proc/net/tcp show ESTABLISHED.

    Sockets, not lines: the kernel writes the table in pieces, and a connection opened or
    closed between two of them can list another one twice. Before the job forms, one such
    double would raise the watchdog's peak, and the real count would then look like a lost node.
    """
    established = set()
    for line in lines:
        fields = line.split()
        if len(fields) > 9 and fields[3] == "01" and fields[9] in mine:  # 01: ESTABLISHED
            established.add(fields[9])
    return len(established)


@dataclass(frozen=True)
class Connections:
    """How many ESTABLISHED connections a node of a job holds: from how many on the job has
    formed, and how many then.

    Measured with mxnet 1.9.1, jobs of 1-3 workers and 1-3 servers: once the scheduler has
    announced the whole job, every node holds one connection to and one from each peer it
    talks to (workers and servers talk to the scheduler and to each other, not among
    themselves), and two to itself. Before that a worker or server holds only its connection
    to the scheduler, and the scheduler its own two and one from each node registered so far.
    `formed` sits between the two counts, low enough to hold after one node has left again.

    For a moment after the job forms a node may hold more: every worker and server then
    connects to the scheduler anew (ps-lite's van.cc does not note its first connection), and
    the old one closes in ZeroMQ's own thread. Only a count below these matters to the watchdog.
    """

    formed: int
    full: int

    @classmethod
    def of(cls, node: str, workers: int, servers: int) -> Connections:
        if node == "scheduler":
            return cls(formed=3 + workers + servers, full=2 + 2 * (workers + servers))
        peers = 1 + (servers if node == "worker" else workers)  # the scheduler, and the other role
        return cls(formed=3, full=2 + 2 * peers)


class Watchdog:
    """A daemon thread that ends this process (exit code 4, one line on stderr) when

    - the job has formed and this node's connections stay below those of the whole job for
      GRACE seconds, or, before that, below the most it has had: a peer died (ps-lite would
      wait for it forever);
    - a worker has not called `kick()` for `timeout` seconds (a peer that hangs without dying
      also stops every step), or a server or the scheduler has not seen the whole job form
      within `timeout` seconds of starting (a worker that never came).

    It works while the main thread waits inside C++, where a Python signal handler never runs.
    """

    def __init__(self, node: str, timeout: float, expected: Connections, watch: bool = True) -> None:
        self.node = node  # the role, as the message names it
        self.timeout = timeout
        self.expected = expected
        self.formed = False
        self._last: float | None = time.monotonic()
        self._doing = "waiting for every node of the job to join"
        self._peak = 0
        self._low_since: float | None = None
        self._stop = threading.Event()
        if watch:
            threading.Thread(target=self._watch, name="reportgen-watchdog", daemon=True).start()

    def kick(self, doing: str) -> None:
        """The job moves: the deadline starts again; `doing` says what, for the message."""
        self._last, self._doing = time.monotonic(), doing

    def stop(self) -> None:
        self._stop.set()

    def check(self, now: float, connections: int) -> str | None:
        """What is wrong at `now` with this many connections: the message, or None."""
        if not self.formed and connections >= self.expected.formed:
            self.formed = True
            if self.node != "worker":  # a server or the scheduler waits for nothing more
                self._last = None
        self._peak = max(self._peak, connections)
        # Once formed, the whole job's count, not the most seen: a node that leaves at once
        # may go before this thread has seen it.
        due = self.expected.full if self.formed else self._peak
        if connections >= due:
            self._low_since = None
        elif self._low_since is None:
            self._low_since = now
        elif now - self._low_since >= GRACE:
            return (
                f"error: {self.node}: the distributed job lost a node ({due - connections} of "
                f"{due} connections closed): a worker, server or the scheduler stopped"
            )
        if self._last is not None and now - self._last > self.timeout:
            return (
                f"error: {self.node}: nothing moved for {self.timeout:g} s while {self._doing}: a node of "
                f"the distributed job died or hangs (wait longer with {TIMEOUT_VARIABLE}=SECONDS)"
            )
        return None

    def _watch(self) -> None:
        while not self._stop.wait(POLL):
            message = self.check(time.monotonic(), established_connections())
            if message is not None and not self._stop.is_set():
                _die(message)


_before_exit: list[Callable[[], None]] = []  # what _die does before it ends the process


@contextlib.contextmanager
def before_exit(cleanup: Callable[[], None]) -> Iterator[None]:
    """Inside the block, a lost job's os._exit (which runs no `finally`) first calls `cleanup`:
    rank 0's staging folder, say, which would otherwise stay behind."""
    _before_exit.append(cleanup)
    try:
        yield
    finally:
        _before_exit.remove(cleanup)


def _die(message: str) -> NoReturn:
    try:
        for cleanup in list(_before_exit):
            with contextlib.suppress(Exception):
                cleanup()
        sys.stdout.flush()
        sys.stderr.write(message + "\n")
        sys.stderr.flush()
    finally:
        os._exit(NODE_LOST)


# -- the roles ------------------------------------------------------------------------------


def serve(node: str) -> NoReturn:
    """Be this job's server or scheduler until the job ends, then leave the process.

    `import mxnet` does it: with DMLC_ROLE set so, it runs the node and calls sys.exit.
    """
    _require_environment(f"DMLC_ROLE={node} makes this the {node} of a distributed job")
    Watchdog(node, timeout(), _expected(node))
    # Python would only note a Ctrl-C and wait to get back from C++, which it never does here.
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    import mxnet  # noqa: F401

    sys.exit(0)  # not reached: mxnet ends the process when the job ends


class Job:
    """A worker's place in a distributed job: its kvstore, rank and the number of workers.

    Ranks follow the order in which workers registered with the scheduler, not the order
    they were started in.
    """

    def __init__(self, kvstore: str, wait: float) -> None:
        import mxnet as mx

        self.kind = kvstore
        self.watchdog = Watchdog("worker", wait, _expected("worker"))
        host, port = os.environ.get("DMLC_PS_ROOT_URI"), os.environ.get("DMLC_PS_ROOT_PORT")
        self.watchdog.kick(f"joining the job (its scheduler at {host}:{port})")
        _joined.append(self)
        self.kvstore: mx.kv.KVStore | None = mx.kv.create(kvstore)  # waits until every node has registered
        self.rank: int = self.kvstore.rank
        self.workers: int = self.kvstore.num_workers
        self.watchdog.kick("starting to train")

    def kicking(self, update: Callable[..., None], doing: str) -> Callable[..., None]:
        """`update` that first tells the watchdog the job moves: the loop calls it whenever it has
        read its losses back, which waits for every step before."""

        def kicked(*args: Any) -> None:
            self.watchdog.kick(doing)
            update(*args)

        return kicked

    def agree(self, settings: dict[str, Any]) -> None:
        """Refuse to train unless `settings` (options and data checksums) are rank 0's.

        Workers that differ would not take as many steps (the job would wait forever for
        the steps one of them does not take) or would not keep equal weights.
        """
        import mxnet as mx

        digest = hashlib.sha256(json.dumps(settings, sort_keys=True, default=str).encode()).digest()
        mine = mx.nd.array([float(byte) for byte in digest])  # bytes as floats: exact
        rank0 = mx.nd.zeros(mine.shape)
        assert self.kvstore is not None
        self.kvstore.broadcast(SETTINGS_KEY, mine, out=rank0)
        if (rank0 != mine).sum().asscalar():
            raise DistributedError(
                f"worker {self.rank}: its options or data differ from rank 0's; every worker of a job "
                "must run the same command on the same data files"
            )

    def release(self, trainer: mx.gluon.Trainer) -> None:
        """Leave the job together with the other workers, and stop the watchdog.

        The kvstore's destructor runs ps-lite's exit barrier; after it no node waits for
        another. The trainer holds the kvstore twice and every parameter holds the trainer,
        so deleting names is not enough: the references go, then the garbage collector runs.
        """
        import mxnet as mx

        self.watchdog.kick("leaving the job (waiting for every worker to finish training)")
        mx.nd.waitall()
        trainer._kvstore = None
        trainer._kvstore_params["kvstore"] = None
        self.kvstore = None
        gc.collect()
        self.watchdog.stop()
        _joined.remove(self)


def join(kvstore: str) -> Job:
    """Join the distributed job this process's DMLC_* variables describe, as a worker."""
    check(kvstore)
    return Job(kvstore, timeout())


def end(code: int) -> NoReturn:
    """Leave the process with `code`.

    A worker that fails mid-job still holds its kvstore, whose destructor would wait at
    ps-lite's exit barrier for workers that wait for it: such a worker leaves with os._exit
    (its output flushed first), and the others notice its connections close.
    """
    if _joined:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    sys.exit(code)
