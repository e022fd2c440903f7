"""What CI systems read of a run: a short GitHub-flavoured Markdown summary (a job's step
summary, a pull-request comment) and a JUnit XML file with one test case per gate.

Both are text made from the typed values a command wrote (its evaluation, its comparison
with the baseline, its gates' verdicts); writing them is the command line's business.
No images: GitHub renders neither inline nor base64 images in a step summary.
"""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from typing import Protocol

from reportgen import __version__
from reportgen.report.filters import NA, fmt_fixed, fmt_int, fmt_pct, fmt_points, fmt_pvalue, shown_path
from reportgen.run.comparison import CONFIDENCE, Comparison
from reportgen.run.evaluation import Evaluation
from reportgen.run.gates import Verdict
from reportgen.run.history import History

# Hidden in the rendered Markdown: what a CI step looks for to edit its earlier pull-request
# comment rather than add one per push (README, "Using reportgen in CI").
MARKER = "<!-- reportgen -->"
MOST = 64 * 1024  # bytes: one summary at most (GitHub shows 1 MiB per step, all writers together)
PASSED, FAILED = "\u2705", "\u274c"  # ✅ ❌
CLASSNAME = "reportgen.gates"
FAILURE_TYPE = "GateFailed"


class Outcome(Protocol):
    """What a command wrote, as far as CI is told (pipeline.Written has it all)."""

    @property
    def folder(self) -> object: ...
    @property
    def seconds(self) -> float: ...
    @property
    def evaluation(self) -> Evaluation | None: ...
    @property
    def comparison(self) -> Comparison | None: ...
    @property
    def verdicts(self) -> tuple[Verdict, ...]: ...
    @property
    def history(self) -> History | None: ...


def _code(text: object) -> str:
    """Text as a Markdown code span that stays one table cell: no backtick, pipe or line break
    of a run's name can end it (and nothing in it is read as HTML)."""
    flat = " ".join(str(text).split()).replace("`", "'").replace("|", "\\|")
    return f"`{flat}`"


def _headline(command: str, outcome: Outcome) -> str:
    failed = [v for v in outcome.verdicts if not v.passed]
    mark = f"{FAILED} " if failed else f"{PASSED} " if outcome.verdicts else ""
    said = f"### {mark}reportgen {command}: {_code(shown_path(str(outcome.folder)))}"
    if outcome.evaluation is not None:
        said += f", {fmt_pct(outcome.evaluation.overall.accuracy)} test accuracy"
    return said


def _scores(evaluation: Evaluation, comparison: Comparison | None) -> list[str]:
    if comparison is None:
        return [
            "| | this run |",
            "|---|---:|",
            f"| test accuracy | {fmt_pct(evaluation.overall.accuracy)} |",
            f"| kappa | {fmt_fixed(evaluation.overall.kappa)} |",
            f"| test images | {fmt_int(evaluation.n_test)} |",
        ]
    ours, theirs = comparison.current, comparison.previous
    return [
        "| | this run | baseline |",
        "|---|---:|---:|",
        f"| test accuracy | {fmt_pct(ours.accuracy)} | {fmt_pct(theirs.accuracy)} |",
        f"| kappa | {fmt_fixed(ours.kappa)} | {fmt_fixed(theirs.kappa)} |",
        f"| test images | {fmt_int(evaluation.n_test)} | {fmt_int(evaluation.n_test)} |",
    ]


def _against(comparison: Comparison) -> str:
    counts = comparison.counts
    return (
        f"Against {_code(shown_path(comparison.baseline))}: **{fmt_points(comparison.accuracy_difference)} points** "
        f"({CONFIDENCE:.0%} interval {fmt_points(comparison.accuracy_difference_lower)} to "
        f"{fmt_points(comparison.accuracy_difference_upper)}), {fmt_int(counts.fixed)} fixed, "
        f"{fmt_int(counts.broken)} broken, McNemar p = {fmt_pvalue(comparison.mcnemar_exact_p_value)}."
    )


def _gates(verdicts: Sequence[Verdict]) -> list[str]:
    rows = ["| gate | | measured |", "|---|---|---|"]
    for v in verdicts:
        rows.append(f"| {_code(v.option)} | {PASSED if v.passed else FAILED} | {v.message.replace('|', '/')} |")
    return rows


def _last_epoch(history: History) -> str:
    last = history.epochs[-1]
    accuracy = last.test_accuracy
    shown = fmt_pct(accuracy) if not (isinstance(accuracy, float) and math.isnan(accuracy)) else NA
    return f"Trained {last.epoch} epoch{'s' if last.epoch != 1 else ''}: test accuracy after the last, {shown}."


def markdown(command: str, outcome: Outcome) -> str:
    """The summary: the headline, the scores (beside the baseline's), the comparison, the gates."""
    lines = [MARKER, _headline(command, outcome), ""]
    if outcome.evaluation is not None:
        lines += [*_scores(outcome.evaluation, outcome.comparison), ""]
    elif outcome.history is not None and outcome.history.epochs:
        lines += [_last_epoch(outcome.history), ""]
    if outcome.comparison is not None:
        lines += [_against(outcome.comparison), ""]
    if outcome.verdicts:
        lines += [*_gates(outcome.verdicts), ""]
    lines.append(f"<sub>reportgen {__version__} \u00b7 {outcome.seconds:.1f} s</sub>")
    return cap("\n".join(lines) + "\n")


def cap(text: str, most: int = MOST) -> str:
    """At most `most` bytes of UTF-8, cut at a line's end, saying so: a summary never grows
    past its share of GitHub's 1 MiB per step."""
    if len(text.encode()) <= most:
        return text
    note = f"\n\u2026 (cut: a reportgen summary is at most {most // 1024} KiB)\n"
    room = most - len(note.encode())
    kept = text.encode()[:room].decode(errors="ignore")
    return kept[: kept.rfind("\n") + 1 or len(kept)] + note


def junit(command: str, outcome: Outcome) -> bytes:
    """JUnit XML: one test case per gate asked for, a <failure> for each that failed (its
    message also as the element's text: GitLab shows the text, GitHub's reporters the
    attribute). No gate: an empty suite (tests="0"), still written, so a CI step that reads
    the file finds it."""
    verdicts = outcome.verdicts
    failures = sum(not v.passed for v in verdicts)
    counts = {"tests": str(len(verdicts)), "failures": str(failures), "errors": "0"}
    seconds = f"{outcome.seconds:.3f}"
    suites = ET.Element("testsuites", {"name": "reportgen", **counts, "time": seconds})
    suite = ET.SubElement(
        suites,
        "testsuite",
        {"name": f"reportgen {command} {shown_path(str(outcome.folder))}", **counts, "skipped": "0", "time": seconds},
    )
    for v in verdicts:
        case = ET.SubElement(suite, "testcase", {"classname": CLASSNAME, "name": v.option, "time": "0"})
        if v.passed:
            ET.SubElement(case, "system-out").text = v.message
        else:
            ET.SubElement(case, "failure", {"message": v.failure, "type": FAILURE_TYPE}).text = v.failure
    ET.indent(suites)
    return ET.tostring(suites, encoding="UTF-8", xml_declaration=True) + b"\n"
