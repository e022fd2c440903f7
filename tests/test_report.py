"""The report: context, templates, the standalone HTML and the PDF.

Every input is built here by hand (manifest, history and metrics shaped as the
pipeline writes them, a stand-in inspection, and Figure values holding tiny SVGs),
so these tests do not depend on drawing, evaluating or inspecting anything.
"""
from __future__ import annotations

import html as html_lib
import io
import logging
import math
import re
import socket
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest

from reportgen import model, report, seed
from reportgen.errors import RenderError
from reportgen.figures import Figure

SECTION_TITLES = {"summary": "Summary", "data": "Data", "network": "Network", "training": "Training",
                  "evaluation": "Evaluation", "worst": "The worst confusion",
                  "inside": "Inside the network", "reproducibility": "Reproducibility"}


# -- stand-ins -------------------------------------------------------------------------

def fake_figure(name: str, width: int = 400, height: int = 200) -> Figure:
    svg = (f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}pt" height="{height}pt" '
           f'viewBox="0 0 {width} {height}"><rect x="4" y="4" width="{width - 8}" '
           f'height="{height - 8}" fill="#dceafb" stroke="#1f5fa8"/></svg>').encode()
    return Figure(name, f"Caption of {name}.", f"Alt text of {name}", svg)


FIGURE_NAMES = (["first_digits", "class_counts", "network", "training_batches", "training_epochs",
                 "confusion", "reliability", "worst_cases", "top_errors", "kernels_conv1",
                 "kernels_conv2", "inside_0_input"] + [f"inside_0_{layer}" for layer in model.LAYERS])


@dataclass(frozen=True)
class FakeInspection:
    indices: np.ndarray
    labels: np.ndarray
    predictions: np.ndarray
    outputs: dict
    kernels: dict

    def summaries(self) -> list[dict]:
        return [{"case": 0, "index": int(self.indices[0]), "layer": layer, "min": -1.0, "max": 1.0,
                 "mean": 0.125, "saturated": 0.25, "zeros": 0.0} for layer in model.LAYERS]


def make_inspection() -> FakeInspection:
    outputs = {layer: np.zeros((1, *model.SHAPES[layer]), np.float32) for layer in model.LAYERS}
    return FakeInspection(np.array([247]), np.array([4]), np.array([9]), outputs,
                          {"conv1": np.zeros((20, 1, 5, 5), np.float32),
                           "conv2": np.zeros((50, 20, 5, 5), np.float32)})


def make_manifest() -> dict:
    return {
        "reportgen": "0.1.0", "command": "reportgen build --epochs 2",
        "created": "2026-11-28T17:00:00+00:00",
        "arguments": {"epochs": 2, "out": "output"},
        "versions": {"python": "3.11.9", "mxnet": "1.9.1", "weasyprint": "70.0"},
        "platform": "Linux-x86_64", "contexts": ["cpu(0)"],
        "data": {"dir": "data/mnist", "files": dict(seed.MNIST_SHA256), "published_mnist": True,
                 "train_images": 60000, "test_images": 10000, "train_total": 60000,
                 "test_total": 10000, "pixel_scaling": "divided by 255, to [0, 1]"},
        "model": {"source": "trained here", "epoch": 2},
        "training": {"epochs": 2, "batch_size": 100, "learning_rate": 0.05, "momentum": 0.9,
                     "weight_decay": 1e-5, "seed": 42, "initializer": "Xavier", "optimizer": "SGD"},
        "timings": {"data": 1.5, "train": 83.0, "evaluate": 2.0},
    }


def make_history() -> dict:
    return {"batches": [{"epoch": 1, "batch": b, "loss": 1.0 / b, "accuracy": 0.5} for b in range(1, 4)],
            "epochs": [{"epoch": e, "train_loss": 0.1 / e, "train_accuracy": 0.97, "test_loss": 0.05,
                        "test_accuracy": 0.98, "seconds": 41.5, "eval_seconds": 1.0} for e in (1, 2)]}


def make_metrics() -> dict:
    overall = {key: (None if math.isnan(value) else value) for key, value in seed.OVERALL.items()}
    by_class = [{"class": k, **{key: 0.99 for key, _ in report.BY_CLASS}} for k in range(10)]
    by_class[3]["f1"] = float("nan")  # NaN as evaluate.py might hold it before JSON
    return {
        "n_test": 10000,
        "confusion_matrix": [list(row) for row in seed.CONFUSION_TABLE],
        "overall": overall,
        "by_class": by_class,
        "worst_pair": {"prediction": 9, "reference": 4, "count": 10, "indices": list(range(10)),
                       "probabilities": [[0.1] * 10] * 10},
        "top_errors": [{"index": 100 + i, "label": 4, "prediction": 9, "confidence": 0.9 - i / 10,
                        "probabilities": [0.0] * 4 + [0.05] + [0.0] * 4 + [0.9 - i / 10]}
                       for i in range(3)],
        "calibration": {"bins": [{"lower": i / 10, "upper": (i + 1) / 10, "count": 10,
                                  "confidence": i / 10 + 0.05, "accuracy": i / 10}
                                 for i in range(10)], "ece": 0.0123},
    }


def make_context(title: str = "LeNet on MNIST", **changes) -> dict:
    figures = {name: fake_figure(name) for name in FIGURE_NAMES}
    parts = {"manifest": make_manifest(), "history": make_history(), "metrics": make_metrics(),
             "inspection": make_inspection(), "figures": figures, **changes}
    return report.context(title, parts["manifest"], parts["history"], parts["metrics"],
                          parts["inspection"], parts["figures"])


class Collector(HTMLParser):
    """Every start tag with its attributes, the ids, and the text of <style> elements."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict]] = []
        self.styles: list[str] = []
        self._in_style = False

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))
        self._in_style = tag == "style"

    def handle_endtag(self, tag):
        self._in_style = False

    def handle_data(self, data):
        if self._in_style:
            self.styles.append(data)

    def ids(self) -> set[str]:
        return {a["id"] for _, a in self.tags if a.get("id")}


def parse(html: str) -> Collector:
    collector = Collector()
    collector.feed(html)
    return collector


@pytest.fixture(scope="module")
def html() -> str:
    return report.render_html(make_context())


# -- HTML ------------------------------------------------------------------------------

def test_every_section_has_an_id_and_a_contents_link(html):
    doc = parse(html)
    links = [a["href"] for tag, a in doc.tags if tag == "a" and "href" in a]
    ids = [a["id"] for _, a in doc.tags if a.get("id")]
    assert len(ids) == len(set(ids)), "an id appears twice"
    for sid in SECTION_TITLES:
        assert sid in doc.ids(), sid
        assert f"#{sid}" in links, sid
    for href in links:  # no contents entry points nowhere
        assert href[1:] in doc.ids(), href
    # the sections come in the seed's order
    positions = [html.index(f'<section id="{sid}"') for sid in SECTION_TITLES]
    assert positions == sorted(positions)


def test_html_has_no_external_reference(html):
    doc = parse(html)
    assert not [t for t, _ in doc.tags if t in ("script", "link", "iframe", "object", "embed", "base")]
    for tag, attrs in doc.tags:
        for name, value in attrs.items():
            value = (value or "").strip()
            if name in ("src", "srcset", "poster", "data", "background", "action", "xlink:href"):
                assert value.startswith("data:"), (tag, name, value[:60])
            if name == "href":
                assert value.startswith("#"), (tag, value)
            if name == "style":
                assert "url(" not in value
    css = "\n".join(doc.styles)
    assert css.strip(), "the stylesheet is inlined"
    assert "@import" not in css and "@font-face" not in css
    for url in re.findall(r"url\(\s*['\"]?([^'\")]*)", css):
        assert url.startswith("data:"), url
    for scheme in ("http:", "https:", "file:", "//"):
        assert scheme not in css
    # every figure is shown, with alt text, inside a <figure> with a caption
    sources = [a["src"] for t, a in doc.tags if t == "img"]
    assert len(sources) == len(FIGURE_NAMES)
    assert all(a.get("alt") for t, a in doc.tags if t == "img")
    assert html.count("<figcaption>") == len(FIGURE_NAMES)
    assert fake_figure("confusion").data_uri in sources


def test_title_is_escaped():
    out = report.render_html(make_context(title="<script>alert(1)</script> & co"))
    assert "<script" not in out
    assert "&lt;script&gt;alert(1)&lt;/script&gt; &amp; co" in out


def test_number_filters():
    assert report.fmt_pct(0.9901) == "99.01%"
    assert report.fmt_fixed(0.98899584, 4) == "0.9890"
    assert report.fmt_fixed(-0.5, 2) == "\u22120.50"
    assert report.fmt_int(60000) == "60,000"
    assert report.fmt_seconds(83) == "1 min 23 s"
    assert report.fmt_seconds(3725) == "1 h 02 min"
    assert report.fmt_seconds(8.25) == "8.2 s" or report.fmt_seconds(8.25) == "8.3 s"
    assert report.fmt_pvalue(0.0) == "< 2.2e\u221216"
    for missing in (None, float("nan"), np.float32("nan"), float("inf")):
        for fmt in (report.fmt_pct, report.fmt_fixed, report.fmt_int, report.fmt_seconds,
                    report.fmt_pvalue):
            assert fmt(missing) == "NA"


def _row_cells(html: str, marker: str) -> list[str]:
    row = re.search(rf"<tr>(?:(?!</tr>).)*{re.escape(marker)}(?:(?!</tr>).)*</tr>", html, re.S).group(0)
    return [html_lib.unescape(re.sub(r"<[^>]+>", "", c)).strip() for c in re.findall(r"<t[hd][^>]*>.*?</t[hd]>", row, re.S)]


def test_nan_is_shown_as_na(html):
    mcnemar = _row_cells(html, "<code>McnemarPValue</code>")
    assert mcnemar[2:] == ["NA", "NA"]  # this run's None, the seed's NaN
    assert _row_cells(html, "<code>AccuracyPValue</code>")[2:] == ["< 2.2e\u221216"] * 2
    by_class = html[html.index('class="data by-class'):]
    f1 = _row_cells(by_class, '<th scope="row">F1</th>')  # one column per class
    assert f1[1 + 3] == "NA"
    assert f1[1:4] == ["0.9900"] * 3


def test_confusion_table_is_rows_predictions_columns_reference(html):
    table = html[html.index('id="confusion-table"'):]
    table = table[:table.index("</table>")]
    body = table[table.index("<tbody>"):table.index("</tbody>")]
    rows = re.findall(r"<tr>(.*?)</tr>", body, re.S)
    assert len(rows) == 10
    for p, row in enumerate(rows):
        assert re.search(r"<th[^>]*>(\d+)</th>", row).group(1) == str(p)
        cells = re.findall(r"<td class=\"num([^\"]*)\">([\d,]+)</td>", row)
        values = [int(v.replace(",", "")) for _, v in cells[:10]]
        assert values == list(seed.CONFUSION_TABLE[p])
        assert "diag" in cells[p][0] and all("diag" not in c for k, (c, _) in enumerate(cells) if k != p)
    # the seed's worst cell: prediction 9 (row), reference 4 (column), ten images
    worst = re.findall(r"<td class=\"num([^\"]*)\">([\d,]+)</td>", rows[9])[4]
    assert worst == (" worst", "10")
    header = table[table.index("<thead>"):table.index("</thead>")]
    assert re.findall(r'<th scope="col" class="num">(\d)</th>', header) == [str(k) for k in range(10)]


def test_worst_pair_prose(html):
    assert "Images labelled <strong>4</strong> were predicted as <strong>9</strong> 10 times" in html


def test_user_partial_overrides_only_that_section(tmp_path, html):
    (tmp_path / "_data.html.j2").write_text('<section id="data"><h2>My own data section</h2></section>\n')
    mine = report.render_html(make_context(), templates=tmp_path)
    assert "My own data section" in mine

    def without_data(text: str) -> str:
        start = text.index('<section id="data"')
        rest = text[:start] + text[text.index("</section>", start):]
        return re.sub(r"\s+", " ", rest)  # whitespace between tags is not content

    assert without_data(mine) == without_data(html)


def test_a_missing_template_value_is_a_render_error(tmp_path):
    (tmp_path / "_network.html.j2").write_text('<section id="network">\n<p>{{ no_such_value }}</p>\n</section>\n')
    with pytest.raises(RenderError, match=r"_network\.html\.j2, line 2: 'no_such_value' is undefined"):
        report.render_html(make_context(), templates=tmp_path)


def test_a_missing_templates_folder_is_a_render_error(tmp_path):
    with pytest.raises(RenderError, match="no-such-folder: no such templates folder"):
        report.environment(tmp_path / "no-such-folder")


def test_a_run_without_errors_renders_without_its_figures():
    metrics = make_metrics()
    metrics["confusion_matrix"] = [[1000 if p == r else 0 for r in range(10)] for p in range(10)]
    metrics["worst_pair"] = {"prediction": 0, "reference": 0, "count": 0, "indices": [], "probabilities": []}
    metrics["top_errors"] = []
    figures = {n: fake_figure(n) for n in FIGURE_NAMES if n not in ("worst_cases", "top_errors")}
    out = report.render_html(make_context(metrics=metrics, figures=figures))
    assert "No test image was misclassified" in out
    assert "figure-worst_cases" not in out and 'class="num worst"' not in out


# -- PDF -------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def pdf(tmp_path_factory):
    """The PDF once for the module, with every warning WeasyPrint logged meanwhile."""
    from pypdf import PdfReader

    records: list[logging.LogRecord] = []
    handler = logging.Handler(logging.WARNING)
    handler.emit = records.append
    logger = logging.getLogger("weasyprint")
    logger.addHandler(handler)
    try:
        payload = report.render_pdf(make_context(), tmp_path_factory.mktemp("run"))
    finally:
        logger.removeHandler(handler)
    return payload, PdfReader(io.BytesIO(payload)), records


def test_pdf_metadata_pages_and_size(pdf):
    payload, reader, warnings = pdf
    assert payload.startswith(b"%PDF-")
    assert reader.metadata.title == "LeNet on MNIST"
    assert reader.metadata.creation_date.year == 2026
    assert len(reader.pages) > 3
    for page in reader.pages:
        assert (round(float(page.mediabox.width)), round(float(page.mediabox.height))) == (595, 842)
    assert [r.getMessage() for r in warnings] == []  # the CSS holds nothing WeasyPrint ignores


def test_pdf_bookmarks_and_contents_page_numbers(pdf):
    _, reader, _ = pdf
    top = [item for item in reader.outline if not isinstance(item, list)]
    titles = [item.title for item in top]
    for n, title in enumerate(SECTION_TITLES.values(), start=1):
        assert f"{n} {title}" in titles, titles
    # the title page, then the contents: each section's printed page is where its bookmark points
    assert "LeNet on MNIST" in reader.pages[0].extract_text()
    assert "99.01%" in reader.pages[0].extract_text()
    contents = reader.pages[1].extract_text()
    for item in top:
        if item.title[0].isdigit():
            page = reader.get_destination_page_number(item) + 1
            assert page > 2
            assert re.search(rf"{re.escape(item.title)}[ .]*{page}\b", contents), (item.title, page)


def test_pdf_loads_nothing_from_outside(tmp_path, monkeypatch):
    def no_network(*args, **kwargs):
        raise AssertionError("the PDF renderer tried to open a connection")

    monkeypatch.setattr(socket, "create_connection", no_network)
    monkeypatch.setattr(socket.socket, "connect", no_network)
    templates = tmp_path / "templates"
    templates.mkdir()
    (templates / "_data.html.j2").write_text(
        '<section id="data"><img src="http://example.com/logo.png" alt="logo"></section>\n')
    with pytest.raises(RenderError, match=r"http://example\.com/logo\.png: refused"):
        report.render_pdf(make_context(), tmp_path / "run", templates=templates)


def test_url_fetcher_allows_data_and_the_run_folder_only(tmp_path):
    run = tmp_path / "run"
    (run / "figures").mkdir(parents=True)
    (run / "figures" / "a.svg").write_bytes(b"<svg/>")
    (tmp_path / "secret.txt").write_text("outside")
    (run / "escape.txt").symlink_to(tmp_path / "secret.txt")
    fetch = report.url_fetcher(run)

    assert fetch("data:text/plain;base64,aGVsbG8=").read() == b"hello"
    assert fetch((run / "figures" / "a.svg").as_uri()).read() == b"<svg/>"
    for url in ("http://example.com/x.png", "https://example.com/x.css", "ftp://example.com/x",
                (tmp_path / "secret.txt").as_uri(), "file:///etc/passwd",
                (run / "escape.txt").as_uri(), run.as_uri() + "/../secret.txt",
                "file://example.com" + str(run / "figures" / "a.svg")):
        with pytest.raises(RenderError, match="refused"):
            fetch(url)


def test_builtin_templates_are_found(tmp_path, monkeypatch):
    # installed from a wheel: the package reportgen.templates holds them
    (tmp_path / "base.html.j2").write_text("")
    monkeypatch.setattr(report.resources, "files", lambda package: tmp_path)
    assert report.builtin_templates() == tmp_path
    monkeypatch.undo()
    # editable install: no such package, the repository's templates/ folder
    folder = report.builtin_templates()
    assert folder == Path(report.__file__).resolve().parent.parent / "templates"
    for name in ("base.html.j2", "report.html.j2", "pdf.html.j2", "report.css", "_summary.html.j2",
                 "_data.html.j2", "_network.html.j2", "_training.html.j2", "_evaluation.html.j2",
                 "_worst.html.j2", "_inside.html.j2", "_reproducibility.html.j2"):
        assert (folder / name).is_file(), name
