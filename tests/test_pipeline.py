"""The whole pipeline through the command line: build, render, evaluate, inspect."""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from conftest import digest

from reportgen import data, layers, notebook
from reportgen.cli import main
from reportgen.report.filters import fmt_seconds

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
        "attributions.npz",
        "features.npz",
        "model/lenet-symbol.json",
        "model/lenet-0001.params",
        "manifest.json",
    ):
        assert (built / name).is_file(), name
    figures = {p.name for p in (built / "figures").iterdir()}
    assert {"confusion.svg", "worst_cases.svg", "kernels_conv1.svg", "inside_0_softm.svg"} <= figures
    manifest = read_json(built / "manifest.json")
    on_disk = {name for name in digest(built) if name != "manifest.json" and not name.startswith(".")}
    # report.pdf carries manifest.json, so its sidecar vouches for it (tests/test_pdfa.py)
    assert set(manifest["files"]) == on_disk - {"report.pdf", "report.pdf.sha256"}
    assert manifest["pdf"]["checksum"] == "report.pdf.sha256"
    for name, entry in manifest["files"].items():
        payload = (built / name).read_bytes()
        assert entry == {"sha256": hashlib.sha256(payload).hexdigest(), "size": len(payload)}
    assert manifest["command"].startswith("reportgen build")
    assert manifest["arguments"]["train_limit"] == 3000
    assert manifest["data"]["files"] == notebook.MNIST_SHA256
    assert {"data", "train", "evaluate", "inspect", "explain", "figures", "render"} <= manifest["timings"].keys()
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
    assert manifest["pdf"] == {**read_json(built / "manifest.json")["pdf"], "current": False}  # left as it was
    # The time said is this rendering's, not the build's the manifest still records.
    took = sum(manifest["rendered"]["timings"].values())
    wrote, closing = result.stderr.strip().splitlines()[-2:]
    assert wrote.endswith(f" in {took:.1f} s")
    # (not by comparing times: a loaded machine can make a rendering slower than the build was)
    assert "train" in manifest["timings"] and "train" not in manifest["rendered"]["timings"]
    overall = read_json(run / "metrics.json")["overall"]  # and the run's result, read again
    assert closing == f"test accuracy {overall['accuracy']:.2%}, kappa {overall['kappa']:.4f} (1,000 test images)"


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
    """`build --model` of a run trained on 3,000 images: every training figure is that run's,
    in the manifest, the report's sections, the console and a site of it; 60,000 nowhere."""
    out = tmp_path / "again"
    result = runner.invoke(
        main,
        [
            "build",
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
    first = read_json(built / "manifest.json")
    assert manifest["training"] == first["training"]
    assert manifest["trained_on"] == {"data": first["data"], "seconds": first["timings"]["train"]}
    assert manifest["trained_on"]["data"]["train_images"] == 3000
    # What this run read: the 3,000 training images the model learned from (the data figures
    # show them), the 1,000 test images it was evaluated on.
    assert (manifest["data"]["train_images"], manifest["data"]["test_images"]) == (3000, 1000)
    html = (out / "report.html").read_text()
    text = " ".join(re.sub(r"<[^>]+>", " ", html).split())
    assert "60,000 of 60,000" not in text and not re.search(r"(?<!of the )60,000 training images", text)
    assert "Training images 3,000 of 60,000" in text  # the summary
    assert f"Training time {fmt_seconds(first['timings']['train'])}" in text
    assert "3,000 training images of the 60,000 in the file, those the model learned from" in text  # data
    assert "1 epoch of batches of 100 over 3,000 of the 60,000 training images" in text  # training
    assert "on 3,000 of the 60,000 training images of these same files" in text  # reproducibility
    counts = np.bincount(data.load(train_limit=3000).train_y, minlength=10)
    rare = int(counts.argmin())
    assert f"the training set has the fewest {rare}s ({counts[rare]:,})" in text  # the class-count figure
    # The console: what was loaded and what it learned from, then the test accuracy.
    lines = result.stderr.strip().splitlines()
    assert lines[0].startswith(f"loaded lenet-symbol.json and lenet-0001.params from {built / 'model'} (epoch 1)")
    assert "pixels unit (as reportgen trained it)" in lines[0]
    assert lines[1].startswith("trained on 3,000 of the 60,000 training images, 1 epoch, in ")
    overall = read_json(out / "metrics.json")["overall"]
    assert lines[-1] == f"test accuracy {overall['accuracy']:.2%}, kappa {overall['kappa']:.4f} (1,000 test images)"
    # A site of it says the same.
    assert runner.invoke(main, ["site", "-q", str(out), "--out", str(tmp_path / "site")]).exit_code == 0
    (row,) = read_json(tmp_path / "site" / "index.json")["runs"]
    assert (row["train_images"], row["epochs"], row["training_seconds"]) == (3000, 1, first["timings"]["train"])
    assert "on 3,000 images" in (tmp_path / "site" / "index.html").read_text()


def test_evaluate_and_inspect_commands(built, tmp_path, runner):
    out = tmp_path / "e"
    result = runner.invoke(main, ["evaluate", "-q", "--model", str(built), "--test-limit", "1000", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert read_json(out / "metrics.json") == read_json(built / "metrics.json")
    assert (out / "predictions.npz").read_bytes() == (built / "predictions.npz").read_bytes()  # same bytes
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
    # This command's file, and those the evaluate before it wrote there, which the record keeps vouching for.
    listed = read_json(out / "manifest.json")["files"]
    assert set(listed) == {"inspection.npz", "attributions.npz", "features.npz", "metrics.json", "predictions.npz"}
    for name, entry in listed.items():
        assert entry["sha256"] == hashlib.sha256((out / name).read_bytes()).hexdigest(), name


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


# -- predictions.npz, the baseline and the gates -------------------------------------------

PAIR = ["--epochs", "1", "--test-limit", "500", "-q"]


def per_image(run: Path) -> dict[str, np.ndarray]:
    with np.load(run / "predictions.npz") as saved:
        return {name: saved[name] for name in saved.files}


def test_predictions_npz_holds_the_evaluations_arrays(built):
    import mxnet as mx

    from reportgen import data
    from reportgen.net import predict, saved
    from reportgen.run import evaluation

    kept = per_image(built)
    assert sorted(kept) == ["labels", "predictions", "probabilities"]
    assert kept["labels"].dtype == np.int64 and kept["predictions"].dtype == np.int64
    assert kept["probabilities"].dtype == np.float32 and kept["probabilities"].shape == (1000, 10)
    network = saved.load(saved.find(built), str(built), mx.cpu())
    dataset = data.load(test_limit=1000)
    # The model once more, in test-set order.
    again = evaluation.score(predict.probabilities(network, dataset.test_x, mx.cpu()), dataset.test_y)
    assert np.array_equal(kept["labels"], data.load(test_limit=1000).test_y)
    assert np.array_equal(kept["predictions"], again.predictions)
    assert np.array_equal(kept["probabilities"], again.probabilities)
    manifest = read_json(built / "manifest.json")
    assert (
        manifest["files"]["predictions.npz"]["sha256"]
        == hashlib.sha256((built / "predictions.npz").read_bytes()).hexdigest()
    )
    metrics = read_json(built / "metrics.json")
    assert "comparison" not in metrics and "gates" not in metrics  # none asked for


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    """A baseline (1 epoch on 2,000 images) and a run compared with it (1 epoch on 3,000),
    both on the first 500 test images."""
    root = tmp_path_factory.mktemp("pair")
    runner = CliRunner()
    base, run = root / "base", root / "run"
    result = runner.invoke(main, ["build", *PAIR, "--train-limit", "2000", "--out", str(base)])
    assert result.exit_code == 0, result.output
    result = runner.invoke(main, ["build", *PAIR, "--train-limit", "3000", "--baseline", str(base), "--out", str(run)])
    assert result.exit_code == 0, result.output
    return base, run


def test_the_comparison_counts_what_numpy_counts_from_both_predictions(pair):
    from scipy import stats

    base, run = pair
    before, after = per_image(base), per_image(run)
    assert np.array_equal(before["labels"], after["labels"])
    was, now = before["predictions"] == before["labels"], after["predictions"] == after["labels"]
    fixed, broken = int(np.sum(~was & now)), int(np.sum(was & ~now))
    comparison = read_json(run / "metrics.json")["comparison"]
    assert comparison["baseline"] == str(base)
    assert (comparison["fixed"], comparison["broken"]) == (fixed, broken)
    assert comparison["fixed_indices"] == np.flatnonzero(~was & now).tolist()
    assert comparison["baseline_accuracy"] == pytest.approx(was.mean(), abs=1e-15)
    assert comparison["accuracy_difference"] == pytest.approx(now.mean() - was.mean(), abs=1e-15)
    assert comparison["accuracy_difference_lower"] < comparison["accuracy_difference"]
    assert comparison["accuracy_difference"] < comparison["accuracy_difference_upper"]
    assert comparison["mcnemar_exact_p_value"] == pytest.approx(stats.binomtest(fixed, fixed + broken).pvalue)
    for row in comparison["by_class"]:  # sensitivity = recall of the digit, counted here
        c = row["class"]
        mine = np.mean(after["predictions"][after["labels"] == c] == c)
        theirs = np.mean(before["predictions"][before["labels"] == c] == c)
        assert row["sensitivity"] == pytest.approx(mine - theirs, abs=1e-12), c
    diff = np.array(comparison["confusion_difference"])
    assert diff.sum() == 0 and np.trace(diff) == fixed - broken
    html = (run / "report.html").read_text()
    assert html.index('id="evaluation"') < html.index('id="baseline"') < html.index('id="worst"')
    assert "Against the baseline" in html and f"{fixed} fixed" in html
    figures = {p.name for p in (run / "figures").iterdir()}
    assert {"baseline_classes.svg", "baseline_confusion.svg", "baseline_fixed.svg", "ranking.svg"} <= figures
    assert 'id="baseline"' not in (base / "report.html").read_text()  # a run without a baseline: no section


def test_render_with_a_baseline_needs_no_mxnet_and_gives_builds_html(pair, tmp_path):
    base, run = pair
    copy = tmp_path / "run"
    shutil.copytree(run, copy)
    shutil.rmtree(copy / "model")
    (copy / "report.html").unlink()
    script = (
        "import sys; sys.modules['mxnet'] = None\n"  # any import of mxnet now fails
        "from reportgen.cli import main\n"
        f"main(['render', '-q', {str(copy)!r}, '--baseline', {str(base)!r}, '--format', 'html'])\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert (copy / "report.html").read_bytes() == (run / "report.html").read_bytes()
    assert read_json(copy / "metrics.json")["comparison"] == read_json(run / "metrics.json")["comparison"]


def test_a_baseline_with_only_its_model_is_predicted_afresh(pair, tmp_path, runner):
    base, run = pair
    model_only = tmp_path / "base"
    shutil.copytree(base, model_only)
    (model_only / "predictions.npz").unlink()
    (model_only / "history.json").unlink()
    out = tmp_path / "again"
    result = runner.invoke(
        main,
        [
            "build",
            "-q",
            "--model",
            str(run),
            "--test-limit",
            "500",
            "--baseline",
            str(model_only),
            "--format",
            "html",
            "--out",
            str(out),
        ],
    )
    assert result.exit_code == 0, result.output
    now, then = read_json(out / "metrics.json")["comparison"], read_json(run / "metrics.json")["comparison"]
    for key in ("fixed", "broken", "baseline_accuracy", "accuracy_difference", "mcnemar_exact_p_value", "by_class"):
        assert now[key] == then[key], key
    html = (out / "report.html").read_text()
    assert "its model was run on the test images again" in html and "kept no history.json" in html
    shutil.rmtree(model_only / "model")  # neither predictions nor a model: nothing to compare
    result = runner.invoke(
        main,
        [
            "build",
            "--model",
            str(run),
            "--test-limit",
            "500",
            "--baseline",
            str(model_only),
            "--out",
            str(tmp_path / "x"),
        ],
    )
    assert result.exit_code == 2, result.output
    assert f"--baseline {model_only}: no predictions.npz and no model/" in result.stderr
    assert "reportgen evaluate --model" in result.stderr and not (tmp_path / "x").exists()


@pytest.mark.parametrize(
    "args, fragment",
    [
        (["--test-limit", "400"], "evaluated on 500 test images, this run on 400; give --test-limit 500"),
        (["--test-limit", "500", "--data-dir", "COPY"], "evaluated on other test files"),
    ],
)
def test_a_baseline_of_other_test_images_is_refused_before_training(pair, tmp_path, runner, mnist_copy, args, fragment):
    base, _ = pair
    args = [str(mnist_copy) if a == "COPY" else a for a in args]
    out = tmp_path / "x"
    result = runner.invoke(
        main, ["build", "--epochs", "1", "--train-limit", "2000", *args, "--baseline", str(base), "--out", str(out)]
    )
    assert result.exit_code == 2, result.output
    assert fragment in result.stderr and result.stderr.startswith(f"error: --baseline {base}: ")
    assert "epoch 1/1" not in result.stderr and not out.exists()  # no epoch ran, nothing written


def test_gates_that_pass(pair, tmp_path, runner):
    base, run = pair
    copy = tmp_path / "run"
    shutil.copytree(run, copy)
    args = ["render", "-q", str(copy), "--baseline", str(base), "--format", "html"]
    result = runner.invoke(main, [*args, "--fail-under", "0.5", "--max-drop", "0.5", "--fail-if-worse"])
    assert result.exit_code == 0, result.output
    gates = read_json(copy / "metrics.json")["gates"]
    comparison = read_json(copy / "metrics.json")["comparison"]
    accuracy = read_json(copy / "metrics.json")["overall"]["accuracy"]
    assert gates == [
        {"name": "fail-under", "threshold": 0.5, "value": accuracy, "passed": True},
        {
            "name": "max-drop",
            "threshold": 0.5,
            "value": pytest.approx(-100 * comparison["accuracy_difference"]),
            "passed": True,
        },
        {
            "name": "fail-if-worse",
            "threshold": 0.05,
            "value": comparison["mcnemar_exact_worse_p_value"],
            "passed": True,
        },
    ]
    assert "passed" in (copy / "report.html").read_text()
    # rendered again without --baseline: no section, metrics.json's comparison kept, and a note
    result = runner.invoke(main, ["render", str(copy), "--format", "html"])
    assert result.exit_code == 0, result.output
    assert f"note: metrics.json compares with {base}; give --baseline to show it" in result.stderr
    assert read_json(copy / "metrics.json")["comparison"] == comparison
    assert 'id="baseline"' not in (copy / "report.html").read_text()


def test_a_run_made_before_predictions_npz_still_renders(built, pair, tmp_path, runner):
    old = tmp_path / "old"
    shutil.copytree(built, old)
    (old / "predictions.npz").unlink()
    metrics = read_json(old / "metrics.json")
    for key in ("log_loss", "roc_auc_macro", "roc_auc_micro", "average_precision_macro", "average_precision_micro"):
        del metrics["overall"][key]
    for row in metrics["by_class"]:
        del row["roc_auc"], row["average_precision"]
    (old / "metrics.json").write_text(json.dumps(metrics))
    manifest = read_json(old / "manifest.json")  # as such a run recorded them
    del manifest["files"]["predictions.npz"]
    manifest["files"]["metrics.json"]["sha256"] = hashlib.sha256((old / "metrics.json").read_bytes()).hexdigest()
    (old / "manifest.json").write_text(json.dumps(manifest))
    result = runner.invoke(main, ["render", "-q", str(old), "--format", "html"])
    assert result.exit_code == 0, result.output
    assert "Not recorded" in (old / "report.html").read_text()
    base, _ = pair
    result = runner.invoke(main, ["render", str(old), "--baseline", str(base)])
    assert result.exit_code == 2, result.output
    assert f"error: {old}: no predictions.npz (made before reportgen kept it)" in result.stderr


def test_a_failed_gate_exits_3_after_writing_everything(pair, tmp_path, runner):
    """The baseline judged against the better run: it broke more than it fixed."""
    base, run = pair
    out = tmp_path / "worse"
    result = runner.invoke(
        main,
        [
            "build",
            "--model",
            str(base),
            "--test-limit",
            "500",
            "--baseline",
            str(run),
            "--max-drop",
            "0.5",
            "--fail-if-worse",
            "--out",
            str(out),
        ],
    )
    assert result.exit_code == 3, result.output
    comparison = read_json(out / "metrics.json")["comparison"]
    ours, theirs = comparison["accuracy"], comparison["baseline_accuracy"]
    drop = 100 * (theirs - ours)
    (line,) = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert line.startswith(
        f"error: gate --max-drop 0.5 failed: accuracy {ours:.2%} is {drop:.2f} points below the baseline's {theirs:.2%}"
    )
    assert line.endswith("(also failed: --fail-if-worse)")
    assert f"wrote {out}/" in result.stderr  # the run folder is complete
    manifest = read_json(out / "manifest.json")
    for name in ("report.html", "metrics.json", "predictions.npz", "inspection.npz", "history.json"):
        payload = (out / name).read_bytes()
        assert manifest["files"][name]["sha256"] == hashlib.sha256(payload).hexdigest(), name
    sums = (out / "report.pdf.sha256").read_text()
    assert sums == f"{hashlib.sha256((out / 'report.pdf').read_bytes()).hexdigest()}  report.pdf\n"
    gates = read_json(out / "metrics.json")["gates"]
    assert [(g["name"], g["passed"]) for g in gates] == [("max-drop", False), ("fail-if-worse", False)]
    assert gates[1]["value"] == comparison["mcnemar_exact_worse_p_value"] <= 0.05
    assert "FAILED" in (out / "report.html").read_text()
    result = runner.invoke(main, ["render", "-q", str(out), "--fail-under", "0.99", "--format", "html"])
    assert result.exit_code == 3, result.output
    assert result.stderr.strip() == f"error: gate --fail-under 0.99 failed: accuracy {ours:.2%} is below 99.00%"
    assert read_json(out / "metrics.json")["gates"] == [
        {"name": "fail-under", "threshold": 0.99, "value": ours, "passed": False}
    ]


@pytest.mark.parametrize("gate", [["--max-drop", "1"], ["--fail-if-worse"]])
def test_baseline_gates_without_a_baseline_are_a_usage_error(tmp_path, runner, gate):
    result = runner.invoke(main, ["build", "--epochs", "1", *gate, "--out", str(tmp_path / "x")])
    assert result.exit_code == 2, result.output
    assert f"error: {gate[0]} judges this run against a baseline, and none was given: add --baseline RUN_DIR" in (
        result.stderr
    )
    assert not (tmp_path / "x").exists()


def test_train_into_a_built_run_folder_leaves_a_train_folder_not_half_a_report(built, tmp_path, runner):
    run = tmp_path / "run"
    shutil.copytree(built, run)
    result = runner.invoke(
        main, ["train", "-q", "--epochs", "1", "--train-limit", "1000", "--test-limit", "1000", "--out", str(run)]
    )
    assert result.exit_code == 0, result.output
    # The old report, metrics and figures described the model train replaced: they went with it,
    # and what is left is what the new manifest lists (and the checkpoint).
    listed = read_json(run / "manifest.json")["files"]
    on_disk = {p.relative_to(run).as_posix() for p in run.rglob("*") if p.is_file() and ".checkpoint" not in p.parts}
    assert (
        on_disk - {"manifest.json"}
        == set(listed)
        == {"history.json", "model/lenet-0001.params", "model/lenet-symbol.json", "model/lenet-reportgen.json"}
    )
    result = runner.invoke(main, ["render", "-q", str(run)])
    assert result.exit_code == 2
    assert (
        result.stderr
        == f"error: {run}: not a finished reportgen run (no metrics.json); make one with reportgen build\n"
    )


def test_evaluate_and_inspect_into_a_train_folder_make_a_run_to_render(trained_run, tmp_path, runner):
    run = tmp_path / "run"
    shutil.copytree(trained_run, run)
    said = {}
    for command in (["evaluate"], ["inspect", "--case", "worst"]):
        result = runner.invoke(main, [*command, "--model", str(run), "--test-limit", "1000", "--out", str(run)])
        assert result.exit_code == 0, result.output
        said[command[0]] = result.stderr.strip().splitlines()
    for lines in said.values():  # each says what it loaded and what that model learned from
        assert lines[0].startswith(f"loaded lenet-symbol.json and lenet-0001.params from {run / 'model'} (epoch 1)")
        assert lines[1].startswith("trained on 3,000 of the 60,000 training images, 1 epoch")
    overall = read_json(run / "metrics.json")["overall"]
    closing = f"test accuracy {overall['accuracy']:.2%}, kappa {overall['kappa']:.4f} (1,000 test images)"
    assert said["evaluate"][-1] == closing and not said["inspect"][-1].startswith("test accuracy")
    manifest, trained = read_json(run / "manifest.json"), read_json(trained_run / "manifest.json")
    assert manifest["trained_on"] == {"data": trained["data"], "seconds": trained["timings"]["train"]}
    assert manifest["data"]["train_images"] == 3000 and manifest["training"] == trained["training"]
    listed = read_json(run / "manifest.json")["files"]
    assert {"history.json", "metrics.json", "predictions.npz", "inspection.npz", "model/lenet-0001.params"} <= set(
        listed
    )
    for name, entry in listed.items():  # what the record vouches for is what is on disk
        assert entry["sha256"] == hashlib.sha256((run / name).read_bytes()).hexdigest(), name
    result = runner.invoke(main, ["render", str(run), "--format", "html"])
    assert result.exit_code == 0, result.output
    assert result.stderr.strip().splitlines()[-1] == closing  # render prints it too
    text = " ".join(re.sub(r"<[^>]+>", " ", (run / "report.html").read_text()).split())
    assert "Training images 3,000 of 60,000" in text and "60,000 of 60,000" not in text


def test_a_model_its_manifest_does_not_vouch_for_has_no_known_training(trained_run, tmp_path, caplog):
    """A run folder's record speaks for the model files it lists, as they were: changed files,
    or a record that is not reportgen's, make the training not known, with a warning."""
    from reportgen.net import saved
    from reportgen.pipeline import stages

    record, history = stages.own_record(saved.find(trained_run))
    assert record is not None and record.trained().train_images == 3000 and history.batches == 30
    run = tmp_path / "run"
    shutil.copytree(trained_run, run)
    manifest = read_json(run / "manifest.json")
    manifest["files"]["model/lenet-0001.params"]["sha256"] = "0" * 64
    (run / "manifest.json").write_text(json.dumps(manifest))
    with caplog.at_level("WARNING", logger="reportgen"):
        assert stages.own_record(saved.find(run))[0] is None
    assert "does not vouch for lenet-0001.params" in caplog.text
    manifest = read_json(trained_run / "manifest.json")
    manifest["trained_on"] = {"data": {**manifest["data"], "train_images": "lots"}, "seconds": 1.0}
    (run / "manifest.json").write_text(json.dumps(manifest))
    caplog.clear()
    with caplog.at_level("WARNING", logger="reportgen"):
        record, history = stages.own_record(saved.find(run))
    assert record is None and history.batches == 0 and "not a reportgen manifest" in caplog.text
