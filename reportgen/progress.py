"""A progress bar per epoch for people at a terminal (train.Progress)."""
from __future__ import annotations

import sys

import click


class EpochBar:
    """One click progress bar per epoch, with the running loss and accuracy."""

    def __init__(self) -> None:
        self._bar = None
        self._done = 0
        self._status = ""

    def start_epoch(self, epoch: int, epochs: int, batches: int) -> None:
        self._done = 0
        self._status = ""
        self._bar = click.progressbar(length=batches, label=f"epoch {epoch}/{epochs}", file=sys.stderr,
                                      item_show_func=lambda _: self._status, show_pos=True)
        self._bar.__enter__()

    def update(self, batches_done: int, loss: float, accuracy: float) -> None:
        self._status = f"loss {loss:.4f}  accuracy {accuracy:.2%}"
        self._bar.update(batches_done - self._done)
        self._done = batches_done

    def end_epoch(self, record: dict) -> None:
        self._bar.__exit__(None, None, None)
        click.echo(f"epoch {record['epoch']}: train accuracy {record['train_accuracy']:.2%}, "
                   f"test accuracy {record['test_accuracy']:.2%}, {record['seconds']:.1f} s", err=True)
