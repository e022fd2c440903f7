"""`site` publishes run folders that may be someone else's: tried as an attacker would, with a
manifest that vouches for whatever the attacker put there (conftest.forge). Links out of the
run, script in the report or a figure, references outside the run, the machine's paths."""

from __future__ import annotations

import base64
import io
import json
from pathlib import Path

import pytest
from conftest import copy_of, forge

from reportgen.cli import main
from reportgen.site import markup, pdf

SVG_OPEN = '<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink">'


def svg(body: str, head: str = "") -> bytes:
    return f'<?xml version="1.0" encoding="utf-8"?>{head}{SVG_OPEN}{body}</svg>'.encode()


@pytest.fixture
def run(built_run, tmp_path):
    return copy_of(built_run, tmp_path / "run")


def site(runner, tmp_path, *runs):
    return runner.invoke(main, ["site", "-q", *map(str, runs), "--out", str(tmp_path / "site")])


def refused(result, tmp_path, *fragments: str) -> str:
    assert result.exit_code == 2, result.output
    (line,) = result.stderr.splitlines()
    assert line.startswith("error: ") and all(f in line for f in fragments), line
    assert not (tmp_path / "site").exists()
    return line


# -- links out of the run ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "name, target",
    [("report.pdf", "/etc/passwd"), ("figures/zz.svg", "/etc/hostname"), ("metrics.json", "/proc/self/environ")],
)
def test_a_link_out_of_the_run_is_not_published(run, tmp_path, runner, name, target):
    forge(run, name, Path(target).read_bytes())  # the manifest vouches for the target's bytes
    (run / name).unlink()
    (run / name).symlink_to(target)
    refused(site(runner, tmp_path, run), tmp_path, f"{run / name}: a symbolic link")


def test_a_linked_figures_folder_is_refused_without_listing_it(run, tmp_path, runner):
    ssh = tmp_path / "ssh"
    ssh.mkdir()
    (ssh / "id_ed25519").write_text("-----BEGIN OPENSSH PRIVATE KEY-----")
    for figure in (run / "figures").iterdir():
        figure.unlink()
    (run / "figures").rmdir()
    (run / "figures").symlink_to(ssh)
    line = refused(site(runner, tmp_path, run), tmp_path, f"{run / 'figures'}: a symbolic link")
    assert "id_ed25519" not in line


def test_a_file_that_is_not_a_figure_is_not_published(run, tmp_path, runner):
    forge(run, "figures/page.html", b"<p>fine</p>")
    refused(site(runner, tmp_path, run), tmp_path, "figures/page.html: not a figure")


# -- script and references outside the run, in the report ------------------------------------

HTML_ATTACKS = {
    "script": "<script>fetch('/x')</script>",
    "event": "<img src='data:image/png;base64,iVBORw0KGgo=' onerror='alert(1)'>",
    "javascript-link": "<a href='javascript:alert(1)'>x</a>",
    "obfuscated-link": "<a href='jav&#x09;ascript:alert(1)'>x</a>",
    "entity-scheme": "<a href='&#106;avascript:alert(1)'>x</a>",
    "external-image": "<img src='https://evil.example/pixel.png'>",
    "protocol-relative": "<img src='//evil.example/pixel.png'>",
    "backslashes": "<img src='\\\\evil.example/pixel.png'>",
    "file-url": "<a href='file:///etc/passwd'>x</a>",
    "out-of-the-run": "<a href='../../other-run/report.html'>x</a>",
    "rooted": "<img src='/etc/hostname'>",
    "stylesheet": "<link rel=stylesheet href='https://evil.example/x.css'>",
    "import": "<style>@import url(https://evil.example/x.css);</style>",
    "escaped-url": "<div style='background: u\\72l(https://evil.example/x.png)'>x</div>",
    "image-set": "<style>p { background-image: image-set('https://evil.example/x.png' 1x) }</style>",
    "iframe": "<iframe srcdoc='<script>alert(1)</script>'></iframe>",
    "inline-svg": "<svg><script>alert(1)</script></svg>",
    "refresh": "<meta http-equiv='refresh' content='0;url=https://evil.example/'>",
    "base": "<base href='https://evil.example/'>",
    "form": "<form action='https://evil.example/'><button>go</button></form>",
    "split-tag": "<scr<script>ipt>alert(1)</script>",
    "svg-data-image": "<img src='data:image/svg+xml;base64,"
    + base64.b64encode(svg("<script>alert(1)</script>")).decode()
    + "'>",
    "html-data": "<a href='data:text/html,<script>alert(1)</script>'>x</a>",
}


@pytest.mark.parametrize("attack", HTML_ATTACKS.values(), ids=HTML_ATTACKS.keys())
def test_a_page_with_script_or_an_outside_reference_is_refused(attack):
    page = f"<!DOCTYPE html><html><head><title>t</title></head><body><p>{attack}</p></body></html>"
    with pytest.raises(markup.Unsafe):
        markup.check_html(page.encode())


def test_the_report_as_reportgen_writes_it_passes(built_run):
    markup.check_html((built_run / "report.html").read_bytes())
    for figure in (built_run / "figures").iterdir():
        markup.check_svg(figure.read_bytes(), page=f"figures/{figure.name}")
    pdf.check_pdf((built_run / "report.pdf").read_bytes())


SVG_ATTACKS = {
    "script": svg("<script>alert(1)</script>"),
    "onload": svg("<g onload='alert(1)'/>"),
    "root-onload": svg("").replace(b"<svg ", b"<svg onload='alert(1)' "),
    "link": svg("<a xlink:href='javascript:alert(1)'><text>x</text></a>"),
    "foreign-object": svg(
        "<foreignObject><iframe xmlns='http://www.w3.org/1999/xhtml' src='https://e.x'/></foreignObject>"
    ),
    "xhtml-script": svg("<h:script xmlns:h='http://www.w3.org/1999/xhtml'>alert(1)</h:script>"),
    "external-image": svg("<image xlink:href='https://evil.example/x.png'/>"),
    "set-href": svg("<set attributeName='href' to='javascript:alert(1)'/>"),
    "css-url": svg("<rect style='fill: url(https://evil.example/#g)'/>"),
    "css-import": svg("<style>@import url(https://evil.example/x.css);</style>"),
    "presentation-url": svg("<rect fill='url(//evil.example/#g)'/>"),
    "entity": svg("<text>&x;</text>", '<!DOCTYPE svg [<!ENTITY x SYSTEM "file:///etc/passwd">]>'),
    "billion-laughs": svg("<text>&a;</text>", '<!DOCTYPE svg [<!ENTITY a "aaaaaaaaaa">]>'),
    "stylesheet-pi": svg("", '<?xml-stylesheet type="text/xsl" href="https://evil.example/x.xsl"?>'),
    "out-of-the-run": svg("<use xlink:href='../../other/x.svg#a'/>"),
    "xml-base": svg("<g xml:base='https://evil.example/'><image xlink:href='x.png'/></g>"),
}


@pytest.mark.parametrize("attack", SVG_ATTACKS.values(), ids=SVG_ATTACKS.keys())
def test_an_svg_with_script_or_an_outside_reference_is_refused(attack):
    with pytest.raises(markup.Unsafe):
        markup.check_svg(attack, page="figures/x.svg")


def test_a_pdf_with_javascript_or_a_link_out_is_refused():
    import pypdf
    from pypdf.annotations import Link
    from pypdf.generic import DictionaryObject, NameObject, TextStringObject

    writer = pypdf.PdfWriter()
    writer.add_blank_page(100, 100)
    writer._root_object[NameObject("/OpenAction")] = DictionaryObject(
        {NameObject("/S"): NameObject("/JavaScript"), NameObject("/JS"): TextStringObject("app.alert(1)")}
    )
    scripted = io.BytesIO()
    writer.write(scripted)
    # The same, its names escaped as a PDF may write them (#61 is "a").
    escaped = scripted.getvalue().replace(b"/JavaScript", b"/J#61vaScript").replace(b"/JS ", b"/J#53 ")
    writer = pypdf.PdfWriter()
    writer.add_blank_page(100, 100)
    writer.add_annotation(0, Link(rect=(0, 0, 50, 50), url="https://evil.example/"))
    linked = io.BytesIO()
    writer.write(linked)
    for payload in (scripted.getvalue(), escaped, linked.getvalue(), b"%PDF-1.7 not really"):
        with pytest.raises(markup.Unsafe):
            pdf.check_pdf(payload)


def test_a_pdf_may_carry_only_the_runs_own_records_as_attachments():
    """report.pdf carries manifest.json, metrics.json and predictions.npz (issue 20); any other
    attachment, which a viewer would hand to whatever program its name asks for, is refused."""
    import pypdf

    def attaching(*names: str) -> bytes:
        writer = pypdf.PdfWriter()
        writer.add_blank_page(100, 100)
        for name in names:
            writer.add_attachment(name, b"{}")
        out = io.BytesIO()
        writer.write(out)
        return out.getvalue()

    pdf.check_pdf(attaching("manifest.json", "metrics.json", "predictions.npz"))
    for names in (("invoice.pdf.exe",), ("manifest.json", "run.sh"), ("../manifest.json",)):
        with pytest.raises(markup.Unsafe, match="attached file"):
            pdf.check_pdf(attaching(*names))


@pytest.mark.parametrize(
    "name, payload",
    [
        ("report.html", b"<!DOCTYPE html><p>hi</p><script>alert(document.domain)</script>"),
        ("figures/zz.svg", svg("<circle r='5' onload='alert(1)'/>")),
    ],
    ids=["report", "figure"],
)
def test_site_refuses_a_run_that_carries_script(run, tmp_path, runner, name, payload):
    forge(run, name, payload)
    refused(site(runner, tmp_path, run), tmp_path, f"{run / name}: ", "site publishes nothing that runs script")


def test_the_copied_manifest_and_metrics_name_no_folder_of_the_building_machine(built_run, tmp_path, runner):
    result = site(runner, tmp_path, built_run)
    assert result.exit_code == 0, result.output
    copied = tmp_path / "site" / "runs" / built_run.name
    for name in ("manifest.json", "metrics.json"):
        text = (copied / name).read_text()
        assert str(built_run.parent) not in text and str(tmp_path) not in text, name
    manifest = json.loads((copied / "manifest.json").read_text())
    assert manifest["arguments"]["out"] == f"\u2026/{built_run.name}"
    assert f"--out \u2026/{built_run.name}" in manifest["command"]
    assert str(built_run) in (built_run / "manifest.json").read_text()  # the run's own stays as it was
