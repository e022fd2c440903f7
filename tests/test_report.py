"""The report: context, templates, the standalone HTML and the PDF.

Every input is built by hand (conftest's record, history, evaluation and inspection, and
Figure values holding tiny SVGs), so these tests do not depend on drawing, evaluating or
inspecting anything.
"""

from __future__ import annotations

import html as html_lib
import io
import logging
import re
import socket
from dataclasses import replace
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest
from conftest import fake_inspection, make_evaluation, make_history, make_record, metrics_body

from reportgen import notebook
from reportgen.errors import DataError, RenderError
from reportgen.layers import LAYERS
from reportgen.report import context as report_context
from reportgen.report import filters, templates
from reportgen.report import pdf as report_pdf
from reportgen.report.figures import Figure
from reportgen.run.record import ModelRecord, RunRecord, TrainedOn

SECTION_TITLES = {
    "summary": "Summary",
    "data": "Data",
    "network": "Network",
    "training": "Training",
    "evaluation": "Evaluation",
    "worst": "The worst confusion",
    "inside": "Inside the network",
    "explain": "Why the network got it wrong",
    "reproducibility": "Reproducibility",
}


# -- stand-ins -------------------------------------------------------------------------


def fake_figure(name: str, width: int = 400, height: int = 200) -> Figure:
    svg = (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}pt" height="{height}pt" '
        f'viewBox="0 0 {width} {height}"><rect x="4" y="4" width="{width - 8}" '
        f'height="{height - 8}" fill="#dceafb" stroke="#1f5fa8"/></svg>'
    ).encode()
    return Figure(name, f"Caption of {name}.", f"Alt text of {name}", svg)


FIGURE_NAMES = [
    "first_digits",
    "class_counts",
    "network",
    "training_batches",
    "training_epochs",
    "confusion",
    "reliability",
    "worst_cases",
    "top_errors",
    "kernels_conv1",
    "kernels_conv2",
    "inside_0_input",
] + [f"inside_0_{layer}" for layer in LAYERS]


def make_context(title: str = "LeNet on MNIST", **changes) -> dict:
    figures = {name: fake_figure(name) for name in FIGURE_NAMES}
    parts = {
        "record": make_record(title=title),
        "history": make_history(epochs=2, batches=3),
        "evaluation": make_evaluation(),
        "inspection": fake_inspection(np.arange(10) % 10),
        "figures": figures,
        **changes,
    }
    return report_context.context(
        parts["record"], parts["history"], parts["evaluation"], parts["inspection"], parts["figures"]
    )


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
    return templates.render_html(make_context())


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
    out = templates.render_html(make_context(title="<script>alert(1)</script> & co"))
    assert "<script" not in out
    assert "&lt;script&gt;alert(1)&lt;/script&gt; &amp; co" in out


def test_number_filters():
    assert filters.fmt_pct(0.9901) == "99.01%"
    assert filters.fmt_fixed(0.98899584, 4) == "0.9890"
    assert filters.fmt_fixed(-0.5, 2) == "\u22120.50"
    assert filters.fmt_int(60000) == "60,000"
    assert filters.fmt_seconds(83) == "1 min 23 s"
    assert filters.fmt_seconds(3725) == "1 h 02 min"
    assert filters.fmt_seconds(8.26) == "8.3 s"
    assert filters.fmt_seconds(8.24) == "8.2 s"
    assert filters.fmt_pvalue(0.0) == "< 2.2e\u221216"
    for missing in (None, float("nan"), np.float32("nan"), float("inf")):
        for fmt in (filters.fmt_pct, filters.fmt_fixed, filters.fmt_int, filters.fmt_seconds, filters.fmt_pvalue):
            assert fmt(missing) == "NA"


def _row_cells(html: str, marker: str) -> list[str]:
    row = re.search(rf"<tr>(?:(?!</tr>).)*{re.escape(marker)}(?:(?!</tr>).)*</tr>", html, re.S).group(0)
    return [
        html_lib.unescape(re.sub(r"<[^>]+>", "", c)).strip() for c in re.findall(r"<t[hd][^>]*>.*?</t[hd]>", row, re.S)
    ]


def test_nan_is_shown_as_na(html):
    mcnemar = _row_cells(html, "<code>McnemarPValue</code>")
    assert mcnemar[2:] == ["NA", "NA"]  # this run's None, the seed's NaN
    assert _row_cells(html, "<code>AccuracyPValue</code>")[2:] == ["< 2.2e\u221216"] * 2
    by_class = html[html.index('class="data by-class') :]
    f1 = _row_cells(by_class, '<th scope="row">F1</th>')  # one column per class
    assert f1[1 + 3] == "NA"
    assert f1[1:4] == ["0.9900"] * 3


def test_confusion_table_is_rows_predictions_columns_reference(html):
    table = html[html.index('id="confusion-table"') :]
    table = table[: table.index("</table>")]
    body = table[table.index("<tbody>") : table.index("</tbody>")]
    rows = re.findall(r"<tr>(.*?)</tr>", body, re.S)
    assert len(rows) == 10
    for p, row in enumerate(rows):
        assert re.search(r"<th[^>]*>(\d+)</th>", row).group(1) == str(p)
        cells = re.findall(r"<td class=\"num([^\"]*)\">([\d,]+)</td>", row)
        values = [int(v.replace(",", "")) for _, v in cells[:10]]
        assert values == list(notebook.CONFUSION_TABLE[p])
        assert "diag" in cells[p][0] and all("diag" not in c for k, (c, _) in enumerate(cells) if k != p)
    # the seed's worst cell: prediction 9 (row), reference 4 (column), ten images
    worst = re.findall(r"<td class=\"num([^\"]*)\">([\d,]+)</td>", rows[9])[4]
    assert worst == (" worst", "10")
    header = table[table.index("<thead>") : table.index("</thead>")]
    assert re.findall(r'<th scope="col" class="num">(\d)</th>', header) == [str(k) for k in range(10)]


def test_a_run_written_before_the_pixel_scaling_was_recorded_still_renders():
    """Older manifests: the data held a fixed text for the scaling, the model only source and epoch."""
    body = make_record().to_json()
    body["data"]["pixel_scaling"] = "pixels divided by 255 (the seed fed raw 0-255)"
    body["model"] = {"source": "trained here", "epoch": 2}
    record = RunRecord.from_json(body)
    assert (record.model.pixels, record.model.pixels_origin, record.model.names) == ("unit", "trained", {})
    html = templates.render_html(make_context(record=record))
    assert "Pixels enter the network <strong>divided by 255, to [0, 1]</strong>,\nas reportgen trains" in html
    assert "In the model" not in html


def test_a_loaded_models_names_scaling_and_head_are_shown():
    loaded = ModelRecord(
        source="~/mnist/mnistModel",
        epoch=1,
        pixels="raw",
        pixels_origin="option",
        files=("mnistModel-symbol.json", "mnistModel-0001.params"),
        names={**{layer: layer.capitalize() for layer in LAYERS}, "flat": None},
        head="SoftmaxOutput",
        skipped=("drop (Dropout)",),
    )
    html = templates.render_html(make_context(record=make_record(model=loaded, training={})))
    text = re.sub(r"<[^>]+>", "", html)
    assert "Pixels enter the network raw, 0-255,\nas --pixels raw asked." in text
    assert '<th scope="row">Pixels</th><td>raw, 0-255 (--pixels raw)</td>' in html
    assert "loaded from ~/mnist/mnistModel (mnistModel-symbol.json and mnistModel-0001.params), epoch 1" in text
    assert '<th scope="col">In the model</th>' in html
    assert "<td><code>Conv1</code></td>" in html and "none: full1 flattens its input" in html
    assert "a training head" in text and "Passed over, as they do nothing at inference: drop (Dropout)." in text
    assert "(<code>Act2</code> in the model)" in html  # inside the network, beside each layer
    assert "Not known (a model trained elsewhere)." in text


def test_a_model_trained_on_other_files_says_which():
    """A loaded model whose run record names other training files: the summary, the data and
    reproducibility sections say so and list them; the digits shown are only a look at the data."""
    other = replace(
        make_record().data,
        dir="/elsewhere/mnist",
        files={"train-images-idx3-ubyte": "a" * 64, "train-labels-idx1-ubyte": "b" * 64, "t10k-images-idx3-ubyte": "c"},
        published_mnist=False,
        train_images=2000,
    )
    loaded = ModelRecord(source="runs/a", epoch=2, pixels_origin="recorded", files=("lenet-symbol.json",))
    record = make_record(model=loaded, trained_on=TrainedOn(other, 41.0))
    text = " ".join(re.sub(r"<[^>]+>", " ", templates.render_html(make_context(record=record))).split())
    assert "Training images 2,000 of 60,000 (other files: \u2026/mnist)" in text
    assert "Training time 41 s" in text
    assert "The model learned from other files (2,000 training images of \u2026/mnist" in text
    assert "on 2,000 of the 60,000 training images of other files, read from \u2026/mnist" in text
    assert "in 41 s (not among this run\u2019s timings)" in html_lib.unescape(text)
    assert "The training files the model learned from" in text and "a" * 64 in text and "c" * 64 not in text
    assert "the training set above holds" in text


def test_a_model_loaded_by_a_run_older_than_trained_on_is_not_called_foreign():
    """Such a run kept the model's settings and history, not the images it learned from."""
    loaded = ModelRecord(source="runs/a", epoch=2, pixels_origin="recorded", files=("lenet-symbol.json",))
    html = templates.render_html(make_context(record=make_record(model=loaded)))
    text = " ".join(re.sub(r"<[^>]+>", " ", html).split())
    assert "Training images not recorded (the run predates that record)" in text
    assert "the images it learned from are not recorded (the run predates that record)" in text
    assert "trained elsewhere" not in text and "Batch size 100" in text


def test_a_record_written_before_trained_on_says_what_it_knows():
    body = make_record().to_json()
    assert body["trained_on"] is None  # make_record leaves it out, as such a record did
    del body["trained_on"]
    record = RunRecord.from_json(body)
    assert record.trained() == TrainedOn(record.data, 83.0)  # it trained its model: its own data and time
    body["model"] = {"source": "runs/a", "epoch": 2}
    assert RunRecord.from_json(body).trained() is None  # a model it loaded: not known


@pytest.mark.parametrize(
    "change",
    [
        {"train_images": "lots"},
        {"train_images": -1},
        {"train_images": 70000},
        {"files": ["a"]},
        {"dir": 3},
    ],
)
def test_a_trained_on_of_the_wrong_shape_is_refused(change):
    body = make_record().to_json()
    body["trained_on"] = {"data": {**body["data"], **change}, "seconds": 1.0}
    with pytest.raises(DataError, match="not a reportgen manifest"):
        RunRecord.from_json(body)
    body["trained_on"] = {"data": make_record().to_json()["data"], "seconds": "long"}
    with pytest.raises(DataError, match="not a reportgen manifest"):
        RunRecord.from_json(body)


def test_worst_pair_prose(html):
    assert "Images labelled <strong>4</strong> were predicted as <strong>9</strong> 10 times" in html


def test_user_partial_overrides_only_that_section(tmp_path, html):
    (tmp_path / "_data.html.j2").write_text('<section id="data"><h2>My own data section</h2></section>\n')
    mine = templates.render_html(make_context(), templates=tmp_path)
    assert "My own data section" in mine

    def without_data(text: str) -> str:
        start = text.index('<section id="data"')
        rest = text[:start] + text[text.index("</section>", start) :]
        return re.sub(r"\s+", " ", rest)  # whitespace between tags is not content

    assert without_data(mine) == without_data(html)


def test_a_missing_template_value_is_a_render_error(tmp_path):
    (tmp_path / "_network.html.j2").write_text('<section id="network">\n<p>{{ no_such_value }}</p>\n</section>\n')
    with pytest.raises(RenderError, match=r"_network\.html\.j2, line 2: 'no_such_value' is undefined") as caught:
        templates.render_html(make_context(), templates=tmp_path)
    assert type(caught.value.__cause__).__name__ == "UndefinedError"  # the cause is kept


def test_a_missing_templates_folder_is_a_render_error(tmp_path):
    with pytest.raises(RenderError, match="no-such-folder: no such templates folder"):
        templates.environment(tmp_path / "no-such-folder")


def test_a_run_without_errors_renders_without_its_figures():
    metrics = metrics_body()
    metrics["confusion_matrix"] = [[1000 if p == r else 0 for r in range(10)] for p in range(10)]
    metrics["worst_pair"] = {"prediction": None, "reference": None, "count": 0, "indices": [], "probabilities": []}
    metrics["top_errors"] = []
    figures = {n: fake_figure(n) for n in FIGURE_NAMES if n not in ("worst_cases", "top_errors")}
    out = templates.render_html(make_context(evaluation=make_evaluation(metrics), figures=figures))
    assert "No test image was misclassified" in out
    assert "figure-worst_cases" not in out and 'class="num worst"' not in out


def compared_context(**changes) -> dict:
    """A context with a baseline: hand-scored evaluations of 20 images, and all three gates."""
    from conftest import scored

    from reportgen.run import comparison, gates
    from reportgen.run.comparison import Baseline

    labels = np.arange(20) % 10
    before, after = labels.copy(), labels.copy()
    before[[1, 2]] = 7
    after[[3]] = 8
    baseline, current = scored(before, labels), scored(after, labels)
    comparison = comparison.compare(baseline, current, "runs/base")
    other = Baseline("runs/base", make_record(training={"epochs": 1}), None, baseline, predicted_afresh=False)
    verdicts = gates.judge(gates.Gates(fail_under=0.99, max_drop=0.5, fail_if_worse=True), current, comparison)
    record = make_record()
    figures = {name: fake_figure(name) for name in FIGURE_NAMES}
    return report_context.context(
        record, make_history(), current, fake_inspection(labels), figures, other, comparison, verdicts, **changes
    )


def test_the_baseline_section_follows_the_evaluation_only_with_a_baseline(html):
    context = compared_context()
    numbers = {entry["id"]: entry["number"] for entry in context["toc"]}
    assert numbers["evaluation"] == "5" and numbers["baseline"] == "6" and numbers["worst"] == "7"
    assert numbers["baseline-paired"] == "6.2"
    out = templates.render_html(context)
    assert out.index('id="evaluation"') < out.index('id="baseline"') < out.index('id="worst"')
    assert "runs/base" in out and "2 fixed" in out and "1 broken" in out
    assert "Newcombe" in out and "McNemar" in out
    assert "kept no history.json" in out
    # the settings that differ: the baseline's training was recorded as one epoch
    assert "training: epochs" in out and "training: learning_rate" in out
    assert 'id="baseline"' not in html and "Against the baseline" not in html


def test_the_summary_shows_each_gates_verdict():
    out = templates.render_html(compared_context())
    summary = out[out.index('id="summary"') : out.index('id="data"')]
    assert "<code>--fail-under 0.99</code>" in summary and "<code>--max-drop 0.5</code>" in summary
    assert "<code>--fail-if-worse</code>" in summary
    assert summary.count(">FAILED<") == 1 and summary.count(">passed<") == 2  # 95% < 99%; one better image
    assert "Gate <code>--fail-under 0.99</code> failed: accuracy 95.00% is below 99.00%." in summary


def test_the_ranking_statistics_and_an_old_run_without_them(html):
    context = compared_context()
    out = templates.render_html(context)
    assert "the AUC this report quotes is the macro average" in out
    assert f"{context['ranking']['roc_auc_macro']:.5f}" in out
    assert "Not recorded" in html  # conftest's metrics.json has no ranking statistics, as before this change


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
        payload = report_pdf.render_pdf(make_context(), tmp_path_factory.mktemp("run"))
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
    # The CSS and HTML hold nothing WeasyPrint ignores. Its notes on the machine's fonts and
    # optional libraries (fonts.py: "Using fontTools instead of HarfBuzz-Subset") are not ours.
    assert [r.getMessage() for r in warnings if Path(r.pathname).name != "fonts.py"] == []


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
        '<section id="data"><img src="http://example.com/logo.png" alt="logo"></section>\n'
    )
    with pytest.raises(RenderError, match=r"http://example\.com/logo\.png: refused"):
        report_pdf.render_pdf(make_context(), tmp_path / "run", templates=templates)


def test_url_fetcher_allows_data_and_the_run_folder_only(tmp_path):
    run = tmp_path / "run"
    (run / "figures").mkdir(parents=True)
    (run / "figures" / "a.svg").write_bytes(b"<svg/>")
    (tmp_path / "secret.txt").write_text("outside")
    (run / "escape.txt").symlink_to(tmp_path / "secret.txt")
    fetch = report_pdf.url_fetcher(run)

    assert fetch("data:text/plain;base64,aGVsbG8=").read() == b"hello"
    assert fetch((run / "figures" / "a.svg").as_uri()).read() == b"<svg/>"
    for url in (
        "http://example.com/x.png",
        "https://example.com/x.css",
        "ftp://example.com/x",
        (tmp_path / "secret.txt").as_uri(),
        "file:///etc/passwd",
        (run / "escape.txt").as_uri(),
        run.as_uri() + "/../secret.txt",
        "file://example.com" + str(run / "figures" / "a.svg"),
    ):
        with pytest.raises(RenderError, match="refused"):
            fetch(url)


def test_builtin_templates_are_found(tmp_path, monkeypatch):
    # installed from a wheel: the package reportgen.templates holds them
    (tmp_path / "base.html.j2").write_text("")
    monkeypatch.setattr(templates.resources, "files", lambda package: tmp_path)
    assert templates.builtin_templates() == tmp_path
    monkeypatch.undo()
    # editable install: no such package, the repository's templates/ folder
    folder = templates.builtin_templates()
    assert folder == Path(templates.__file__).resolve().parents[2] / "templates"
    for name in (
        "base.html.j2",
        "report.html.j2",
        "pdf.html.j2",
        "report.css",
        "_summary.html.j2",
        "_data.html.j2",
        "_network.html.j2",
        "_training.html.j2",
        "_evaluation.html.j2",
        "_worst.html.j2",
        "_inside.html.j2",
        "_reproducibility.html.j2",
    ):
        assert (folder / name).is_file(), name


# -- what a user's templates may do ----------------------------------------------------


def test_templates_are_sandboxed(tmp_path):
    """A template reads values and calls filters; reaching Python's internals is refused."""
    (tmp_path / "_data.html.j2").write_text(
        '<section id="data">\n{{ cycler.__init__.__globals__.os.popen("id").read() }}\n</section>\n'
    )
    with pytest.raises(RenderError, match=r"_data\.html\.j2, line 2: refused by the sandbox: .*__init__"):
        templates.render_html(make_context(), templates=tmp_path)
    (tmp_path / "_data.html.j2").write_text('<section id="data">{{ epochs.append(1) }}</section>\n')
    with pytest.raises(RenderError, match=r"_data\.html\.j2, line 1: refused by the sandbox"):
        templates.render_html(make_context(), templates=tmp_path)


def test_a_users_template_error_keeps_its_cause(tmp_path):
    (tmp_path / "_network.html.j2").write_text('<section id="network">\n{{ 1 / 0 }}\n</section>\n')
    with pytest.raises(RenderError, match=r"_network\.html\.j2, line 2: division by zero") as caught:
        templates.render_html(make_context(), templates=tmp_path)
    assert isinstance(caught.value.__cause__, ZeroDivisionError)


def test_a_bug_outside_the_users_templates_is_not_called_bad_input(monkeypatch, tmp_path):
    def broken(x, digits=2):
        raise ZeroDivisionError("a bug in a filter")

    # Through the built-in templates only, or through the user's partial that is not where it
    # failed: either way the error goes up as it is, to become an internal failure.
    monkeypatch.setitem(filters.FILTERS, "pct", broken)
    with pytest.raises(ZeroDivisionError, match="a bug in a filter"):
        templates.render_html(make_context())
    (tmp_path / "_network.html.j2").write_text('<section id="network">mine</section>\n')
    with pytest.raises(ZeroDivisionError):
        templates.render_html(make_context(), templates=tmp_path)


def test_training_shows_images_per_second(html):
    # make_history: epoch e ran 10 + e seconds at 5000 + e images/s
    rows = [_row_cells(html, f'<td class="num">{e}</td><td class="num">{0.5 / e:.4f}</td>') for e in (1, 2)]
    assert [row[-1] for row in rows] == ["5,001", "5,002"]
    overall = (5001 * 11 + 5002 * 12) / (11 + 12)  # images over seconds, both epochs
    assert f", {overall:,.0f} images a second." in html


def test_absolute_paths_of_the_building_machine_are_shortened():
    """A published report names no folder of the machine that built it (the manifest keeps them)."""
    from dataclasses import replace

    from reportgen.run.record import ModelRecord

    record = make_record(
        command="reportgen build --model /home/someone/mnist/mnistModel --out /srv/runs/x --epochs 2",
        arguments={"model": "/home/someone/mnist/mnistModel", "out": "/srv/runs/x", "epochs": 2},
        model=ModelRecord(source="/home/someone/mnist/mnistModel", epoch=1),
    )
    record = replace(record, data=replace(record.data, dir="/data/mnist"))
    html = templates.render_html(make_context(record=record))
    for folder in ("/home/someone", "/srv/runs", "/data/mnist"):
        assert folder not in html, folder
    assert "\u2026/mnistModel" in html and "--out \u2026/x" in html and "\u2026/mnist" in html
