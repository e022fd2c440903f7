"""Gates for CI: thresholds a run must meet, judged after its report is written.

`--fail-under ACCURACY` (a fraction), `--max-drop POINTS` (percentage points below the
baseline's accuracy) and `--fail-if-worse` (the one-sided exact McNemar test says this run
is worse than the baseline at the 5% level). Every gate asked for is judged into a
`Verdict` (metrics.json's "gates", the report's summary); a failed one becomes a GateError,
exit code 3, once the run folder is complete.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from reportgen.errors import GateError
from reportgen.run.comparison import WORSE_LEVEL, Comparison
from reportgen.run.evaluation import Evaluation
from reportgen.run.files import jsonable

# A drop equal to --max-drop passes; the drop is (broken - fixed) / n, computed in floats.
_SLACK = 1e-9


@dataclass(frozen=True)
class Gates:
    """The gates asked for; none by default."""

    fail_under: float | None = None  # accuracy, a fraction in [0, 1]
    max_drop: float | None = None  # percentage points below the baseline's accuracy
    fail_if_worse: bool = False

    def needing_baseline(self) -> list[str]:
        """The options given that compare with a baseline."""
        return [
            name
            for name, on in (("--max-drop", self.max_drop is not None), ("--fail-if-worse", self.fail_if_worse))
            if on
        ]

    def __bool__(self) -> bool:
        return self.fail_under is not None or self.max_drop is not None or self.fail_if_worse


NO_GATES = Gates()


@dataclass(frozen=True)
class Verdict:
    name: str  # "fail-under", "max-drop" or "fail-if-worse"
    threshold: float
    value: float
    passed: bool
    message: str  # one line: what was measured against what

    @property
    def option(self) -> str:
        """The option that asked for this gate, as typed: "--max-drop 0.2", "--fail-if-worse"."""
        if self.name == "fail-if-worse":
            return "--fail-if-worse"
        return f"--{self.name} {self.threshold:g}"

    @property
    def failure(self) -> str:
        """The line a failed gate ends the command with (also CI's JUnit failure message)."""
        return f"gate {self.option} failed: {self.message}"

    def to_json(self) -> dict[str, Any]:
        return jsonable({"name": self.name, "threshold": self.threshold, "value": self.value, "passed": self.passed})


def _pct(x: float) -> str:
    return f"{100 * x:.2f}%"


def judge(gates: Gates, evaluation: Evaluation, comparison: Comparison | None) -> tuple[Verdict, ...]:
    """Each gate asked for, in the order of the options; the baseline's gates need a comparison."""
    if gates.needing_baseline() and comparison is None:
        raise ValueError(f"{', '.join(gates.needing_baseline())} need a baseline")
    verdicts = []
    accuracy = evaluation.overall.accuracy
    if gates.fail_under is not None:
        passed = accuracy >= gates.fail_under
        verdicts.append(
            Verdict(
                "fail-under",
                gates.fail_under,
                accuracy,
                passed,
                f"accuracy {_pct(accuracy)} is {'at or above' if passed else 'below'} {_pct(gates.fail_under)}",
            )
        )
    if comparison is not None and gates.max_drop is not None:
        verdicts.append(_max_drop(gates.max_drop, comparison))
    if comparison is not None and gates.fail_if_worse:
        verdicts.append(_worse(comparison))
    return tuple(verdicts)


def _max_drop(points: float, comparison: Comparison) -> Verdict:
    drop = -100 * comparison.accuracy_difference  # percentage points below the baseline
    passed = drop <= points + _SLACK
    current, previous = _pct(comparison.current.accuracy), _pct(comparison.previous.accuracy)
    if drop > 0:
        said = f"accuracy {current} is {drop:.2f} points below the baseline's {previous}"
    else:
        said = f"accuracy {current} is {-drop:.2f} points above the baseline's {previous}"
    return Verdict("max-drop", points, drop, passed, said)


def _worse(comparison: Comparison) -> Verdict:
    p = comparison.mcnemar_exact_worse_p_value
    counts = comparison.counts
    passed = p > WORSE_LEVEL
    said = (
        f"this run broke {counts.broken} images the baseline got right and fixed {counts.fixed} "
        f"(one-sided exact McNemar p = {p:.3g}, {'above' if passed else 'at or below'} {WORSE_LEVEL}); "
        f"accuracy {_pct(comparison.current.accuracy)} against the baseline's {_pct(comparison.previous.accuracy)}"
    )
    return Verdict("fail-if-worse", WORSE_LEVEL, p, passed, said)


def enforce(verdicts: tuple[Verdict, ...]) -> None:
    """Raise a GateError (exit code 3) naming the first failed gate, and any others."""
    failed = [v for v in verdicts if not v.passed]
    if failed:
        first = failed[0]
        also = f" (also failed: {', '.join(v.option for v in failed[1:])})" if failed[1:] else ""
        raise GateError(f"{first.failure}{also}")
