"""The command line: help, versions, environment variables, exit codes, and every error path."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import warnings

import mxnet as mx
import numpy as np
import pytest
from conftest import digest, one_line_error

from reportgen import __version__, notebook
from reportgen.cli import main
from reportgen.errors import Terminated

COMMANDS = ["train", "evaluate", "inspect", "build", "render"]


def copy_run(run, tmp_path):
    target = tmp_path / run.name
    shutil.copytree(run, target)
    return target


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_has_help_with_exit_codes(runner, command):
    result = runner.invoke(main, [command, "--help"])
    assert result.exit_code == 0
    text = " ".join(result.output.split())
    assert "Exit codes: 0 success 1 internal failure (-v shows the traceback) 2 bad input or usage" in text
    if command in ("build", "render"):  # the commands with gates
        assert "3 a gate (--fail-under, --max-drop, --fail-if-worse) failed" in text
        assert "--fail-if-worse" in text and "--baseline RUN_DIR" in text
    if command in ("train", "build"):  # the commands that may train in a distributed job
        assert "4 another node of the distributed job died or hung" in text
    assert "REPORTGEN_" in result.output
    # Only the commands that train can be a node of a distributed job.
    assert ("4 another" in text) == (command in ("train", "build"))


def test_the_main_help_lists_exit_code_3(runner):
    text = " ".join(runner.invoke(main, ["--help"]).output.split())
    assert "2 bad input or usage 3 a gate (--fail-under, --max-drop, --fail-if-worse) failed" in text


def test_version_and_fast_help():
    result = subprocess.run([sys.executable, "-m", "reportgen", "--version"], capture_output=True, text=True)
    assert result.stdout.strip() == f"reportgen, version {__version__}"
    # --help must not import the heavy libraries.
    probe = (
        "import sys; from reportgen.cli import main; "
        "print(sorted(m for m in ('mxnet', 'matplotlib', 'weasyprint') if m in sys.modules))"
    )
    assert subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True).stdout.strip() == "[]"


@pytest.mark.parametrize(
    "args, fragment",
    [
        (["build", "--epochs", "0"], "Invalid value for '--epochs'"),
        (["nonsense"], "No such command 'nonsense'"),
        (["evaluate", "--out", "x"], "Missing option '--model'"),
        (["build", "--no-such-option"], "No such option '--no-such-option'"),
        (["build", "--data-dir", "no/such/folder"], "'no/such/folder' does not exist"),
    ],
)
def test_usage_errors_are_one_line_and_exit_2(runner, args, fragment):
    result = runner.invoke(main, args)
    assert result.exit_code == 2, result.output
    lines = result.stderr.splitlines()
    assert len(lines) == 2 and lines[0].startswith("error: ") and fragment in lines[0], lines
    assert lines[1].startswith("try '") and lines[1].endswith(" -h' for help")
    assert "Usage:" not in result.output


def test_options_come_from_the_environment(runner, tmp_path):
    result = runner.invoke(main, ["train", "--out", str(tmp_path)], env={"REPORTGEN_EPOCHS": "0"})
    assert result.exit_code == 2 and "--epochs" in result.output
    result = runner.invoke(main, ["train", "--out", str(tmp_path)], env={"REPORTGEN_CTX": "gpu:3"})
    one_line_error(result, "--ctx gpu:3: no GPU 3")


def test_train_writes_a_loadable_model_and_a_record(trained_run):
    history = json.loads((trained_run / "history.json").read_text())
    assert len(history["epochs"]) == 1 and len(history["batches"]) == 30
    manifest = json.loads((trained_run / "manifest.json").read_text())
    assert manifest["data"]["files"] == notebook.MNIST_SHA256
    assert manifest["data"]["train_images"] == 3000
    assert manifest["arguments"]["epochs"] == 1 and manifest["training"]["learning_rate"] == 0.05
    assert {"python", "mxnet", "numpy"} <= manifest["versions"].keys()
    assert manifest["timings"]["train"] > 0
    for name, entry in manifest["files"].items():
        assert hashlib.sha256((trained_run / name).read_bytes()).hexdigest() == entry["sha256"]
    assert set(manifest["files"]) == {
        "model/lenet-symbol.json",
        "model/lenet-0001.params",
        "model/lenet-reportgen.json",
        "history.json",
    }
    assert manifest["model"]["pixels"] == "unit" and manifest["model"]["pixels_origin"] == "trained"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        net = mx.gluon.SymbolBlock.imports(
            str(trained_run / "model/lenet-symbol.json"), ["data"], str(trained_run / "model/lenet-0001.params")
        )
    assert net(mx.nd.zeros((1, 1, 28, 28))).shape == (1, 10)


def test_one_epoch_on_6000_images_reaches_90_percent(runner, tmp_path):
    out = tmp_path / "x"
    result = runner.invoke(
        main, ["train", "--epochs", "1", "--train-limit", "6000", "--test-limit", "1000", "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    history = json.loads((out / "history.json").read_text())
    assert history["epochs"][0]["test_accuracy"] >= 0.90
    assert "epoch 1/1" in result.stderr  # progress was shown


@pytest.mark.parametrize(
    "damage, fragment",
    [
        (
            lambda d: (d / "train-images-idx3-ubyte").write_bytes((d / "train-images-idx3-ubyte").read_bytes()[:5000]),
            "train-images-idx3-ubyte: truncated",
        ),
        (lambda d: (d / "train-labels-idx1-ubyte").write_bytes(b"\x01\x02\x08\x01"), "wrong magic number"),
        (lambda d: (d / "t10k-images-idx3-ubyte").unlink(), "no test images file"),
    ],
)
def test_bad_data_exits_2_and_keeps_the_previous_run(runner, trained_run, mnist_copy, tmp_path, damage, fragment):
    run = copy_run(trained_run, tmp_path)
    before = digest(run)
    damage(mnist_copy)
    result = runner.invoke(main, ["train", "--epochs", "1", "--data-dir", str(mnist_copy), "--out", str(run)])
    one_line_error(result, fragment)
    assert digest(run) == before
    assert not [p for p in run.parent.iterdir() if ".tmp-" in p.name]


def test_unpublished_data_warns_but_works(runner, mnist_copy, tmp_path):
    result = runner.invoke(
        main,
        [
            "train",
            "--epochs",
            "1",
            "--train-limit",
            "200",
            "--test-limit",
            "100",
            "--data-dir",
            str(mnist_copy),
            "--out",
            str(tmp_path / "r"),
        ],
    )
    assert result.exit_code == 0, result.output
    assert "warning:" in result.stderr and "not the published MNIST" in result.stderr


def test_bad_models_exit_2(runner, trained_run, tmp_path):
    one_line_error(
        runner.invoke(main, ["evaluate", "--model", str(tmp_path), "--out", str(tmp_path / "o")]),
        "no model here",
    )
    one_line_error(
        runner.invoke(main, ["evaluate", "--model", str(tmp_path / "nowhere" / "m"), "--out", str(tmp_path / "o")]),
        f"{tmp_path / 'nowhere' / 'm'}: no such file or folder",
    )
    run = copy_run(trained_run, tmp_path)
    params = run / "model" / "lenet-0001.params"
    params.write_bytes(params.read_bytes()[:5000])
    one_line_error(
        runner.invoke(main, ["evaluate", "--model", str(run), "--out", str(tmp_path / "o")]),
        "cannot load the parameters",
    )


@pytest.mark.parametrize("raised, code", [(KeyboardInterrupt, 130), (Terminated, 143)], ids=["ctrl-c", "sigterm"])
def test_an_interrupt_is_one_line_and_the_shells_exit_code(runner, monkeypatch, tmp_path, raised, code):
    from reportgen import pipeline

    def interrupted(*args, **kwargs):
        raise raised

    handlers = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    monkeypatch.setattr(pipeline, "run_train", interrupted)
    result = runner.invoke(main, ["train", "--out", str(tmp_path)])
    assert (result.exit_code, result.stderr, result.stdout) == (code, "error: interrupted\n", "")
    assert {s: signal.getsignal(s) for s in handlers} == handlers  # the test process's own, back


def test_an_interrupt_a_library_turns_into_another_error_is_still_an_interrupt(runner, monkeypatch, tmp_path):
    """pybind11 (matplotlib's C++ parts) catches a KeyboardInterrupt raised while it converts
    arguments and reports a TypeError: measured, Ctrl-C in the middle of `site`'s chart."""
    from reportgen import pipeline

    def converted(*args, **kwargs):
        try:
            os.kill(os.getpid(), signal.SIGTERM)
            for _ in range(10**6):  # the handler runs between two of these
                pass
        except BaseException as e:
            raise TypeError("affine_transform(): incompatible function arguments") from e

    monkeypatch.setattr(pipeline, "run_train", converted)
    result = runner.invoke(main, ["train", "--out", str(tmp_path)])
    assert (result.exit_code, result.stderr) == (143, "error: interrupted\n")


def test_an_internal_failure_exits_1_with_one_line(runner, monkeypatch, tmp_path):
    from reportgen import pipeline

    def broken(*args, **kwargs):
        raise ZeroDivisionError("division by zero")

    monkeypatch.setattr(pipeline, "run_train", broken)
    result = runner.invoke(main, ["train", "--out", str(tmp_path)])
    assert result.exit_code == 1
    assert result.stderr.strip() == (
        "error: internal failure: ZeroDivisionError: division by zero (run with -v for the traceback)"
    )
    result = runner.invoke(main, ["train", "-v", "--out", str(tmp_path)])
    assert "Traceback" in result.stderr


def test_resume_through_the_cli_matches_an_uninterrupted_run(runner, tmp_path, caplog):
    """--resume says what it did (the log, on stderr in a terminal): resuming at epoch N,
    already at epoch N; past --epochs it is refused."""
    common = ["--train-limit", "1000", "--test-limit", "200"]
    b = tmp_path / "b"
    assert runner.invoke(main, ["train", "-q", "--epochs", "2", "--out", str(tmp_path / "a"), *common]).exit_code == 0
    assert runner.invoke(main, ["train", "-q", "--epochs", "1", "--out", str(b), *common]).exit_code == 0
    caplog.set_level(logging.INFO, logger="reportgen")
    result = runner.invoke(main, ["train", "--epochs", "2", "--resume", "--out", str(b), *common])
    assert result.exit_code == 0, result.output
    assert f"resuming at epoch 2 of 2 (the checkpoint of epoch 1 in {b / '.checkpoint'})" in caplog.messages
    # The model's training time: this run's training stage and the epoch the checkpoint brought.
    manifest, first = (json.loads((b / name).read_text()) for name in ("manifest.json", "history.json"))
    brought = first["epochs"][0]["seconds"] + first["epochs"][0]["eval_seconds"]
    assert manifest["trained_on"]["seconds"] == pytest.approx(manifest["timings"]["train"] + brought, abs=2e-3)
    a = mx.nd.load(str(tmp_path / "a/model/lenet-0002.params"))
    b2 = mx.nd.load(str(b / "model/lenet-0002.params"))
    assert a.keys() == b2.keys()
    assert all(np.array_equal(a[k].asnumpy(), b2[k].asnumpy()) for k in a)
    caplog.clear()
    result = runner.invoke(main, ["train", "--epochs", "2", "--resume", "--out", str(b), *common])
    assert result.exit_code == 0, result.output
    assert f"already at epoch 2 of 2 (the checkpoint in {b / '.checkpoint'}): nothing to train" in caplog.messages
    assert "epoch 1/" not in result.stderr and "epoch 2/" not in result.stderr  # no progress bar: nothing trained
    result = runner.invoke(main, ["train", "--epochs", "1", "--resume", "--out", str(b), *common])
    one_line_error(result, f"--epochs 1: the checkpoint in {b / '.checkpoint'} is already at epoch 2; give --epochs 2")
    assert (b / "model/lenet-0002.params").is_file()  # the run stays as it was


def test_an_out_that_is_a_file_is_refused_before_training(runner, tmp_path):
    taken = tmp_path / "taken"
    taken.write_text("mine")
    result = runner.invoke(main, ["build", "--out", str(taken)])
    assert result.exit_code == 2 and "is a file" in result.stderr
    assert "epoch" not in result.stderr and taken.read_text() == "mine"
    from reportgen import pipeline
    from reportgen.errors import ReportgenError

    with pytest.raises(ReportgenError, match="exists and is not a folder"):  # the API checks too
        pipeline.run_train(pipeline.RunSettings(out=taken))


def test_render_needs_no_mxnet(trained_run, tmp_path):
    """The report's own modules, and `reportgen render` of a finished run, never import mxnet."""
    probe = "import sys, reportgen.report.figures, reportgen.site, reportgen.pipeline; print('mxnet' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True).stdout.strip() == "False"


def test_library_chatter_stays_out_of_a_default_run(runner, monkeypatch, trained_run, tmp_path, caplog):
    """What WeasyPrint and fontTools log about fonts and optional libraries is not even
    recorded by default (their loggers' levels); -v lets their warnings through, -vv all."""
    import logging

    from reportgen.report import pdf

    render_pdf = pdf.render_pdf

    def chatty(*args, **kwargs):
        logging.getLogger("weasyprint").warning("Using fontTools instead of HarfBuzz-Subset for font")
        logging.getLogger("fontTools.subset").info("maxp pruned")
        return render_pdf(*args, **kwargs)

    def heard() -> set[tuple[str, int]]:
        return {(r.name, r.levelno) for r in caplog.records if r.name.startswith(("weasyprint", "fontTools"))}

    monkeypatch.setattr(pdf, "render_pdf", chatty)
    args = [
        "build",
        "--model",
        str(trained_run),
        "--test-limit",
        "200",
        "--format",
        "pdf",
        "--out",
        str(tmp_path / "r"),
    ]
    caplog.set_level(logging.DEBUG, logger="reportgen")
    assert runner.invoke(main, args).exit_code == 0
    assert heard() == set()
    caplog.clear()
    assert runner.invoke(main, [*args, "-v"]).exit_code == 0
    assert ("weasyprint", logging.WARNING) in heard() and ("fontTools.subset", logging.INFO) not in heard()
    caplog.clear()
    assert runner.invoke(main, [*args, "-vv"]).exit_code == 0
    assert ("fontTools.subset", logging.INFO) in heard()
