"""Writing the site: one staging folder swapped in whole, so a failure leaves the previous
site as it was; what an earlier site wrote and this one does not is removed."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from reportgen.errors import ReportgenError
from reportgen.report import templates as report_templates
from reportgen.run import files
from reportgen.run import folder as run_folder
from reportgen.site.index import (
    CHART,
    INDEX_HTML,
    INDEX_JSON,
    RUNS,
    TEMPLATE,
    TITLE,
    WRITTEN,
    Index,
    context,
    make_index,
)
from reportgen.site.runs import Run, gather

if TYPE_CHECKING:
    from reportgen.report.figures.style import Figure


def _earlier_site(site: Path) -> frozenset[str] | None:
    """The top-level names an earlier reportgen site in this folder wrote; None if it is not one."""
    try:
        body = files.read_json(site / INDEX_JSON)
    except ReportgenError:
        return None
    if not isinstance(body, dict) or not str(body.get("generator", "")).startswith("reportgen "):
        return None
    wrote = body.get("files")
    if not isinstance(wrote, list):
        return None
    # Plain names only: a hand-edited index.json must not point the clean-up elsewhere.
    return frozenset(f for f in wrote if isinstance(f, str) and f and f == Path(f).name and f not in (".", ".."))


def check_site(site: Path, folders: Sequence[Path]) -> frozenset[str]:
    """Refuse a SITE_DIR where writing would clobber what is not a site's; return what the
    earlier site there wrote (to remove what this one no longer writes)."""
    run_folder.check_out(site)
    if any(Path(folder).resolve() == site.resolve() for folder in folders):
        raise ReportgenError(f"--out {site}: is one of the runs; give the site a folder of its own")
    if not site.is_dir():
        return frozenset()
    earlier = _earlier_site(site)
    if earlier is None:
        ours = [name for name in sorted(WRITTEN) if (site / name).exists()]
        if ours:
            raise ReportgenError(
                f"--out {site}: holds {ours[0]} but is not a reportgen site; give a new or empty folder"
            )
        return frozenset()
    return earlier


def _swap_in(earlier: frozenset[str]) -> Callable[[Path, Path], None]:
    """How the staged site replaces the old one: each entry it writes replaced whole (so a
    run no longer given goes with the old runs/), and what only the earlier site wrote removed."""

    def finish(staged: Path, site: Path) -> None:
        site.mkdir(parents=True, exist_ok=True)
        for name in WRITTEN:
            run_folder.replace_entry(staged / name, site / name, staged)
        for name in sorted(earlier - set(WRITTEN)):
            stale = site / name
            if stale.is_dir() and not stale.is_symlink():
                os.replace(stale, staged / f".stale-{name}")  # deleted with the staging folder
            elif stale.exists() or stale.is_symlink():
                stale.unlink()

    return finish


def _copy(run: Run, into: Path) -> None:
    for name in run.files:
        target = into / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(run.folder / name, target)  # the bytes only: no times or modes to differ


def write(
    site: Path, runs: Sequence[Run], index: Index, chart: Figure, html: str, earlier: frozenset[str] = frozenset()
) -> None:
    with run_folder.staging(site, finish=_swap_in(earlier)) as staged:
        (staged / RUNS).mkdir()
        for run in runs:
            _copy(run, staged / RUNS / run.name)
        files.write_bytes(staged / CHART, chart.svg)
        files.write_json(staged / INDEX_JSON, index.to_json())
        files.write_bytes(staged / INDEX_HTML, html.encode())


def build(folders: Sequence[Path], site: Path, title: str | None = None, templates: Path | None = None) -> Index:
    """`reportgen site`: read every run, then draw, render and write the site in one swap."""
    from reportgen.report.figures.site import accuracy_chart  # matplotlib: only once there is a site to draw

    site = Path(site)
    earlier = check_site(site, folders)
    report_templates.environment(templates)  # a bad --templates fails before any run is read
    runs = gather(folders)
    index = make_index(runs, title or TITLE)
    chart = accuracy_chart(index.rows)
    html = report_templates.render_page(TEMPLATE, context(index, chart), templates)
    write(site, runs, index, chart, html, earlier)
    return index
