"""Interleaved rounds for bench.py: every round runs each case once, in an order rotated by one
a round (A B C, B C A, C A B, ...), with the load average before and after; ratios are taken
round by round, between runs that shared the machine's state."""

from __future__ import annotations

import os
import statistics
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass
class Case:
    name: str
    label: str
    measure: Callable[[int], float]  # the round's number -> its value
    values: list[float] = field(default_factory=list)


def load_average() -> str:
    """`uptime`'s load average: 1, 5 and 15 minutes."""
    return ", ".join(f"{x:.2f}" for x in os.getloadavg())


def interleave(title: str, cases: list[Case], rounds: int) -> list[dict]:
    """Each round runs every case once, the order rotated by one a round; the load before and
    after each round is printed and returned."""
    loads = []
    cores = os.cpu_count() or 1
    for r in range(rounds):
        order = cases[r % len(cases) :] + cases[: r % len(cases)]
        before = load_average()
        for case in order:
            case.values.append(case.measure(r))
        after = load_average()
        busy = float(before.split(",")[0]) > 0.75 * cores
        loads.append({"round": r + 1, "before": before, "after": after, "busy": busy})
        print(
            f"{title}, round {r + 1} of {rounds} ({' '.join(c.name for c in order)}): load average "
            f"{before} before, {after} after"
            + (f" (busy: more than {0.75 * cores:g} on {cores} cores)" if busy else ""),
            flush=True,
        )
    return loads


def ratios(top: Case, bottom: Case) -> list[float]:
    """top / bottom, round by round."""
    return [a / b for a, b in zip(top.values, bottom.values)]


def spread(values: list[float], digits: int = 2) -> tuple[str, str]:
    """(median, low-high), as the tables print them."""
    return f"{statistics.median(values):.{digits}f}", f"{min(values):.{digits}f}-{max(values):.{digits}f}"


def as_json(title: str, reference: Case, cases: list[Case], loads: list[dict]) -> dict:
    return {
        "title": title,
        "reference": reference.name,
        "cases": [{"name": c.name, "label": c.label, "values": c.values} for c in cases],
        "loads": loads,
    }
