"""Trainer.step's update of every parameter, without Trainer's bookkeeping, on one device.

`gluon.Trainer.step` spends about 0.3 ms of Python a step on work a single device does not
need: checking that every gradient is fresh, grouping the parameters by type, looking up each
one's learning rate and weight decay. It then updates them four at a time
(MXNET_OPTIMIZER_AGGREGATION_SIZE) with `multi_sgd_mom_update`, and that operator is slow:
over LeNet's 8 parameters it takes 1.6 ms where `sgd_mom_update` once per parameter takes
0.5 ms (benchmarks/profiling.py update), about a twentieth of a training step. `DirectSGD`
calls `sgd_mom_update` once per parameter with the Trainer's own momentum states, learning
rates, weight decays and rescaling: the same arithmetic on every element, so the same weights
bit for bit (tests/test_train.py).

That is eight operators a step where one fused call made one, each an OpenMP region. On a
loaded machine each barrier was where a thread could lose its time slice; with the short spin
count reportgen now sets (runtime.py) a waiting thread sleeps instead. The eight were measured
on a quiet machine only, where together they take a third of the one.

The Trainer stays: it owns the states (checkpoints save and load them through it), and
several devices or machines go through its kvstore with `trainer.step`.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

import mxnet as mx
import numpy as np
from mxnet import gluon


class DirectSGD:
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
            raise ValueError("DirectSGD: not a Trainer it does the same arithmetic for (DirectSGD.fits)")
        optimizer = trainer._optimizer
        updater = trainer._updaters[0]
        chosen = [(i, p) for i, p in enumerate(trainer._params) if p.grad_req != "null"]
        for i, param in chosen:  # the states Trainer's first step would make (or a checkpoint gave)
            if i not in updater.states:
                updater.states[i] = optimizer.create_state_multi_precision(i, param.data())
                updater.states_synced[i] = True
        indices = [i for i, _ in chosen]
        lrs, wds = optimizer._get_lrs(indices), optimizer._get_wds(indices)
        # The arrays and settings looked up once, not at every step as Trainer.step does.
        self._updates = [
            partial(
                mx.nd.sgd_mom_update,
                param.data(),
                param.grad(),
                updater.states[i],
                out=param.data(),
                lr=lr,
                wd=wd,
                momentum=optimizer.momentum,
                rescale_grad=trainer._scale / step_size,
            )
            for (i, param), lr, wd in zip(chosen, lrs, wds)
        ]

    def step(self) -> None:
        for update in self._updates:
            update()


def stepper(trainer: gluon.Trainer, step_size: int, direct: bool = True) -> Callable[[], None]:
    """What updates the weights after each step's backward pass: `trainer.step(step_size)` the
    first time (it initialises the parameters' deferred shapes and its states, or takes those
    a checkpoint gave), then DirectSGD each time where it fits and `direct` allows."""
    chosen: list[DirectSGD] = []

    def step() -> None:
        if chosen:
            chosen[0].step()
            return
        trainer.step(step_size)
        if direct and DirectSGD.fits(trainer):
            chosen.append(DirectSGD(trainer, step_size))

    return step
