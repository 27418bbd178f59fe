"""HTML bodies: plain text for rules and quote splitting, and a sanitised copy for display.

Both functions parse with selectolax's lexbor backend (about 6x faster than ``html.parser``)
and never raise on garbage input. Text extraction skips what a reader would not see (scripts,
styles, hidden elements), so hidden text cannot steer the rules, and renders ``<blockquote>``
as ``> `` lines so :func:`mailer.ingest.quotes.split_reply` finds the quoted history.
"""

from __future__ import annotations

import html as html_lib
import logging
import re

from selectolax.lexbor import LexborHTMLParser, LexborNode

log = logging.getLogger(__name__)


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


_SKIP = _words(
    "script style head title iframe object embed noscript template svg math applet frame"
    " frameset noembed noframes"
)
# Removed with their content from HTML shown to agents: active content, forms that could
# phish an agent's credentials, and tags that redirect or restyle the whole page.
_UNSAFE = _SKIP | _words("form input button textarea select meta link base xmp plaintext portal")
_BLOCK = _words(
    "p div tr table ul ol dl dt dd h1 h2 h3 h4 h5 h6 section article header footer address"
    " center hr figure main nav aside details summary caption fieldset body"
)
# A block boundary is a soft break (\x00, removed from the input): several in a row, or one
# right after a <br>, still make a single line break, as a browser renders them.
_SOFT = "\x00"
# Blockquote boundaries (also removed from the input); _tidy turns depth into "> " prefixes in
# one linear pass, capped so hostile nesting cannot blow the text up.
_OPEN, _CLOSE = "\x01", "\x02"
_MAX_QUOTE_DEPTH = 10
_WRAP = {
    "li": ("\x00- ", "\x00"),
    "td": ("", " "),
    "th": ("", " "),
    "p": ("\n", "\n"),
    "blockquote": ("\x00\x01", "\x02\x00"),
}
_BLOCK_WRAP = (_SOFT, _SOFT)
_HIDDEN_STYLE = re.compile(
    r"display\s*:\s*none|visibility\s*:\s*hidden|font-size\s*:\s*0(?![.\d]*[1-9])"
    r"|opacity\s*:\s*0(?:\.0*)?\s*(?:[;!]|$)",
    re.I,
)
_URL_ATTRS = _words(
    "href src action formaction xlink:href background poster srcset lowsrc dynsrc data cite"
    " ping longdesc codebase manifest"
)
_BAD_SCHEMES = ("javascript:", "vbscript:", "livescript:", "data:")
_BAD_STYLE = re.compile(r"expression\s*\(|javascript:|vbscript:|behavior\s*:|-moz-binding", re.I)
_URL_NOISE = re.compile(r"[\x00-\x20\x7f]+")
_SPACES = re.compile(r"[ \t\r\n\f\v\xa0\u200b]+")
_INLINE_SPACES = re.compile(r"[ \t\r\f\v\xa0\u200b]+")
_TAGS = re.compile(r"<[^<>]*>")
_MAX_BLANK = re.compile(r"\n{3,}")
_SOFT_RUN = re.compile(r"\n? ?\x00[\x00 ]*")  # runs of spaces are collapsed first
_MARKS = str.maketrans("", "", "\x01\x02")


def html_to_text(html: str) -> str:
    """Visible text of ``html`` with block structure as line breaks; never raises."""
    try:
        tree = LexborHTMLParser(_clean_input(html))
        return _tidy(_render(tree.root)) if tree.root is not None else ""
    except Exception:  # a C parser on hostile input: degrade to tag stripping, never fail
        log.debug("html_to_text fell back to tag stripping", exc_info=True)
        return _tidy(html_lib.unescape(_TAGS.sub(" ", html)))


def sanitize_html(html: str) -> str:
    """The body of ``html`` with active content, event handlers and bad URLs removed."""
    try:
        # scripting=True parses <noscript> the way the agent's browser will (no mXSS gap).
        tree = LexborHTMLParser(_clean_input(html), scripting=True)
        if tree.root is None or tree.body is None:
            return ""
        _sanitize(tree.root)
        return tree.body.inner_html or ""
    except Exception:  # never hand unsanitised markup on: show the source as text instead
        log.debug("sanitize_html failed; escaping the whole document", exc_info=True)
        return html_lib.escape(html)


def _clean_input(html: str) -> str:
    text = html.encode("utf-8", "replace").decode("utf-8")
    return text.replace(_SOFT, "").replace(_OPEN, "").replace(_CLOSE, "")


def _is_hidden(node: LexborNode) -> bool:
    attrs = node.attributes
    if "hidden" in attrs:
        return True
    style = attrs.get("style")
    return bool(style and _HIDDEN_STYLE.search(style))


def _children(node: LexborNode) -> list[LexborNode]:
    return list(node.iter(include_text=True))


def _render(root: LexborNode) -> str:
    """Walk the tree without recursion (hostile mail nests thousands of levels deep)."""
    out: list[str] = []
    stack: list[LexborNode | str] = [root]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            out.append(item)
        else:
            _visit(item, out, stack)
    return "".join(out)


def _visit(node: LexborNode, out: list[str], stack: list[LexborNode | str]) -> None:
    if node.is_text_node:
        out.append(_SPACES.sub(" ", node.text_content or ""))
        return
    tag = node.tag or ""
    if not node.is_element_node or tag in _SKIP or _is_hidden(node):
        return
    if tag == "br":
        out.append("\n")
        return
    if tag == "pre":
        out.append(_SOFT + node.text(deep=True) + _SOFT)
        return
    opening, closing = _WRAP.get(tag, _BLOCK_WRAP if tag in _BLOCK else ("", ""))
    out.append(opening)
    stack.append(closing)
    stack.extend(reversed(_children(node)))


def _tidy(text: str) -> str:
    """Resolve soft breaks, trim lines, prefix quoted lines with "> " per blockquote level."""
    text = _SOFT_RUN.sub("\n", _INLINE_SPACES.sub(" ", text))
    lines: list[str] = []
    depth = 0
    for raw in text.split("\n"):
        lead = raw[: len(raw) - len(raw.lstrip(" \x01\x02"))]
        start = depth + lead.count(_OPEN) - lead.count(_CLOSE)
        depth += raw.count(_OPEN) - raw.count(_CLOSE)
        line = raw.translate(_MARKS).strip()
        if line or raw == raw.translate(_MARKS):  # a line holding only markers is no line
            lines.append((_prefix(start) + line).rstrip())
    return _MAX_BLANK.sub("\n\n", "\n".join(lines)).strip()


def _prefix(depth: int) -> str:
    return "> " * min(max(depth, 0), _MAX_QUOTE_DEPTH)


def _sanitize(root: LexborNode) -> None:
    stack = [root]
    while stack:
        node = stack.pop()
        for child in _children(node):
            if child.is_text_node:
                continue
            if not child.is_element_node or (child.tag or "") in _UNSAFE or _is_hidden(child):
                child.decompose()  # comments too: conditional comments can carry markup
                continue
            _clean_attributes(child)
            stack.append(child)


def _clean_attributes(node: LexborNode) -> None:
    for name, value in list(node.attributes.items()):
        key = name.lower()
        if key.startswith("on") or key == "srcdoc" or _bad_value(key, value or ""):
            del node.attrs[name]


def _bad_value(key: str, value: str) -> bool:
    if key == "style":
        return bool(_BAD_STYLE.search(value))
    if key not in _URL_ATTRS:
        return False
    urls = value.split(",") if key == "srcset" else [value]
    return any(_URL_NOISE.sub("", url).lower().startswith(_BAD_SCHEMES) for url in urls)
