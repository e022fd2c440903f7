"""The command group: every failure as one line and an exit code (reportgen.errors), the
logging each -v adds, and a distributed job's server or scheduler handed to mxnet before any
option is read. mxnet, matplotlib and weasyprint load inside the commands, so --help is instant."""

from __future__ import annotations

import contextlib
import logging
import shlex
import signal
import sys
import threading
import traceback
from collections.abc import Iterator
from types import FrameType

import click

from reportgen import __version__
from reportgen.errors import (
    BAD_INPUT,
    GATE_FAILED,
    INTERNAL,
    INTERRUPTED,
    NODE_LOST,
    TERMINATED,
    Interrupted,
    Terminated,
    exit_codes,
)
from reportgen.net import distributed


def _terminated(signum: int, frame: FrameType | None) -> None:
    raise Terminated()


@contextlib.contextmanager
def _sigterm_raises() -> Iterator[None]:
    """SIGTERM raises Terminated (a KeyboardInterrupt) in the main thread, as SIGINT raises
    KeyboardInterrupt: every `finally` runs (staging folder, figure workers, lock) before the
    process ends. Without it SIGTERM ends the process where it stands."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, _terminated)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _interrupted(e: BaseException | None) -> int:
    """Say so in one line; the exit code of the signal (Terminated: SIGTERM)."""
    for signum in (signal.SIGINT, signal.SIGTERM):  # a second signal must not cut the line short
        signal.signal(signum, signal.SIG_IGN)
    click.echo("error: interrupted", err=True)
    return TERMINATED if isinstance(e, Terminated) else INTERRUPTED


class Group(click.Group):
    """Every failure as one line: a usage error (exit 2) as "error: ..." with a hint, not
    click's Usage block; an unexpected exception as exit code 1 (the traceback with -v);
    Ctrl-C and SIGTERM as "error: interrupted", exit code 130 or 143."""

    def main(self, args=None, prog_name=None, complete_var=None, standalone_mode=True, **extra):
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        previous = {signum: signal.getsignal(signum) for signum in (signal.SIGINT, signal.SIGTERM)}
        try:
            node = distributed.role()
            if node in distributed.SERVING:  # as mxnet's own import would: before any option is read
                distributed.serve(node)
            with _sigterm_raises():
                code = super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        except click.UsageError as e:
            where = e.ctx.command_path if e.ctx else "reportgen"
            click.echo(f"error: {e.format_message()}\ntry '{where} -h' for help", err=True)
            distributed.end(e.exit_code)
        except click.ClickException as e:
            e.show()
            distributed.end(e.exit_code)
        except click.Abort as e:  # click's own word for an interrupt outside the command
            distributed.end(_interrupted(e.__cause__ or e.__context__))
        except KeyboardInterrupt as e:  # one that came between click and here
            distributed.end(_interrupted(e))
        finally:
            for signum, handler in previous.items():
                if handler is not None and threading.current_thread() is threading.main_thread():
                    signal.signal(signum, handler)
        distributed.end(code if isinstance(code, int) else 0)

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        ctx.meta["reportgen.command"] = shlex.join(["reportgen", *args])  # for the run record
        return super().parse_args(ctx, args)

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except (click.exceptions.ClickException, click.exceptions.Exit, click.exceptions.Abort):
            raise
        except KeyboardInterrupt as e:  # Ctrl-C, or SIGTERM (Terminated): one line, 130 or 143
            for signum in (signal.SIGINT, signal.SIGTERM):  # the way out must not be cut short
                signal.signal(signum, signal.SIG_IGN)
            raise Interrupted.by(e) from e
        except Exception as e:  # a bug, not bad input
            if logging.getLogger("reportgen").isEnabledFor(logging.DEBUG):
                traceback.print_exc()
            first = (str(e).strip().splitlines() or [""])[0][:300]
            click.echo(
                f"error: internal failure: {e.__class__.__name__}: {first} (run with -v for the traceback)", err=True
            )
            ctx.exit(INTERNAL)


assert BAD_INPUT == click.UsageError.exit_code  # a usage error is bad input, as click says


@click.group(
    cls=Group,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
    epilog=exit_codes(GATE_FAILED, NODE_LOST, INTERRUPTED, TERMINATED),
)
@click.version_option(__version__, "--version", prog_name="reportgen")
def main() -> None:
    """Build a static HTML and PDF report on a LeNet trained on MNIST with MXNet Gluon.

    Every option can also be set as an environment variable REPORTGEN_<OPTION>,
    e.g. REPORTGEN_EPOCHS=2.
    """
    # MXNet's threads and copies are set up by `import reportgen` (runtime.py).


def setup(verbose: int, quiet: bool) -> None:
    # -v is reportgen's own detail; the libraries' debug logs (matplotlib's tick locators,
    # Pillow's PNG chunks) only with -vv.
    level = logging.WARNING if quiet else logging.INFO
    logging.basicConfig(level=logging.DEBUG if verbose > 1 else level, format="%(message)s", stream=sys.stderr)
    logging.getLogger("reportgen").setLevel(logging.DEBUG if verbose else level)
    # WeasyPrint and fontTools speak of fonts and optional system libraries (e.g. "Using
    # fontTools instead of HarfBuzz-Subset"): nothing a report's reader can act on, so only
    # their errors show by default; -v shows their warnings, -vv everything.
    libraries = {0: logging.ERROR, 1: logging.WARNING}.get(verbose, logging.DEBUG)
    for name in ("weasyprint", "fontTools"):
        logging.getLogger(name).setLevel(libraries)
