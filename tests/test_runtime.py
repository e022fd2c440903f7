"""MXNet's process-wide settings (runtime.py): applied by `import reportgen`, a user's own kept,
and with them no copy into MXNet starts an OpenMP team on Python's thread."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

SETTINGS = ("MXNET_CPU_PARALLEL_SIZE", "OMP_NUM_THREADS", "GOMP_SPINCOUNT")

# In a fresh interpreter (SETTINGS defined first): the settings in force, and the threads of
# the process before and after reportgen puts a training set on the device and reads it back
# (an OpenMP team that a parallel copy starts shows as one more thread that never goes away).
PROBE = r"""
import json, os
from reportgen.net import train
import mxnet as mx
import numpy as np

def threads():
    return len(os.listdir("/proc/self/task"))

(mx.nd.ones((100, 1, 28, 28)) * 2).wait_to_read()  # the engine and its own OpenMP team are up
before = threads()
images = np.zeros((5000, 28, 28), np.uint8)
x, y = train._on_device(images, np.zeros(5000, np.uint8), mx.cpu())
x.asnumpy()
print(json.dumps({"settings": {k: os.environ.get(k) for k in SETTINGS},
                  "before": before, "after": threads()}))
"""


def probe(**env: str) -> dict:
    clean = {k: v for k, v in os.environ.items() if k not in SETTINGS}
    out = subprocess.run(
        [sys.executable, "-c", f"SETTINGS = {SETTINGS!r}\n{PROBE}"],
        env={**clean, **env},
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return json.loads(out.strip().splitlines()[-1])


@pytest.mark.skipif(not os.path.isdir("/proc/self/task"), reason="counts threads through /proc")
def test_import_reportgen_keeps_copies_serial_and_sets_the_threads():
    result = probe()
    assert result["settings"] == {
        "MXNET_CPU_PARALLEL_SIZE": "1000000000",
        "OMP_NUM_THREADS": str(os.cpu_count()),
        "GOMP_SPINCOUNT": "1000",
    }
    assert result["after"] == result["before"]  # no OpenMP team on Python's thread


@pytest.mark.skipif(not os.path.isdir("/proc/self/task"), reason="counts threads through /proc")
def test_a_users_own_settings_are_kept():
    # MXNet's own default, set on purpose: respected, and then the copy starts a team of its own
    # (which is what the default setting prevents: this is the test's failing case).
    result = probe(MXNET_CPU_PARALLEL_SIZE="200000", OMP_NUM_THREADS="2", GOMP_SPINCOUNT="300000")
    assert result["settings"] == {
        "MXNET_CPU_PARALLEL_SIZE": "200000",
        "OMP_NUM_THREADS": "2",
        "GOMP_SPINCOUNT": "300000",
    }
    assert result["after"] == result["before"] + 1


# The CPU an idle process burns in the 0.2 s after an OpenMP operator: libgomp's threads spin
# their count of rounds at the barrier before they sleep (300,000 by default: about 7 ms here).
SPIN_PROBE = r"""
import json, statistics, time
import reportgen
import mxnet as mx

a = mx.nd.random.uniform(shape=(512, 512))
burnt = []
for _ in range(5):
    mx.nd.dot(a, a).wait_to_read()
    started = time.process_time()
    time.sleep(0.2)
    burnt.append(time.process_time() - started)
print(json.dumps(statistics.median(burnt)))
"""


def spun(**env: str) -> float:
    clean = {k: v for k, v in os.environ.items() if k not in SETTINGS}
    out = subprocess.run(
        [sys.executable, "-c", SPIN_PROBE], env={**clean, **env}, capture_output=True, text=True, check=True
    ).stdout
    return float(out.strip().splitlines()[-1])


# libgomp spins at most 100 rounds whatever it is told when it has more threads than CPUs to run on.
@pytest.mark.skipif(
    not sys.platform.startswith("linux") or len(os.sched_getaffinity(0)) < 2,
    reason="GNU OpenMP's spinning, on at least two CPUs",
)
def test_openmp_threads_sleep_soon_after_an_operator():
    # Reaches libgomp only if set before MXNet loads it: `import reportgen` first does that.
    assert spun() < 0.002
    # A user's own count is kept: one that spins through the whole 0.2 s on any CPU (100 million
    # rounds take seconds), so the test does not depend on how long a round takes.
    assert spun(GOMP_SPINCOUNT="100000000") > 0.05
