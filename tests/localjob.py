"""A distributed MXNet job on this machine, for the tests: a scheduler, servers and workers as
processes, every one of them on 127.0.0.1.

Each node gets DMLC_PS_ROOT_URI=127.0.0.1, DMLC_NODE_HOST=127.0.0.1 and DMLC_INTERFACE=lo,
and the scheduler a free port of the loopback. All nodes share one process group, die with
the process that started them (PR_SET_PDEATHSIG) and are killed together on leaving the
`with` block, which then checks that none is left.
"""

from __future__ import annotations

import ctypes
import os
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

LOOPBACK = "127.0.0.1"
PR_SET_PDEATHSIG = 1
ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((LOOPBACK, 0))
        return s.getsockname()[1]


def _die_with_parent() -> None:
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


def reportgen(*args: str) -> list[str]:
    """The command line of `reportgen ARGS`, run by this interpreter."""
    return [sys.executable, "-m", "reportgen", *args]


class Node:
    def __init__(self, name: str, role: str, process: subprocess.Popen, folder: Path) -> None:
        self.name, self.role, self.process, self.folder = name, role, process, folder
        self.ended: float | None = None  # seconds after the job started
        self.most_connections = 0  # the most ESTABLISHED TCP connections seen at once
        self.samples: Counter[int] = Counter()  # how many looks saw each number of them

    @property
    def stdout(self) -> str:
        return (self.folder / f"{self.name}.out").read_text()

    @property
    def stderr(self) -> str:
        return (self.folder / f"{self.name}.err").read_text()


class LocalJob:
    """`with LocalJob(folder, [worker0 argv, worker1 argv]) as job: job.wait(60)`.

    The servers and the scheduler run `serving` (by default the reportgen command line, which
    hands those roles to mxnet at once).
    """

    def __init__(
        self,
        folder: Path,
        workers: list[list[str]],
        servers: int = 1,
        env: dict[str, str] | None = None,
        serving: list[str] | None = None,
    ) -> None:
        self.folder = folder
        self.port = free_port()
        self.env = {
            **os.environ,
            "PYTHONPATH": str(ROOT),
            "OMP_NUM_THREADS": "1",  # four processes share the machine's cores
            "DMLC_PS_ROOT_URI": LOOPBACK,
            "DMLC_PS_ROOT_PORT": str(self.port),
            "DMLC_NODE_HOST": LOOPBACK,
            "DMLC_INTERFACE": "lo",
            "DMLC_NUM_SERVER": str(servers),
            "DMLC_NUM_WORKER": str(len(workers)),
            **(env or {}),
        }
        serving = serving or reportgen()
        self.plan = [("scheduler", "scheduler", serving)]
        self.plan += [(f"server{i}", "server", serving) for i in range(servers)]
        self.plan += [(f"worker{i}", "worker", argv) for i, argv in enumerate(workers)]
        self.nodes: dict[str, Node] = {}
        self.pgid: int | None = None
        self.started = 0.0
        self.seen: set[str] = set()  # every address a node's TCP socket had, sampled while waiting

    def __enter__(self) -> LocalJob:
        self.folder.mkdir(parents=True, exist_ok=True)
        self.started = time.monotonic()
        try:
            for name, role, argv in self.plan:
                self._start(name, role, argv)
        except BaseException:
            self._kill_all()
            raise
        return self

    def _start(self, name: str, role: str, argv: list[str]) -> None:
        env = {**self.env, "DMLC_ROLE": role}
        for key in ("DMLC_PS_ROOT_URI", "DMLC_NODE_HOST"):
            assert env[key] == LOOPBACK, (name, key, env[key])
        assert env["DMLC_INTERFACE"] == "lo"
        with open(self.folder / f"{name}.out", "w") as out, open(self.folder / f"{name}.err", "w") as err:
            process = subprocess.Popen(
                argv,
                cwd=ROOT,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=err,
                process_group=0 if self.pgid is None else self.pgid,
                preexec_fn=_die_with_parent,
            )
        if self.pgid is None:
            self.pgid = process.pid
        self.nodes[name] = Node(name, role, process, self.folder)

    def __exit__(self, *exc: object) -> None:
        self._kill_all()

    def _kill_all(self) -> None:
        if self.pgid is not None:
            try:
                os.killpg(self.pgid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        for node in self.nodes.values():
            node.process.wait(timeout=10)
        if self.pgid is not None:  # nothing of the job is left, not even a child of a node
            try:
                os.killpg(self.pgid, 0)
            except ProcessLookupError:
                return
            raise AssertionError(f"processes of group {self.pgid} are still running")

    def poll(self) -> dict[str, int | None]:
        """Every node's exit code (None: running); notes the sockets of those still running."""
        now = time.monotonic() - self.started
        for node in self.nodes.values():
            if node.ended is None and node.process.poll() is not None:
                node.ended = now
            elif node.ended is None:
                self._sample(node)
        return {name: node.process.returncode for name, node in self.nodes.items()}

    def wait(self, seconds: float, names: list[str] | None = None) -> dict[str, int | None]:
        """Wait until the named nodes (all by default) have ended, for at most `seconds`;
        their exit codes (None: still running)."""
        names = names or list(self.nodes)
        deadline = time.monotonic() + seconds
        while True:
            codes = self.poll()
            if all(codes[n] is not None for n in names) or time.monotonic() > deadline:
                return {n: codes[n] for n in names}
            time.sleep(0.1)

    def wait_for(self, name: str, text: str, seconds: float) -> None:
        """Wait until a node has printed `text` on stdout."""
        deadline = time.monotonic() + seconds
        while text not in self.nodes[name].stdout:
            self.poll()
            if time.monotonic() > deadline or self.nodes[name].process.poll() is not None:
                raise AssertionError(f"{name} did not print {text!r}: {self.nodes[name].stderr[-2000:]}")
            time.sleep(0.1)

    def _sample(self, node: Node) -> None:
        """Note the addresses of the node's TCP sockets, and how many are established."""
        pid = node.process.pid
        try:
            links = [os.readlink(f"/proc/{pid}/fd/{fd}") for fd in os.listdir(f"/proc/{pid}/fd")]
            lines = Path(f"/proc/{pid}/net/tcp").read_text().splitlines()[1:]
            lines += Path(f"/proc/{pid}/net/tcp6").read_text().splitlines()[1:]
        except OSError:  # ended meanwhile
            return
        inodes = {link[8:-1] for link in links if link.startswith("socket:[")}
        established = set()  # inodes: the kernel may list a socket twice while the table changes
        for line in lines:
            fields = line.split()
            if fields[9] in inodes:
                self.seen.add(_address(fields[1]))
                if fields[3] != "0A":  # a listening socket has no remote address
                    self.seen.add(_address(fields[2]))
                if fields[3] == "01":
                    established.add(fields[9])
        node.most_connections = max(node.most_connections, len(established))
        node.samples[len(established)] += 1

    def steady_connections(self, name: str, at_least: int) -> int:
        """The number of connections the node held at most looks among those with `at_least`."""
        counts = {n: looks for n, looks in self.nodes[name].samples.items() if n >= at_least}
        return max(counts, key=lambda n: (counts[n], n)) if counts else 0


def _address(hex_address: str) -> str:
    """'0100007F:1F90' (as /proc/net/tcp writes 127.0.0.1:8080) -> '127.0.0.1'."""
    host = hex_address.split(":")[0]
    if len(host) != 8:  # an IPv6 socket: shown as is
        return host
    return socket.inet_ntoa(bytes.fromhex(host)[::-1])
