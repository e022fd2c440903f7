"""The options the commands share, each also settable as REPORTGEN_<OPTION>, and how
they become the pipeline's settings."""

from __future__ import annotations

import os
import re
from pathlib import Path

import click
from click.core import ParameterSource

from reportgen import notebook
from reportgen.errors import ReportgenError
from reportgen.net import distributed

ENV = "REPORTGEN_"


def option(*names: str, **kwargs):
    """A click option also settable as REPORTGEN_<OPTION>, shown in --help."""
    long_name = next(n for n in names if n.startswith("--"))
    envvar = ENV + long_name[2:].replace("-", "_").upper()
    return click.option(*names, envvar=envvar, show_envvar=True, **kwargs)


def stack(*decorators):
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


class Count(click.ParamType):
    """-v's count: repeated on the command line (-vv); in REPORTGEN_VERBOSE a number, or
    true/false, yes/no, on/off (true is -v)."""

    name = "count"
    _WORDS = {"true": 1, "yes": 1, "on": 1, "false": 0, "no": 0, "off": 0}

    def convert(self, value, param, ctx):
        if isinstance(value, int):
            return value
        text = str(value).strip().lower()
        if text in self._WORDS:
            return self._WORDS[text]
        if text.isdigit():
            return int(text)
        self.fail(f"{value!r}: expected a number of -v, or true or false", param, ctx)


verbosity = stack(
    option(
        "-v",
        "--verbose",
        count=True,
        type=Count(),
        help="More detail, as a count: -v each stage's time and settings and an internal error's traceback, "
        "-vv the libraries' logs too.  [default: 0]",
    ),
    option("-q", "--quiet", is_flag=True, help="Print only warnings and errors: no progress, no closing line."),
)

data_dir_option = option(
    "--data-dir",
    type=click.Path(exists=True, file_okay=False),
    default=None,
    help="Folder with the four MNIST IDX files, raw or .gz.  [default: the embedded data/mnist]",
)
train_limit_option = option(
    "--train-limit",
    type=click.IntRange(min=1),
    default=None,
    metavar="N",
    help="Train on the first N training images only.  [default: all]",
)
test_limit_option = option(
    "--test-limit",
    type=click.IntRange(min=1),
    default=None,
    metavar="N",
    help="Evaluate on the first N test images only.  [default: all]",
)
data_options = stack(data_dir_option, train_limit_option, test_limit_option)
# evaluate and inspect train nothing: a training limit could not act there.
test_data_options = stack(data_dir_option, test_limit_option)


class Devices(click.ParamType):
    """--ctx: auto, cpu, gpu, or a kind with device numbers (gpu:0,1). The numbers may be
    separated by commas or spaces, as every list in an environment variable."""

    name = "devices"

    def convert(self, value, param, ctx):
        kind, colon, ids = str(value).strip().partition(":")
        numbers = [part for part in re.split(r"[,\s]+", ids.strip()) if part]
        return f"{kind.strip()}{colon}{','.join(numbers)}"


def ctx_option(help: str):
    return option(
        "--ctx", type=Devices(), default="auto", show_default=True, metavar="auto|cpu|gpu|gpu:0,1|cpu:0,1", help=help
    )


TRAINING = ("epochs", "batch_size", "lr", "momentum", "wd", "seed", "kvstore", "resume")  # and train_limit

train_options = stack(
    option(
        "--epochs",
        type=click.IntRange(min=1),
        metavar="N",
        default=notebook.EPOCHS,
        show_default=True,
        help="Passes over the training images.",
    ),
    option(
        "--batch-size",
        type=click.IntRange(min=1),
        metavar="N",
        default=notebook.BATCH_SIZE,
        show_default=True,
        help="Images per training step, over all devices and workers.",
    ),
    option(
        "--lr",
        type=click.FloatRange(min=0, min_open=True),
        metavar="FLOAT",
        default=notebook.LEARNING_RATE,
        show_default=True,
        help="Learning rate of SGD.",
    ),
    option(
        "--momentum",
        type=click.FloatRange(0, 1, max_open=True),
        metavar="FLOAT",
        default=notebook.MOMENTUM,
        show_default=True,
        help="Momentum of SGD.",
    ),
    option(
        "--wd",
        type=click.FloatRange(min=0),
        metavar="FLOAT",
        default=notebook.WEIGHT_DECAY,
        show_default=True,
        help="Weight decay (L2 penalty) of SGD.",
    ),
    option(
        "--seed",
        type=int,
        metavar="INTEGER",
        default=notebook.SEED,
        show_default=True,
        help="Random seed of the initial weights and of each epoch's order of images.",
    ),
    ctx_option("Devices to train on; several train data-parallel. auto: every GPU, else the CPU."),
    option(
        "--kvstore",
        type=click.Choice(distributed.KVSTORES),
        default=distributed.DEFAULT_KVSTORE,
        show_default=True,
        help="Where gradients are summed: local or device on this machine; dist_sync or dist_device_sync "
        "over the workers of a distributed job (README: Training on several machines).",
    ),
    option(
        "--resume",
        is_flag=True,
        help="Continue from the checkpoint in --out (kept after every epoch).  [default: train from scratch]",
    ),
)


def model_option(required: bool):
    return option(
        "--model",
        metavar="PATH",
        required=required,
        help="A saved model: a run folder or its model/ folder, a checkpoint prefix DIR/NAME "
        "(NAME-symbol.json with the latest NAME-NNNN.params), or a NAME-NNNN.params file."
        + ("" if required else "  [default: train one]"),
    )


pixels_option = option(
    "--pixels",
    type=click.Choice(["unit", "raw"]),
    default=None,
    help="How images enter the network: unit divides by 255 (how reportgen trains), raw feeds "
    "0-255 (how the seed trained).  [default: what the model recorded, else unit]",
)


class CaseType(click.ParamType):
    """A --case: "worst" or a test-set index. In REPORTGEN_CASE, several are separated by
    commas or spaces ("worst,18")."""

    name = "worst|INDEX"

    def convert(self, value, param, ctx):
        from reportgen.run.inspection import parse_case

        if isinstance(value, int) or value == "worst":
            return value
        return parse_case(value)  # a DataError names --case and the value: one line, exit code 2

    def split_envvar_value(self, rv: str):
        return [part for part in re.split(r"[,\s]+", rv) if part]


case_option = option(
    "--case",
    "cases",
    type=CaseType(),
    multiple=True,
    default=("worst",),
    show_default=True,
    metavar="worst|INDEX",
    help="Test image to look inside; repeat for several. worst: the first image "
    "of the worst confusion, as the seed took.",
)

format_option = option(
    "--format",
    "formats",
    default="html,pdf",
    show_default=True,
    metavar="html,pdf",
    help="What to write: html, pdf or both.",
)


def title_option(default: str):
    return option("--title", default=None, help=f"The report's title.  [default: {default}]")


def templates_option(example: str):
    return option(
        "--templates",
        type=existing_dir,
        default=None,
        metavar="DIR",
        help=f"Your templates, searched before the built-in ones ({example}).  [default: the built-in templates/]",
    )


def report_options(title_default: str):
    return stack(
        format_option,
        title_option(title_default),
        templates_option("override one partial, keep the rest"),
    )


baseline_options = stack(
    option(
        "--baseline",
        type=existing_dir,
        default=None,
        metavar="RUN_DIR",
        help="A run to compare with on the same test images (its predictions.npz, or its model): "
        "the report gains a section 'Against the baseline'.  [default: none]",
    ),
    option(
        "--fail-under",
        type=click.FloatRange(0, 1),
        default=None,
        metavar="ACCURACY",
        help="Gate: exit 3 if the test accuracy is below this fraction (0.99 for 99%).  [default: no gate]",
    ),
    option(
        "--max-drop",
        type=click.FloatRange(min=0),
        default=None,
        metavar="POINTS",
        help="Gate: exit 3 if the accuracy is more than this many percentage points below the baseline's.  "
        "[default: no gate]",
    ),
    option(
        "--fail-if-worse",
        is_flag=True,
        help="Gate: exit 3 if McNemar's exact test (one-sided) says this run is worse than the baseline "
        "at the 5% level.",
    ),
)


def _output_file(ctx: click.Context, param: click.Parameter, value: str | None) -> Path | None:
    """A file to write at the end: refused now if it could not be (its folder missing, a
    folder in its place), not after the work."""
    if value is None:
        return None
    path = Path(value)
    if path.is_dir():
        raise click.BadParameter(f"{value}: is a folder; give a file")
    if not path.parent.is_dir():
        raise click.BadParameter(f"{value}: no folder {path.parent}")
    if not os.access(path.parent, os.W_OK):
        raise click.BadParameter(f"{value}: cannot write in {path.parent}")
    return path


summary_option = option(
    "--summary",
    metavar="FILE",
    default=None,
    callback=_output_file,
    help="Also write a short Markdown summary of the run here (for a merge request or a pull-request "
    "comment); under GitHub Actions it is appended to $GITHUB_STEP_SUMMARY as well.  "
    "[default: none; $GITHUB_STEP_SUMMARY where set]",
)

junit_option = option(
    "--junit",
    metavar="FILE",
    default=None,
    callback=_output_file,
    help="Also write a JUnit XML file here: one test case per gate, a failure for each failed one "
    "(written before exit code 3); no gate, an empty suite.  [default: none]",
)


def ci_outputs(summary: Path | None, junit: Path | None, run_folder: Path):
    """The CI files asked for, refused before any work if they cannot be written where given."""
    from reportgen.pipeline.ci import Outputs

    outputs = Outputs(summary=summary, junit=junit)
    outputs.check(run_folder)
    return outputs


def data_settings(data_dir, train_limit, test_limit):
    from reportgen.pipeline.settings import DataSettings

    return DataSettings(data_dir=data_dir, train_limit=train_limit, test_limit=test_limit)


def train_config(epochs, batch_size, lr, momentum, wd, seed, kvstore):
    from reportgen.net.train import TrainConfig

    return TrainConfig(
        epochs=epochs,
        batch_size=batch_size,
        learning_rate=lr,
        momentum=momentum,
        weight_decay=wd,
        seed=seed,
        kvstore=kvstore,
    )


def arguments() -> dict[str, object]:
    """The options as the command received them, for the run record."""
    params = click.get_current_context().params
    return {k: str(v) if isinstance(v, Path) else v for k, v in params.items()}


def command_line() -> str:
    return click.get_current_context().meta.get("reportgen.command", "reportgen")


def formats(value: str) -> tuple[str, ...]:
    """--format as a tuple: commas or spaces between the names, as every list in an environment variable."""
    return tuple(part.lower() for part in re.split(r"[,\s]+", value) if part)


def given(name: str) -> str | None:
    """How the user gave an option: "--epochs" on the command line, "REPORTGEN_EPOCHS" in the
    environment; None if it was left at its default."""
    ctx = click.get_current_context()
    param = next(p for p in ctx.command.params if p.name == name)
    source = ctx.get_parameter_source(name)
    if source == ParameterSource.COMMANDLINE:
        return max(param.opts, key=len)
    if source == ParameterSource.ENVIRONMENT:
        return f"{param.envvar} ({max(param.opts, key=len)})"
    return None


def refuse(names: tuple[str, ...], why: str) -> None:
    """An option that cannot act is refused, in one line naming it and why, not ignored."""
    for name in names:
        shown = given(name)
        if shown is not None:
            raise ReportgenError(f"{shown}: {why}; drop it")


def gates(fail_under, max_drop, fail_if_worse):
    """The gates asked for (the pipeline refuses those needing a baseline without one, before any work)."""
    from reportgen.run.gates import Gates

    return Gates(fail_under=fail_under, max_drop=max_drop, fail_if_worse=fail_if_worse)
