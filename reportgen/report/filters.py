"""The report's number formats, as Jinja filters: how every number reads in the HTML and PDF.

Missing values (None, NaN) read "NA", as R prints them for caret's users; negative numbers
carry a true minus sign, as wide as "+" and the digits.
"""

from __future__ import annotations

import math
import numbers
import shlex
from pathlib import PurePosixPath, PureWindowsPath
from typing import Any

from reportgen.layers import format_shape

NA = "NA"
MINUS = "\u2212"


def is_missing(x: Any) -> bool:
    """None, NaN and infinities: shown as NA."""
    if x is None:
        return True
    return isinstance(x, numbers.Real) and not math.isfinite(float(x))


def _minus(text: str) -> str:
    return text.replace("-", MINUS)


def fmt_fixed(x: Any, digits: int = 4) -> str:
    """Fixed decimals with thousands separators: 0.9890, 12,345.6."""
    return NA if is_missing(x) else _minus(f"{float(x):,.{digits}f}")


def fmt_pct(x: Any, digits: int = 2) -> str:
    """A share as a percentage: 0.9901 -> 99.01%."""
    return NA if is_missing(x) else _minus(f"{100 * float(x):,.{digits}f}%")


def fmt_int(x: Any) -> str:
    """A count with thousands separators: 60000 -> 60,000."""
    return NA if is_missing(x) else _minus(f"{round(float(x)):,}")


def fmt_seconds(x: Any) -> str:
    """Seconds as people say them: 0.42 s, 8.3 s, 42 s, 1 min 23 s, 2 h 05 min."""
    if is_missing(x):
        return NA
    s = float(x)
    if s < 10:
        return f"{s:.2f} s" if s < 1 else f"{s:.1f} s"
    if s < 59.5:
        return f"{s:.0f} s"
    s = round(s)
    if s < 3600:
        return f"{s // 60} min {s % 60} s"
    return f"{s // 3600} h {s % 3600 // 60:02d} min"


def fmt_pvalue(x: Any) -> str:
    """A p-value as R prints one: below machine precision it is "< 2.2e-16"."""
    if is_missing(x):
        return NA
    p = float(x)
    if p < 2.2e-16:
        return "< 2.2e\u221216"
    return _minus(f"{p:.2e}") if p < 1e-4 else f"{p:.4f}"


def fmt_points(x: Any, digits: int = 2) -> str:
    """A difference of two shares in percentage points, signed: +0.12, -0.35."""
    return NA if is_missing(x) else _minus(f"{100 * float(x):+.{digits}f}")


def fmt_value(x: Any) -> str:
    """Any value of the run record: numbers as above, lists joined, the rest as text."""
    if x is None or (isinstance(x, float) and is_missing(x)):
        return NA
    if isinstance(x, bool):
        return "yes" if x else "no"
    if isinstance(x, int):
        return str(x)
    if isinstance(x, float):  # 1e-05 reads as the seed wrote it, 0.00001
        text = f"{x:.10f}".rstrip("0").rstrip(".") if 1e-6 <= abs(x) < 1e9 else f"{x:g}"
        return _minus(text)
    if isinstance(x, (list, tuple)):
        return ", ".join(fmt_value(v) for v in x)
    return str(x)


def article(n: Any) -> str:
    """ "a" or "an" before a number as it is read aloud: an 8, an 11, an 18, an 80, an 11,000;
    a 1, a 7, a 100."""
    digits = str(abs(int(n)))
    if digits.startswith("8") or (len(digits) % 3 == 2 and digits[:2] in ("11", "18")):
        return "an"
    return "a"


FILTERS = {
    "fixed": fmt_fixed,
    "pct": fmt_pct,
    "thousands": fmt_int,
    "seconds": fmt_seconds,
    "pvalue": fmt_pvalue,
    "points": fmt_points,
    "shape": format_shape,
    "value": fmt_value,
    "article": article,
}


def shown_path(path: str) -> str:
    """A path as a published page shows it: as typed, but an absolute one only by its last
    part, "…/name" (reports and sites are published; the building machine's folders are not).
    The run's manifest.json keeps it as typed."""
    for flavour in (PurePosixPath, PureWindowsPath):
        if flavour(path).is_absolute() or flavour(path).drive:
            return f"\u2026/{flavour(path).name}"
    return path


def shown_value(value: Any) -> Any:
    """An option's value as a published page shows it: absolute paths shortened."""
    return shown_path(value) if isinstance(value, str) else value


def shown_command(command: str) -> str:
    """A command line with every absolute path shortened (shown_path)."""
    try:
        words = shlex.split(command)
    except ValueError:  # an unbalanced quote: show it as it is
        return command
    # "…/name" needs no quotes (shlex.quote would add them for the ellipsis).
    return " ".join(shown if (shown := shown_path(word)) != word else shlex.quote(word) for word in words)
