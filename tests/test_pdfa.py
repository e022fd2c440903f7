"""report.pdf as an archival, tagged PDF that carries its run's data, read back with pypdf;
and the sidecar report.pdf.sha256 that vouches for it in place of the manifest.

What this checks is what PDF/A-3u and tagging put in the file (ISO 19005-3, ISO 32000-1
section 14.8): the XMP identification (pdfaid part 3, conformance U), the title in the
document information and in XMP and shown as the window title, /Lang, an sRGB OutputIntent,
embedded fonts with ToUnicode maps, no interpolated image, the structure tree (headings,
tables with header cells, figures with alternative text) and the attachments (file
specifications with /AFRelationship /Data, listed in the catalog's /AF, whose bytes are the
run's files). It is not veraPDF: the rules only a validator checks (glyph widths against the
font programs, the XMP schema, content marked as artifact or tagged, ...) are for veraPDF,
which README's run-folder section says how to run.
"""

from __future__ import annotations

import hashlib
import io
import json
import re
import shutil
import subprocess
from collections import Counter
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from pypdf import PdfReader
from pypdf.generic import ArrayObject, DictionaryObject, IndirectObject
from test_report import make_context

from reportgen.cli import main
from reportgen.errors import DataError, ReportgenError
from reportgen.report import pdf as report_pdf
from reportgen.run import archive

RUN_FILES = ("manifest.json", "metrics.json", "predictions.npz")


def _get(value):
    return value.get_object() if isinstance(value, IndirectObject) else value


def _true(value) -> bool:
    """A PDF boolean (pypdf's BooleanObject is truthy even when false)."""
    return getattr(value, "value", value) is True


def xmp(reader: PdfReader) -> str:
    return _get(reader.trailer["/Root"]["/Metadata"]).get_data().decode()


def structure(reader: PdfReader) -> tuple[Counter, list[str]]:
    """Every structure element's type, counted, and each /Figure's /Alt, walking from the root."""
    kinds: Counter = Counter()
    alts: list[str] = []
    seen: set[int] = set()
    stack = [reader.trailer["/Root"]["/StructTreeRoot"]]
    while stack:
        item = stack.pop()
        if isinstance(item, IndirectObject):
            if item.idnum in seen:
                continue
            seen.add(item.idnum)
        node = _get(item)
        if not isinstance(node, DictionaryObject):
            continue  # a marked-content id
        if "/S" in node:
            kinds[node["/S"]] += 1
            if node["/S"] == "/Figure":
                alts.append(str(node.get("/Alt", "")))
        kids = _get(node.get("/K"))
        if kids is not None:
            stack.extend(kids if isinstance(kids, ArrayObject) else [kids])
    return kinds, alts


def attachments(reader: PdfReader) -> dict[str, tuple[str, bytes, DictionaryObject]]:
    """The catalog's /AF file specifications: name -> (relationship, bytes, embedded file stream)."""
    found = {}
    for spec in map(_get, _get(reader.trailer["/Root"].get("/AF", ArrayObject()))):
        stream = _get(spec["/EF"]["/F"])
        found[str(spec["/UF"])] = (str(spec.get("/AFRelationship")), stream.get_data(), stream)
    return found


def objects(reader: PdfReader):
    for number in range(1, int(reader.trailer["/Size"])):
        try:
            obj = reader.get_object(number)
        except Exception:  # a free entry of the cross-reference table
            continue
        if isinstance(obj, DictionaryObject):
            yield obj


def check_archival(payload: bytes, title: str) -> tuple[PdfReader, Counter, list[str]]:
    """Assert what PDF/A-3u and tagging put in any report.pdf; return the reader and the tags."""
    reader = PdfReader(io.BytesIO(payload))
    root = reader.trailer["/Root"]
    meta = xmp(reader)
    assert re.search(r'pdfaid:part="3"', meta) and re.search(r'pdfaid:conformance="U"', meta), meta[:600]
    assert f'<rdf:li xml:lang="x-default">{title}</rdf:li>' in meta  # dc:title
    assert reader.metadata.title == title
    assert _true(root["/ViewerPreferences"]["/DisplayDocTitle"])
    assert root["/Lang"] == "en"
    assert _true(root["/MarkInfo"]["/Marked"])
    assert reader.trailer.get("/ID"), "PDF/A needs a file identifier"
    (intent,) = [_get(i) for i in _get(root["/OutputIntents"])]
    assert intent["/S"] == "/GTS_PDFA1" and _get(intent["/DestOutputProfile"])["/N"] == 3  # an RGB ICC profile
    fonts = [o for o in objects(reader) if o.get("/Type") == "/Font" and o.get("/Subtype") == "/Type0"]
    assert fonts and all("/ToUnicode" in f for f in fonts)
    for descriptor in (o for o in objects(reader) if o.get("/Type") == "/FontDescriptor"):
        assert {"/FontFile", "/FontFile2", "/FontFile3"} & set(descriptor), descriptor.get("/FontName")
    images = [o for o in objects(reader) if o.get("/Subtype") == "/Image"]
    assert not [i for i in images if _true(i.get("/Interpolate"))]  # PDF/A-3 6.2.8
    kinds, alts = structure(reader)
    for kind in ("/H1", "/H2", "/H3", "/Table", "/TR", "/TH", "/TD", "/Figure", "/Caption", "/L", "/LI"):
        assert kinds[kind] > 0, (kind, kinds)
    assert kinds["/H1"] == 1  # the title page's; sections are H2, subsections H3
    assert alts and all(alt.strip() for alt in alts), alts
    return reader, kinds, alts


def check_attached(reader: PdfReader, files: dict[str, Path]) -> None:
    """Each file carried byte for byte, as PDF/A-3 asks: relationship, MIME type, checksum, dates."""
    carried = attachments(reader)
    assert sorted(carried) == sorted(files)
    for name, path in files.items():
        relationship, data, stream = carried[name]
        assert relationship == "/Data", name
        assert data == path.read_bytes(), name
        assert str(stream["/Subtype"]).strip("/"), name  # PDF/A-3 6.8: a MIME type, e.g. /application#2Fjson
        params = stream["/Params"]
        checksum = params["/CheckSum"]
        assert bytes(getattr(checksum, "original_bytes", checksum)) == hashlib.md5(data).digest(), name
        assert "/ModDate" in params and params["/Size"] == len(data), name
    assert set(reader.attachments) == set(files)  # also in the /EmbeddedFiles name tree


def sidecar_holds(folder: Path) -> None:
    """report.pdf.sha256 as `sha256sum -c` reads it, checked by hand and, where coreutils is
    installed, by sha256sum itself in the folder."""
    line = (folder / archive.SIDECAR).read_text()
    assert line == f"{hashlib.sha256((folder / archive.PDF).read_bytes()).hexdigest()}  report.pdf\n"
    if shutil.which("sha256sum"):
        done = subprocess.run(["sha256sum", "-c", "--strict", archive.SIDECAR], cwd=folder, capture_output=True)
        assert done.returncode == 0 and done.stdout == b"report.pdf: OK\n", done


class Images(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.alts: list[str] = []

    def handle_starttag(self, tag, attrs):
        if tag == "img":
            self.alts.append(dict(attrs).get("alt") or "")


def image_alts(html: str) -> Counter:
    parser = Images()
    parser.feed(html)
    return Counter(parser.alts)


# -- the PDF alone ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def data_files(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("data")
    (folder / "metrics.json").write_text(json.dumps({"overall": {"accuracy": 0.99}}))
    np.savez(folder / "predictions.npz", labels=np.arange(10), predictions=np.arange(10))
    (folder / "manifest.json").write_text(json.dumps({"command": "reportgen build"}))
    return {p.name: p for p in sorted(folder.iterdir())}


@pytest.fixture(scope="module")
def rendered(data_files, tmp_path_factory) -> bytes:
    return report_pdf.render_pdf(make_context(), tmp_path_factory.mktemp("run"), attachments=tuple(data_files.values()))


def test_the_pdf_is_pdfa_3u_tagged_and_carries_the_files(rendered, data_files):
    reader, kinds, alts = check_archival(rendered, "LeNet on MNIST")
    check_attached(reader, data_files)
    assert kinds["/H2"] >= 8  # one per section (a section across pages is one per page)
    # every figure's alternative text is its own (test_report's stand-ins say whose)
    assert {alt.removeprefix("Alt text of ") for alt in alts} <= set(make_context()["figures"])


def test_without_the_finisher_the_colour_bars_would_be_interpolated():
    """Rule 6.2.8: the finisher is what turns WeasyPrint's /Interpolate true off."""

    class Stream:
        def __init__(self, subtype):
            self.extra = {"Subtype": subtype, "Interpolate": "true"}

    class Pdf:
        objects = [Stream("/Image"), Stream("/Form"), "not a stream"]

    pdf = Pdf()
    report_pdf.no_interpolation(None, pdf)
    assert pdf.objects[0].extra["Interpolate"] == "false" and pdf.objects[1].extra["Interpolate"] == "true"


def test_the_same_context_gives_the_same_attachment_dates(rendered, data_files, tmp_path):
    """Attachment dates are the run's (its manifest's "created"), not the clock's."""
    again = report_pdf.render_pdf(make_context(), tmp_path, attachments=tuple(data_files.values()))
    stamp = re.compile(rb"/(?:CreationDate|ModDate) \(D:(\d{14})")
    created = make_context()["created"]  # the record's, as ISO 8601 in UTC
    expected = re.sub(r"\D", "", created)[:14].encode()
    assert set(stamp.findall(rendered)) >= {expected}
    assert sorted(stamp.findall(rendered)) == sorted(stamp.findall(again))


# -- a built run --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def built(trained_run, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("pdfa") / "run"
    result = CliRunner().invoke(
        main, ["build", "-q", "--model", str(trained_run), "--test-limit", "300", "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    return out


def test_a_built_run_carries_its_manifest_metrics_and_predictions(built):
    reader, _, alts = check_archival((built / "report.pdf").read_bytes(), "LeNet on MNIST")
    # matplotlib's colour bars are rasters WeasyPrint would interpolate: the finisher stopped it
    assert [o for o in objects(reader) if o.get("/Subtype") == "/Image" and "/Interpolate" in o]
    check_attached(reader, {name: built / name for name in RUN_FILES})
    assert Counter(alts) == image_alts((built / "report.html").read_text())  # every figure, its own alt


def test_the_manifest_vouches_for_everything_but_the_pdf_which_its_sidecar_does(built):
    manifest = json.loads((built / "manifest.json").read_text())
    assert manifest["pdf"] == {
        "file": "report.pdf",
        "checksum": "report.pdf.sha256",
        "embeds": list(RUN_FILES),
        "current": True,
    }
    on_disk = {
        p.relative_to(built).as_posix()
        for p in built.rglob("*")
        if p.is_file() and not {".checkpoint", ".cache"} & set(p.parts)  # the hidden working folders: not listed
    }
    assert set(manifest["files"]) == on_disk - {"manifest.json", "report.pdf", "report.pdf.sha256"}
    for name, entry in manifest["files"].items():
        assert entry["sha256"] == hashlib.sha256((built / name).read_bytes()).hexdigest(), name
    sidecar_holds(built)
    # The manifest was written before the PDF: its timings stop at the HTML.
    assert "render" in manifest["timings"] and "pdf" not in manifest["timings"]


def test_render_html_only_keeps_the_pdf_as_earlier_and_render_again_makes_it_current(built, tmp_path, runner):
    run = tmp_path / "run"
    shutil.copytree(built, run)
    pdf_before = (run / "report.pdf").read_bytes()
    result = runner.invoke(main, ["render", "-q", str(run), "--format", "html"])
    assert result.exit_code == 0, result.output
    manifest = json.loads((run / "manifest.json").read_text())
    assert manifest["pdf"]["current"] is False and "report.pdf" not in manifest["files"]
    assert (run / "report.pdf").read_bytes() == pdf_before  # as it was, and still vouched for
    sidecar_holds(run)
    # what it carries is the manifest of its time, not the rewritten one
    carried = attachments(PdfReader(run / "report.pdf"))
    assert carried["manifest.json"][1] == (built / "manifest.json").read_bytes() != (run / "manifest.json").read_bytes()

    result = runner.invoke(main, ["render", "-q", str(run)])
    assert result.exit_code == 0, result.output
    manifest = json.loads((run / "manifest.json").read_text())
    assert manifest["pdf"]["current"] is True and "rendered" in manifest
    check_attached(PdfReader(run / "report.pdf"), {name: run / name for name in RUN_FILES})
    sidecar_holds(run)


def test_render_will_not_vouch_for_a_pdf_changed_since(built, tmp_path, runner):
    run = tmp_path / "run"
    shutil.copytree(built, run)
    with open(run / "report.pdf", "ab") as f:
        f.write(b"%% appended\n")
    before = (run / "manifest.json").read_bytes()
    result = runner.invoke(main, ["render", "-q", str(run), "--format", "html"])
    assert result.exit_code == 2, result.output
    assert result.stderr.strip() == (
        f"error: {run / 'report.pdf'}: differs from its report.pdf.sha256 (changed after the run was built?)"
    )
    assert (run / "manifest.json").read_bytes() == before
    # Nor is it replaced: it may be someone's annotated copy (issue 17: never delete a file
    # reportgen did not write). Moved away, the PDF is made afresh.
    result = runner.invoke(main, ["render", "-q", str(run), "--format", "pdf"])
    assert result.exit_code == 2 and "move it away" in result.stderr, result.output
    assert (run / "report.pdf").read_bytes().endswith(b"%% appended\n")
    (run / "report.pdf").unlink()
    result = runner.invoke(main, ["render", "-q", str(run), "--format", "pdf"])
    assert result.exit_code == 0, result.output
    sidecar_holds(run)


def test_evaluate_into_a_built_run_keeps_its_pdf_as_earlier(built, trained_run, tmp_path, runner):
    run = tmp_path / "run"
    shutil.copytree(built, run)
    result = runner.invoke(main, ["evaluate", "-q", "--model", str(run), "--test-limit", "200", "--out", str(run)])
    assert result.exit_code == 0, result.output
    manifest = json.loads((run / "manifest.json").read_text())
    assert manifest["pdf"]["current"] is False and "report.pdf" not in manifest["files"]
    sidecar_holds(run)


# -- the sidecar's check, on its own ---------------------------------------------------------------


@pytest.fixture
def sealed_folder(tmp_path) -> Path:
    (tmp_path / "report.pdf").write_bytes(b"%PDF-1.7 not really\n")
    archive.write_sidecar(tmp_path)
    return tmp_path


ENTRY = archive.Sealed(RUN_FILES, current=True)


def test_the_check_passes_a_pdf_its_sidecar_vouches_for(sealed_folder):
    sidecar_holds(sealed_folder)
    archive.check(sealed_folder, ENTRY)


@pytest.mark.parametrize(
    "sidecar, fragment",
    [
        (None, "report.pdf.sha256: missing"),
        (b"0" * 64 + b"  report.pdf\n", "differs from its report.pdf.sha256"),
        (b"0" * 64 + b"  other.pdf\n", "not sha256sum's line for report.pdf"),
        (b"not a checksum\n", "not sha256sum's line"),
        (b"x" * 5000, "not a checksum file (5000 bytes)"),
    ],
)
def test_the_check_refuses_a_pdf_its_sidecar_does_not_vouch_for(sealed_folder, sidecar, fragment):
    (sealed_folder / archive.SIDECAR).unlink()
    if sidecar is not None:
        (sealed_folder / archive.SIDECAR).write_bytes(sidecar)
    with pytest.raises(ReportgenError, match=re.escape(fragment)):
        archive.check(sealed_folder, ENTRY)


def test_a_sidecar_that_is_a_link_is_refused(sealed_folder, tmp_path_factory):
    """A link could vouch with a file outside the run folder."""
    elsewhere = tmp_path_factory.mktemp("elsewhere") / "sum"
    shutil.copyfile(sealed_folder / archive.SIDECAR, elsewhere)
    (sealed_folder / archive.SIDECAR).unlink()
    (sealed_folder / archive.SIDECAR).symlink_to(elsewhere)
    with pytest.raises(ReportgenError, match="not a regular file"):
        archive.check(sealed_folder, ENTRY)


@pytest.mark.parametrize(
    "entry",
    [
        {"file": "../../etc/passwd", "checksum": "report.pdf.sha256", "embeds": [], "current": True},
        {"file": "report.pdf", "checksum": "/tmp/sum", "embeds": [], "current": True},
        {"file": "report.pdf", "checksum": "report.pdf.sha256", "embeds": ["model/x.params"], "current": True},
        {"file": "report.pdf", "checksum": "report.pdf.sha256", "embeds": "manifest.json", "current": True},
        {"file": "report.pdf", "checksum": "report.pdf.sha256", "embeds": [], "current": "yes"},
        "report.pdf",
    ],
)
def test_a_pdf_entry_reportgen_did_not_write_is_refused(entry):
    with pytest.raises(DataError, match='"pdf" is not what reportgen writes'):
        archive.sealed({"pdf": entry})
    assert archive.sealed({}) is None
