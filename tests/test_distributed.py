"""Training on several machines: MXNet's distributed kvstore, with every node a process of this
machine on 127.0.0.1 (tests/localjob.py), and the pieces of distributed.py on their own.

A job is a scheduler, a server and two workers. The workers of the library tests run
tests/dist_worker.py (train.fit under the job), which saves each worker's parameters; the
command-line test runs `reportgen build --kvstore dist_sync` on both.
"""

from __future__ import annotations

import importlib.util
import json
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import mxnet as mx
import numpy as np
import pytest
from localjob import LOOPBACK, ROOT, LocalJob, reportgen

from reportgen import data
from reportgen.cli import main
from reportgen.errors import NODE_LOST, DistributedError, TrainingError
from reportgen.net import distributed, train

pytestmark = pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="the watchdog reads Linux's /proc")

JOB_SECONDS = 90  # the most any job here may take before the test gives up on it
STOP_SECONDS = 30  # the most the other nodes may take to stop once one has died
TINY = ["--train-limit", "1000", "--test-limit", "200"]


def worker(out: Path, *args: str) -> list[str]:
    return [sys.executable, str(ROOT / "tests" / "dist_worker.py"), str(out), *args]


def only_loopback(job: LocalJob) -> None:
    """Every socket of every node was on 127.0.0.1, and some were seen."""
    assert job.seen == {LOOPBACK}


# -- a job on this machine ---------------------------------------------------------------------


def test_two_workers_end_identical_and_train_as_one_process(tmp_path):
    """2 epochs of 1,000 images in batches of 100, 50 on each worker."""
    with LocalJob(tmp_path / "job", [worker(tmp_path), worker(tmp_path)]) as job:
        codes = job.wait(JOB_SECONDS)
        assert codes == {"scheduler": 0, "server0": 0, "worker0": 0, "worker1": 0}, job.nodes["worker0"].stderr
        only_loopback(job)
        # Once the job had formed, every node held the connections the watchdogs expect of a
        # whole job, no more, no fewer; more only for the moment when each worker and server
        # connects to the scheduler anew (Connections' docstring), one more each.
        for name, node in job.nodes.items():
            expected = distributed.Connections.of(node.role, 2, 1)
            assert job.steady_connections(name, expected.formed) == expected.full, (name, node.samples)
            renewed = 2 + 1 if node.role == "scheduler" else 1  # the workers and the server; its own
            assert expected.full <= node.most_connections <= expected.full + renewed, (name, node.samples)
        said = [json.loads(job.nodes[name].stdout.splitlines()[-1]) for name in ("worker0", "worker1")]
    assert sorted(s["rank"] for s in said) == [0, 1]
    assert {s["workers"] for s in said} == {2}
    ranks = {s["rank"]: s for s in said}
    assert np.isnan(ranks[1]["test_accuracy"])  # only rank 0 evaluates on the test set
    first, second = (np.load(tmp_path / f"rank-{r}.npz") for r in (0, 1))
    assert all(np.array_equal(first[k], second[k]) for k in first.files)  # bit for bit

    # The same configuration in one process, without a kvstore: the same batches in the same
    # order, so the same weights up to the order in which the two halves' gradients are summed.
    dataset = data.load(train_limit=1000, test_limit=200)
    net, history = train.fit(dataset, train.TrainConfig(epochs=2), [mx.cpu()])
    one = {name: p.data().asnumpy() for name, p in net.collect_params().items()}
    assert set(one) == set(first.files)
    assert max(float(np.abs(one[k] - first[k]).max()) for k in one) < 1e-4  # measured: 2e-7
    # Tolerance: 2 of the 200 test images (measured: the same accuracy).
    assert ranks[0]["test_accuracy"] == pytest.approx(history.epochs[-1].test_accuracy, abs=0.01)


def test_rank_0_writes_the_run_folder_and_the_other_worker_nothing(tmp_path, runner):
    outs = [tmp_path / "runs" / f"worker{i}" for i in range(2)]
    commands = [
        reportgen("build", "--kvstore", "dist_sync", "--epochs", "1", *TINY, "--format", "html", "--out", str(out))
        for out in outs
    ]
    with LocalJob(tmp_path / "job", commands) as job:
        codes = job.wait(JOB_SECONDS)
        assert set(codes.values()) == {0}, [node.stderr for node in job.nodes.values()]
        only_loopback(job)
        stderr = {name: job.nodes[name].stderr for name in ("worker0", "worker1")}
    written = [out for out in outs if out.exists()]
    assert len(written) == 1
    run = written[0]
    other = "worker1" if run == outs[0] else "worker0"
    assert sorted(p.name for p in (tmp_path / "runs").iterdir()) == [run.name]  # no staging folder either
    assert "worker 1 of 2" in stderr[other] and "rank 0 writes the run folder" in stderr[other]
    assert f"wrote {run}/ on {socket.gethostname()}" in stderr["worker0" if other == "worker1" else "worker1"]
    manifest = json.loads((run / "manifest.json").read_text())
    assert {k: manifest["training"][k] for k in ("kvstore", "workers", "batch_size")} == {
        "kvstore": "dist_sync",
        "workers": 2,
        "batch_size": 100,
    }
    assert manifest["arguments"]["kvstore"] == "dist_sync"
    html = (run / "report.html").read_text()
    assert "50 on each of 2 workers" in html and "<code>dist_sync</code> kvstore" in html
    first = json.loads((run / "history.json").read_text())["epochs"][0]
    assert first["images_per_second"] == pytest.approx(1000 / first["seconds"])  # both workers' images

    # Its checkpoint continues on one machine: the same batches, as --resume's refusal says.
    result = runner.invoke(main, ["train", "-q", "--epochs", "2", *TINY, "--resume", "--out", str(run)])
    assert result.exit_code == 0, result.output
    epochs = json.loads((run / "history.json").read_text())["epochs"]
    assert [e["epoch"] for e in epochs] == [1, 2] and epochs[0] == first


@pytest.mark.parametrize(
    "victim, how", [("worker1", signal.SIGKILL), ("server0", signal.SIGINT)], ids=["killed-worker", "ctrl-c-server"]
)
def test_a_node_that_dies_stops_the_others_with_one_line(tmp_path, victim, how):
    slow = worker(tmp_path, "--pause", "0.3", "--train-limit", "2000")  # 0.3 s a batch, 20 batches an epoch
    with LocalJob(tmp_path / "job", [slow, slow]) as job:
        job.wait_for("worker0", "epoch 1 batch 3", JOB_SECONDS)
        job.nodes[victim].process.send_signal(how)  # Ctrl-C ends a server at once, inside mxnet
        others = [name for name in job.nodes if name != victim]
        codes = job.wait(STOP_SECONDS, [victim, *others])
        assert codes == {victim: -how, **{name: NODE_LOST for name in others}}, {n: job.nodes[n].stderr for n in others}
        only_loopback(job)
        for name in others:
            lines = job.nodes[name].stderr.strip().splitlines()
            assert len(lines) == 1 and lines[0].startswith(f"error: {job.nodes[name].role}: "), lines
            assert "lost a node" in lines[0]


def test_a_worker_that_refuses_its_options_stops_the_job(tmp_path):
    args = ["train", "--kvstore", "dist_sync", "--epochs", "1", *TINY, "--out", str(tmp_path / "run")]
    commands = [reportgen(*args, "--resume"), reportgen(*args)]
    with LocalJob(tmp_path / "job", commands, env={distributed.TIMEOUT_VARIABLE: "5"}) as job:
        codes = job.wait(JOB_SECONDS)
        assert codes == {"worker0": 2, **{name: NODE_LOST for name in ("worker1", "scheduler", "server0")}}
        assert job.nodes["worker0"].stderr.startswith("error: --resume cannot continue a dist_sync job")
        for name in ("worker1", "scheduler", "server0"):
            lines = job.nodes[name].stderr.strip().splitlines()
            assert len(lines) == 1 and lines[0].startswith("error: "), lines
    assert not (tmp_path / "run").exists()


# -- the pieces --------------------------------------------------------------------------------


def test_each_worker_takes_its_slice_of_every_batch():
    order = np.arange(14) * 10  # 14 images; batches of 6, so 2 steps and 2 images left over
    shares = [train._share(order, 2, 6, SimpleNamespace(rank=r, workers=2)) for r in (0, 1)]
    assert shares[0].tolist() == [0, 10, 20, 60, 70, 80]
    assert shares[1].tolist() == [30, 40, 50, 90, 100, 110]
    three = [train._share(order, 2, 6, SimpleNamespace(rank=r, workers=3)).tolist() for r in range(3)]
    assert three == [[0, 10, 60, 70], [20, 30, 80, 90], [40, 50, 100, 110]]


def test_the_batch_must_split_over_workers_and_their_devices(small):
    with pytest.raises(TrainingError, match="--batch-size 100 does not split evenly over 3 workers"):
        train._steps(small, train.TrainConfig(batch_size=100), 1, workers=3)
    with pytest.raises(TrainingError, match="each worker's 50 images does not split evenly over 3 devices"):
        train._steps(small, train.TrainConfig(batch_size=100), 3, workers=2)
    assert train._steps(small, train.TrainConfig(batch_size=100), 2, workers=2) == 30


def test_fit_needs_a_job_exactly_when_distributed(small):
    with pytest.raises(ValueError, match="pass job="):
        train.fit(small, train.TrainConfig(kvstore="dist_sync"), [mx.cpu()])


class Clock:
    """A watchdog's view: seconds since it started, and its connections."""

    def __init__(self, dog: distributed.Watchdog) -> None:
        self.dog, self.start = dog, time.monotonic()

    def at(self, seconds: float, connections: int) -> str | None:
        return self.dog.check(self.start + seconds, connections)


def watchdog(node: str, timeout: float = 60) -> distributed.Watchdog:
    """The watchdog of a node of a job of 2 workers and 1 server."""
    return distributed.Watchdog(node, timeout, distributed.Connections.of(node, 2, 1), watch=False)


def test_the_watchdog_waits_out_a_short_drop_and_not_a_long_one():
    clock = Clock(watchdog("worker"))  # a whole job: 6 connections; formed from 3
    assert clock.at(1, 1) is None and clock.at(2, 6) is None
    assert clock.at(3, 4) is None  # a drop starts
    assert clock.at(3 + distributed.GRACE - 0.1, 4) is None
    assert clock.at(3 + distributed.GRACE - 0.05, 6) is None  # back: forgotten
    assert clock.at(10, 5) is None
    assert clock.at(10 + distributed.GRACE, 5) == (
        "error: worker: the distributed job lost a node (1 of 6 connections closed): "
        "a worker, server or the scheduler stopped"
    )


def test_the_watchdog_counts_a_node_it_never_saw_as_lost():
    # The scheduler of 2 workers and a server holds 8 once all have joined; a worker that
    # leaves before the next look leaves 6, more than ever seen, and still one node short.
    clock = Clock(watchdog("scheduler"))
    assert clock.at(1, 3) is None and clock.at(2, 4) is None
    assert clock.at(3, 6) is None
    assert clock.at(3 + distributed.GRACE, 6).startswith("error: scheduler: the distributed job lost a node (2 of 8")


def test_before_the_job_forms_a_drop_counts_from_the_most_seen():
    clock = Clock(watchdog("scheduler"))  # formed from 6
    assert clock.at(1, 5) is None
    assert clock.at(2, 4) is None  # a node that had registered left
    assert "(1 of 5 connections closed)" in clock.at(2 + distributed.GRACE, 4)


def test_the_watchdog_gives_a_stalled_worker_its_timeout():
    dog = watchdog("worker")
    clock = Clock(dog)
    assert clock.at(59, 6) is None
    dog.kick("training epoch 3")
    clock.start = time.monotonic()
    assert clock.at(59, 6) is None
    assert clock.at(61, 6).startswith("error: worker: nothing moved for 60 s while training epoch 3: ")


def test_the_watchdog_gives_the_scheduler_its_timeout_until_the_job_forms():
    waiting = Clock(watchdog("scheduler"))
    assert waiting.at(30, 5) is None
    assert "while waiting for every node of the job to join" in waiting.at(61, 5)
    formed = Clock(watchdog("scheduler"))
    assert formed.at(30, 8) is None
    assert formed.at(1000, 8) is None  # a formed job has no deadline on the scheduler


def test_connections_are_counted_from_proc():
    before = distributed.established_connections()
    with socket.create_server((LOOPBACK, 0)) as server:
        client = socket.create_connection(server.getsockname())
        accepted, _ = server.accept()
        assert distributed.established_connections() == before + 2  # both ends are this process's
        client.close()
        accepted.close()
    assert distributed.established_connections() == before


def test_a_socket_the_kernel_lists_twice_counts_once():
    # /proc/net/tcp as read while a connection opened: the same socket (inode 4242) on two lines.
    row = "   {}: 0100007F:{} 0100007F:{} {} 00000000:00000000 00:00000000 00000000     0        0 {} 1 0 20 4 30 10 -1"
    lines = [
        row.format(0, "A1B2", "0000", "0A", 4240),  # listening: not a connection
        row.format(1, "A1B3", "A1B2", "01", 4241),
        row.format(2, "A1B2", "A1B3", "01", 4242),
        row.format(3, "A1B2", "A1B3", "01", 4242),
        row.format(4, "A1B4", "A1B2", "01", 9999),  # another process's
        row.format(5, "A1B5", "A1B2", "06", 4243),  # TIME_WAIT
    ]
    assert distributed.count_established(lines, {"4240", "4241", "4242", "4243"}) == 2
    assert distributed.count_established([], {"4241"}) == 0


def test_connections_of_a_whole_job_by_role():
    # 2 sockets to itself, 2 for each peer: the scheduler talks to all, a worker to the
    # scheduler and the servers, a server to the scheduler and the workers.
    assert distributed.Connections.of("scheduler", workers=2, servers=1) == distributed.Connections(6, 8)
    assert distributed.Connections.of("server", workers=2, servers=1) == distributed.Connections(3, 8)
    assert distributed.Connections.of("worker", workers=2, servers=3) == distributed.Connections(3, 10)


JOB_ENV = {
    "DMLC_ROLE": "worker",
    "DMLC_PS_ROOT_URI": LOOPBACK,
    "DMLC_PS_ROOT_PORT": "9",
    "DMLC_NUM_SERVER": "1",
    "DMLC_NUM_WORKER": "2",
}


@pytest.mark.parametrize(
    "kvstore, env, options, message",
    [
        ("dist_sync", {}, {}, "DMLC_ROLE, DMLC_PS_ROOT_URI, DMLC_PS_ROOT_PORT, DMLC_NUM_SERVER, DMLC_NUM_WORKER"),
        ("dist_sync", {"DMLC_PS_ROOT_PORT": ""}, {}, "and DMLC_PS_ROOT_PORT is not set"),
        ("dist_sync", {"DMLC_NUM_WORKER": "two"}, {}, "DMLC_NUM_WORKER=two: expected a whole number"),
        ("dist_sync", {distributed.TIMEOUT_VARIABLE: "0"}, {}, "REPORTGEN_DIST_TIMEOUT=0: expected a number"),
        ("dist_sync", {}, {"resume": True}, "--resume cannot continue a dist_sync job"),
        ("dist_device_sync", {}, {"model": "runs/a"}, "--kvstore dist_device_sync trains, and --model loads"),
        ("device", {}, {}, "DMLC_ROLE=worker makes this a node of a distributed job, but --kvstore is device"),
    ],
)
def test_check_refuses_a_job_it_cannot_join(monkeypatch, kvstore, env, options, message):
    for name in JOB_ENV:
        monkeypatch.delenv(name, raising=False)
    if env or options or kvstore == "device":
        for name, value in {**JOB_ENV, **env}.items():
            monkeypatch.setenv(name, value)
    with pytest.raises(DistributedError, match=message.replace("*", r"\*").replace("?", r"\?")):
        distributed.check(kvstore, **options)


def test_check_passes_a_job_and_one_machine(monkeypatch):
    for name in JOB_ENV:
        monkeypatch.delenv(name, raising=False)
    assert distributed.check("device") == 1
    for name, value in JOB_ENV.items():
        monkeypatch.setenv(name, value)
    assert distributed.check("dist_sync") == 2


def test_the_command_line_refuses_a_job_without_its_variables(runner, tmp_path, monkeypatch):
    for name in JOB_ENV:
        monkeypatch.delenv(name, raising=False)
    result = runner.invoke(main, ["train", "--kvstore", "dist_sync", *TINY, "--out", str(tmp_path / "run")])
    assert result.exit_code == 2
    assert result.output.startswith("error: --kvstore dist_sync runs in a distributed job")
    assert len(result.output.strip().splitlines()) == 1
    assert not (tmp_path / "run").exists()
    result = runner.invoke(main, ["build", "--kvstore", "hogwild", "--out", str(tmp_path / "run")])
    assert result.exit_code == 2 and "'hogwild' is not one of 'local', 'device'" in result.output
    monkeypatch.setenv("DMLC_ROLE", "server")  # a server is refused before it would start inside mxnet
    result = runner.invoke(main, ["train", "--out", str(tmp_path / "run")])
    assert result.exit_code == 2
    assert result.output == (
        "error: DMLC_ROLE=server makes this the server of a distributed job, and DMLC_PS_ROOT_URI, "
        "DMLC_PS_ROOT_PORT, DMLC_NUM_SERVER, DMLC_NUM_WORKER are not set: start it with mxnet's "
        "tools/launch.py or set the DMLC_* variables (README)\n"
    )


# -- tools/launch.py ---------------------------------------------------------------------------


def load_launch():
    spec = importlib.util.spec_from_file_location("launch", ROOT / "tools" / "launch.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_launcher_wrapper_runs_mxnets_launcher():
    # Only its help: a job it started would choose this machine's network address.
    done = subprocess.run(
        [sys.executable, str(ROOT / "tools" / "launch.py"), "--help"], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("usage: launch.py") and "--launcher {local,ssh,mpi,sge,yarn}" in done.stdout
    assert load_launch().launcher() == Path(mx.__file__).parent / "tools" / "launch.py"


def test_the_launcher_wrapper_reads_a_nodes_exit_code():
    launch = load_launch()
    assert launch.exit_code(subprocess.CalledProcessError(3, "ssh 10.0.0.12 ...")) == 3  # ssh launcher
    assert launch.exit_code(RuntimeError("Get nonzero return code=2 on ['reportgen'] {'PATH': ...}")) == 2  # local
    assert launch.exit_code(ValueError("something else")) is None


def test_a_local_kvstore_sums_on_the_cpu_as_device_does():
    dataset = data.load(train_limit=1000, test_limit=200)
    contexts = [mx.cpu(0), mx.cpu(1)]
    nets = [train.fit(dataset, train.TrainConfig(epochs=1, kvstore=k), contexts)[0] for k in ("local", "device")]
    local, device = ({n: p.data(mx.cpu(0)).asnumpy() for n, p in net.collect_params().items()} for net in nets)
    assert max(float(np.abs(local[k] - device[k]).max()) for k in local) < 1e-5
    _, trainer = train._network(train.TrainConfig(kvstore="local"), contexts)
    assert trainer._kvstore_params["kvstore"] == "local"  # the setting reaches the trainer


def test_a_worker_with_other_settings_is_refused(tmp_path):
    # Were it let through, its weights would leave rank 0's at the first step.
    args = ["train", "--kvstore", "dist_sync", "--epochs", "1", *TINY, "--out", str(tmp_path / "run")]
    with LocalJob(tmp_path / "job", [reportgen(*args), reportgen(*args, "--lr", "0.1")]) as job:
        codes = job.wait(JOB_SECONDS)
        stderr = {name: job.nodes[name].stderr.strip() for name in ("worker0", "worker1")}
    refused = [name for name, text in stderr.items() if "differ from rank 0's" in text]
    assert len(refused) == 1, stderr
    assert stderr[refused[0]] == (
        "error: worker 1: its options or data differ from rank 0's; "
        "every worker of a job must run the same command on the same data files"
    )
    assert codes == {name: 2 if name in refused else NODE_LOST for name in codes}
    assert not (tmp_path / "run").exists()
