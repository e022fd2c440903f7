"""What a figure is, and a figure function named by where it lives: both without matplotlib.

A render whose figures all come from the cache (cache.py) never imports matplotlib (a quarter
of a second, more than half of `import reportgen.pipeline`): the package names each figure
function as a `Drawing`, which imports its module only when a figure must be drawn.
"""

from __future__ import annotations

import base64
import importlib
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Figure:
    name: str  # file stem, e.g. "confusion"
    caption: str  # one line: what it shows and how to read it
    alt: str  # alt text
    svg: bytes

    @property
    def filename(self) -> str:
        return f"{self.name}.svg"

    @property
    def data_uri(self) -> str:
        return "data:image/svg+xml;base64," + base64.b64encode(self.svg).decode("ascii")


@dataclass(frozen=True)
class Drawing:
    """A figure function by module and name, imported when first called."""

    module: str  # e.g. "reportgen.report.figures.data"
    name: str  # e.g. "first_digits"

    @property
    def qualname(self) -> str:
        """What the figure cache keys the function by: the same as for the function itself."""
        return f"{self.module}.{self.name}"

    def __call__(self, *args: Any, **kwargs: Any) -> Figure:
        function = getattr(importlib.import_module(self.module), self.name)
        figure: Figure = function(*args, **kwargs)
        return figure
