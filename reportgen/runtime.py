"""MXNet's process-wide settings that decide its speed here, set before MXNet does any work.

`import reportgen` applies them, so the command line and the library (`train.fit` called from
Python) both run the fast path. Each is a default: a value the user has set is kept.

- MXNET_CPU_PARALLEL_SIZE: MXNet copies arrays of this many elements or more between numpy and
  NDArrays (`mx.nd.array(...)`, `.asnumpy()`) with an OpenMP loop run by the calling thread,
  Python's. That thread then keeps an OpenMP team of its own beside the one of MXNet's engine
  thread, which runs every operator. With more OpenMP threads than cores, GNU OpenMP stops
  spinning between parallel regions (its "throttled" spin count) and its threads sleep and wake
  through the kernel instead. oneDNN's weight gradient of conv1 runs many short parallel regions
  and became three times slower, for the rest of the process: a whole training epoch ran at
  about 5,200 images/s instead of about 9,100 (benchmarks/RESULTS.md). Copying in one thread never
  starts that team; a serial copy of the whole training set takes about 0.1 s.
  MXNet reads the variable at its first large copy, so setting it at import is in time
  unless that copy has already happened.
- OMP_NUM_THREADS: MXNet gives its operators one OpenMP thread on a 2-core machine unless told
  otherwise; it reads the variable when it is imported, so this only counts when reportgen is
  imported first (the command line always is).
- GOMP_SPINCOUNT: how long GNU OpenMP's threads spin at a barrier before they sleep (its default
  300,000 rounds). When another process takes a core, a thread whose partner was descheduled
  spins its whole time slice away at every barrier of every oneDNN operator: training fell to
  a tenth of its speed or less at a load of 5-15 on 2 cores (a fresh clone's `make report`,
  sharing the machine with a test run, took 25 minutes instead of 5), and 1,000 rounds kept
  it at 1.3-10x that collapsed speed. On a quiet machine the two were within the noise of
  each other (0.97x-1.11x in interleaved rounds: benchmarks/RESULTS.md, rounds two and three).
  libgomp reads it when MXNet loads it, so like OMP_NUM_THREADS it counts when reportgen is
  imported first.
"""

from __future__ import annotations

import os

PARALLEL_COPY_OFF = "1000000000"  # elements: no copy is that large, so none runs in parallel
SPIN_COUNT = "1000"  # rounds an idle OpenMP thread spins before it sleeps (libgomp's default: 300,000)


def defaults() -> dict[str, str]:
    """The settings reportgen runs with, unless the environment already has them."""
    return {
        "MXNET_CPU_PARALLEL_SIZE": PARALLEL_COPY_OFF,
        "OMP_NUM_THREADS": str(os.cpu_count() or 1),
        "GOMP_SPINCOUNT": SPIN_COUNT,
    }


def apply() -> dict[str, str]:
    """Put the defaults into the environment where they are not set; return what is in force."""
    return {name: os.environ.setdefault(name, value) for name, value in defaults().items()}
