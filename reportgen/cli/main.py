"""The command group: every failure as one line and an exit code (reportgen.errors), the
logging each -v adds, and a distributed job's server or scheduler handed to mxnet before any
option is read. mxnet, matplotlib and weasyprint load inside the commands, so --help is instant."""

from __future__ import annotations

import errno
import logging
import shlex
import sys
import traceback

import click

from reportgen import __version__
from reportgen.errors import BAD_INPUT, GATE_FAILED, INTERNAL, NODE_LOST, exit_codes
from reportgen.net import distributed

MXNET_MISSING = (
    "needs MXNet, which is not installed: pip install -c constraints.txt -e '.[cpu]' "
    "(or '.[cu117]' ... for an NVIDIA GPU: README, Two commands), or make report"
)
# A full disk or quota, or a file too large for the file system: the machine's state, not a bug.
NO_SPACE = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG})


class Group(click.Group):
    """Every failure as one line: a usage error (exit 2) as "error: ..." with a hint, not
    click's Usage block; an unexpected exception as exit code 1 (the traceback with -v)."""

    def main(self, args=None, prog_name=None, complete_var=None, standalone_mode=True, **extra):
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        try:
            node = distributed.role()
            if node in distributed.SERVING:  # as mxnet's own import would: before any option is read
                distributed.serve(node)
            code = super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        except click.UsageError as e:
            where = e.ctx.command_path if e.ctx else "reportgen"
            click.echo(f"error: {e.format_message()}\ntry '{where} -h' for help", err=True)
            distributed.end(e.exit_code)
        except click.ClickException as e:
            e.show()
            distributed.end(e.exit_code)
        except click.Abort:
            click.echo("Aborted!", err=True)
            distributed.end(INTERNAL)
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
        except (click.exceptions.ClickException, click.exceptions.Exit, click.exceptions.Abort):
            raise
        except KeyboardInterrupt as e:
            raise click.exceptions.Abort() from e
        except ModuleNotFoundError as e:
            if e.name != "mxnet":
                raise
            # MXNet is an extra (its CPU build or one of its CUDA builds): not installed here.
            command = ctx.invoked_subcommand or "reportgen"
            click.echo(f"error: reportgen {command} {MXNET_MISSING}", err=True)
            ctx.exit(BAD_INPUT)
        except Exception as e:  # a bug, not bad input
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
    epilog=exit_codes(GATE_FAILED, NODE_LOST),
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
