"""A run's report.pdf, checked before the site publishes it: no JavaScript, no action that
launches, submits, imports or opens another document, no link out of the file, no attached
file but the run's own records that a report.pdf carries (run/archive.py: manifest.json,
metrics.json, predictions.npz); as with the HTML (site/markup.py), what a reader's viewer
would run or fetch.

pypdf parses it (cross-reference tables and streams, compressed object streams, names
escaped as #xx: the structure a viewer reads, not the bytes as they stand); every object
reachable from the trailer is visited once, without decoding any page's content.
"""

from __future__ import annotations

import io
import logging
from typing import Any

from reportgen.run.archive import EMBEDDABLE
from reportgen.site.markup import Unsafe

# Keys whose presence means something runs or is fetched: scripts, the actions a page or
# field triggers by itself, embedded media and forms' XML. Attached files are looked at one
# by one (_attached): a viewer opens one with whatever program its name asks for.
FORBIDDEN_KEYS = frozenset({"/JS", "/JavaScript", "/AA", "/EmbeddedFile", "/RichMedia", "/XFA", "/Launch"})
# Actions (an action dictionary's /S): only /GoTo (a place in this file) and /Named (next page
# and the like) are left.
FORBIDDEN_ACTIONS = frozenset(
    {
        "/JavaScript",
        "/Launch",
        "/URI",
        "/SubmitForm",
        "/ImportData",
        "/ResetForm",
        "/GoToR",
        "/GoToE",
        "/Rendition",
        "/Movie",
        "/Sound",
        "/Trans",
        "/GoTo3DView",
        "/RichMediaExecute",
    }
)
MAX_OBJECTS = 1_000_000  # the default report has a few thousand


def check_pdf(data: bytes) -> None:
    """Refuse (Unsafe) a PDF that could run script or reach outside itself."""
    import pypdf
    from pypdf.generic import ArrayObject, DictionaryObject, IndirectObject

    chatter = logging.getLogger("pypdf")  # its warnings on a broken file: ours is the one line
    level = chatter.level
    chatter.setLevel(logging.CRITICAL + 1)
    try:
        reader = pypdf.PdfReader(io.BytesIO(data), strict=False)
        stack: list[Any] = [reader.trailer]
        seen: set[tuple[int, int]] = set()
        while stack:
            item = stack.pop()
            if isinstance(item, IndirectObject):
                key = (item.idnum, item.generation)
                if key in seen:
                    continue
                seen.add(key)
                if len(seen) > MAX_OBJECTS:
                    raise Unsafe(f"more than {MAX_OBJECTS:,} objects")
                item = item.get_object()
            if isinstance(item, DictionaryObject):
                _attached(item)
                for name, value in item.items():
                    if name in FORBIDDEN_KEYS:
                        raise Unsafe(f"a {name} entry")
                    if name == "/S" and value in FORBIDDEN_ACTIONS:
                        raise Unsafe(f"a {value} action")
                    stack.append(value)
            elif isinstance(item, ArrayObject):
                stack.extend(item)
    except Unsafe:
        raise
    except Exception as e:  # pypdf's many ways of saying the file is broken
        raise Unsafe(f"not a PDF that could be read ({type(e).__name__})") from e
    finally:
        chatter.setLevel(level)


def _attached(item: Any) -> None:
    """Refuse a file specification (an attachment, in the name tree or as an associated file)
    other than the records reportgen attaches: a name a viewer would hand to another program."""
    if item.get("/Type") != "/Filespec" and "/EF" not in item:
        return
    names = {str(item.get(key)) for key in ("/F", "/UF") if item.get(key) is not None}
    if not names or not names <= set(EMBEDDABLE):
        shown = ", ".join(sorted(names))[:80] or "no name"
        raise Unsafe(f"an attached file ({shown}) other than the run's {', '.join(EMBEDDABLE)}")
