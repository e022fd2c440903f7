"""What a wheel ships: every subpackage, and the templates as reportgen.templates."""

from __future__ import annotations

import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_every_subpackage_and_the_templates_are_listed():
    setuptools = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    on_disk = {".".join(init.parent.relative_to(ROOT).parts) for init in (ROOT / "reportgen").rglob("__init__.py")}
    assert on_disk | {"reportgen.templates"} == set(setuptools["packages"])
    assert setuptools["package-dir"] == {"reportgen.templates": "templates"}
    shipped = setuptools["package-data"]["reportgen.templates"]
    for template in (ROOT / "templates").iterdir():
        assert any(template.match(pattern) for pattern in shipped), template.name
