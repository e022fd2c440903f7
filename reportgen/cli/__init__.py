"""The command line: a thin layer that parses options and calls the pipeline."""

from __future__ import annotations

from reportgen.cli.commands import main
from reportgen.cli.main import run

__all__ = ["main", "run"]
