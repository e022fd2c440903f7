"""The report's templates: a sandboxed Jinja environment that searches the user's
--templates folder before the built-in one, and the pages rendered through it.

The HTML (`report.html.j2`) and the PDF (`pdf.html.j2`) both extend `base.html.j2` and
include the same section partials; overriding one partial keeps the rest. Templates run
sandboxed: they read the values and call the filters they are given, nothing else; they are
read only from regular files inside their folders and render within a budget (budget.py).
"""

from __future__ import annotations

import traceback
from importlib import resources
from pathlib import Path
from typing import Any

import jinja2

from reportgen.errors import RenderError
from reportgen.report.budget import Budgeted, FolderLoader, OverBudget
from reportgen.report.filters import FILTERS

HTML_TEMPLATE = "report.html.j2"
PDF_TEMPLATE = "pdf.html.j2"


def builtin_templates() -> Path:
    """The templates shipped with reportgen: the package reportgen.templates in a wheel,
    the repository's top-level templates/ in an editable install."""
    try:
        folder = Path(str(resources.files("reportgen.templates")))
    except (ModuleNotFoundError, TypeError):  # editable install: no such package
        folder = None
    if folder is None or not (folder / "base.html.j2").is_file():
        folder = Path(__file__).resolve().parents[2] / "templates"
    return folder


def environment(templates: Path | None = None) -> Budgeted:
    """Sandboxed Jinja with autoescape, strict undefined values, the number filters, and
    the user's folder searched before the built-in one.

    Reports are built in CI from templates under review, so a template may read the values
    it is given and call the filters, but reach nothing else (no attributes starting with
    "_", no method that changes a value): Jinja's ImmutableSandboxedEnvironment, counting
    what the template spends; no file outside the folders, not even through a link.
    """
    folders = []
    if templates is not None:
        templates = Path(templates)
        if not templates.is_dir():
            raise RenderError(f"{templates}: no such templates folder")
        folders.append(templates)
    folders.append(builtin_templates())
    env = Budgeted(
        loader=jinja2.ChoiceLoader([FolderLoader(f) for f in folders]),
        autoescape=True,  # a title like "<script>" is text, not markup
        undefined=jinja2.StrictUndefined,  # a misspelt name is an error, not an empty string
        # Not trim_blocks: a newline after "{% endif %}" in prose is the space between words.
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters.update(FILTERS)
    return env.bound()


def _user_frame(error: BaseException, templates: Path | None) -> str | None:
    """ "<file>, line N" of the innermost frame in one of the user's templates, if any.

    Jinja rewrites tracebacks so that template frames carry the template's file and line:
    an error that passed through the user's templates is the user's to fix.
    """
    if templates is None:
        return None
    root = Path(templates).resolve()
    frames: list[tuple[str, int | None]]
    if isinstance(error, jinja2.TemplateSyntaxError) and error.filename:
        frames = [(error.filename, error.lineno)]
    else:
        frames = [(f.filename, f.lineno) for f in traceback.extract_tb(error.__traceback__)]
    inside = [f"{name}, line {line}" for name, line in frames if Path(name).resolve().is_relative_to(root)]
    return inside[-1] if inside else None


def render_page(name: str, values: dict[str, Any], templates: Path | None = None) -> str:
    """Render one template (the report, the site's index).

    An error the user's templates caused is a RenderError naming the template and line,
    chained to its cause; any other error is ours and goes up as it is.
    """
    env = environment(templates)
    try:
        with env.spending():
            return env.get_template(name).render(values)
    except OverBudget as e:
        stopped = _user_frame(e, templates) or name
        raise RenderError(f"{stopped}: rendering stopped: {e} (the budget of a report's templates)") from e
    except Exception as e:
        where = _user_frame(e, templates)
        if where is None:
            raise
        message = e.message if isinstance(e, jinja2.TemplateError) else str(e)
        if isinstance(e, jinja2.TemplateNotFound):  # its message is the bare name
            message = f"no template {e.name!r} in the templates folders (a name outside them never is)"
        kind = "refused by the sandbox: " if isinstance(e, jinja2.exceptions.SecurityError) else ""
        raise RenderError(f"{where}: {kind}{message or type(e).__name__}") from e


def render_html(context: dict[str, Any], templates: Path | None = None) -> str:
    """One self-contained HTML file: CSS inlined, every figure a data: URI, no script."""
    return render_page(HTML_TEMPLATE, {**context, "medium": "html"}, templates)
