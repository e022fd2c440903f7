"""The layers' contracts (pyproject.toml, [tool.importlinter]) hold, and would catch a breach.

`make lint` runs lint-imports on the package; these tests break a copy of it on purpose, the
way a change might, and expect lint-imports to refuse it, naming the import.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def lint(folder: Path) -> subprocess.CompletedProcess[str]:
    """lint-imports on the package in `folder` (its first entry on sys.path), with its pyproject.toml."""
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache"],
        cwd=folder,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(folder)},
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.fixture
def copy(tmp_path: Path) -> Path:
    """The package and its contracts, copied where a test may break them."""
    shutil.copytree(ROOT / "reportgen", tmp_path / "reportgen", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path)
    return tmp_path


def add_import(module: Path, line: str) -> None:
    text = module.read_text()
    first = text.index("\nfrom ")  # after the module's docstring and __future__ import
    module.write_text(text[:first] + f"\n{line}  # noqa" + text[first:])


def test_the_contracts_hold_on_the_package(copy: Path) -> None:
    done = lint(copy)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "6 kept, 0 broken" in done.stdout


@pytest.mark.parametrize(
    "module, line, broken",
    [
        # The module that writes the PDF must never need mxnet.
        ("report/pdf.py", "import mxnet", "reportgen.report.pdf -> mxnet"),
        ("report/pdf.py", "from reportgen.net import model", "reportgen.report.pdf -> reportgen.net.model"),
        ("site/index.py", "from reportgen.net import saved", "reportgen.site.index -> reportgen.net.saved"),
        ("stats/caret.py", "from reportgen.run import files", "reportgen.stats.caret -> reportgen.run.files"),
        ("stats/paired.py", "import matplotlib", "reportgen.stats.paired -> matplotlib"),
        ("run/record.py", "from reportgen.report import filters", "reportgen.run.record -> reportgen.report.filters"),
        ("pipeline/checks.py", "import mxnet", "reportgen.pipeline.checks -> mxnet"),
        (
            "report/figures/site.py",
            "from reportgen.site import runs",
            "reportgen.report.figures.site -> reportgen.site",
        ),
        ("report/sections.py", "from reportgen.report import context", ".sections -> .context"),
    ],
)
def test_a_breach_is_refused(copy: Path, module: str, line: str, broken: str) -> None:
    add_import(copy / "reportgen" / module, line)
    done = lint(copy)
    assert done.returncode == 1, done.stdout
    assert "BROKEN" in done.stdout and broken in done.stdout.replace("\n", " ")
