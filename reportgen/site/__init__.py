"""The site: one static folder that lists many finished runs, newest first.

`reportgen site RUN_DIR... --out SITE_DIR` gathers each run's manifest.json and
metrics.json into typed values first, refusing a folder that is not a finished run
before anything is written; then builds the index (one `Row` per run), draws the
accuracy chart, renders index.html through the report's sandboxed templates, and
writes the folder through a staging folder that replaces the previous site whole:

    SITE_DIR/
      index.html      the runs and the chart; relative links only, no script
      index.json      the same rows as data
      accuracy.svg    each run's test accuracy with its 95% interval
      runs/<name>/    report.html, report.pdf, figures/, metrics.json, manifest.json

Same runs, same bytes: the site records no time of its own making and sorts
everything. No mxnet, and no absolute path of the building machine in the index.
"""

from __future__ import annotations

from reportgen.site.index import INDEX_HTML
from reportgen.site.publish import build

__all__ = ["INDEX_HTML", "build"]
