"""gates.py: each gate judged by hand at and around its threshold, and the one-line error."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import scored

from reportgen.errors import GateError
from reportgen.run import gates
from reportgen.run.comparison import compare
from reportgen.run.gates import Gates


def pair(fixed: int, broken: int, n: int = 1000, wrong_both: int = 10):
    """Two evaluations of n images with the given paired counts."""
    labels = np.arange(n) % 10
    before, after = labels.copy(), labels.copy()
    cut = 0
    for _ in range(fixed):
        before[cut] = (labels[cut] + 1) % 10
        cut += 1
    for _ in range(broken):
        after[cut] = (labels[cut] + 1) % 10
        cut += 1
    for _ in range(wrong_both):
        before[cut] = after[cut] = (labels[cut] + 1) % 10
        cut += 1
    return scored(before, labels), scored(after, labels)


def test_fail_under_at_and_below_its_threshold() -> None:
    _, current = pair(0, 0, wrong_both=10)  # 990 of 1,000 right
    (verdict,) = gates.judge(Gates(fail_under=0.99), current, None)
    assert (verdict.name, verdict.threshold, verdict.value, verdict.passed) == ("fail-under", 0.99, 0.99, True)
    (verdict,) = gates.judge(Gates(fail_under=0.991), current, None)
    assert not verdict.passed
    with pytest.raises(GateError, match=r"^gate --fail-under 0.991 failed: accuracy 99.00% is below 99.10%$") as e:
        gates.enforce((verdict,))
    assert e.value.exit_code == 3


def test_max_drop_at_and_beyond_its_threshold() -> None:
    baseline, current = pair(fixed=1, broken=6)  # 989 right, then 984: 0.5 points down
    comparison = compare(baseline, current, "base")
    (verdict,) = gates.judge(Gates(max_drop=0.5), current, comparison)
    assert verdict.passed and verdict.value == pytest.approx(0.5)  # a drop equal to the limit passes
    (verdict,) = gates.judge(Gates(max_drop=0.49), current, comparison)
    assert not verdict.passed
    with pytest.raises(GateError) as e:
        gates.enforce((verdict,))
    assert str(e.value) == "gate --max-drop 0.49 failed: accuracy 98.40% is 0.50 points below the baseline's 98.90%"
    better = compare(current, baseline, "base")
    (verdict,) = gates.judge(Gates(max_drop=0), baseline, better)
    assert verdict.passed and verdict.value == pytest.approx(-0.5)


def test_fail_if_worse_at_the_five_percent_level() -> None:
    # 5 broken, 0 fixed: P(X >= 5), X ~ Bin(5, 1/2) = 1/32, worse; 8 against 2: 56/1024, not enough.
    baseline, current = pair(fixed=0, broken=5)
    (verdict,) = gates.judge(Gates(fail_if_worse=True), current, compare(baseline, current, "base"))
    assert verdict.value == pytest.approx(1 / 32) and not verdict.passed
    with pytest.raises(GateError, match=r"^gate --fail-if-worse failed: this run broke 5 images .* fixed 0"):
        gates.enforce((verdict,))
    baseline, current = pair(fixed=2, broken=8)
    (verdict,) = gates.judge(Gates(fail_if_worse=True), current, compare(baseline, current, "base"))
    assert verdict.value == pytest.approx(56 / 1024) and verdict.passed


def test_every_failed_gate_is_named_and_none_without_gates() -> None:
    baseline, current = pair(fixed=0, broken=9)
    verdicts = gates.judge(
        Gates(fail_under=0.999, max_drop=0.1, fail_if_worse=True), current, compare(baseline, current, "b")
    )
    assert [v.name for v in verdicts] == ["fail-under", "max-drop", "fail-if-worse"]
    with pytest.raises(
        GateError, match=r"^gate --fail-under 0.999 failed: .*\(also failed: --max-drop 0.1, --fail-if-worse\)$"
    ):
        gates.enforce(verdicts)
    assert gates.judge(Gates(), current, None) == ()
    gates.enforce(())
    assert not Gates() and Gates(fail_if_worse=True)
    with pytest.raises(ValueError, match="need a baseline"):
        gates.judge(Gates(max_drop=1), current, None)
    assert [v.to_json() for v in verdicts][0] == {
        "name": "fail-under",
        "threshold": 0.999,
        "value": 0.981,
        "passed": False,
    }
