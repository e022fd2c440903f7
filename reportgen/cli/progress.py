"""A progress bar per epoch for people at a terminal (train.Progress)."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator
from typing import TYPE_CHECKING

import click

from reportgen.run.history import EpochRecord

if TYPE_CHECKING:
    from reportgen.net.train import Update


class EpochBar:
    """One click progress bar per epoch, with the running loss, accuracy and images per second."""

    @contextlib.contextmanager
    def epoch(self, epoch: int, epochs: int, batches: int) -> Iterator[Update]:
        status = ""
        done = 0
        with click.progressbar(
            range(batches),
            label=f"epoch {epoch}/{epochs}",
            file=sys.stderr,
            item_show_func=lambda _: status,
            show_pos=True,
        ) as bar:

            def update(batches_done: int, loss: float, accuracy: float, images_per_second: float) -> None:
                nonlocal status, done
                status = f"loss {loss:.4f}  accuracy {accuracy:.2%}  {images_per_second:,.0f} images/s"
                bar.update(batches_done - done)
                done = batches_done

            yield update

    def end_epoch(self, record: EpochRecord) -> None:
        click.echo(
            f"epoch {record.epoch}: train accuracy {record.train_accuracy:.2%}, "
            f"test accuracy {record.test_accuracy:.2%}, {record.seconds:.1f} s "
            f"({record.images_per_second:,.0f} images/s)",
            err=True,
        )
