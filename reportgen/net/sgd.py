"""Trainer.step's update of every parameter as one operator call, on one device.

`gluon.Trainer.step` spends about 0.3 ms of Python a step (a third of the trainer's own) on
work a single device does not need: checking that every gradient is fresh, grouping the
parameters by type, looking up each one's learning rate and weight decay, and updating them
four at a time (MXNET_OPTIMIZER_AGGREGATION_SIZE), so in two `multi_sgd_mom_update` calls.
`FusedSGD` makes that one call over all of them, with the Trainer's own momentum states,
learning rates, weight decays and rescaling: the same arithmetic on every element, so the
same weights bit for bit (tests/test_train.py). On a loaded 2-core machine each operator
call is one more OpenMP barrier at which a thread can lose its time slice (issue 21's notes).

The Trainer stays: it owns the states (checkpoints save and load them through it), and
several devices or machines go through its kvstore with `trainer.step`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import mxnet as mx
import numpy as np
from mxnet import gluon


class FusedSGD:
    """Updates the Trainer's parameters as `trainer.step(step_size)` would; only where `fits`."""

    @staticmethod
    def fits(trainer: gluon.Trainer) -> bool:
        """SGD with momentum on float32 weights of one device without a kvstore, no
        learning-rate schedule, no gradient clipping: what reportgen trains with on one device."""
        optimizer = trainer._optimizer
        if not isinstance(optimizer, mx.optimizer.SGD) or optimizer.lr_scheduler or optimizer.clip_gradient:
            return False
        if not trainer._kv_initialized:
            trainer._init_kvstore()
        return (
            optimizer.momentum > 0
            and trainer._kvstore is None
            and len(trainer._contexts) == 1
            and all(
                np.dtype(p.dtype) == np.float32 and p._stype == "default" and p._grad_stype == "default"
                for p in trainer._params
                if p.grad_req != "null"
            )
        )

    def __init__(self, trainer: gluon.Trainer, step_size: int) -> None:
        if not self.fits(trainer):
            raise ValueError("FusedSGD: not a Trainer it does the same arithmetic for (FusedSGD.fits)")
        optimizer = trainer._optimizer
        updater = trainer._updaters[0]
        chosen = [(i, p) for i, p in enumerate(trainer._params) if p.grad_req != "null"]
        for i, param in chosen:  # the states Trainer's first step would make (or a checkpoint gave)
            if i not in updater.states:
                updater.states[i] = optimizer.create_state_multi_precision(i, param.data())
                updater.states_synced[i] = True
        indices = [i for i, _ in chosen]
        weights = [param.data() for _, param in chosen]
        self._arrays = [a for (i, param), w in zip(chosen, weights) for a in (w, param.grad(), updater.states[i])]
        self._weights = weights
        self._settings: dict[str, Any] = {
            "lrs": tuple(optimizer._get_lrs(indices)),
            "wds": tuple(optimizer._get_wds(indices)),
            "momentum": optimizer.momentum,
            "rescale_grad": trainer._scale / step_size,
            "num_weights": len(weights),
        }

    def step(self) -> None:
        mx.nd.multi_sgd_mom_update(*self._arrays, out=self._weights, **self._settings)


def stepper(trainer: gluon.Trainer, step_size: int, fuse: bool = True) -> Callable[[], None]:
    """What updates the weights after each step's backward pass: `trainer.step(step_size)` the
    first time (it initialises the parameters' deferred shapes and its states, or takes those
    a checkpoint gave), then one FusedSGD call each time where it fits and `fuse` allows."""
    fused: list[FusedSGD] = []

    def step() -> None:
        if fused:
            fused[0].step()
            return
        trainer.step(step_size)
        if fuse and FusedSGD.fits(trainer):
            fused.append(FusedSGD(trainer, step_size))

    return step
