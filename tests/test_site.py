"""The site: several quick runs, then one static folder that lists them.

The numbers on the index are checked against each run's own metrics.json and against
scipy (the exact binomial interval); the chart's points are read back from the SVG
through its own tick labels; links are resolved on disk.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import urllib.parse
import xml.etree.ElementTree as ET
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from conftest import digest, make_record, metrics_body
from scipy import stats

from reportgen.cli import main
from reportgen.errors import DataError
from reportgen.run import files
from reportgen.run.record import manifest
from reportgen.site import index as site_index
from reportgen.site import runs as site_runs

QUICK = ["--epochs", "1", "--train-limit", "1000", "--test-limit", "300"]
CHECKOUT = str(Path(__file__).resolve().parent.parent)
SVG = "{http://www.w3.org/2000/svg}"
XLINK = "{http://www.w3.org/1999/xlink}"


def build(out: Path, *args: str) -> Path:
    result = CliRunner().invoke(main, ["build", "-q", *args, "--out", str(out)])
    assert result.exit_code == 0, result.output
    return out


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, Path]:
    """Three quick runs, built in this order: an HTML-only baseline, a two-epoch run with a
    PDF and another seed, and the baseline's model loaded again (its --model absolute)."""
    root = tmp_path_factory.mktemp("runs")
    base = build(root / "base", *QUICK, "--format", "html")
    change = build(root / "change", "--epochs", "2", "--train-limit", "1000", "--test-limit", "300", "--seed", "7")
    loaded = build(root / "loaded", "--model", str(base.resolve()), "--test-limit", "300", "--format", "html")
    return {"base": base, "change": change, "loaded": loaded}


def make_site(out: Path, *folders: Path, more: tuple[str, ...] = ()):
    return CliRunner().invoke(main, ["site", "-q", *map(str, folders), "--out", str(out), *more])


@pytest.fixture(scope="module")
def built(runs, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("site") / "site"
    result = make_site(out, *runs.values(), more=("--title", "Quick runs"))
    assert result.exit_code == 0, result.output
    return out


def index_json(folder: Path) -> dict:
    return json.loads((folder / "index.json").read_text())


class Links(HTMLParser):
    """Every URL an HTML page refers to: attributes and CSS url()s; and its tags."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []
        self.tags: list[str] = []
        self.text: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        for name, value in attrs:
            if name in ("href", "src", "poster", "data", "action", "xlink:href", "background") and value:
                self.urls.append(value.strip())
            elif name == "srcset" and value:
                self.urls += [part.split()[0] for part in value.split(",") if part.strip()]

    def handle_data(self, data):
        self.text.append(data)
        self.urls += re.findall(r"url\(\s*['\"]?([^'\")]*)", data)


def links(page: Path) -> Links:
    parser = Links()
    parser.feed(page.read_text())
    return parser


def resolve_inside(url: str, page: Path, root: Path) -> Path | None:
    """The file a relative URL names, checked to lie inside root; None for data: and #fragments."""
    if url.startswith(("data:", "#")):
        return None
    parts = urllib.parse.urlsplit(url)
    assert not parts.scheme and not parts.netloc and not parts.path.startswith("/"), url
    target = (page.parent / urllib.parse.unquote(parts.path)).resolve()
    assert target.is_relative_to(root.resolve()), url
    assert target.is_file(), url
    return target


# -- the site of three real runs ------------------------------------------------------------


def test_the_site_holds_each_run_and_its_files(built, runs):
    index = index_json(built)
    assert [row["name"] for row in index["runs"]] == ["loaded", "change", "base"]  # newest first
    assert index["title"] == "Quick runs"
    for name, folder in runs.items():
        copied = built / "runs" / name
        expected = ["manifest.json", "metrics.json", "report.html"] + (
            ["report.pdf", "report.pdf.sha256"] if name == "change" else []
        )
        assert sorted(p.name for p in copied.iterdir() if p.is_file()) == expected
        figures = sorted(p.name for p in (folder / "figures").iterdir())
        assert figures and sorted(p.name for p in (copied / "figures").iterdir()) == figures
        for path in copied.rglob("*"):
            if path.is_file():
                assert path.read_bytes() == (folder / path.relative_to(copied)).read_bytes(), path
    assert sorted(p.name for p in built.iterdir()) == ["accuracy.svg", "index.html", "index.json", "runs"]


def test_every_link_resolves_inside_the_site(built):
    index = links(built / "index.html")
    targets = {resolve_inside(url, built / "index.html", built) for url in index.urls} - {None}
    rows = index_json(built)["runs"]
    for row in rows:  # the report, the PDF where there is one, the metrics; the same in index.json
        for key in ("html", "metrics", "manifest") + (("pdf",) if row["pdf"] else ()):
            assert resolve_inside(row[key], built / "index.html", built) is not None
        assert (built / "runs" / row["name"] / "report.html") in targets
        assert (row["pdf"] is None) == (row["name"] != "change")
    assert built / "runs/change/report.pdf" in targets and built / "accuracy.svg" in targets
    assert not {"script", "link", "iframe", "object", "embed", "base"} & set(index.tags)
    style = (built / "index.html").read_text()
    assert "@import" not in style and "@font-face" not in style and "http" not in style
    for page in sorted(built.glob("runs/*/report.html")):  # self-contained: data: URIs and #fragments
        assert {resolve_inside(url, page, built) for url in links(page).urls} <= {None}


def test_the_index_shows_each_runs_metrics(built, runs):
    """index.json holds metrics.json's numbers exactly; they agree with the confusion matrix
    and scipy's exact binomial interval; index.html shows them rounded as the report does."""
    html = re.sub(r"\s+", " ", " ".join(links(built / "index.html").text))
    for row in index_json(built)["runs"]:
        metrics = json.loads((runs[row["name"]] / "metrics.json").read_text())
        manifest = json.loads((runs[row["name"]] / "manifest.json").read_text())
        overall = metrics["overall"]
        for key in ("accuracy", "accuracy_lower", "accuracy_upper", "kappa"):
            assert row[key] == overall[key], key
        assert row["ece"] == metrics["calibration"]["ece"] and row["n_test"] == metrics["n_test"] == 300
        table = np.array(metrics["confusion_matrix"])
        correct, n = int(table.trace()), int(table.sum())
        assert row["accuracy"] == pytest.approx(correct / n, abs=1e-15)
        interval = stats.binomtest(correct, n).proportion_ci(0.95, method="exact")
        assert (row["accuracy_lower"], row["accuracy_upper"]) == pytest.approx((interval.low, interval.high), abs=1e-9)
        assert row["epochs"] == manifest["model"]["epoch"] and row["devices"] == manifest["contexts"]
        assert row["created"] == manifest["created"] and row["title"] == manifest["title"]
        shown = f"{100 * row['accuracy']:.2f}% {100 * row['accuracy_lower']:.2f}%–{100 * row['accuracy_upper']:.2f}%"
        assert shown in html, shown
        assert f"{row['kappa']:.4f}" in html and f"{100 * row['ece']:.2f}%" in html
    rows = {row["name"]: row for row in index_json(built)["runs"]}
    timings = json.loads((runs["base"] / "manifest.json").read_text())["timings"]
    assert rows["base"]["training_seconds"] == timings["train"]
    assert rows["change"]["epochs"] == 2 and rows["base"]["model"] == "trained here"
    assert rows["loaded"]["model"] == "\u2026/base"  # the absolute --model, by its last part
    assert rows["loaded"]["accuracy"] == rows["base"]["accuracy"]  # the same model on the same images
    # The loaded run's training is its model's: the base run's images, epochs and time.
    base = json.loads((runs["base"] / "manifest.json").read_text())
    assert rows["loaded"]["train_images"] == rows["base"]["train_images"] == base["data"]["train_images"]
    assert (rows["loaded"]["epochs"], rows["loaded"]["training_seconds"]) == (1, timings["train"])


def _tick_scale(root: ET.Element) -> tuple[float, float]:
    """(slope, offset) from SVG x to the value its tick labels say, fitted on every x tick."""
    xs, values = [], []
    for group in root.iter(f"{SVG}g"):
        if re.fullmatch(r"xtick_\d+", group.get("id") or ""):
            use = next(group.iter(f"{SVG}use"))
            label = "".join(next(group.iter(f"{SVG}text")).itertext()).replace("\u2212", "-")
            xs.append(float(use.get("x")))
            values.append(float(label.rstrip("%")) / 100)
    assert len(xs) >= 2
    slope, offset = np.polyfit(xs, values, 1)
    assert np.allclose(np.polyval((slope, offset), xs), values, atol=1e-9)  # the ticks are one linear scale
    return slope, offset


def _group(root: ET.Element, gid: str) -> ET.Element:
    return next(g for g in root.iter(f"{SVG}g") if g.get("id") == gid)


def test_the_chart_draws_each_runs_accuracy_and_interval(built):
    root = ET.fromstring((built / "accuracy.svg").read_bytes())
    slope, offset = _tick_scale(root)
    rows = index_json(built)["runs"]
    heights = []
    for i, row in enumerate(rows):
        point = next(_group(root, f"accuracy-{i}").iter(f"{SVG}use"))
        assert float(point.get("x")) * slope + offset == pytest.approx(row["accuracy"], abs=2e-6)
        path = next(_group(root, f"interval-{i}").iter(f"{SVG}path")).get("d")
        x0, y0, x1, y1 = (float(v) for v in re.findall(r"-?\d+(?:\.\d+)?", path)[:4])
        assert (x0 * slope + offset, x1 * slope + offset) == pytest.approx(
            (row["accuracy_lower"], row["accuracy_upper"]), abs=2e-6
        )
        assert y0 == y1 == pytest.approx(float(point.get("y")))
        heights.append(y0)
    assert heights == sorted(heights)  # the first row (newest) at the top, as in the table
    names = [t for t in ("".join(e.itertext()) for e in root.iter(f"{SVG}text"))]
    assert all(row["name"] in names for row in rows)


def test_the_same_runs_give_the_same_bytes(built, runs, tmp_path):
    again = tmp_path / "elsewhere"
    assert make_site(again, *runs.values(), more=("--title", "Quick runs")).exit_code == 0
    assert digest(again) == digest(built)
    assert make_site(again, *runs.values(), more=("--title", "Quick runs")).exit_code == 0  # over itself
    assert digest(again) == digest(built)


def test_no_path_of_the_building_machine_in_the_index(built, runs):
    for name in ("index.html", "index.json", "accuracy.svg"):
        text = (built / name).read_text()
        for path in (str(built.parent), str(runs["base"].parent), CHECKOUT, str(Path.home())):
            assert path not in text, (name, path)


def test_fewer_runs_remove_the_dropped_one_and_what_the_site_no_longer_writes(built, runs, tmp_path):
    out = tmp_path / "site"
    shutil.copytree(built, out)
    # An earlier site wrote a file this one does not; someone added a file of their own.
    index = index_json(out)
    (out / "index.json").write_text(json.dumps({**index, "files": [*index["files"], "old-chart.png"]}))
    (out / "old-chart.png").write_bytes(b"old")
    (out / "CNAME").write_text("runs.example.org\n")
    result = make_site(out, runs["base"], runs["change"])
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in (out / "runs").iterdir()) == ["base", "change"]
    assert [row["name"] for row in index_json(out)["runs"]] == ["change", "base"]
    assert "loaded" not in (out / "index.html").read_text()
    assert not (out / "old-chart.png").exists() and (out / "CNAME").read_text() == "runs.example.org\n"
    assert not [p.name for p in tmp_path.iterdir() if ".tmp-" in p.name]
    # and all three again: the first site's bytes, their file kept
    assert make_site(out, *runs.values(), more=("--title", "Quick runs")).exit_code == 0
    assert {k: v for k, v in digest(out).items() if k != "CNAME"} == digest(built)


@pytest.mark.parametrize("broken", ["empty", "no-report", "no-metrics", "changed", "bad-metrics"])
def test_a_folder_that_is_not_a_finished_run_is_refused_and_the_site_stays_whole(built, runs, tmp_path, broken, runner):
    out = tmp_path / "site"
    shutil.copytree(built, out)
    before = digest(out)
    bad = tmp_path / "bad"
    if broken == "empty":
        bad.mkdir()
    else:
        shutil.copytree(runs["base"], bad)
    if broken == "no-report":
        (bad / "report.html").unlink()
    elif broken == "no-metrics":
        (bad / "metrics.json").unlink()
    elif broken == "changed":
        (bad / "report.html").write_text("<p>edited by hand</p>")
    elif broken == "bad-metrics":
        (bad / "metrics.json").write_text('{"overall": {}}')
    result = runner.invoke(main, ["site", runs["base"].as_posix(), str(bad), "--out", str(out)])
    assert result.exit_code == 2, result.output
    (line,) = result.stderr.splitlines()
    assert line.startswith(f"error: {bad}") and "Traceback" not in result.output, line
    assert digest(out) == before
    assert not [p.name for p in tmp_path.iterdir() if ".tmp-" in p.name]


@pytest.mark.parametrize(
    "broken, fragment",
    [
        ("pdf-changed", "report.pdf: differs from its report.pdf.sha256"),
        ("no-sidecar", "report.pdf.sha256: missing"),
        ("sidecar-changed", "report.pdf: differs from its report.pdf.sha256"),
        ("no-pdf-entry", "report.pdf: not among the files its manifest.json records"),
        ("pdf-entry-elsewhere", '"pdf" is not what reportgen writes'),
    ],
)
def test_a_pdf_its_sidecar_does_not_vouch_for_is_refused(runs, tmp_path, broken, fragment, runner):
    bad = tmp_path / "bad"
    shutil.copytree(runs["change"], bad)
    if broken == "pdf-changed":
        with open(bad / "report.pdf", "ab") as f:
            f.write(b"%% appended\n")
    elif broken == "no-sidecar":
        (bad / "report.pdf.sha256").unlink()
    elif broken == "sidecar-changed":
        (bad / "report.pdf.sha256").write_text("0" * 64 + "  report.pdf\n")
    else:
        manifest = json.loads((bad / "manifest.json").read_text())
        if broken == "no-pdf-entry":
            del manifest["pdf"]
        else:
            manifest["pdf"]["checksum"] = "../elsewhere.sha256"
        (bad / "manifest.json").write_text(json.dumps(manifest))
    result = runner.invoke(main, ["site", str(bad), "--out", str(tmp_path / "site")])
    assert result.exit_code == 2, result.output
    (line,) = result.stderr.splitlines()
    assert line.startswith(f"error: {bad}") and fragment in line, line
    assert not (tmp_path / "site").exists()


def test_the_sites_copy_of_a_pdf_is_checked_by_its_sidecar(built):
    copied = built / "runs" / "change"
    recorded = (copied / "report.pdf.sha256").read_text()
    assert recorded == f"{files.sha256(copied / 'report.pdf')}  report.pdf\n"
    if shutil.which("sha256sum"):
        done = subprocess.run(["sha256sum", "-c", "--strict", "report.pdf.sha256"], cwd=copied, capture_output=True)
        assert done.returncode == 0 and done.stdout == b"report.pdf: OK\n", done


def test_a_missing_folder_is_a_usage_error(tmp_path, runner):
    result = runner.invoke(main, ["site", str(tmp_path / "nowhere"), "--out", str(tmp_path / "site")])
    assert result.exit_code == 2 and "nowhere" in result.stderr and "does not exist" in result.stderr
    assert not (tmp_path / "site").exists()


def test_a_folder_that_is_not_a_site_is_not_overwritten(runs, tmp_path, runner):
    theirs = tmp_path / "www"
    theirs.mkdir()
    (theirs / "index.html").write_text("<h1>my home page</h1>")
    result = runner.invoke(main, ["site", str(runs["base"]), "--out", str(theirs)])
    assert result.exit_code == 2 and "is not a reportgen site" in result.stderr
    assert [p.name for p in theirs.iterdir()] == ["index.html"]
    result = runner.invoke(main, ["site", str(runs["base"]), "--out", str(runs["base"])])
    assert result.exit_code == 2 and "is one of the runs" in result.stderr


def test_the_runs_partial_can_be_overridden(runs, tmp_path):
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "_site_runs.html.j2").write_text(
        "<ol id='mine'>{% for run in runs %}<li><a href='{{ run.html }}'>{{ run.name }}</a> "
        "{{ run.accuracy|pct }}</li>{% endfor %}</ol>\n"
    )
    result = make_site(tmp_path / "site", runs["base"], more=("--templates", str(mine)))
    assert result.exit_code == 0, result.output
    html = (tmp_path / "site/index.html").read_text()
    accuracy = json.loads((runs["base"] / "metrics.json").read_text())["overall"]["accuracy"]
    assert f"<ol id='mine'><li><a href='runs/base/report.html'>base</a> {100 * accuracy:.2f}%</li></ol>" in html
    assert '<img src="accuracy.svg"' in html  # the other partial as shipped
    assert 'class="data runs"' not in html


def test_a_broken_template_is_refused_before_anything_is_written(runs, tmp_path, runner):
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "_site_runs.html.j2").write_text("{{ no_such_value }}\n")
    result = runner.invoke(main, ["site", str(runs["base"]), "--out", str(tmp_path / "site"), "--templates", str(mine)])
    assert result.exit_code == 2 and "_site_runs.html.j2, line 1" in result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mine"]


def test_site_never_imports_mxnet(runs, tmp_path):
    probe = (
        "import sys; from click.testing import CliRunner; from reportgen.cli import main; "
        f"r = CliRunner().invoke(main, ['site', '-q', {str(runs['base'])!r}, '--out', {str(tmp_path / 's')!r}]); "
        "print(r.exit_code, 'mxnet' in sys.modules)"
    )
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)
    assert result.stdout.strip() == "0 False", result.stderr


def test_help_names_the_exit_codes(runner):
    result = runner.invoke(main, ["site", "--help"])
    assert result.exit_code == 0 and "Exit codes:\n    0  success" in result.output and "REPORTGEN_OUT" in result.output


# -- hand-made runs: what issue 12 adds, names, order -----------------------------------------


def fake_run(folder: Path, created: str, accuracy: float = 0.99, **metrics) -> Path:
    """A finished run without training: conftest's metrics body (changed where asked),
    a report.html of one line, a figure, and a manifest listing them."""
    body = metrics_body()
    body["overall"]["accuracy"] = accuracy
    body.update(metrics)
    files.write_json(folder / "metrics.json", body)
    files.write_bytes(folder / "report.html", b"<!DOCTYPE html><title>run</title><p><a href='#top'>top</a>\n")
    files.write_bytes(folder / "figures/confusion.svg", b"<svg xmlns='http://www.w3.org/2000/svg'/>")
    record = make_record(created=created, title=f"Run {folder.name}")
    files.write_json(folder / "manifest.json", manifest(record, files.file_table(folder)))
    return folder


COMPARISON = {
    "baseline": "/home/someone/runs/base",
    "baseline_accuracy": 0.9901,
    "accuracy_difference": -0.0025,
    "accuracy_difference_lower": -0.0041,
    "accuracy_difference_upper": -0.0009,
    "fixed": 12,
    "broken": 37,
    "mcnemar_exact_p_value": 0.00041,
}
GATES = [
    {"name": "fail-under", "threshold": 0.98, "value": 0.9876, "passed": True},
    {"name": "max-drop", "threshold": 0.002, "value": 0.0025, "passed": False},
]


def test_extras_are_read_where_present():
    body = metrics_body()
    none = site_runs.extras(body)
    assert none.comparison is None and none.gates == ()
    body.update(comparison=COMPARISON, gates=GATES)
    got = site_runs.extras(body)
    assert got.comparison == site_runs.BaselineSummary(**COMPARISON)
    assert got.gates == (
        site_runs.Gate("fail-under", 0.98, 0.9876, True),
        site_runs.Gate("max-drop", 0.002, 0.0025, False),
    )


@pytest.mark.parametrize(
    "change",
    [
        {"gates": [{"name": "fail-under", "threshold": 0.98, "value": 0.99, "passed": "yes"}]},
        {"gates": [{"name": "fail-under", "threshold": 0.98, "passed": True}]},
        {"comparison": {"baseline": "b"}},
    ],
)
def test_extras_of_the_wrong_shape_are_refused(change):
    body = {**metrics_body(), **change}
    with pytest.raises(DataError, match="m.json: not a reportgen metrics.json"):
        site_runs.extras(body, "m.json")


def test_comparison_gates_and_log_loss_on_the_index(tmp_path, runner):
    base = fake_run(tmp_path / "in/base", "2026-11-28T17:00:00+00:00", accuracy=0.9901)
    change = fake_run(
        tmp_path / "in/change",
        "2026-11-28T18:00:00+00:00",
        accuracy=0.9876,
        overall={**metrics_body()["overall"], "accuracy": 0.9876, "log_loss": 0.0312},
        comparison=COMPARISON,
        gates=GATES,
    )
    out = tmp_path / "site"
    result = runner.invoke(main, ["site", str(base), str(change), "--out", str(out)])
    assert result.exit_code == 0, result.output
    rows = index_json(out)["runs"]
    assert [r["name"] for r in rows] == ["change", "base"]
    assert rows[0]["log_loss"] == 0.0312 and rows[1]["log_loss"] is None
    assert rows[0]["comparison"] == {**COMPARISON, "baseline": "\u2026/base"}  # no path of the machine
    assert rows[0]["gates"] == GATES and rows[1]["gates"] == [] and rows[1]["comparison"] is None
    html = re.sub(r"\s+", " ", (out / "index.html").read_text())
    assert "Log loss" in html and "0.0312" in html
    assert "<strong>\u22120.25</strong> points (\u22120.41 to \u22120.09)" in html and "12 fixed, 37 broken" in html
    assert '<tr class="failed">' in html and '<span class="verdict failed">failed</span>' in html
    assert "&#10007; max-drop: 0.0025, limit 0.002" in html and "&#10003; fail-under: 0.9876, limit 0.98" in html
    assert "/home/someone" not in html and "/home/someone" not in (out / "index.json").read_text()


def test_the_site_counts_its_runs_in_words(tmp_path, runner):
    one = fake_run(tmp_path / "in/one", "2026-11-28T17:00:00+00:00")
    two = fake_run(tmp_path / "in/two", "2026-11-28T18:00:00+00:00")
    for folders, said in (([one], "1 run"), ([one, two], "2 runs")):
        out = tmp_path / f"site-{len(folders)}"
        result = runner.invoke(main, ["site", *map(str, folders), "--out", str(out)])
        assert result.stderr.strip() == f"wrote {out}/ ({said}): open {out}/index.html"


def test_optional_columns_stay_away_when_no_run_has_them(tmp_path):
    out = tmp_path / "site"
    assert make_site(out, fake_run(tmp_path / "in/a", "2026-11-28T17:00:00+00:00")).exit_code == 0
    html = (out / "index.html").read_text()
    assert "Log loss" not in html and "Against its baseline" not in html and "Gates" not in html


def test_newest_first_across_time_zones_and_ties_by_name(tmp_path):
    folders = [
        fake_run(tmp_path / "in/zeta", "2026-11-28T17:00:00+00:00"),
        fake_run(tmp_path / "in/alpha", "2026-11-28T18:00:00+01:00"),  # the same moment as zeta
        fake_run(tmp_path / "in/late", "2026-11-28T17:30:00+00:00"),
        fake_run(tmp_path / "in/early", "2026-11-28T12:00:00-04:00"),  # 16:00 UTC
    ]
    index = site_index.make_index(site_runs.gather(folders))
    assert [row.name for row in index.rows] == ["late", "alpha", "zeta", "early"]


def test_runs_of_one_name_are_told_apart_in_the_order_given(tmp_path):
    assert site_runs.unique_names([Path("x/a"), Path("y/a"), Path("z/a-2"), Path("w/a")]) == ["a", "a-3", "a-2", "a-4"]
    first = fake_run(tmp_path / "one/run", "2026-11-28T17:00:00+00:00", accuracy=0.97)
    second = fake_run(tmp_path / "two/run", "2026-11-28T18:00:00+00:00", accuracy=0.98)
    out = tmp_path / "site"
    assert make_site(out, first, second, first).exit_code == 0  # a folder given twice counts once
    rows = {row["name"]: row for row in index_json(out)["runs"]}
    assert sorted(rows) == ["run", "run-2"]
    assert rows["run"]["accuracy"] == 0.97 and rows["run-2"]["accuracy"] == 0.98
    assert json.loads((out / "runs/run-2/metrics.json").read_text())["overall"]["accuracy"] == 0.98


def test_a_name_that_needs_escaping_links_right(tmp_path):
    odd = fake_run(tmp_path / "in/seed 7 #1", "2026-11-28T17:00:00+00:00")
    out = tmp_path / "site"
    assert make_site(out, odd).exit_code == 0
    (row,) = index_json(out)["runs"]
    assert row["html"] == "runs/seed%207%20%231/report.html"
    assert resolve_inside(row["html"], out / "index.html", out) == (out / "runs/seed 7 #1/report.html").resolve()
