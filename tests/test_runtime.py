"""MXNet's process-wide settings (runtime.py): applied by `import reportgen`, a user's own kept,
and with them no copy into MXNet starts an OpenMP team on Python's thread."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

# In a fresh interpreter: the settings in force, and the threads of the process before and
# after reportgen puts a training set on the device and reads it back (an OpenMP team that
# a parallel copy starts shows as one more thread that never goes away).
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
print(json.dumps({"settings": {k: os.environ.get(k) for k in ("MXNET_CPU_PARALLEL_SIZE", "OMP_NUM_THREADS")},
                  "before": before, "after": threads()}))
"""


def probe(**env: str) -> dict:
    clean = {k: v for k, v in os.environ.items() if k not in ("MXNET_CPU_PARALLEL_SIZE", "OMP_NUM_THREADS")}
    out = subprocess.run(
        [sys.executable, "-c", PROBE], env={**clean, **env}, capture_output=True, text=True, check=True
    ).stdout
    return json.loads(out.strip().splitlines()[-1])


@pytest.mark.skipif(not os.path.isdir("/proc/self/task"), reason="counts threads through /proc")
def test_import_reportgen_keeps_copies_serial_and_sets_the_threads():
    result = probe()
    assert result["settings"] == {"MXNET_CPU_PARALLEL_SIZE": "1000000000", "OMP_NUM_THREADS": str(os.cpu_count())}
    assert result["after"] == result["before"]  # no OpenMP team on Python's thread


@pytest.mark.skipif(not os.path.isdir("/proc/self/task"), reason="counts threads through /proc")
def test_a_users_own_settings_are_kept():
    # MXNet's own default, set on purpose: respected, and then the copy starts a team of its own
    # (which is what the default setting prevents: this is the test's failing case).
    result = probe(MXNET_CPU_PARALLEL_SIZE="200000", OMP_NUM_THREADS="2")
    assert result["settings"] == {"MXNET_CPU_PARALLEL_SIZE": "200000", "OMP_NUM_THREADS": "2"}
    assert result["after"] == result["before"] + 1
