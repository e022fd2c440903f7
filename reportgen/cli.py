"""The command line: parse options, call one pipeline function, turn errors into exit codes.

Exit codes: 0 success, 1 internal failure (a bug: -v shows the traceback),
2 bad input or usage (one line on stderr, starting "error:"), 3 a CI gate failed
(build and render, after writing the report in full), 4 another node of a distributed
training job died or hung (distributed.py).
mxnet, matplotlib and weasyprint load inside the commands, so --help is instant.
"""

from __future__ import annotations

import logging
import shlex
import socket
import sys
import traceback
from collections.abc import Callable
from pathlib import Path

import click

from reportgen import __version__, distributed, seed

EXIT_CODES = "Exit codes: 0 success, 1 internal failure, 2 bad input or usage."
GATES = "3 a gate (--fail-under, --max-drop, --fail-if-worse) failed; the report is written in full"
LOST = f"{distributed.LOST} another node of the distributed job died or hung"
EXIT_CODES_GATED = f"{EXIT_CODES[:-1]}, {GATES}."
TRAIN_EXIT_CODES = f"{EXIT_CODES[:-1]}, {LOST}."
BUILD_EXIT_CODES = f"{EXIT_CODES[:-1]}, {GATES}, {LOST}."
ENV = "REPORTGEN_"


def _option(*names: str, **kwargs):
    """A click option also settable as REPORTGEN_<OPTION>, shown in --help."""
    long_name = next(n for n in names if n.startswith("--"))
    envvar = ENV + long_name[2:].replace("-", "_").upper()
    return click.option(*names, envvar=envvar, show_envvar=True, **kwargs)


def _stack(*decorators):
    def apply(f):
        for decorator in reversed(decorators):
            f = decorator(f)
        return f

    return apply


# Folders read from must exist; --out may not exist yet but must not be a file. --data-dir
# and --model stay strings: the run record and the report show them as the user typed them.
# --model may be a folder, a file or a checkpoint prefix (no such file): saved.find checks it.
existing_dir = click.Path(exists=True, file_okay=False, path_type=Path)
out_dir = click.Path(file_okay=False, path_type=Path)

verbosity = _stack(
    _option("-v", "--verbose", count=True, help="More detail; -v also shows tracebacks of internal errors."),
    _option("-q", "--quiet", is_flag=True, help="Only errors and warnings."),
)

data_options = _stack(
    _option(
        "--data-dir",
        type=click.Path(exists=True, file_okay=False),
        default=None,
        help="Folder with the four MNIST IDX files, raw or .gz.  [default: the embedded data/mnist]",
    ),
    _option(
        "--train-limit",
        type=click.IntRange(min=1),
        default=None,
        metavar="N",
        help="Use only the first N training images.",
    ),
    _option(
        "--test-limit", type=click.IntRange(min=1), default=None, metavar="N", help="Use only the first N test images."
    ),
)

ctx_option = _option(
    "--ctx",
    default="auto",
    show_default=True,
    metavar="auto|cpu|gpu|gpu:0,1|cpu:0,1",
    help="Devices; several train data-parallel. auto: every GPU, else the CPU.",
)

train_options = _stack(
    _option("--epochs", type=click.IntRange(min=1), default=seed.EPOCHS, show_default=True),
    _option("--batch-size", type=click.IntRange(min=1), default=seed.BATCH_SIZE, show_default=True),
    _option(
        "--lr",
        type=click.FloatRange(min=0, min_open=True),
        default=seed.LEARNING_RATE,
        show_default=True,
        help="Learning rate.",
    ),
    _option("--momentum", type=click.FloatRange(0, 1, max_open=True), default=seed.MOMENTUM, show_default=True),
    _option("--wd", type=click.FloatRange(min=0), default=seed.WEIGHT_DECAY, show_default=True, help="Weight decay."),
    _option("--seed", type=int, default=seed.SEED, show_default=True),
    ctx_option,
    _option(
        "--kvstore",
        type=click.Choice(distributed.KVSTORES),
        default=distributed.DEFAULT_KVSTORE,
        show_default=True,
        help="Where gradients are summed: local or device, over this machine's devices; dist_sync or "
        "dist_device_sync, over the workers of a distributed job (started by mxnet's tools/launch.py or "
        "the DMLC_* variables; every node runs this same command). In a job --batch-size is each step's "
        f"over all workers, rank 0 alone writes --out, and a node gives up (exit code {distributed.LOST}) when "
        f"another dies or nothing moves for {distributed.TIMEOUT_VARIABLE} seconds "
        f"({distributed.DEFAULT_TIMEOUT:g} unless set).",
    ),
    _option("--resume", is_flag=True, help="Continue from the last checkpoint in --out."),
)


def model_option(required: bool):
    return _option(
        "--model",
        metavar="PATH",
        required=required,
        help="A saved model: a run folder or its model/ folder, a checkpoint prefix DIR/NAME "
        "(NAME-symbol.json with the latest NAME-NNNN.params), or a NAME-NNNN.params file.",
    )


pixels_option = _option(
    "--pixels",
    type=click.Choice(["unit", "raw"]),
    default=None,
    help="How images enter the network: unit divides by 255 (how reportgen trains), raw feeds "
    "0-255 (how the seed trained).  [default: what the model recorded, else unit]",
)


case_option = _option(
    "--case",
    "cases",
    multiple=True,
    default=("worst",),
    show_default=True,
    metavar="worst|INDEX",
    help="Test image to look inside; repeat for several. worst: the first image "
    "of the worst confusion, as the seed took.",
)

report_options = _stack(
    _option("--format", "formats", default="html,pdf", show_default=True, metavar="html,pdf", help="What to write."),
    _option("--title", default=None, help="The report's title.  [default: LeNet on MNIST; render: the run's own]"),
    _option(
        "--templates",
        type=existing_dir,
        default=None,
        metavar="DIR",
        help="Your templates, searched before the built-in ones (override one partial, keep the rest).",
    ),
)


baseline_options = _stack(
    _option(
        "--baseline",
        type=existing_dir,
        default=None,
        metavar="RUN_DIR",
        help="A run to compare with on the same test images (its predictions.npz, or its model): "
        "the report gains a section 'Against the baseline'.",
    ),
    _option(
        "--fail-under",
        type=click.FloatRange(0, 1),
        default=None,
        metavar="ACCURACY",
        help="Gate: exit 3 if the test accuracy is below this fraction (0.99 for 99%).",
    ),
    _option(
        "--max-drop",
        type=click.FloatRange(min=0),
        default=None,
        metavar="POINTS",
        help="Gate: exit 3 if the accuracy is more than this many percentage points below the baseline's.",
    ),
    _option(
        "--fail-if-worse",
        is_flag=True,
        help="Gate: exit 3 if McNemar's exact test (one-sided) says this run is worse than the baseline "
        "at the 5% level.",
    ),
)


def _gates(fail_under, max_drop, fail_if_worse):
    """The gates asked for (the pipeline refuses those needing a baseline without one, before any work)."""
    from reportgen.gates import Gates

    return Gates(fail_under=fail_under, max_drop=max_drop, fail_if_worse=fail_if_worse)


def _gated(run: Callable[[], dict | None], out: Path, quiet: bool) -> None:
    """Run a command that may end in a failed gate: the run folder is written either way,
    so say so before the gate's one line (exit code 3)."""
    from reportgen.errors import GateError

    try:
        manifest = run()
    except GateError as e:
        if e.manifest is not None:
            _done(out, e.manifest, quiet)
        raise
    _done(out, manifest, quiet)


class _Group(click.Group):
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
            distributed.end(1)
        distributed.end(code if isinstance(code, int) else 0)

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        ctx.meta["reportgen.command"] = shlex.join(["reportgen", *args])  # for the run record
        return super().parse_args(ctx, args)

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except (click.exceptions.ClickException, click.exceptions.Exit, click.exceptions.Abort):
            raise
        except KeyboardInterrupt:
            raise click.exceptions.Abort() from None
        except Exception as e:  # a bug, not bad input
            if logging.getLogger("reportgen").isEnabledFor(logging.DEBUG):
                traceback.print_exc()
            first = (str(e).strip().splitlines() or [""])[0][:300]
            click.echo(
                f"error: internal failure: {e.__class__.__name__}: {first} (run with -v for the traceback)", err=True
            )
            ctx.exit(1)


@click.group(
    cls=_Group,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
    epilog=BUILD_EXIT_CODES,
)
@click.version_option(__version__, "--version", prog_name="reportgen")
def main() -> None:
    """Build a static HTML and PDF report on a LeNet trained on MNIST with MXNet Gluon.

    Every option can also be set as an environment variable REPORTGEN_<OPTION>,
    e.g. REPORTGEN_EPOCHS=2.
    """
    # MXNet's threads and copies are set up by `import reportgen` (runtime.py).


def _setup(verbose: int, quiet: bool) -> None:
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


def _data_settings(data_dir, train_limit, test_limit):
    from reportgen.pipeline import DataSettings

    return DataSettings(data_dir=data_dir, train_limit=train_limit, test_limit=test_limit)


def _train_config(epochs, batch_size, lr, momentum, wd, seed, kvstore):
    from reportgen.train import TrainConfig

    return TrainConfig(
        epochs=epochs,
        batch_size=batch_size,
        learning_rate=lr,
        momentum=momentum,
        weight_decay=wd,
        seed=seed,
        kvstore=kvstore,
    )


def _arguments() -> dict[str, object]:
    """The options as the command received them, for the run record."""
    params = click.get_current_context().params
    return {k: str(v) if isinstance(v, Path) else v for k, v in params.items()}


def _command() -> str:
    return click.get_current_context().meta.get("reportgen.command", "reportgen")


def _formats(value: str) -> tuple[str, ...]:
    return tuple(part.strip().lower() for part in value.split(",") if part.strip())


def _warn_unpublished(manifest: dict) -> None:
    record = manifest["data"]
    if not record["published_mnist"]:
        click.echo(
            f"warning: {record['dir'] or 'data/mnist'}: these files are not the published MNIST "
            f"(their SHA-256 differ); the seed's numbers may not compare",
            err=True,
        )


def _done(out: Path, manifest: dict | None, quiet: bool) -> None:
    if manifest is None:  # a worker of a distributed job other than rank 0: it wrote nothing
        return
    _warn_unpublished(manifest)
    if not quiet:
        files = ", ".join(sorted({name.split("/")[0] for name in manifest.get("files", {})}))
        # After `render`, the run's timings are the build's; this command's are under "rendered".
        total = sum(manifest.get("rendered", manifest).get("timings", {}).values())
        # In a distributed job, rank 0 is whichever worker registered first: say which machine.
        where = f" on {socket.gethostname()}" if manifest.get("training", {}).get("workers") else ""
        click.echo(f"wrote {out}/{where} ({files}) in {total:.1f} s", err=True)


@main.command(epilog=TRAIN_EXIT_CODES)
@data_options
@train_options
@_option(
    "--out",
    type=out_dir,
    default=Path("output"),
    show_default=True,
    help="Run folder to write model/, history.json and manifest.json into.",
)
@verbosity
def train(out, data_dir, train_limit, test_limit, ctx, resume, verbose, quiet, **hyper):
    """Train the seed's LeNet and save it in MXNet's export format."""
    _setup(verbose, quiet)
    from reportgen import pipeline
    from reportgen.progress import EpochBar

    run = pipeline.RunSettings(
        out=out,
        data=_data_settings(data_dir, train_limit, test_limit),
        train=_train_config(**hyper),
        ctx=ctx,
        resume=resume,
        arguments=_arguments(),
        command=_command(),
    )
    manifest = pipeline.run_train(run, progress=None if quiet else EpochBar())
    _done(out, manifest, quiet)


@main.command(epilog=EXIT_CODES)
@model_option(required=True)
@pixels_option
@data_options
@ctx_option
@_option("--out", type=out_dir, required=True, help="Folder to write metrics.json and predictions.npz into.")
@verbosity
def evaluate(model, pixels, data_dir, train_limit, test_limit, ctx, out, verbose, quiet):
    """Evaluate a saved model on the test set: caret's statistics, worst confusion, calibration."""
    _setup(verbose, quiet)
    from reportgen import pipeline

    run = pipeline.RunSettings(
        out=out,
        data=_data_settings(data_dir, train_limit, test_limit),
        ctx=ctx,
        model=model,
        pixels=pixels,
        arguments=_arguments(),
        command=_command(),
    )
    _done(out, pipeline.run_evaluate(run), quiet)


@main.command(epilog=EXIT_CODES)
@model_option(required=True)
@pixels_option
@case_option
@data_options
@ctx_option
@_option("--out", type=out_dir, required=True, help="Folder to write inspection.npz into.")
@verbosity
def inspect(model, pixels, cases, data_dir, train_limit, test_limit, ctx, out, verbose, quiet):
    """Every layer's output for chosen test images, through one multi-output graph."""
    _setup(verbose, quiet)
    from reportgen import pipeline

    run = pipeline.RunSettings(
        out=out,
        data=_data_settings(data_dir, train_limit, test_limit),
        ctx=ctx,
        model=model,
        pixels=pixels,
        cases=tuple(cases),
        arguments=_arguments(),
        command=_command(),
    )
    _done(out, pipeline.run_inspect(run), quiet)


@main.command(epilog=BUILD_EXIT_CODES)
@data_options
@train_options
@model_option(required=False)
@pixels_option
@case_option
@report_options
@baseline_options
@_option(
    "--out",
    type=out_dir,
    default=Path("output"),
    show_default=True,
    help="Run folder; the previous report there stays whole until the new one is complete.",
)
@verbosity
def build(
    out,
    model,
    pixels,
    cases,
    formats,
    title,
    templates,
    data_dir,
    train_limit,
    test_limit,
    ctx,
    resume,
    baseline,
    fail_under,
    max_drop,
    fail_if_worse,
    verbose,
    quiet,
    **hyper,
):
    """Train (or load --model), evaluate, inspect, draw and render the report: the whole pipeline.

    With --baseline RUN_DIR the report compares this run with that one on the same test
    images; the gates then fail the command (exit 3) after the report is written.
    """
    _setup(verbose, quiet)
    gates = _gates(fail_under, max_drop, fail_if_worse)
    from reportgen import pipeline
    from reportgen.progress import EpochBar

    run = pipeline.RunSettings(
        out=out,
        data=_data_settings(data_dir, train_limit, test_limit),
        train=_train_config(**hyper),
        ctx=ctx,
        resume=resume,
        model=model,
        pixels=pixels,
        cases=tuple(cases),
        title=title or pipeline.TITLE,
        formats=_formats(formats),
        templates=templates,
        baseline=baseline,
        gates=gates,
        arguments=_arguments(),
        command=_command(),
    )
    say = (lambda message: None) if quiet else (lambda message: click.echo(message, err=True))
    _gated(lambda: pipeline.run_build(run, progress=None if quiet else EpochBar(), say=say), out, quiet)


@main.command(epilog=EXIT_CODES_GATED)
@click.argument("run_dir", type=existing_dir)
@report_options
@_option(
    "--data-dir",
    type=click.Path(exists=True, file_okay=False),
    default=None,
    help="Where the run's MNIST files are now, if not where it was built from.",
)
@baseline_options
@verbosity
def render(run_dir, formats, title, templates, data_dir, baseline, fail_under, max_drop, fail_if_worse, verbose, quiet):
    """Render a finished run's report again from its folder, without training, the model or mxnet.

    With --baseline RUN_DIR (a run with predictions.npz: still no mxnet) the report compares
    the two runs, and metrics.json records the comparison; the gates then apply as for build.
    """
    _setup(verbose, quiet)
    gates = _gates(fail_under, max_drop, fail_if_worse)
    from reportgen import pipeline

    say = (lambda message: None) if quiet else (lambda message: click.echo(message, err=True))
    _gated(
        lambda: pipeline.run_render(
            run_dir,
            formats=_formats(formats),
            title=title,
            templates=templates,
            data_dir=data_dir,
            say=say,
            command=_command(),
            arguments=_arguments(),
            baseline=baseline,
            run_gates=gates,
        ),
        run_dir,
        quiet,
    )


@main.command(epilog=EXIT_CODES)
@click.argument("run_dirs", nargs=-1, required=True, type=existing_dir, metavar="RUN_DIR...")
@_option(
    "--out",
    type=out_dir,
    required=True,
    metavar="SITE_DIR",
    help="The site folder (index.html, index.json, runs/<name>/), swapped in when complete: "
    "a failure leaves the previous site whole.",
)
@_option("--title", default=None, help="The index page's title.  [default: reportgen runs]")
@_option(
    "--templates",
    type=existing_dir,
    default=None,
    metavar="DIR",
    help="Your templates, searched before the built-in ones (e.g. your own _site_runs.html.j2).",
)
@verbosity
def site(run_dirs, out, title, templates, verbose, quiet):
    """A static site of finished runs (folders from reportgen build): one index of them all,
    newest first, and each run's report, PDF, figures and metrics. Open index.html, or
    serve the folder as it is; a run no longer given leaves the site."""
    _setup(verbose, quiet)
    from reportgen import site as site_stage

    index = site_stage.build(run_dirs, out, title=title, templates=templates)
    if not quiet:
        click.echo(f"wrote {out}/ ({len(index.rows)} runs): open {out}/{site_stage.INDEX_HTML}", err=True)


if __name__ == "__main__":  # pragma: no cover
    main()
