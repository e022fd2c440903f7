"""The whole pipeline through the command line: build, render, evaluate, inspect."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from conftest import digest

from reportgen import layers, seed
from reportgen.cli import main

QUICK = ["--epochs", "1", "--train-limit", "3000", "--test-limit", "1000"]


def refuse_nan(text: str):
    raise AssertionError(f"{text} in JSON: NaN must be written as null")


def read_json(path):
    return json.loads(path.read_text(), parse_constant=refuse_nan)


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    out = tmp_path_factory.mktemp("build") / "report"
    result = CliRunner().invoke(main, ["build", *QUICK, "--out", str(out)])
    assert result.exit_code == 0, result.output
    return out


def test_build_writes_every_file_and_the_manifest_matches_them(built):
    for name in (
        "report.html",
        "report.pdf",
        "metrics.json",
        "history.json",
        "inspection.npz",
        "model/lenet-symbol.json",
        "model/lenet-0001.params",
        "manifest.json",
    ):
        assert (built / name).is_file(), name
    figures = {p.name for p in (built / "figures").iterdir()}
    assert {"confusion.svg", "worst_cases.svg", "kernels_conv1.svg", "inside_0_softm.svg"} <= figures
    manifest = read_json(built / "manifest.json")
    on_disk = {name for name in digest(built) if name != "manifest.json" and not name.startswith(".")}
    assert set(manifest["files"]) == on_disk
    for name, entry in manifest["files"].items():
        payload = (built / name).read_bytes()
        assert entry == {"sha256": hashlib.sha256(payload).hexdigest(), "size": len(payload)}
    assert manifest["command"].startswith("reportgen build")
    assert manifest["arguments"]["train_limit"] == 3000
    assert manifest["data"]["files"] == seed.MNIST_SHA256
    assert {"data", "train", "evaluate", "inspect", "figures", "render"} <= manifest["timings"].keys()
    assert manifest["contexts"] == ["cpu(0)"]
    assert not list(built.parent.glob(".report.tmp-*"))


def test_metrics_json_holds_the_evaluation(built):
    metrics = read_json(built / "metrics.json")
    assert metrics["n_test"] == 1000
    table = np.array(metrics["confusion_matrix"])
    assert table.shape == (10, 10) and table.sum() == 1000
    assert metrics["overall"]["accuracy"] == pytest.approx(np.trace(table) / 1000)
    history = read_json(built / "history.json")
    assert metrics["overall"]["accuracy"] == pytest.approx(history["epochs"][-1]["test_accuracy"])
    worst = metrics["worst_pair"]
    off = table - np.diag(np.diag(table))
    assert worst["count"] == off.max() == table[worst["prediction"], worst["reference"]]
    assert len(worst["indices"]) == worst["count"] == len(worst["probabilities"])
    assert len(metrics["by_class"]) == 10 and len(metrics["calibration"]["bins"]) == 10
    assert len(metrics["top_errors"]) == 20


def test_inspection_npz_follows_the_worst_case(built):
    metrics = read_json(built / "metrics.json")
    with np.load(built / "inspection.npz") as saved:
        assert saved["indices"].tolist() == [metrics["worst_pair"]["indices"][0]]
        assert saved["labels"][0] == metrics["worst_pair"]["reference"]
        assert saved["predictions"][0] == metrics["worst_pair"]["prediction"]
        for layer in layers.LAYERS:
            assert saved[layer].shape == (1, *layers.SHAPES[layer])


def test_render_gives_the_same_html_without_the_model(built, tmp_path, runner):
    run = tmp_path / "run"
    shutil.copytree(built, run)
    shutil.rmtree(run / "model")  # render must not need it
    (run / "report.html").unlink()
    result = runner.invoke(main, ["render", str(run), "--format", "html"])  # the PDF is tested elsewhere
    assert result.exit_code == 0, result.output
    assert (run / "report.html").read_bytes() == (built / "report.html").read_bytes()
    manifest = read_json(run / "manifest.json")
    assert manifest["rendered"]["command"].startswith("reportgen render")
    assert manifest["files"]["report.html"]["sha256"] == hashlib.sha256((run / "report.html").read_bytes()).hexdigest()
    assert manifest["files"]["report.pdf"] == read_json(built / "manifest.json")["files"]["report.pdf"]


def test_a_failing_build_leaves_the_previous_report_whole(built, tmp_path, runner):
    run = tmp_path / "run"
    shutil.copytree(built, run)
    before = digest(run)
    broken = tmp_path / "templates"
    broken.mkdir()
    (broken / "_summary.html.j2").write_text("{{ no_such_value }}")
    result = runner.invoke(
        main, ["build", "--model", str(run), "--test-limit", "1000", "--templates", str(broken), "--out", str(run)]
    )
    assert result.exit_code == 2
    assert "_summary.html.j2" in result.stderr and "no_such_value" in result.stderr
    assert digest(run) == before
    assert not [p.name for p in tmp_path.iterdir() if ".tmp-" in p.name]


def test_one_partial_overridden_the_rest_as_shipped(built, tmp_path, runner):
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "_summary.html.j2").write_text(
        '<section id="summary"><h2>Our summary</h2><p>Accuracy {{ "%.4f" | format(headline.accuracy) }}</p></section>'
    )
    out = tmp_path / "out"
    result = runner.invoke(
        main,
        [
            "build",
            "--model",
            str(built),
            "--test-limit",
            "1000",
            "--format",
            "html",
            "--templates",
            str(mine),
            "--out",
            str(out),
        ],
    )
    assert result.exit_code == 0, result.output
    html = (out / "report.html").read_text()
    accuracy = read_json(built / "metrics.json")["overall"]["accuracy"]
    assert f"<p>Accuracy {accuracy:.4f}</p>" in html
    assert "Our summary" in html and 'id="evaluation"' in html and "test accuracy, this run" not in html
    assert not (out / "report.pdf").exists()


def test_build_with_a_saved_model_keeps_its_history(built, tmp_path, runner):
    out = tmp_path / "again"
    result = runner.invoke(
        main,
        [
            "build",
            "-q",
            "--model",
            str(built / "model"),
            "--test-limit",
            "1000",
            "--format",
            "html",
            "--case",
            "7",
            "--case",
            "worst",
            "--out",
            str(out),
        ],
    )
    assert result.exit_code == 0, result.output
    assert read_json(out / "history.json") == read_json(built / "history.json")
    assert read_json(out / "metrics.json")["confusion_matrix"] == read_json(built / "metrics.json")["confusion_matrix"]
    manifest = read_json(out / "manifest.json")
    assert manifest["model"]["source"] == str(built / "model") and manifest["training"]["epochs"] == 1
    with np.load(out / "inspection.npz") as saved:
        assert saved["indices"][0] == 7 and len(saved["indices"]) == 2


def test_evaluate_and_inspect_commands(built, tmp_path, runner):
    out = tmp_path / "e"
    result = runner.invoke(main, ["evaluate", "-q", "--model", str(built), "--test-limit", "1000", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert read_json(out / "metrics.json") == read_json(built / "metrics.json")
    result = runner.invoke(
        main,
        [
            "inspect",
            "-q",
            "--model",
            str(built),
            "--test-limit",
            "1000",
            "--case",
            "worst",
            "--case",
            "3",
            "--out",
            str(out),
        ],
    )
    assert result.exit_code == 0, result.output
    with np.load(out / "inspection.npz") as saved, np.load(built / "inspection.npz") as first:
        assert saved["indices"].tolist() == [first["indices"][0], 3]
        assert np.array_equal(saved["act2"][0], first["act2"][0])
    assert set(read_json(out / "manifest.json")["files"]) == {"inspection.npz"}  # this command's files


@pytest.mark.parametrize(
    "args, fragment",
    [
        (["--case", "1000"], "--case 1000: the test set holds 1000 images (0-999)"),
        (["--case", "seven"], "--case 'seven'"),
        (["--format", "docx"], "--format docx: choose html, pdf or html,pdf"),
    ],
)
def test_bad_build_options_exit_2(built, tmp_path, runner, args, fragment):
    result = runner.invoke(
        main, ["build", "--model", str(built), "--test-limit", "1000", *args, "--out", str(tmp_path / "x")]
    )
    assert result.exit_code == 2, result.output
    assert result.stderr.startswith("error: ") and fragment in result.stderr
    assert not (tmp_path / "x").exists()


def test_render_refuses_a_folder_that_is_not_a_run(tmp_path, runner):
    result = runner.invoke(main, ["render", str(tmp_path)])
    assert result.exit_code == 2
    assert result.stderr.strip() == (
        f"error: {tmp_path}: not a finished reportgen run (no manifest.json); make one with reportgen build"
    )


def test_a_template_the_sandbox_refuses_leaves_the_previous_report_whole(built, tmp_path, runner):
    run = tmp_path / "run"
    shutil.copytree(built, run)
    before = digest(run)
    mine = tmp_path / "templates"
    mine.mkdir()
    (mine / "_summary.html.j2").write_text("{{ cycler.__init__.__globals__.os.popen('id').read() }}\n")
    result = runner.invoke(main, ["render", "-q", str(run), "--templates", str(mine)])
    assert result.exit_code == 2
    (line,) = result.stderr.splitlines()
    assert line.startswith("error: ") and "_summary.html.j2, line 1: refused by the sandbox" in line
    assert "uid=" not in result.output
    assert digest(run) == before


def test_the_report_names_no_path_of_the_building_machine(built, tmp_path, runner, monkeypatch):
    """Typed relative paths are shown as typed; the embedded data as data/mnist (embedded)."""
    from pypdf import PdfReader

    shutil.copytree(built, tmp_path / "first")
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(main, ["build", "-q", "--model", "first", "--test-limit", "1000", "--out", "again"])
    assert result.exit_code == 0, result.output
    html = (tmp_path / "again" / "report.html").read_text()
    pdf = PdfReader(tmp_path / "again" / "report.pdf")
    text = "\n".join(page.extract_text() for page in pdf.pages) + str(pdf.metadata)
    checkout = str(Path(__file__).resolve().parent.parent)
    for shown in (html, text):
        assert str(tmp_path) not in shown and checkout not in shown
        assert "data/mnist (embedded)" in shown
    assert "loaded from first, epoch 1" in html
    manifest = read_json(tmp_path / "again" / "manifest.json")
    assert manifest["model"]["source"] == "first" and manifest["data"]["dir"] is None
    assert manifest["arguments"]["model"] == "first"
