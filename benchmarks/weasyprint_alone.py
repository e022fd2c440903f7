"""WeasyPrint alone, the floor `reportgen render` is measured against: the HTML reportgen hands
to WeasyPrint for a run's PDF (cases.pdf_input keeps it), made into the same PDF (PDF/A-3u,
tagged, the run's files attached), in a process that imports nothing of reportgen.

    python benchmarks/weasyprint_alone.py PDF_INPUT.html RUN VARIANT
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

started = time.perf_counter()
import weasyprint  # noqa: E402

ATTACHED = ("manifest.json", "metrics.json", "predictions.npz")  # what reportgen attaches, where present


def main() -> None:
    html, run, variant = Path(sys.argv[1]), Path(sys.argv[2]).resolve(), sys.argv[3]
    attachments = [
        weasyprint.Attachment(string=(run / name).read_bytes(), name=name, relationship="Data")
        for name in ATTACHED
        if (run / name).is_file()
    ]
    document = weasyprint.HTML(string=html.read_text(), base_url=run.as_uri() + "/")
    pdf = document.write_pdf(pdf_variant=variant, pdf_tags=True, attachments=attachments)
    print(json.dumps({"bytes": len(pdf), "seconds": time.perf_counter() - started}))


if __name__ == "__main__":
    main()
