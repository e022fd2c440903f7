"""Devices: --ctx as MXNet contexts; and a word when `auto` finds no GPU on a machine that has one."""

from __future__ import annotations

import os
import re
import shutil
import subprocess

import mxnet as mx

from reportgen.errors import ContextError

Device = mx.Context  # where MXNet runs: mx.cpu(0), mx.gpu(1); named here so no other package imports mxnet


def parse_contexts(spec: str) -> list[mx.Context]:
    """'auto', 'cpu', 'gpu', 'gpu:0,1' or 'cpu:0,1' -> MXNet contexts.

    'auto' takes every GPU there is, else the CPU. Several CPU contexts run the
    data-parallel path exactly as several GPUs would, which is how it is tested.
    """
    spec = spec.strip().lower()
    gpus = mx.context.num_gpus()
    if spec == "auto":
        return [mx.gpu(i) for i in range(gpus)] or [mx.cpu(0)]
    kind, _, ids = spec.partition(":")
    if kind not in ("cpu", "gpu"):
        raise ContextError(f"--ctx {spec!r}: expected auto, cpu, gpu, cpu:0,1 or gpu:0,1")
    try:
        numbers = [int(i) for i in ids.split(",")] if ids else [0]
    except ValueError as e:
        raise ContextError(f"--ctx {spec!r}: device numbers must be integers, as in {kind}:0,1") from e
    if len(set(numbers)) != len(numbers) or min(numbers) < 0:
        raise ContextError(f"--ctx {spec!r}: device numbers must be distinct and not negative")
    if kind == "gpu":
        missing = [i for i in numbers if i >= gpus]
        if missing:
            raise ContextError(
                f"--ctx {spec}: no GPU {missing[0]} on this machine ({gpus} GPU{'s' if gpus != 1 else ''} found)"
            )
        return [mx.gpu(i) for i in numbers]
    return [mx.cpu(i) for i in numbers]


def cpu_build_hint() -> str | None:
    """One line when `--ctx auto` found no GPU but the machine has an NVIDIA one: either this
    MXNet is its CPU build (the usual case: `pip install 'reportgen[cpu]'`), or its CUDA build
    cannot reach the driver. None when nvidia-smi is absent, fails or lists no GPU, or when
    CUDA_VISIBLE_DEVICES hides every GPU on purpose."""
    if os.environ.get("CUDA_VISIBLE_DEVICES") in ("", "-1"):
        return None
    smi = shutil.which("nvidia-smi")
    if smi is None:
        return None
    try:
        listed = subprocess.run([smi, "-L"], capture_output=True, text=True, timeout=15)
        header = subprocess.run([smi], capture_output=True, text=True, timeout=15)
    except (OSError, subprocess.SubprocessError):
        return None
    gpus = [line for line in listed.stdout.splitlines() if line.startswith("GPU ")]
    if listed.returncode != 0 or not gpus:
        return None
    found = re.search(r"CUDA Version:\s*(\d+)\.(\d+)", header.stdout)
    driver = f"{found[1]}.{found[2]}" if found else "unknown"
    first = gpus[0].split(":", 1)[1].split("(UUID")[0].strip() if ":" in gpus[0] else gpus[0]
    seen = f"nvidia-smi lists {len(gpus)} GPU{'s' if len(gpus) != 1 else ''} ({first}; driver's CUDA {driver})"
    if not mx.runtime.Features().is_enabled("CUDA"):
        return (
            f"note: {seen}, but the installed MXNet is its CPU build: running on the CPU. "
            f"For the GPU: make report GPU=auto (or GPU={mxnet_variant(driver)})"
        )
    return f"note: {seen}, but MXNet's CUDA build finds none: running on the CPU (check the driver)"


def mxnet_variant(driver_cuda: str) -> str:
    """The mxnet 1.9.1 build for a driver's CUDA version as nvidia-smi prints it: the newest
    published CUDA build the driver runs (cu101, cu102, cu110 ... cu117), else cpu. The
    Makefile's GPU=auto makes the same choice."""
    try:
        major, minor = (int(part) for part in driver_cuda.split(".")[:2])
    except ValueError:
        return "cu117"
    if (major, minor) >= (11, 7):
        return "cu117"
    if major == 11:
        return f"cu11{minor}"
    if (major, minor) >= (10, 2):
        return "cu102"
    if (major, minor) == (10, 1):
        return "cu101"
    return "cpu"
