"""The PDF: the report's sections through pdf.html.j2 and WeasyPrint (A4, a title page,
contents with page numbers, bookmarks, metadata), loading nothing from outside the run folder.

It is archival and tagged: PDF/A-3u (XMP identification, an sRGB OutputIntent, embedded
fonts with Unicode maps) with a structure tree (headings, tables with header cells, figures
with their alt text, /Lang from <html lang>), and it carries the run's data files byte for
byte, each with relationship Data, as PDF/A-3 allows.
"""

from __future__ import annotations

import base64
import contextlib
import datetime as _dt
import functools
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

from reportgen.errors import RenderError
from reportgen.report.templates import PDF_TEMPLATE, render_page

# "u" rather than "a": WeasyPrint writes the same tags either way (its pdf/a-3a is pdf/a-3u
# with tags on), but only a validator such as veraPDF can vouch for level A's structure rules.
PDF_VARIANT = "pdf/a-3u"
# What each attached file is, for a reader's attachments pane (the file specification's /Desc).
ATTACHED = {
    "manifest.json": "how the run was made: command, arguments, versions, data checksums, timings, file checksums",
    "metrics.json": "caret's statistics, the confusion matrix, calibration, ranking; the comparison and gates",
    "predictions.npz": "every test image's label, prediction and ten probabilities (numpy .npz)",
}


def check_url(url: str, run_dir: Path) -> None:
    """Allow data: URLs and file: URLs inside run_dir; raise RenderError for anything else."""
    refused = f"{url[:120]}: refused; the PDF may load only data: URLs and files inside {run_dir}"
    scheme = url.split(":", 1)[0].lower() if ":" in url else ""
    if scheme == "data":
        return
    if scheme != "file":
        raise RenderError(refused)
    parts = urllib.parse.urlsplit(url)
    if parts.netloc not in ("", "localhost"):
        raise RenderError(refused)
    # resolve() follows symbolic links and "..", so neither can lead outside the folder
    path = Path(urllib.request.url2pathname(parts.path)).resolve()
    if not path.is_relative_to(Path(run_dir).resolve()):
        raise RenderError(refused)


def url_fetcher(run_dir: Path):
    """A WeasyPrint URL fetcher bound to run_dir (see check_url); a refusal stops the PDF."""
    from weasyprint.urls import URLFetcher

    root = Path(run_dir).resolve()

    class RunFolderFetcher(URLFetcher):
        def fetch(self, url, headers=None):
            check_url(url, root)
            return super().fetch(url, headers)

    # fail_on_errors: a refused or missing resource ends the render instead of
    # leaving a hole in the PDF with only a log line to show for it.
    return RunFolderFetcher(fail_on_errors=True)


def load_pdf_renderer() -> None:
    """Import WeasyPrint (a third of a second: Pango, HarfBuzz, fontconfig), e.g. while other
    processes draw the figures, rather than when the PDF is due."""
    import weasyprint  # noqa: F401


def no_interpolation(_document: Any, pdf: Any) -> None:
    """PDF/A-2 and -3, rule 6.2.8: no image may ask to be interpolated. WeasyPrint asks for every
    raster whose image-rendering is auto, as matplotlib's colour bars are (its imshow images say
    pixelated), and a CSS image-rendering does not reach rasters inside an SVG <img>. A
    WeasyPrint finisher: it runs on the pydyf objects before they are written."""
    for obj in pdf.objects:
        extra = getattr(obj, "extra", None)  # a pydyf.Stream's dictionary
        if isinstance(extra, dict) and extra.get("Subtype") == "/Image":
            extra["Interpolate"] = "false"


def render_pdf(
    context: dict[str, Any], run_dir: Path, templates: Path | None = None, attachments: Sequence[Path] = ()
) -> bytes:
    """The same sections as the HTML, through pdf.html.j2 and WeasyPrint: A4, a title page,
    contents with page numbers, bookmarks, metadata; PDF/A-3u and tagged, carrying each of
    `attachments` (the run's data files) byte for byte under its own name, relationship Data."""
    return write(layout(context, run_dir, templates), context, attachments)


def layout(
    context: dict[str, Any], run_dir: Path, templates: Path | None = None, images: dict[str, Any] | None = None
) -> Any:
    """The PDF's pages laid out (a weasyprint Document): most of its time, and nothing of it
    needs the attachments, which `write` adds. `images`: a dict WeasyPrint fills with the
    images it loaded, by URL (for `fill_in`)."""
    import weasyprint

    html = render_page(PDF_TEMPLATE, {**context, "medium": "pdf"}, templates)
    run_dir = Path(run_dir).resolve()
    with _fetch_errors():
        document = weasyprint.HTML(string=html, base_url=run_dir.as_uri() + "/", url_fetcher=url_fetcher(run_dir))
        return document.render(pdf_variant=PDF_VARIANT, pdf_tags=True, cache={} if images is None else images)


class NotInPlace(Exception):
    """A figure that cannot be drawn where its placeholder was laid out (`fill_in`)."""


def fill_in(images: dict[str, Any], figures: Mapping[str, Callable[[], str]]) -> bool:
    """Have each placeholder the pages were laid out with draw its figure instead: `images` as
    `layout` filled it; `figures` maps a placeholder's data: URL to a function giving its
    figure's, called when the page that shows it is drawn (it may wait for the figure). A
    placeholder has its figure's size (figures/style.py), so the pages are those the figures
    themselves give, and `write` makes the same bytes. False, changing nothing, unless every
    placeholder was loaded as an SVG image (a template that shows a figure otherwise, or not
    at all, is not one this can vouch for); a figure of another size than its placeholder
    raises NotInPlace when drawn. Either way the caller makes the PDF from the figures.

    WeasyPrint has no public way to do this: it keeps an SVG image's parsed tree in
    SVGImage._svg and its URL in _base_url, which `draw` reads; a version that keeps them
    elsewhere makes this return False, never a wrong PDF.
    """
    from weasyprint.images import SVGImage

    shown = []
    for placeholder, figure in figures.items():
        image: Any = images.get(placeholder)
        if image.__class__ is not SVGImage or not _SVG_IMAGE <= vars(image).keys():
            return False
        shown.append((image, figure))
    for image, figure in shown:
        image.draw = functools.partial(_draw_figure, image, figure)
    return True


_SVG_IMAGE = {"_svg", "_base_url", "_url_fetcher", "_context"}  # what fill_in reads of one


def _draw_figure(image: Any, figure: Callable[[], str], stream: Any, width: Any, height: Any, style: Any) -> None:
    """SVGImage.draw of the placeholder `image`, with its figure (a data: URL) in its place."""
    from weasyprint.images import SVGImage

    url = figure()
    svg = base64.b64decode(url.split(",", 1)[1])
    try:  # as WeasyPrint loads an SVG image (images.get_image_from_uri)
        drawn = SVGImage(ElementTree.fromstring(svg), url, image._url_fetcher, image._context)
    except Exception as e:
        raise NotInPlace(f"a figure that WeasyPrint cannot read: {e}") from e
    if _size(drawn) != _size(image):
        raise NotInPlace(f"a figure of another size than its placeholder: {_size(drawn)}, {_size(image)}")
    image._svg, image._base_url = drawn._svg, drawn._base_url
    del image.draw  # the class's own, from now on
    image.draw(stream, width, height, style)


def _size(image: Any) -> tuple[Any, ...]:
    return (*image._svg.get_intrinsic_size(16), image._svg.get_viewbox())


def write(
    document: Any, context: dict[str, Any], attachments: Sequence[Path] | Callable[[], Sequence[Path]] = ()
) -> bytes:
    """The laid-out Document as PDF/A-3u bytes, carrying `attachments`: the files, or a function
    giving them, called once the pages are drawn (it may wait for the files to be written)."""
    with _fetch_errors():
        pdf: bytes = document.write_pdf(
            pdf_variant=PDF_VARIANT,
            pdf_tags=True,
            attachments=_Attached(context, attachments),
            finisher=no_interpolation,
        )
        return pdf


class _Attached:
    """The attachments, read when WeasyPrint comes to them: after the pages are drawn, in
    WeasyPrint 70 (one that came to them first would only wait there)."""

    def __init__(self, context: dict[str, Any], files: Sequence[Path] | Callable[[], Sequence[Path]]) -> None:
        # The run's time on every attachment, not the clock's: the same run gives the same PDF.
        self._when = _dt.datetime.fromisoformat(context["created"]).astimezone(_dt.UTC)
        self._files = files

    def __bool__(self) -> bool:
        return True  # WeasyPrint asks before it iterates; no files attach nothing

    def __iter__(self) -> Iterator[Any]:
        import weasyprint

        for path in self._files() if callable(self._files) else self._files:
            yield weasyprint.Attachment(
                string=Path(path).read_bytes(),
                name=Path(path).name,
                description=ATTACHED.get(Path(path).name, ""),
                relationship="Data",
                created=self._when,
                modified=self._when,
            )


@contextlib.contextmanager
def _fetch_errors() -> Iterator[None]:
    from weasyprint.urls import FatalURLFetchingError

    try:
        yield
    except FatalURLFetchingError as e:
        # A URL the templates asked for that the fetcher refused (check_url) or could not read.
        cause = e.__cause__
        message = str(cause) if isinstance(cause, RenderError) else f"PDF: {e}: {cause}"
        raise RenderError(message) from e
