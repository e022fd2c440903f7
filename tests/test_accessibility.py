"""Accessibility of the HTML: axe-core in headless Chromium on report.html (with and
without a baseline section) and on a site's index.html, plus the checks that need no
browser (a language, alternative text on every image, no unlabelled inline SVG).

axe needs Debian's `chromium` and `chromium-driver` and axe-core's command line, pinned in
tools/axe/package.json and installed with `npm ci --ignore-scripts --prefix tools/axe` (the
install script of its `chromedriver` dependency would download a driver from outside; the
Debian one is used instead). .ci/run installs all three. Where one is missing the axe test
is skipped, naming what is missing (`pytest -ra` lists the reason); with
REPORTGEN_REQUIRE_AXE=1, as .ci/run sets after installing them, it fails instead, so CI
cannot pass by skipping it.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pytest
from click.testing import CliRunner

from reportgen.cli import main

CHECKOUT = Path(__file__).resolve().parent.parent
AXE_LOCAL = CHECKOUT / "tools" / "axe" / "node_modules" / ".bin" / "axe"
# WCAG 2.0-2.2 A and AA, and axe's best practices (heading order, landmarks, ...); not AAA.
AXE_TAGS = "wcag2a,wcag2aa,wcag21a,wcag21aa,wcag22aa,best-practice"


def _tools() -> tuple[dict[str, str], list[str]]:
    found, missing = {}, []
    for key, names, how in (
        ("chrome", ("chromium", "chromium-browser", "google-chrome"), "apt-get install chromium"),
        ("chromedriver", ("chromedriver",), "apt-get install chromium-driver"),
    ):
        path = next((p for p in map(shutil.which, names) if p), None)
        if path:
            found[key] = path
        else:
            missing.append(f"{names[0]} ({how})")
    axe = os.environ.get("REPORTGEN_AXE") or (str(AXE_LOCAL) if AXE_LOCAL.exists() else shutil.which("axe"))
    if axe:
        found["axe"] = axe
    else:
        missing.append("axe (npm ci --ignore-scripts --prefix tools/axe)")
    return found, missing


# Session scope: resolved before the session's trained run, so a skip costs no training.
@pytest.fixture(scope="session")
def axe_tools() -> dict[str, str]:
    found, missing = _tools()
    if missing:
        message = "axe-core accessibility check not run: missing " + ", ".join(missing)
        if os.environ.get("REPORTGEN_REQUIRE_AXE") == "1":
            pytest.fail(message + " (REPORTGEN_REQUIRE_AXE=1)")
        pytest.skip(message)
    return found


def _invoke(*args: str) -> None:
    result = CliRunner().invoke(main, list(args))
    assert result.exit_code == 0, result.output


@pytest.fixture(scope="module")
def pages(trained_run, tmp_path_factory) -> dict[str, Path]:
    """report.html of the session's trained model alone and against a baseline (the same
    model: the section is drawn all the same), and the site's index.html of both."""
    root = tmp_path_factory.mktemp("a11y")
    alone, against, site = root / "alone", root / "against", root / "site"
    common = ["--model", str(trained_run), "--test-limit", "300", "--format", "html"]
    _invoke("build", "-q", *common, "--out", str(alone))
    _invoke("build", "-q", *common, "--baseline", str(alone), "--out", str(against))
    _invoke("site", "-q", str(alone), str(against), "--out", str(site))
    return {
        "report": alone / "report.html",
        "report with a baseline": against / "report.html",
        "site index": site / "index.html",
    }


def _describe(violation: dict) -> str:
    lines = [f"{violation['id']} ({violation['impact']}): {violation['help']}"]
    for node in violation["nodes"][:12]:
        lines.append(f"    {' '.join(map(str, node['target']))}: {node.get('failureSummary', '').splitlines()[-1:]}")
    if len(violation["nodes"]) > 12:
        lines.append(f"    ... and {len(violation['nodes']) - 12} more")
    return "\n".join(lines)


def test_axe_finds_no_violation(axe_tools, pages):
    command = [
        axe_tools["axe"],
        *(page.resolve().as_uri() for page in pages.values()),
        "--chromedriver-path",
        axe_tools["chromedriver"],
        "--chrome-path",
        axe_tools["chrome"],
        # no-sandbox: CI runs as root; the network flags keep Chromium from calling out.
        "--chrome-options=headless,no-sandbox,disable-gpu,disable-background-networking,"
        "disable-component-update,disable-sync,no-first-run",
        "--tags",
        AXE_TAGS,
        "--timeout",
        "300",
        "--stdout",
    ]
    done = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert done.stdout.strip(), f"axe printed nothing (exit {done.returncode}): {done.stderr[-2000:]}"
    results = json.loads(done.stdout)
    assert len(results) == len(pages), done.stderr[-2000:]
    by_url = {result["url"]: result for result in results}
    problems = []
    for name, page in pages.items():
        result = by_url[page.resolve().as_uri()]
        assert result["passes"], f"{name}: axe ran no rule"
        problems += [f"{name}: {_describe(v)}" for v in result["violations"]]
    assert not problems, "\n".join(problems)


class _Page(HTMLParser):
    """The root's lang, each <img>'s alt and each inline <svg>'s labelling (its attributes, and
    whether a <title> is its first child)."""

    def __init__(self) -> None:
        super().__init__()
        self.lang: str | None = None
        self.images: list[dict[str, str | None]] = []
        self.svgs: list[dict[str, str | None]] = []
        self._svg_titled: list[bool] = []
        self._open: list[int] = []  # the inline <svg>s open, by their index in svgs
        self._fresh = False  # the last start tag was an <svg>'s

    def handle_starttag(self, tag, attrs):
        attributes = dict(attrs)
        if tag == "html":
            self.lang = attributes.get("lang")
        elif tag == "img":
            self.images.append(attributes)
        elif tag == "title" and self._open and self._fresh:
            self._svg_titled[self._open[-1]] = True
        if tag == "svg":
            self.svgs.append(attributes)
            self._svg_titled.append(False)
            self._open.append(len(self.svgs) - 1)
        self._fresh = tag == "svg"

    def handle_endtag(self, tag):
        if tag == "svg" and self._open:
            self._open.pop()
        self._fresh = False


def test_every_page_has_a_language_and_every_image_a_text(pages):
    for name, page in pages.items():
        parsed = _Page()
        parsed.feed(page.read_text())
        assert parsed.lang == "en", name
        assert parsed.images, name
        for image in parsed.images:
            assert (image.get("alt") or "").strip(), f"{name}: an <img> without alt text: {str(image)[:120]}"
        for svg, titled in zip(parsed.svgs, parsed._svg_titled):
            labelled = svg.get("aria-label") or svg.get("aria-labelledby") or titled or svg.get("aria-hidden") == "true"
            assert labelled and (svg.get("role") == "img" or svg.get("aria-hidden") == "true"), (
                f"{name}: an inline <svg> without role=img and a label: {svg}"
            )
