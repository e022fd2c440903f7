"""What CI reads: the Markdown summary (--summary, $GITHUB_STEP_SUMMARY) and the JUnit XML
(--junit). The numbers are checked against README's worked example (15 fixed and 5 broken
of 10,000: +0.10 points, McNemar p = 0.041) and against scipy and scikit-learn; the XML is
read back with xml.etree."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from scipy import stats
from sklearn.metrics import cohen_kappa_score

from reportgen.cli import main
from reportgen.pipeline import ci as ci_files
from reportgen.report import ci
from reportgen.run.comparison import Comparison, compare
from reportgen.run.evaluation import Evaluation, score
from reportgen.run.gates import Gates, Verdict, judge
from reportgen.run.history import History

N = 10_000


@dataclass(frozen=True, eq=False)
class Outcome:
    folder: Path
    seconds: float = 12.3
    evaluation: Evaluation | None = None
    comparison: Comparison | None = None
    verdicts: tuple[Verdict, ...] = ()
    history: History | None = None


def _scored(labels: np.ndarray, wrong: np.ndarray) -> Evaluation:
    """An evaluation whose predictions are the labels but at `wrong`, where they are label + 1."""
    predictions = np.where(wrong, (labels + 1) % 10, labels)
    probabilities = np.full((len(labels), 10), 0.01)
    probabilities[np.arange(len(labels)), predictions] = 0.91
    return score(probabilities, labels)


@pytest.fixture(scope="module")
def example() -> tuple[Evaluation, Evaluation, Comparison]:
    """README's example: the baseline wrong on 115 images, this run on 105; 15 fixed, 5 broken."""
    labels = np.arange(N) % 10
    before = np.zeros(N, bool)
    after = np.zeros(N, bool)
    before[:100] = after[:100] = True  # both wrong
    before[100:115] = True  # fixed by this run
    after[200:205] = True  # broken by this run
    baseline, current = _scored(labels, before), _scored(labels, after)
    return baseline, current, compare(baseline, current, "/home/someone/runs/baseline")


@pytest.fixture(scope="module")
def gated(example) -> Outcome:
    _, current, comparison = example
    verdicts = judge(Gates(fail_under=0.99, max_drop=0.05, fail_if_worse=True), current, comparison)
    return Outcome(Path("runs/change"), 12.3, current, comparison, verdicts)


def test_the_summary_says_the_numbers(gated, example):
    baseline, current, _ = example
    text = ci.markdown("build", gated)
    lines = text.splitlines()
    assert lines[0] == "<!-- reportgen -->"  # the marker a CI step finds its comment by
    assert lines[1] == "### \u274c reportgen build: `runs/change`, 98.95% test accuracy"
    labels = np.arange(N) % 10
    kappa = cohen_kappa_score(labels, current.predictions)
    kappa_before = cohen_kappa_score(labels, baseline.predictions)
    assert "| test accuracy | 98.95% | 98.85% |" in lines
    assert f"| kappa | {kappa:.4f} | {kappa_before:.4f} |" in lines
    assert "| test images | 10,000 | 10,000 |" in lines
    p = stats.binomtest(5, 20, 0.5).pvalue  # McNemar's exact test: 5 of the 20 discordant pairs
    (against,) = [line for line in lines if line.startswith("Against ")]
    assert against.startswith("Against `\u2026/baseline`: **+0.10 points** (95% interval +0.01 to +0.20)")
    assert against.endswith(f", 15 fixed, 5 broken, McNemar p = {p:.4f}.")
    gates = [line for line in lines if line.startswith("| `--")]
    assert gates == [
        "| `--fail-under 0.99` | \u274c | accuracy 98.95% is below 99.00% |",
        "| `--max-drop 0.05` | \u2705 | accuracy 98.95% is 0.10 points above the baseline's 98.85% |",
        gates[2],
    ]
    assert gates[2].startswith(
        "| `--fail-if-worse` | \u2705 | this run broke 5 images the baseline got right and fixed 15"
    )
    assert "data:" not in text and "<img" not in text and "![" not in text  # no images of any kind
    assert text.endswith("<sub>reportgen 0.1.0 \u00b7 12.3 s</sub>\n")


def test_a_summary_without_gates_or_baseline(example):
    _, current, _ = example
    text = ci.markdown("evaluate", Outcome(Path("out"), 1.0, current))
    assert text.splitlines()[1] == "### reportgen evaluate: `out`, 98.95% test accuracy"  # no mark without gates
    assert "| test accuracy | 98.95% |" in text and "Against" not in text and "| gate |" not in text


def test_a_hostile_folder_name_stays_inside_its_code_span():
    name = "runs/a`b|c <img src=x onerror=alert(1)>\n### heading"
    headline = ci.markdown("inspect", Outcome(Path(name))).splitlines()[1]
    assert headline == "### reportgen inspect: `runs/a'b\\|c <img src=x onerror=alert(1)> ### heading`"


def test_the_junit_file_has_one_case_per_gate_and_a_failure_for_each_failed_one(gated):
    root = ET.fromstring(ci.junit("build", gated))
    assert root.tag == "testsuites" and (root.get("tests"), root.get("failures"), root.get("errors")) == ("3", "1", "0")
    (suite,) = root
    assert suite.tag == "testsuite" and suite.get("name") == "reportgen build runs/change"
    assert (suite.get("tests"), suite.get("failures"), suite.get("skipped"), suite.get("time")) == (
        "3",
        "1",
        "0",
        "12.300",
    )
    cases = suite.findall("testcase")
    assert [(c.get("classname"), c.get("name"), c.get("time")) for c in cases] == [
        ("reportgen.gates", "--fail-under 0.99", "0"),
        ("reportgen.gates", "--max-drop 0.05", "0"),
        ("reportgen.gates", "--fail-if-worse", "0"),
    ]
    (failure,) = cases[0].findall("failure")
    message = "gate --fail-under 0.99 failed: accuracy 98.95% is below 99.00%"  # the command's error line
    assert (failure.get("type"), failure.get("message"), failure.text) == ("GateFailed", message, message)
    for case in cases[1:]:
        assert case.find("failure") is None and case.find("system-out").text


def test_no_gate_gives_an_empty_but_valid_suite(example):
    root = ET.fromstring(ci.junit("build", Outcome(Path("out"), 2.0, example[1])))
    (suite,) = root
    assert (root.get("tests"), root.get("failures"), suite.get("tests")) == ("0", "0", "0")
    assert suite.findall("testcase") == []


def test_a_summary_is_cut_at_a_line_and_says_so():
    text = "".join(f"| row {k} | {'x' * 90} |\n" for k in range(3000))  # about 300 KiB
    cut = ci.cap(text)
    assert len(cut.encode()) <= ci.MOST and cut.endswith("(cut: a reportgen summary is at most 64 KiB)\n")
    kept = cut[: cut.rindex("\n\u2026")]
    assert text.startswith(kept) and kept.endswith("|\n")  # whole lines only
    assert ci.cap("short\n") == "short\n"


# -- the files --------------------------------------------------------------------------------


def test_the_step_summary_is_appended_to_never_overwritten(tmp_path, gated):
    step = tmp_path / "step.md"
    step.write_text("earlier step output\n")
    environ = {"GITHUB_STEP_SUMMARY": str(step)}
    ci_files.write("build", gated, ci_files.Outputs(), environ)
    ci_files.write("render", gated, ci_files.Outputs(), environ)
    text = step.read_text()
    assert text.startswith("earlier step output\n")
    assert text.count(ci.MARKER) == 2 and "reportgen build" in text and "reportgen render" in text


@pytest.mark.parametrize("room, line", [(200, True), (20, False)])
def test_the_step_summary_never_passes_1_mib(tmp_path, gated, room, line):
    step = tmp_path / "step.md"
    step.write_bytes(b"x" * (ci_files.STEP_LIMIT - room))
    warnings: list[str] = []
    ci_files.write("build", gated, ci_files.Outputs(), {"GITHUB_STEP_SUMMARY": str(step)}, warnings.append)
    assert step.stat().st_size <= ci_files.STEP_LIMIT
    assert (step.read_bytes().endswith(b"near GitHub's 1 MiB.\n")) == line
    (warning,) = warnings
    assert warning.startswith("warning: $GITHUB_STEP_SUMMARY: ") and "left out" in warning


def test_an_unwritable_step_summary_is_a_warning(tmp_path, gated):
    warnings: list[str] = []
    environ = {"GITHUB_STEP_SUMMARY": str(tmp_path / "gone" / "step.md")}
    ci_files.write("build", gated, ci_files.Outputs(), environ, warnings.append)
    assert len(warnings) == 1 and warnings[0].startswith("warning: $GITHUB_STEP_SUMMARY (")


def test_summary_and_junit_files_are_written_whole(tmp_path, gated):
    summary, junit = tmp_path / "summary.md", tmp_path / "junit.xml"
    summary.write_text("an older and much longer summary\n" * 100)
    ci_files.write("build", gated, ci_files.Outputs(summary, junit), {})
    assert summary.read_text() == ci.markdown("build", gated)
    assert ET.parse(junit).getroot().get("tests") == "3"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["junit.xml", "summary.md"]  # no temporary file left


# -- through the command line -------------------------------------------------------------------


def invoke(args: list[str], env: dict[str, str] | None = None):
    return CliRunner().invoke(main, args, env=env)


@pytest.fixture(scope="module")
def ci_run(trained_run, tmp_path_factory) -> dict[str, Path]:
    """A build with no gate, then a render of its copy against it with gates, one failing; each
    with --summary and --junit, both appending to one step summary."""
    root = tmp_path_factory.mktemp("ci")
    step = root / "step.md"
    step.write_text("## an earlier step\n")
    env = {"GITHUB_STEP_SUMMARY": str(step)}
    alone = root / "alone"
    common = ["--model", str(trained_run), "--test-limit", "300", "--format", "html"]
    result = invoke(
        [
            "build",
            "-q",
            *common,
            "--summary",
            str(root / "s1.md"),
            "--junit",
            str(root / "j1.xml"),
            "--out",
            str(alone),
        ],
        env,
    )
    assert result.exit_code == 0, result.output
    result = invoke(
        [
            "render",
            "-q",
            str(alone),
            "--format",
            "html",
            "--baseline",
            str(alone),
            "--fail-under",
            "0.99",
            "--max-drop",
            "0.5",
            "--summary",
            str(root / "s2.md"),
            "--junit",
            str(root / "j2.xml"),
        ],
        env,
    )
    assert result.exit_code == 3, result.output
    assert result.stderr.strip().splitlines()[-1].startswith("error: gate --fail-under 0.99 failed: accuracy ")
    return {"root": root, "step": step, "alone": alone}


def test_a_build_and_a_gated_render_write_their_files_and_append_the_step_summary(ci_run):
    root = ci_run["root"]
    metrics = json.loads((ci_run["alone"] / "metrics.json").read_text())
    accuracy = metrics["overall"]["accuracy"]
    first, second = (root / "s1.md").read_text(), (root / "s2.md").read_text()
    # the folder was given as an absolute path: shown by its last part, as the report does
    assert first.splitlines()[1] == f"### reportgen build: `\u2026/alone`, {100 * accuracy:.2f}% test accuracy"
    assert f"| kappa | {metrics['overall']['kappa']:.4f} |" in first
    assert second.splitlines()[1].startswith("### \u274c reportgen render: `\u2026/alone`")
    assert "0 fixed, 0 broken, McNemar p = 1.0000." in second
    assert f"| `--fail-under 0.99` | \u274c | accuracy {100 * accuracy:.2f}% is below 99.00% |" in second
    # the step summary: what was there, then each command's summary, as written to --summary
    assert ci_run["step"].read_text() == "## an earlier step\n\n" + first + "\n" + second
    # JUnit: no gate, an empty suite; then two gates, one failed, written before exit code 3
    assert ET.parse(root / "j1.xml").getroot().get("tests") == "0"
    gated = ET.parse(root / "j2.xml").getroot()
    assert (gated.get("tests"), gated.get("failures")) == ("2", "1")
    names = [case.get("name") for case in gated.iter("testcase")]
    assert names == ["--fail-under 0.99", "--max-drop 0.5"]


def test_train_evaluate_and_inspect_append_theirs(trained_run, tmp_path):
    step = tmp_path / "step.md"
    env = {"GITHUB_STEP_SUMMARY": str(step)}
    out = tmp_path / "run"
    quick = ["--train-limit", "500", "--test-limit", "200"]
    result = invoke(
        ["train", "-q", "--epochs", "1", *quick, "--summary", str(tmp_path / "t.md"), "--out", str(out)], env
    )
    assert result.exit_code == 0, result.output
    last = json.loads((out / "history.json").read_text())["epochs"][-1]["test_accuracy"]
    assert f"Trained 1 epoch: test accuracy after the last, {100 * last:.2f}%." in (tmp_path / "t.md").read_text()
    for command in (["evaluate"], ["inspect", "--case", "3"]):
        result = invoke([*command, "-q", "--model", str(out), "--test-limit", "200", "--out", str(out)], env)
        assert result.exit_code == 0, result.output
    text = step.read_text()
    accuracy = json.loads((out / "metrics.json").read_text())["overall"]["accuracy"]
    assert [line for line in text.splitlines() if line.startswith("### ")] == [
        "### reportgen train: `\u2026/run`",
        f"### reportgen evaluate: `\u2026/run`, {100 * accuracy:.2f}% test accuracy",
        "### reportgen inspect: `\u2026/run`",
    ]


@pytest.mark.parametrize(
    "args",
    [
        ["train", "--epochs", "1", "--summary", "nowhere/summary.md"],
        ["build", "--epochs", "1", "--junit", "nowhere/junit.xml"],
        ["build", "--epochs", "1", "--summary", "nowhere/summary.md"],
        ["evaluate", "--model", "MODEL", "--summary", "nowhere/summary.md"],
    ],
)
def test_a_file_in_a_missing_folder_is_refused_before_any_work(trained_run, tmp_path, monkeypatch, args):
    monkeypatch.chdir(tmp_path)
    args = [str(trained_run) if a == "MODEL" else a for a in args]
    limit = ["--train-limit", "500"] if args[0] in ("train", "build") else ["--test-limit", "200"]
    result = invoke([*args, *limit, "--out", "out"])
    assert result.exit_code == 2, result.output
    option = "--junit" if "--junit" in args else "--summary"
    assert result.stderr.startswith(f"error: Invalid value for '{option}'")
    assert f"nowhere/{'junit.xml' if option == '--junit' else 'summary.md'}: no folder nowhere" in result.stderr
    assert "epoch" not in result.stderr and not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    "more, fragment",
    [
        (["--summary", "out/summary.md"], "--summary out/summary.md: inside the run folder out"),
        (["--junit", "same.xml", "--summary", "same.xml"], "--summary and --junit: both same.xml"),
        (["--junit", "."], "is a folder; give a file"),
    ],
)
def test_a_ci_file_that_would_clobber_is_refused_before_training(tmp_path, monkeypatch, more, fragment):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "out").mkdir()
    result = invoke(["build", "--epochs", "1", "--train-limit", "500", *more, "--out", "out"])
    assert result.exit_code == 2, result.output
    assert result.stderr.startswith("error: ") and fragment in result.stderr
    assert "epoch" not in result.stderr and list((tmp_path / "out").iterdir()) == []
