"""Devices: --ctx as MXNet contexts."""

from __future__ import annotations

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
