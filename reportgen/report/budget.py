"""What a template may read and spend: its folder's regular files only, and a budget of steps,
seconds and size.

Reports are built in CI from templates under review, so a template is someone else's code:

- `FolderLoader` reads a template only as a regular file inside its folder, reached with no
  symbolic link on the way (reportgen.run.paths): `tpl/env.j2 -> /proc/self/environ` and
  `tpl/sys -> /etc` are refused, naming the template. A link that stays inside is refused
  too: following it to see where it goes would reopen the race that O_NOFOLLOW closes, and
  Jinja names any file of the folder directly, so no template needs one.
- `Budgeted` is Jinja's immutable sandbox that counts steps: every call (a macro, a method, a
  filter), every attribute or item read, every item of `range()`, and refuses the render
  past STEPS of them, past SECONDS, or when one value outgrows VALUE_SIZE characters
  (`"x" * n`, a string doubled in a loop, `center(10**9)`, `"%0999999999d"|format`). Nested
  loops over `range(100000)` stop after STEPS items instead of running for hours. Loops over
  anything else (a long string) make no step, so the seconds are also enforced by SIGALRM
  in the main thread.
"""

from __future__ import annotations

import contextlib
import functools
import math
import operator
import os
import re
import signal
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from types import FrameType
from typing import Any, SupportsIndex

import jinja2
from jinja2.loaders import split_template_path
from jinja2.sandbox import ImmutableSandboxedEnvironment, safe_range

from reportgen.errors import RenderError
from reportgen.run import paths

# Measured on a real run (one inspected digit): 1,984 steps, 0.23 s for the HTML, of which the
# counting is 4% (9 ms). Each further --case adds a few hundred steps.
STEPS = 1_000_000  # a nested pair of range(100000) is 10^10; refused after about 0.5 s
SECONDS = 20.0
VALUE_SIZE = 64 * 2**20  # characters or items of one value; the largest real one (a figure) is < 1 MB
OUTPUT_SIZE = 256 * 2**20  # characters of a page; the default report's HTML is about 5 MB
TEMPLATE_BYTES = 4 * 2**20  # one template file; the built-in ones are 96 kB together


class OverBudget(Exception):
    """A template went over its budget."""


# -- reading templates -------------------------------------------------------------------------


class FolderLoader(jinja2.BaseLoader):
    """Templates from one folder: regular files inside it, reached with no link on the way."""

    def __init__(self, folder: Path) -> None:
        self.folder = Path(os.path.realpath(folder))

    def get_source(self, environment: jinja2.Environment, template: str) -> tuple[str, str, Any]:
        pieces = split_template_path(template)  # ".." and absolute names: not found
        if not pieces:
            raise jinja2.TemplateNotFound(template)
        relative = "/".join(pieces)
        try:
            source = paths.read_inside(self.folder, relative, "a templates folder", limit=TEMPLATE_BYTES)
        except paths.Missing:
            raise jinja2.TemplateNotFound(template) from None
        except paths.Refused as e:
            raise RenderError(f"template {template!r}: {e.message}") from None
        try:
            text = source.decode("utf-8")
        except UnicodeDecodeError as e:
            raise RenderError(f"template {template!r}: not UTF-8 text ({e.reason} at byte {e.start})") from None
        return text, str(self.folder / relative), lambda: True


# -- spending ---------------------------------------------------------------------------------


class _Range(Sequence):
    """range() as the sandbox gives it (at most MAX_RANGE items), each item iterated a step."""

    def __init__(self, budget: Budgeted, items: range) -> None:
        self._budget, self._items = budget, items

    def __len__(self) -> int:
        return len(self._items)

    def __getitem__(self, index: SupportsIndex | slice) -> Any:
        if isinstance(index, slice):
            return _Range(self._budget, self._items[index])
        return self._items[index]

    def __iter__(self) -> Iterator[int]:
        for item in self._items:
            self._budget.step()
            yield item

    def __repr__(self) -> str:
        return repr(self._items)


def _size(value: Any) -> int:
    return len(value) if isinstance(value, (str, bytes, list, tuple, dict, set)) else 0


def _too_big(value: Any) -> bool:
    """An argument that would make a value over VALUE_SIZE before it could be checked: a
    width (`center(10**9)`), or a format string's ("%0999999999d")."""
    if isinstance(value, int) and not isinstance(value, bool):
        return abs(value) > VALUE_SIZE
    if isinstance(value, str) and ("%" in value or "{" in value):
        return any(int(digits) > VALUE_SIZE for digits in re.findall(r"\d{9,}", value))
    return False


def _over(what: str = "value") -> OverBudget:
    return OverBudget(f"a {what} of more than {VALUE_SIZE:,} characters or items")


class Budgeted(ImmutableSandboxedEnvironment):
    """The immutable sandbox, counting steps (see the module's docstring)."""

    intercepted_binops = frozenset({"*", "**"})  # sizes are checked before the product is made

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.steps = 0
        self.deadline = math.inf
        self.globals["range"] = lambda *args: _Range(self, safe_range(*args))
        del self.globals["lipsum"]  # filler text by the megabyte, a loop out of the budget's reach

    def concat(self, pieces: Iterable[str]) -> str:
        """The page from its pieces: a piece may be a value already counted (a figure) written
        a hundred thousand times, which only the join would find out, at gigabytes."""
        kept, size = [], 0
        for piece in pieces:
            size += len(piece)
            if size > OUTPUT_SIZE:
                raise OverBudget(f"a page of more than {OUTPUT_SIZE:,} characters")
            kept.append(piece)
        return "".join(kept)

    def step(self) -> None:
        self.steps += 1
        if self.steps > STEPS:
            raise OverBudget(f"more than {STEPS:,} steps")
        if not self.steps % 1024 and time.monotonic() > self.deadline:
            raise OverBudget(f"more than {SECONDS:g} s")

    def _checked(self, value: Any) -> Any:
        if _size(value) > VALUE_SIZE:
            raise _over()
        return value

    def bound(self) -> Budgeted:
        """Every filter made to count a step and checked like a call (filters are called
        directly, not through `call`): call once the filters are in place."""
        for name, function in list(self.filters.items()):
            self.filters[name] = self._bounded(function)
        return self

    def _bounded(self, function: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(function)  # keeps Jinja's pass_context and the like
        def bounded(*args: Any, **kwargs: Any) -> Any:
            self.step()
            if any(_too_big(value) for value in (*args, *kwargs.values())):
                raise _over("value or width")
            return self._checked(function(*args, **kwargs))

        return bounded

    def wrap_str_format(self, value: Any) -> Callable[..., str] | None:
        wrapped = super().wrap_str_format(value)
        if wrapped is not None and _too_big(value.__self__):
            raise _over("format")
        return wrapped

    def call(__self, __context: Any, __obj: Any, *args: Any, **kwargs: Any) -> Any:  # Jinja's own names
        __self.step()
        return __self._checked(super().call(__context, __obj, *args, **kwargs))

    def getattr(self, obj: Any, attribute: str) -> Any:
        self.step()
        return self._checked(super().getattr(obj, attribute))

    def getitem(self, obj: Any, argument: Any) -> Any:
        self.step()
        return self._checked(super().getitem(obj, argument))

    def call_binop(self, context: Any, operator_: str, left: Any, right: Any) -> Any:
        self.step()
        if operator_ == "*":
            for seq, times in ((left, right), (right, left)):
                if _size(seq) and isinstance(times, int) and _size(seq) * times > VALUE_SIZE:
                    raise _over()
        if operator_ == "**" and isinstance(left, int) and isinstance(right, int) and abs(left) > 1:
            if right * math.log2(abs(left)) > 8 * VALUE_SIZE:
                raise OverBudget(f"a number of more than {VALUE_SIZE:,} bytes")
        return self._checked({"*": operator.mul, "**": operator.pow}[operator_](left, right))

    @contextlib.contextmanager
    def spending(self) -> Iterator[None]:
        """The budget for one render: steps from 0, SECONDS from now (SIGALRM where this is the
        main thread, so that a loop making no step is stopped as well)."""
        self.steps, self.deadline = 0, time.monotonic() + SECONDS
        if threading.current_thread() is not threading.main_thread():
            yield
            return

        def over(signum: int, frame: FrameType | None) -> None:
            raise OverBudget(f"more than {SECONDS:g} s")

        previous = signal.signal(signal.SIGALRM, over)
        signal.setitimer(signal.ITIMER_REAL, SECONDS)
        try:
            yield
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, previous)
