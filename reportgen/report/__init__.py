"""The report: what the templates see (context, sections, against), the number formats
(filters), the figures, and rendering (templates: Jinja, sandboxed; pdf: WeasyPrint).
Never imports mxnet or reportgen.net: a finished run renders without them."""
