"""What the site publishes must run no script and load nothing from outside the run.

A run folder that `site` publishes may come from someone else (a pull request's), so its
report.html and figures/*.svg are checked before they are copied, with the parsers a browser
would use, not patterns: the HTML through tinyhtml5 (the HTML5 parsing algorithm: what a
browser builds, `<scr<script>ipt>` and all), the SVG through expat with no DTD subset and no
entity (nothing to expand), the CSS of both through tinycss2 (escapes such as `u\\72l(`
decoded as a browser decodes them). A run that holds anything else is refused, naming it.

Why check rather than render the report again from the run's data: rendering needs the run's
MNIST files, which the machine that publishes does not have, and its own report is what a
run's reader expects to see. What is allowed is listed, not what is forbidden: the elements
and attributes reportgen's templates and matplotlib write, and the inert ones a template of
one's own may add; URLs only to a fragment, a file inside the run, or a data: image (an
SVG one checked in turn).
"""

from __future__ import annotations

import base64
import posixpath
import urllib.parse
from collections.abc import Iterable
from typing import Any
from xml.etree import ElementTree
from xml.parsers import expat

import tinycss2
import tinyhtml5

XHTML = "http://www.w3.org/1999/xhtml"
SVG = "http://www.w3.org/2000/svg"
XLINK = "http://www.w3.org/1999/xlink"
XML = "http://www.w3.org/XML/1998/namespace"
# matplotlib's <metadata>: RDF, Dublin Core and Creative Commons, which nothing runs or loads.
METADATA = (
    "http://www.w3.org/1999/02/22-rdf-syntax-ns#",
    "http://purl.org/dc/elements/1.1/",
    "http://creativecommons.org/ns#",
)

HTML_ELEMENTS = frozenset(
    "html head body title meta style main header footer nav section article aside div span p h1 h2 h3 h4 h5 h6 "
    "a img figure figcaption table caption thead tbody tfoot tr th td colgroup col ul ol li dl dt dd pre code "
    "strong em b i u s small sub sup br hr blockquote q cite abbr kbd samp var mark time details summary "
    "address del ins wbr bdi bdo dfn".split()
)
HTML_ATTRIBUTES = frozenset(
    "class id lang dir title role style href src alt width height colspan rowspan scope headers charset name "
    "content open datetime start reversed type value span abbr tabindex hidden translate loading decoding cite "
    "target rel".split()
)
SVG_ELEMENTS = frozenset(
    "svg g defs path rect circle ellipse line polyline polygon text tspan clipPath mask pattern linearGradient "
    "radialGradient stop use image style title desc metadata symbol marker filter feGaussianBlur feOffset "
    "feBlend feFlood feComposite feMerge feMergeNode feColorMatrix".split()
)
URL_ATTRIBUTES = frozenset({"href", "src", "cite"})
IMAGES = ("image/png", "image/jpeg", "image/gif", "image/webp", "image/svg+xml")
FONTS = ("font/woff", "font/woff2", "font/ttf", "font/otf", "application/font-woff")


class Unsafe(ValueError):
    """What in a page could run script or load from outside the run: the reason."""


# -- URLs -----------------------------------------------------------------------------------


def _data_url(url: str, allowed: tuple[str, ...], where: str, depth: int) -> None:
    header, comma, payload = url[len("data:") :].partition(",")
    if not comma:
        raise Unsafe(f"a malformed data: URL in {where}")
    media, *parameters = [part.strip().lower() for part in header.split(";")]
    if media not in allowed:
        raise Unsafe(f"a data: URL of type {media or 'text/plain'!r} in {where}")
    if media == "image/svg+xml":
        try:
            body = base64.b64decode(payload, validate=True) if "base64" in parameters else None
        except ValueError as e:
            raise Unsafe(f"a data: URL that is not base64 in {where}") from e
        check_svg(body if body is not None else urllib.parse.unquote_to_bytes(payload), depth + 1)


_BLANKS = "".join(map(chr, range(0x21)))  # what browsers strip around a URL: C0 controls, space


def check_url(url: str, where: str, page: str = "", data: tuple[str, ...] = (), depth: int = 0) -> None:
    """A URL a page may hold: "#fragment", a path inside the run (relative to `page`, the
    page's own path in the run), or a data: URL of a type in `data` (an SVG checked in turn).
    Browsers drop tabs and newlines inside a URL and blanks around it ("java\tscript:"), and
    read "\\" as "/": so does this."""
    cleaned = "".join(c for c in url if c not in "\t\n\r").strip(_BLANKS)
    shown = cleaned[:60]
    if "\\" in cleaned:
        raise Unsafe(f"a URL with a backslash ({shown!r}) in {where}")
    parts = urllib.parse.urlsplit(cleaned)
    if parts.scheme:
        if parts.scheme.lower() == "data" and data:
            _data_url(cleaned, data, where, depth)
            return
        raise Unsafe(f"a {parts.scheme.lower()}: URL ({shown!r}) in {where}")
    if parts.netloc or cleaned.startswith("//"):
        raise Unsafe(f"a reference to another host ({shown!r}) in {where}")
    if not parts.path:
        return  # "#fragment" or "?query": this page
    if parts.path.startswith("/"):
        raise Unsafe(f"a reference outside the run ({shown!r}) in {where}")
    target = posixpath.normpath(posixpath.join(posixpath.dirname(page), urllib.parse.unquote(parts.path)))
    if target == ".." or target.startswith("../"):
        raise Unsafe(f"a reference outside the run ({shown!r}) in {where}")


# -- CSS ------------------------------------------------------------------------------------


_STRING_URLS = frozenset({"image-set", "-webkit-image-set", "image", "cross-fade", "-webkit-cross-fade"})


def _css_tokens(tokens: Iterable[Any], where: str, page: str, depth: int) -> None:
    for token in tokens:
        kind = getattr(token, "type", "")
        if kind == "url":
            check_url(token.value, where, page, IMAGES + FONTS, depth)
        elif kind == "function":
            name = token.lower_name
            if name in ("url", "src"):
                strings = [t.value for t in token.arguments if getattr(t, "type", "") in ("string", "url")]
                if len(strings) != 1:
                    raise Unsafe(f"a CSS {name}() that is not one plain URL in {where}")
                check_url(strings[0], where, page, IMAGES + FONTS, depth)
            elif name == "expression":
                raise Unsafe(f"a CSS expression() in {where}")
            elif name in _STRING_URLS:  # these take a plain string as a URL: image-set("x.png" 1x)
                for argument in token.arguments:
                    if getattr(argument, "type", "") == "string":
                        check_url(argument.value, where, page, IMAGES, depth)
            _css_tokens(token.arguments, where, page, depth)
        elif kind == "at-keyword" and token.lower_value == "import":
            raise Unsafe(f"a CSS @import in {where}")
        elif kind == "ident" and token.lower_value in ("behavior", "-moz-binding"):
            raise Unsafe(f"the CSS property {token.lower_value} in {where}")
        elif kind in ("() block", "[] block", "{} block"):
            _css_tokens(token.content, where, page, depth)


def check_css(text: str, where: str, page: str = "", depth: int = 0) -> None:
    """A style sheet or a style attribute, token by token as a browser's tokenizer reads it:
    every url() and src() (quoted or not, escaped or not), @import, expression()."""
    _css_tokens(tinycss2.parse_component_value_list(text, skip_comments=True), where, page, depth)


# -- HTML -----------------------------------------------------------------------------------


def check_html(data: bytes, page: str = "report.html") -> None:
    """Refuse (Unsafe) an HTML page that could run script or load from outside the run."""
    document = tinyhtml5.parse(data)
    for element in document.iter():
        if not isinstance(element.tag, str):
            continue  # a comment
        namespace, _, tag = element.tag[1:].partition("}") if element.tag.startswith("{") else ("", "", element.tag)
        if namespace != XHTML or tag not in HTML_ELEMENTS:
            raise Unsafe(f"a <{tag}> element" + (f" ({namespace})" if namespace not in (XHTML, "") else ""))
        for name, value in element.attrib.items():
            if name not in HTML_ATTRIBUTES and not name.startswith(("aria-", "data-")):
                raise Unsafe(f"the attribute {name}= on <{tag}>")
            where = f"{name}= of <{tag}>"
            if name in URL_ATTRIBUTES:
                check_url(value, where, page, IMAGES if name == "src" else ())
            elif name == "style":
                check_css(value, where, page)
        if tag == "style":
            check_css("".join(element.itertext()), "a <style> element", page)


# -- SVG ------------------------------------------------------------------------------------


def _refuse(what: str):
    def handler(*args: Any) -> None:
        raise Unsafe(what)

    return handler


def _parse_svg(data: bytes) -> ElementTree.Element:
    """The SVG's tree, from expat with no DTD subset, no entity and no processing instruction
    (an xml-stylesheet one would apply an XSLT from anywhere)."""
    builder = ElementTree.TreeBuilder()
    parser = expat.ParserCreate(namespace_separator="}")
    parser.SetParamEntityParsing(expat.XML_PARAM_ENTITY_PARSING_NEVER)

    def doctype(name: str, system: str | None, public: str | None, internal_subset: bool) -> None:
        if internal_subset:
            raise Unsafe("a DOCTYPE with declarations of its own")

    def start(tag: str, attributes: dict[str, str]) -> None:
        builder.start(_clark(tag), {_clark(k): v for k, v in attributes.items()})

    parser.StartDoctypeDeclHandler = doctype
    parser.EntityDeclHandler = _refuse("an entity declaration")
    parser.UnparsedEntityDeclHandler = _refuse("an entity declaration")
    parser.ExternalEntityRefHandler = _refuse("an external entity")
    parser.SkippedEntityHandler = _refuse("an entity")
    parser.ProcessingInstructionHandler = _refuse("a processing instruction")
    parser.StartElementHandler = start
    parser.EndElementHandler = lambda tag: builder.end(_clark(tag))
    parser.CharacterDataHandler = builder.data
    try:
        parser.Parse(data, True)
    except expat.ExpatError as e:
        raise Unsafe(f"not well-formed XML ({expat.ErrorString(e.code)}, line {e.lineno})") from e
    return builder.close()


def _clark(name: str) -> str:
    return "{" + name if "}" in name else name


def check_svg(data: bytes, depth: int = 0, page: str = "") -> None:
    """Refuse (Unsafe) an SVG that could run script or load from outside the run."""
    if depth > 2:
        raise Unsafe("SVG images nested more than twice")
    root = _parse_svg(data)
    for element in root.iter():
        namespace, _, tag = element.tag[1:].partition("}") if element.tag.startswith("{") else ("", "", element.tag)
        if not ((namespace == SVG and tag in SVG_ELEMENTS) or namespace in METADATA):
            raise Unsafe(f"a <{tag}> element" + (f" ({namespace})" if namespace != SVG else ""))
        for name, value in element.attrib.items():
            space, _, local = name[1:].partition("}") if name.startswith("{") else ("", "", name)
            where = f"{local}= of <{tag}>"
            if local.lower().startswith("on"):
                raise Unsafe(f"the attribute {local}= on <{tag}>")
            if space in METADATA and namespace in METADATA:
                continue  # rdf:resource names a vocabulary; nothing fetches it
            # xml:base would turn every relative href into one on another host; xml:space and
            # xml:lang are all an SVG needs of that namespace.
            if (
                space not in ("", XLINK, XML)
                or (space == XLINK and local != "href")
                or (space == XML and local not in ("space", "lang"))
            ):
                shown = {XML: "xml:", XLINK: "xlink:"}.get(space, f"{{{space}}}" if space else "") + local
                raise Unsafe(f"the attribute {shown}= on <{tag}>")
            if local == "href":
                check_url(value, where, page, IMAGES, depth)
            elif "(" in value or "\\" in value:  # a presentation attribute with url(): CSS
                check_css(value, where, page, depth)
        if tag == "style":
            check_css("".join(element.itertext()), "a <style> element", page, depth)
