"""The commands: parse options into the pipeline's settings, call one pipeline function,
say what it wrote. Exit codes and one-line errors: cli.main and reportgen.errors."""

from __future__ import annotations

import socket
from pathlib import Path
from typing import TYPE_CHECKING

import click

from reportgen.cli.main import main, setup
from reportgen.cli.options import (
    TRAINING,
    arguments,
    baseline_options,
    case_option,
    ci_outputs,
    command_line,
    ctx_option,
    data_options,
    data_settings,
    existing_dir,
    gates,
    junit_option,
    model_option,
    option,
    out_dir,
    pixels_option,
    refuse,
    report_options,
    summary_option,
    templates_option,
    test_data_options,
    train_config,
    train_options,
    verbosity,
)
from reportgen.cli.options import formats as parse_formats
from reportgen.errors import GATE_FAILED, NODE_LOST, exit_codes
from reportgen.run.record import TITLE

if TYPE_CHECKING:
    from reportgen.pipeline import Written
    from reportgen.pipeline.ci import Outputs


def done(written: Written | None, quiet: bool, outputs: Outputs | None = None) -> None:
    """Say what a command wrote, in one line, and close with what it measured, if it evaluated;
    warn where its data is not the published MNIST; write what CI reads of it (--summary,
    --junit, $GITHUB_STEP_SUMMARY)."""
    if written is None:  # a worker of a distributed job other than rank 0: it wrote nothing
        return
    if not written.data.published_mnist:
        click.echo(
            f"warning: {written.data.dir or 'data/mnist'}: these files are not the published MNIST "
            f"(their SHA-256 differ); the seed's numbers may not compare",
            err=True,
        )
    for line in written.warnings:  # said even with -q, like the data's warning
        click.echo(f"warning: {line}", err=True)
    if not quiet:
        # In a distributed job, rank 0 is whichever worker registered first: say which machine.
        where = f" on {socket.gethostname()}" if written.workers else ""
        click.echo(
            f"wrote {written.folder}/{where} ({', '.join(written.entries)}) in {written.seconds:.1f} s", err=True
        )
        if written.evaluation is not None:
            click.echo(result(written), err=True)
    from reportgen.pipeline import ci

    command = click.get_current_context().info_name or "reportgen"
    ci.write(command, written, outputs or ci.Outputs(), warn=lambda line: click.echo(line, err=True))


def result(written: Written) -> str:
    """The closing line: the test accuracy and kappa, and against a baseline what changed."""
    assert written.evaluation is not None
    overall, n = written.evaluation.overall, written.evaluation.n_test
    line = f"test accuracy {overall.accuracy:.2%}, kappa {overall.kappa:.4f} ({n:,} test images)"
    c = written.comparison
    if c is not None:
        line += (
            f"; against {c.baseline}: {100 * c.accuracy_difference:+.2f} points, {c.counts.fixed:,} fixed, "
            f"{c.counts.broken:,} broken (McNemar p = {c.mcnemar_exact_p_value:.2g})"
        )
    return line


def gated(written: Written | None, quiet: bool, outputs: Outputs | None = None) -> None:
    """Say what a command wrote and write what CI reads of it, then enforce its gates: the run
    folder, the summary and the JUnit file are written either way, so a failed gate's one
    line (exit code 3) comes after them."""
    from reportgen.run.gates import enforce

    done(written, quiet, outputs)
    if written is not None:
        enforce(written.verdicts)


@main.command(short_help="Train the seed's LeNet on MNIST and save the model.", epilog=exit_codes(NODE_LOST))
@data_options
@train_options
@option(
    "--out",
    type=out_dir,
    default=Path("output"),
    show_default=True,
    help="Run folder to write model/, history.json and manifest.json into (and the checkpoint, .checkpoint/).",
)
@summary_option
@verbosity
def train(out, data_dir, train_limit, test_limit, ctx, resume, summary, verbose, quiet, **hyper):
    """Train the seed's LeNet and save it in MXNet's export format."""
    setup(verbose, quiet)
    outputs = ci_outputs(summary, None, out)
    from reportgen import pipeline
    from reportgen.cli.progress import EpochBar

    run = pipeline.RunSettings(
        out=out,
        data=data_settings(data_dir, train_limit, test_limit),
        train=train_config(**hyper),
        ctx=ctx,
        resume=resume,
        arguments=arguments(),
        command=command_line(),
    )
    done(pipeline.run_train(run, progress=None if quiet else EpochBar(), say=saying(quiet)), quiet, outputs)


run_ctx_option = ctx_option("Device to run the model on (of several, the first). auto: the first GPU, else the CPU.")


def saying(quiet: bool):
    """How a command tells the user what it is doing: on stderr, unless -q."""
    return (lambda message: None) if quiet else (lambda message: click.echo(message, err=True))


@main.command(short_help="Evaluate a saved model on the test set.", epilog=exit_codes())
@model_option(required=True)
@pixels_option
@test_data_options
@run_ctx_option
@option("--out", type=out_dir, required=True, help="Folder to write metrics.json and predictions.npz into.")
@summary_option
@verbosity
def evaluate(model, pixels, data_dir, test_limit, ctx, out, summary, verbose, quiet):
    """Evaluate a saved model on the test set: caret's statistics, worst confusion, calibration."""
    setup(verbose, quiet)
    outputs = ci_outputs(summary, None, out)
    from reportgen import pipeline

    run = pipeline.RunSettings(
        out=out,
        data=data_settings(data_dir, None, test_limit),
        ctx=ctx,
        model=model,
        pixels=pixels,
        arguments=arguments(),
        command=command_line(),
    )
    done(pipeline.run_evaluate(run, say=saying(quiet)), quiet, outputs)


@main.command(short_help="Every layer's output for chosen test images.", epilog=exit_codes())
@model_option(required=True)
@pixels_option
@case_option
@test_data_options
@run_ctx_option
@option("--out", type=out_dir, required=True, help="Folder to write inspection.npz into.")
@summary_option
@verbosity
def inspect(model, pixels, cases, data_dir, test_limit, ctx, out, summary, verbose, quiet):
    """Every layer's output for chosen test images, through one multi-output graph."""
    setup(verbose, quiet)
    outputs = ci_outputs(summary, None, out)
    from reportgen import pipeline

    run = pipeline.RunSettings(
        out=out,
        data=data_settings(data_dir, None, test_limit),
        ctx=ctx,
        model=model,
        pixels=pixels,
        cases=tuple(cases),
        arguments=arguments(),
        command=command_line(),
    )
    done(pipeline.run_inspect(run, say=saying(quiet)), quiet, outputs)


@main.command(
    short_help="Everything: train (or load --model), evaluate, inspect, report.",
    epilog=exit_codes(GATE_FAILED, NODE_LOST),
)
@data_options
@train_options
@model_option(required=False)
@pixels_option
@case_option
@report_options(TITLE)
@baseline_options
@option(
    "--out",
    type=out_dir,
    default=Path("output"),
    show_default=True,
    help="Run folder; the previous report there stays whole until the new one is complete.",
)
@summary_option
@junit_option
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
    summary,
    junit,
    verbose,
    quiet,
    **hyper,
):
    """Train (or load --model), evaluate, inspect, draw and render the report: the whole pipeline.

    With --baseline RUN_DIR the report compares this run with that one on the same test
    images; the gates then fail the command (exit 3) after the report is written.
    """
    setup(verbose, quiet)
    if model is not None:
        refuse((*TRAINING, "train_limit"), "a training option, but --model loads a model that is already trained")
    asked = gates(fail_under, max_drop, fail_if_worse)
    outputs = ci_outputs(summary, junit, out)
    from reportgen import pipeline
    from reportgen.cli.progress import EpochBar

    run = pipeline.RunSettings(
        out=out,
        data=data_settings(data_dir, train_limit, test_limit),
        train=train_config(**hyper),
        ctx=ctx,
        resume=resume,
        model=model,
        pixels=pixels,
        cases=tuple(cases),
        title=title or TITLE,
        formats=parse_formats(formats),
        templates=templates,
        baseline=baseline,
        gates=asked,
        arguments=arguments(),
        command=command_line(),
    )
    gated(pipeline.run_build(run, progress=None if quiet else EpochBar(), say=saying(quiet)), quiet, outputs)


@main.command(short_help="A finished run's report again, without training.", epilog=exit_codes(GATE_FAILED))
@click.argument("run_dir", type=existing_dir)
@report_options("the run's own")
@option(
    "--data-dir",
    type=click.Path(exists=True, file_okay=False),
    default=None,
    help="Where the run's MNIST files are now (the report shows digits).  [default: where it was built from]",
)
@baseline_options
@summary_option
@junit_option
@verbosity
def render(
    run_dir,
    formats,
    title,
    templates,
    data_dir,
    baseline,
    fail_under,
    max_drop,
    fail_if_worse,
    summary,
    junit,
    verbose,
    quiet,
):
    """Render a finished run's report again from its folder, without training, the model or mxnet.

    With --baseline RUN_DIR (a run with predictions.npz: still no mxnet) the report compares
    the two runs, and metrics.json records the comparison; the gates then apply as for build.
    """
    setup(verbose, quiet)
    asked = gates(fail_under, max_drop, fail_if_worse)
    outputs = ci_outputs(summary, junit, run_dir)
    from reportgen import pipeline

    settings = pipeline.RenderSettings(
        run_dir=run_dir,
        formats=parse_formats(formats),
        title=title,
        templates=templates,
        data_dir=data_dir,
        baseline=baseline,
        gates=asked,
        arguments=arguments(),
        command=command_line(),
    )
    gated(pipeline.run_render(settings, say=saying(quiet)), quiet, outputs)


@main.command(short_help="One static site of many finished runs.", epilog=exit_codes())
@click.argument("run_dirs", nargs=-1, required=True, type=existing_dir, metavar="RUN_DIR...")
@option(
    "--out",
    type=out_dir,
    required=True,
    metavar="SITE_DIR",
    help="The site folder (index.html, index.json, runs/<name>/), swapped in when complete: "
    "a failure leaves the previous site whole.",
)
@option("--title", default=None, help="The index page's title.  [default: reportgen runs]")
@templates_option("e.g. your own _site_runs.html.j2")
@verbosity
def site(run_dirs, out, title, templates, verbose, quiet):
    """A static site of finished runs (folders from reportgen build): one index of them all,
    newest first, and each run's report, PDF, figures and metrics. Open index.html, or
    serve the folder as it is; a run no longer given leaves the site."""
    setup(verbose, quiet)
    from reportgen import site as site_stage

    index = site_stage.build(run_dirs, out, title=title, templates=templates, command=command_line())
    if not quiet:
        runs = f"{len(index.rows)} run{'' if len(index.rows) == 1 else 's'}"
        click.echo(f"wrote {out}/ ({runs}): open {out}/{site_stage.INDEX_HTML}", err=True)


if __name__ == "__main__":  # pragma: no cover
    main()
