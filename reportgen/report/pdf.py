"""The PDF: the report's sections through pdf.html.j2 and WeasyPrint (A4, a title page,
contents with page numbers, bookmarks, metadata), loading nothing from outside the run folder."""

from __future__ import annotations

import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

from reportgen.errors import RenderError
from reportgen.report.templates import PDF_TEMPLATE, render_page


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


def render_pdf(context: dict[str, Any], run_dir: Path, templates: Path | None = None) -> bytes:
    """The same sections as the HTML, through pdf.html.j2 and WeasyPrint: A4, a title
    page, contents with page numbers, bookmarks, metadata."""
    import weasyprint
    from weasyprint.urls import FatalURLFetchingError

    html = render_page(PDF_TEMPLATE, {**context, "medium": "pdf"}, templates)
    run_dir = Path(run_dir).resolve()
    try:
        document = weasyprint.HTML(string=html, base_url=run_dir.as_uri() + "/", url_fetcher=url_fetcher(run_dir))
        return document.write_pdf()
    except FatalURLFetchingError as e:
        # A URL the templates asked for that the fetcher refused (check_url) or could not read.
        cause = e.__cause__
        message = str(cause) if isinstance(cause, RenderError) else f"PDF: {e}: {cause}"
        raise RenderError(message) from e
