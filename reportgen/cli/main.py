"""The command group: every failure as one line and an exit code (reportgen.errors), the
logging each -v adds, and a distributed job's server or scheduler handed to mxnet before any
option is read. mxnet, matplotlib and weasyprint load inside the commands, so --help is instant."""

from __future__ import annotations

import contextlib
import errno
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

MXNET_MISSING = (
    "needs MXNet, which is not installed: pip install -c constraints.txt -e '.[cpu]' "
    "(or '.[cu117]' ... for an NVIDIA GPU: README, Two commands), or make report"
)
# A full disk or quota, or a file too large for the file system: the machine's state, not a bug.
NO_SPACE = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG})

_received: list[int] = []  # the signals this command received, in order
_whole_process = False  # set by run(): the process ends with the command


def _raise(signum: int, frame: FrameType | None) -> None:
    """SIGINT raises KeyboardInterrupt and SIGTERM Terminated (one), noting which: an interrupt
    that lands inside a library may come out as another exception (a C++ extension's argument
    conversion turns it into a TypeError), which is then still reported as the interrupt."""
    _received.append(signum)
    raise Terminated() if signum == signal.SIGTERM else KeyboardInterrupt()


@contextlib.contextmanager
def _signals_raise() -> Iterator[None]:
    """SIGTERM raises in the main thread as SIGINT does: every `finally` runs (staging folder,
    figure workers, lock) before the process ends; without it SIGTERM ends the process where
    it stands. A SIGINT ignored from the start (nohup) stays ignored."""
    _received.clear()
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {signal.SIGTERM: signal.signal(signal.SIGTERM, _raise)}
    if signal.getsignal(signal.SIGINT) is signal.default_int_handler:
        previous[signal.SIGINT] = signal.signal(signal.SIGINT, _raise)
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def _ignore_signals() -> None:
    """On the way out after an interrupt: a second one must not cut the cleaning up or the line short."""
    if threading.current_thread() is threading.main_thread():
        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, signal.SIG_IGN)


def _interruption(e: BaseException | None) -> Interrupted:
    """The error to report: by the first signal received, else by the exception (Terminated
    is SIGTERM), as 130 or 143."""
    if _received:
        return Interrupted.by(Terminated() if _received[0] == signal.SIGTERM else KeyboardInterrupt())
    return Interrupted.by(e if e is not None else KeyboardInterrupt())


class Group(click.Group):
    """Every failure as one line: a usage error (exit 2) as "error: ..." with a hint, not
    click's Usage block; an unexpected exception as exit code 1 (the traceback with -v);
    Ctrl-C and SIGTERM as "error: interrupted", exit code 130 or 143."""

    def main(self, args=None, prog_name=None, complete_var=None, standalone_mode=True, **extra):
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        previous = {signum: signal.getsignal(signum) for signum in (signal.SIGINT, signal.SIGTERM)}
        interrupted: Interrupted | None = None
        try:
            node = distributed.role()
            if node in distributed.SERVING:  # as mxnet's own import would: before any option is read
                distributed.serve(node)
            with _signals_raise():
                code = super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        except click.UsageError as e:
            where = e.ctx.command_path if e.ctx else "reportgen"
            click.echo(f"error: {e.format_message()}\ntry '{where} -h' for help", err=True)
            distributed.end(e.exit_code)
        except click.ClickException as e:
            if isinstance(e, Interrupted):
                interrupted = e
            e.show()
            distributed.end(e.exit_code)
        except (click.Abort, KeyboardInterrupt) as e:  # an interrupt outside the command: click's Abort
            _ignore_signals()
            interrupted = _interruption(e.__cause__ or e.__context__ if isinstance(e, click.Abort) else e)
            interrupted.show()
            distributed.end(interrupted.exit_code)
        finally:
            # The handlers back as they were, for a caller that goes on (a test, a script);
            # but a process that ends interrupted keeps ignoring SIGINT and SIGTERM to the end:
            # once Python shuts down, one more (a second Ctrl-C, a signal sent to the whole
            # group) would kill it by that signal instead of exit code 130 or 143.
            if interrupted is not None and _whole_process:
                _ignore_signals()
            else:
                for signum, handler in previous.items():
                    if handler is not None and threading.current_thread() is threading.main_thread():
                        signal.signal(signum, handler)
        distributed.end(code if isinstance(code, int) else 0)

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if not args and not ctx.resilient_parsing:
            # Bare `reportgen` is a question, not a mistake: the usage and the commands, exit 0.
            click.echo(ctx.get_help())
            ctx.exit(0)
        ctx.meta["reportgen.command"] = shlex.join(["reportgen", *args])  # for the run record
        return super().parse_args(ctx, args)

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except click.exceptions.Exit:
            raise
        except ModuleNotFoundError as e:
            if e.name != "mxnet":
                self._internal(ctx, e)
            # MXNet is an extra (its CPU build or one of its CUDA builds): not installed here.
            command = ctx.invoked_subcommand or "reportgen"
            click.echo(f"error: reportgen {command} {MXNET_MISSING}", err=True)
            ctx.exit(BAD_INPUT)
        except BaseException as e:
            # Ctrl-C or SIGTERM, however it came out (see _raise): one line, 130 or 143.
            if _received or isinstance(e, KeyboardInterrupt):
                _ignore_signals()
                raise _interruption(e) from e
            if isinstance(e, (click.exceptions.ClickException, click.exceptions.Abort)) or not isinstance(e, Exception):
                raise
            self._internal(ctx, e)

    @staticmethod
    def _internal(ctx: click.Context, e: Exception) -> None:
        """A bug, not bad input: one line, exit code 1, the traceback with -v. A full disk or
        quota is the machine's state, not a bug: exit code 2."""
        if isinstance(e, OSError) and e.errno in NO_SPACE:  # a write the run folder's own writers did not make
            where = f"{e.filename}: " if e.filename else ""
            click.echo(f"error: {where}cannot write ({e.strerror})", err=True)
            ctx.exit(BAD_INPUT)
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
    Start with `reportgen build`; `reportgen COMMAND -h` says more of each command.

    Every option can also be set as an environment variable REPORTGEN_<OPTION>
    (REPORTGEN_EPOCHS=2, REPORTGEN_QUIET=true, REPORTGEN_VERBOSE=1); a list is written with
    commas or spaces (REPORTGEN_CASE='worst 18', REPORTGEN_FORMAT=html,pdf).

    Shell completion: eval "$(_REPORTGEN_COMPLETE=bash_source reportgen)" in ~/.bashrc
    (zsh_source in ~/.zshrc; fish_source for fish).
    """
    # MXNet's threads and copies are set up by `import reportgen` (runtime.py).


def run() -> None:
    """The command line's entry (the `reportgen` script, `python -m reportgen`): main(), in a
    process that ends with the command."""
    global _whole_process
    _whole_process = True
    main()


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
    # matplotlib says "generated new fontManager" (INFO) the first time it runs on a machine.
    logging.getLogger("matplotlib").setLevel(logging.DEBUG if verbose > 1 else logging.WARNING)
