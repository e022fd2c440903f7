"""Writing the site: one staging folder swapped in whole, so a failure leaves the previous
site as it was; what an earlier site wrote and this one does not is removed."""

from __future__ import annotations

import functools
import hashlib
import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from reportgen.errors import ReportgenError
from reportgen.report import templates as report_templates
from reportgen.report.filters import shown_command, shown_path
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
from reportgen.site.runs import Run, gather, published_bytes

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
    # Only names a site writes: a hand-edited index.json (or a pull request's) must not point
    # the clean-up at a file of the user's (a CNAME beside the site, say) or anywhere else.
    return frozenset(f for f in wrote if isinstance(f, str) and f in WRITTEN)


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
    return functools.partial(run_folder.publish, remove=earlier, order=WRITTEN)


def published_json(value: Any, key: str = "") -> Any:
    """A run's manifest.json or metrics.json as the site shows it: every absolute path of the
    building machine shortened to "…/name" (the command line word by word), as the reports do."""
    if isinstance(value, dict):
        return {k: published_json(v, k) for k, v in value.items()}
    if isinstance(value, list):
        return [published_json(v) for v in value]
    if isinstance(value, str):
        return shown_command(value) if key == "command" else shown_path(value)
    return value


def _copy(run: Run, into: Path) -> None:
    """The run's files: each read again and checked against its manifest (the bytes checked
    when the run was read); manifest.json and metrics.json without the machine's paths."""
    manifest = published_json(run.manifest)
    for name in run.files:
        if name == files.MANIFEST:
            continue
        data = published_bytes(run.folder, name, run.manifest, checked=True)  # when the run was read
        if name == "metrics.json":
            text = json.dumps(files.jsonable(published_json(run.metrics)), indent=2, allow_nan=False) + "\n"
            data = text.encode()
            manifest["files"][name] = {"sha256": hashlib.sha256(data).hexdigest(), "size": len(data)}
        files.write_bytes(into / name, data)
    files.write_json(into / files.MANIFEST, manifest)


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


def build(
    folders: Sequence[Path],
    site: Path,
    title: str | None = None,
    templates: Path | None = None,
    command: str = "reportgen site",
) -> Index:
    """`reportgen site`: read every run, then draw, render and write the site in one swap,
    one writer of the site at a time (`command` says who, to a second one)."""
    site = Path(site)
    run_folder.check_out(site)
    with run_folder.claimed(site, command):
        return _build(folders, site, title, templates)


def _build(folders: Sequence[Path], site: Path, title: str | None, templates: Path | None) -> Index:
    from reportgen.report.figures.site import accuracy_chart  # matplotlib: only once there is a site to draw

    earlier = check_site(site, folders)
    report_templates.environment(templates)  # a bad --templates fails before any run is read
    runs = gather(folders)
    index = make_index(runs, title or TITLE)
    chart = accuracy_chart(index.rows)
    html = report_templates.render_page(TEMPLATE, context(index, chart), templates)
    write(site, runs, index, chart, html, earlier)
    return index
