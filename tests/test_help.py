"""The command line as a newcomer meets it: help, environment variables, refusals and wording."""

from __future__ import annotations

import importlib
import logging
import subprocess
import sys
from pathlib import Path

import click
import pytest

from reportgen.cli import main
from reportgen.pipeline.settings import Timer
from reportgen.report.filters import article

main_module = importlib.import_module("reportgen.cli.main")  # the package exports the group as `main`
COMMANDS = sorted(main.commands)
TRAINING = ["--epochs", "--batch-size", "--lr", "--momentum", "--wd", "--seed", "--kvstore", "--resume"]
VALUES = {"--epochs": "5", "--batch-size": "50", "--lr": "0.1", "--momentum": "0.5", "--wd": "0"}
VALUES |= {"--seed": "7", "--kvstore": "local", "--train-limit": "2000"}


def one_line_error(result, text: str) -> None:
    assert result.exit_code == 2, result.output
    assert result.stderr.strip() == f"error: {text}", result.stderr


# -- help -------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", COMMANDS)
def test_every_option_says_what_it_does_and_its_default(name):
    """Each option's help is one line of its own words; where the option has a default (it is
    neither required nor a switch that is off unless given), the help names it."""
    command = main.commands[name]
    ctx = click.Context(command, info_name=name)
    for param in command.params:
        if not isinstance(param, click.Option) or param.name == "help":
            continue
        record = param.get_help_record(ctx)
        assert record is not None, param.name
        words = record[1].split("  [")[0]
        assert len(words) > 10 and "\n" not in param.help, (name, param.name, param.help)
        switch = param.is_flag and not param.count
        if not param.required and not switch:
            assert "default: " in record[1], (name, param.name, record[1])


def test_the_same_option_reads_alike_where_it_means_the_same():
    """Shared options have one help everywhere; --ctx and --title differ where they do."""
    helps: dict[str, set[str]] = {}
    for command in main.commands.values():
        for param in command.params:
            if isinstance(param, click.Option):
                helps.setdefault(param.name, set()).add(param.help)
    differing = {name for name, texts in helps.items() if len(texts) > 1}
    # --ctx trains on several devices or runs a model on one; --title is the report's or the site's;
    # --out is each command's own folder; --data-dir is render's "where the data is now";
    # --templates names an example partial of its own; --model is optional in build alone.
    assert differing == {"ctx", "title", "out", "data_dir", "templates", "model"}, differing
    assert any("train" in text for text in helps["ctx"]) and any("run the model" in text for text in helps["ctx"])
    build, render = main.commands["build"], main.commands["render"]
    assert "[default: LeNet on MNIST]" in next(p.help for p in build.params if p.name == "title")
    assert "[default: the run's own]" in next(p.help for p in render.params if p.name == "title")
    for evaluating in ("evaluate", "inspect"):
        ctx_help = next(p.help for p in main.commands[evaluating].params if p.name == "ctx")
        assert "train" not in ctx_help, ctx_help


def test_bare_reportgen_shows_its_usage_and_commands_without_an_error(runner):
    result = runner.invoke(main, [])
    assert result.exit_code == 0
    assert result.stdout.startswith("Usage: ") and "Commands:" in result.stdout
    assert "error" not in result.output and result.stderr == ""
    for name in COMMANDS:
        assert f"\n  {name} " in result.stdout


def test_the_exit_codes_read_one_a_line(runner):
    text = runner.invoke(main, ["--help"]).output
    assert "  Exit codes:\n    0  success\n    1  internal failure (-v shows the traceback)\n" in text
    assert (
        "\n    3  a gate (--fail-under, --max-drop, --fail-if-worse) failed; the run folder is written first\n" in text
    )


def test_shell_completion_works():
    """click's completion, as README says to install it (the console script's name sets the variable)."""
    script = str(Path(sys.executable).parent / "reportgen")
    env = {"PATH": "/usr/bin:/bin", "_REPORTGEN_COMPLETE": "bash_source"}
    source = subprocess.run([script], env=env, capture_output=True, text=True)
    assert source.returncode == 0 and "_reportgen_completion()" in source.stdout
    env = {**env, "_REPORTGEN_COMPLETE": "bash_complete", "COMP_WORDS": "reportgen build --ep", "COMP_CWORD": "2"}
    complete = subprocess.run([script], env=env, capture_output=True, text=True)
    assert complete.stdout.split() == ["plain,--epochs"]


# -- environment variables ------------------------------------------------------------------


@pytest.fixture
def seen(monkeypatch):
    """What a command hands the pipeline, caught before any work."""
    from reportgen import pipeline

    caught: dict = {}

    def catch(settings, *args, **kwargs):
        caught["settings"] = settings
        raise click.exceptions.Exit(0)

    for name in ("run_train", "run_evaluate", "run_inspect", "run_build", "run_render"):
        monkeypatch.setattr(pipeline, name, catch)
    return caught


@pytest.mark.parametrize("value", ["worst,18", "worst 18", " worst, 18 "])
def test_a_list_in_an_environment_variable_takes_commas_or_spaces(runner, seen, tmp_path, value):
    args = ["--model", "m", "--out", str(tmp_path)]
    assert runner.invoke(main, ["inspect", *args], env={"REPORTGEN_CASE": value}).exit_code == 0
    assert seen["settings"].cases == ("worst", 18)
    formats = value.replace("worst", "html").replace("18", "pdf")
    assert runner.invoke(main, ["render", str(tmp_path)], env={"REPORTGEN_FORMAT": formats}).exit_code == 0
    assert seen["settings"].formats == ("html", "pdf")
    devices = value.replace("worst", "cpu:0").replace("18", "1")
    assert runner.invoke(main, ["evaluate", *args], env={"REPORTGEN_CTX": devices}).exit_code == 0
    assert seen["settings"].ctx == "cpu:0,1"


@pytest.mark.parametrize(
    "value, verbose", [("true", 1), ("yes", 1), ("on", 1), ("1", 1), ("2", 2), ("false", 0), ("no", 0), ("0", 0)]
)
def test_reportgen_verbose_takes_a_count_or_a_truth_value(runner, monkeypatch, tmp_path, value, verbose):
    levels = []

    def setup(verbose: int, quiet: bool) -> None:
        levels.append(verbose)
        raise click.exceptions.Exit(0)

    monkeypatch.setattr("reportgen.cli.commands.setup", setup)
    result = runner.invoke(main, ["train", "--out", str(tmp_path)], env={"REPORTGEN_VERBOSE": value})
    assert result.exit_code == 0 and levels == [verbose]


def test_a_verbosity_that_is_no_count_is_refused(runner, tmp_path):
    result = runner.invoke(main, ["train", "--out", str(tmp_path)], env={"REPORTGEN_VERBOSE": "loud"})
    assert result.exit_code == 2 and "REPORTGEN_VERBOSE" in result.stderr and "'loud'" in result.stderr


# -- options that cannot act are refused ------------------------------------------------------


@pytest.mark.parametrize("option", [*TRAINING, "--train-limit"])
def test_a_training_option_with_a_loaded_model_is_refused(runner, seen, tmp_path, option):
    given = [option] if option == "--resume" else [option, VALUES[option]]
    result = runner.invoke(main, ["build", "--model", "m", *given, "--out", str(tmp_path)])
    one_line_error(result, f"{option}: a training option, but --model loads a model that is already trained; drop it")
    assert seen == {}
    variable = "REPORTGEN_" + option[2:].replace("-", "_").upper()
    env = {variable: "true" if option == "--resume" else VALUES[option]}
    result = runner.invoke(main, ["build", "--model", "m", "--out", str(tmp_path)], env=env)
    one_line_error(
        result, f"{variable} ({option}): a training option, but --model loads a model that is already trained; drop it"
    )


def test_defaults_and_a_loaded_model_go_together(runner, seen, tmp_path):
    result = runner.invoke(main, ["build", "--model", "m", "--out", str(tmp_path)], env={"REPORTGEN_EPOCHS": ""})
    assert result.exit_code == 0 and seen["settings"].model == "m"


def test_evaluate_and_inspect_take_no_training_limit(runner, tmp_path):
    for command in ("evaluate", "inspect"):
        result = runner.invoke(main, [command, "--model", "m", "--train-limit", "9", "--out", str(tmp_path)])
        assert result.exit_code == 2 and "No such option '--train-limit'" in result.stderr


def test_resume_with_nothing_to_resume_is_refused(runner, tmp_path):
    for command in ("train", "build"):
        result = runner.invoke(main, [command, "--resume", "--out", str(tmp_path / "empty")])
        one_line_error(
            result,
            f"--resume: nothing to resume in {tmp_path / 'empty'}: no checkpoint; drop --resume to train from scratch",
        )
    assert not (tmp_path / "empty").exists()


# -- wording -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "n, said", [(8, "an"), (18, "an"), (11, "an"), (80, "an"), (800, "an"), (8000, "an"), (11000, "an")]
)
def test_an_before_a_number_read_with_a_vowel(n, said):
    assert article(n) == said


@pytest.mark.parametrize("n", [0, 1, 2, 3, 4, 5, 6, 7, 9, 10, 12, 100, 110, 180, 1100, 1800, 111000])
def test_a_before_the_others(n):
    assert article(n) == "a"


def test_an_inspected_eight_reads_an_8():
    import numpy as np
    from conftest import fake_inspection, make_record

    from reportgen.report import context

    inspection = fake_inspection(np.full(10, 8, np.int64))
    (case,) = context._inspection(inspection, {}, make_record().model)
    assert case["title"].startswith("Test image 0: an 8, predicted ")


def test_an_out_inside_a_file_says_so(runner):
    result = runner.invoke(main, ["build", "--out", "/dev/null/x"])
    one_line_error(result, "/dev/null/x: /dev/null is not a folder")


def test_a_first_run_keeps_matplotlibs_font_cache_note_to_itself():
    main_module.setup(0, False)
    assert not logging.getLogger("matplotlib.font_manager").isEnabledFor(logging.INFO)
    main_module.setup(2, False)
    assert logging.getLogger("matplotlib.font_manager").isEnabledFor(logging.DEBUG)
    main_module.setup(0, False)


def test_verbose_shows_each_stage_with_its_time_and_settings(caplog):
    caplog.set_level(logging.DEBUG, logger="reportgen")
    timer = Timer()
    with timer.stage("data", test_limit=500, data_dir="mnist"):
        pass
    (record,) = [r for r in caplog.records if r.name == "reportgen.pipeline.settings"]
    assert record.levelno == logging.DEBUG
    assert record.getMessage() == f"data: {timer.seconds['data']:.2f} s (test_limit 500, data_dir mnist)"


def test_the_readme_documents_every_option_and_how_to_set_it():
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    for command in main.commands.values():
        for param in command.params:
            if isinstance(param, click.Option):
                long = max(param.opts, key=len)
                assert f"`{long}" in readme or f"`{param.opts[0]}`, `{long}`" in readme, long
    for said in ("REPORTGEN_CASE='worst 18'", "REPORTGEN_VERBOSE", "REPORTGEN_DIST_TIMEOUT", "_REPORTGEN_COMPLETE"):
        assert said in readme, said
    assert "`--version`" in readme and "for render, where the run's files are now" in readme
