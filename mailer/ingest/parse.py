"""Parse stage: raw bytes -> :class:`ParsedMail`.

The stdlib compat32 parser builds the tree (fast, and it never raises on bad charsets);
mail-parser interprets the Date header (it knows obsolete zones and reports defects).
Everything a customer wrote is decoded by :mod:`mailer.ingest.decode`, because labels lie
(GB2312 that is GBK, ks_c_5601 that is CP949, ISO-2022-JP with NEC symbols). Attachments
are returned with their bytes; :mod:`mailer.ingest.store` writes them content-addressed.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from email.feedparser import FeedParser
from email.message import Message
from email.utils import getaddresses

from mailparser.dates import parse_mail_date

from mailer.errors import ParseError
from mailer.ingest import decode, htmltext, quotes
from mailer.ingest.filenames import safe_filename
from mailer.ingest.identity import SYNTHETIC_DOMAIN, identify, message_id_list
from mailer.ingest.mail import Address, ParsedAttachment, ParsedMail

MAX_DEPTH = 40
MAX_PARTS = 2000
MAX_HEADERS = 500
MAX_HEADER_CHARS = 65_536
MAX_HTML_CHARS = 2_000_000  # lexbor slows down sharply on huge, deeply nested documents
# The stdlib feed parser's work per line grows with the nesting depth (one generator and one
# boundary test per open part): 260 KB nested 900 deep took 7 s. Past this depth the rest of
# the mail is not parsed; a 4 KB chunk can open at most ~140 more levels before we look.
MAX_PARSE_DEPTH = 2 * MAX_DEPTH
_FEED_CHUNK = 4096
# Control characters safe_filename leaves in (C1, line/paragraph separators, lone surrogates).
_NAME_CONTROLS = re.compile("[\x80-\x9f\u061c\u2028\u2029\ud800-\udfff]")


@dataclass(slots=True)
class _Body:
    """Accumulates the leaves of the MIME tree during one walk."""

    plain: list[str] = field(default_factory=list)
    html: list[str] = field(default_factory=list)
    attachments: list[ParsedAttachment] = field(default_factory=list)
    defects: list[str] = field(default_factory=list)
    parts: int = 0


def parse_mail(raw: bytes, message_id: str | None = None) -> ParsedMail:
    """Parse one raw mail; raises :class:`ParseError` only when nothing usable is there.

    ``message_id``: the (possibly synthetic) Message-ID computed at poll time, if known.
    """
    if not raw.strip():
        raise ParseError("empty", "the mail has no bytes")
    try:
        msg, too_deep = _parse_tree(raw)
    except RecursionError as exc:
        raise ParseError("too-deep", "MIME nesting too deep") from exc
    if message_id is None:
        message_id = identify(raw).message_id
    headers, defects = _headers(msg)
    if too_deep:
        defects.append("too-deep")
    body = _Body()
    _walk(msg, 0, body)
    text = "\n\n".join(t for t in body.plain if t.strip())
    html = "\n".join(body.html)[:MAX_HTML_CHARS] or None
    if not text.strip() and html:
        text = htmltext.html_to_text(html)
    new_text, quoted = quotes.split_reply(text)
    return ParsedMail(
        message_id=message_id,
        synthetic_id=message_id.endswith(f"@{SYNTHETIC_DOMAIN}>"),
        subject=_first(headers, "subject"),
        from_=next(iter(_addresses(msg, "from")), None),
        to=_addresses(msg, "to"),
        cc=_addresses(msg, "cc"),
        reply_to=_addresses(msg, "reply-to"),
        date=parse_mail_date(_raw(msg, "date")).value,
        in_reply_to=message_id_list(_raw(msg, "in-reply-to")),
        references=message_id_list(_raw(msg, "references")),
        text=text,
        new_text=new_text,
        quoted_text=quoted,
        html=htmltext.sanitize_html(html) if html else None,
        attachments=tuple(body.attachments),
        headers=headers,
        content_type=msg.get_content_type(),
        defects=tuple(dict.fromkeys([*defects, *body.defects, *_mime_defects(msg)])),
    )


def _parse_tree(raw: bytes) -> tuple[Message, bool]:
    """The compat32 tree ``email.message_from_bytes`` builds, fed in chunks so that parsing
    stops (the tree cut there, ``True`` returned) once the nesting passes MAX_PARSE_DEPTH."""
    parser = FeedParser()
    text = raw.decode("ascii", "surrogateescape")
    for start in range(0, len(text), _FEED_CHUNK):
        parser.feed(text[start : start + _FEED_CHUNK])
        if len(getattr(parser, "_msgstack", ())) > MAX_PARSE_DEPTH:
            return parser.close(), True
    return parser.close(), False


def _headers(msg: Message) -> tuple[tuple[tuple[str, str], ...], list[str]]:
    """Every header, decoded, names lower-cased; long or numerous headers are cut."""
    out: list[tuple[str, str]] = []
    defects: list[str] = []
    items = list(msg.raw_items())
    for name, value in items[:MAX_HEADERS]:
        text, found = decode.decode_header(str(value)[:MAX_HEADER_CHARS])
        out.append((name.strip().lower(), text.strip()))
        defects.extend(found)
    if len(items) > MAX_HEADERS:
        defects.append("too-many-headers")
    return tuple(out), defects


def _first(headers: tuple[tuple[str, str], ...], name: str) -> str:
    return next((v for k, v in headers if k == name), "")


def _raw(msg: Message, name: str) -> str | None:
    """The first value of header ``name``; raw 8-bit bytes read as UTF-8 (RFC 6532)."""
    wanted = name.lower()
    value = next((str(v) for k, v in msg.raw_items() if k.lower() == wanted), None)
    if value is None or value.isascii():
        return value
    return value.encode("utf-8", "surrogateescape").decode("utf-8", "replace")


def _addresses(msg: Message, name: str) -> tuple[Address, ...]:
    wanted = name.lower()
    values = [str(v)[:MAX_HEADER_CHARS] for k, v in msg.raw_items() if k.lower() == wanted]
    out: list[Address] = []
    for display, addr in getaddresses(values):
        addr_text, _ = decode.decode_header(addr)
        addr_text = addr_text.strip().strip("<>").lower()
        if "@" not in addr_text:
            continue
        out.append(Address(decode.decode_header(display)[0].strip(), addr_text))
    return tuple(out)


def _walk(part: Message, depth: int, body: _Body) -> None:
    body.parts += 1
    if body.parts > MAX_PARTS or depth > MAX_DEPTH:
        body.defects.append("too-many-parts" if body.parts > MAX_PARTS else "too-deep")
        return
    ctype = part.get_content_type()
    if ctype == "message/rfc822":
        body.attachments.append(_attached_message(part, len(body.attachments), body))
    elif part.is_multipart():
        payload = part.get_payload()
        for sub in payload if isinstance(payload, list) else []:
            if body.parts > MAX_PARTS:
                break
            if isinstance(sub, Message):
                _walk(sub, depth + 1, body)
    else:
        _leaf(part, ctype, body)


def _leaf(part: Message, ctype: str, body: _Body) -> None:
    disposition = part.get_content_disposition()
    raw_name = part.get_param("filename", header="content-disposition") or part.get_param("name")
    is_body = disposition != "attachment" and not raw_name
    if is_body and ctype in ("text/plain", "text/html"):
        text, defects = decode.part_text(part)
        body.defects.extend(defects)
        (body.plain if ctype == "text/plain" else body.html).append(text)
        return
    data, defects = decode.part_payload(part)
    body.defects.extend(defects)
    name = _filename(part)
    body.attachments.append(ParsedAttachment(
        filename=safe_filename(name, ctype, len(body.attachments) + 1),
        content_type=ctype,
        data=data,
        sha256=hashlib.sha256(data).hexdigest(),
        content_id=_content_id(part),
        inline=disposition == "inline" or (disposition is None and _content_id(part) is not None),
    ))


def _filename(part: Message) -> str:
    try:
        name = part.get_filename()
    except (LookupError, ValueError):
        name = None
    return _NAME_CONTROLS.sub("_", decode.decode_header(name)[0]) if name else ""


def _content_id(part: Message) -> str | None:
    value = part.get("content-id")
    return str(value).strip()[:900] if value else None


def _attached_message(part: Message, index: int, body: _Body) -> ParsedAttachment:
    payload = part.get_payload()
    inner = payload[0] if isinstance(payload, list) and payload else None
    if not isinstance(inner, Message):
        inner = None
    data = _message_bytes(inner) if inner is not None else b""
    if data is None:
        body.defects.append("attached-message-unserialisable")
        data = b""
    subject = decode.decode_header(inner.get("subject", "")) if inner else ("", ())
    return ParsedAttachment(
        filename=safe_filename(_filename(part) or f"{subject[0] or 'message'}.eml",
                               "message/rfc822", index + 1),
        content_type="message/rfc822",
        data=data,
        sha256=hashlib.sha256(data).hexdigest(),
    )


def _message_bytes(msg: Message) -> bytes | None:
    """The attached message re-serialised; None when even the str generator fails (a codec
    that raises on 'replace', a tree too deep for the recursive generator)."""
    errors = (UnicodeError, LookupError, ValueError, TypeError, RecursionError)
    try:
        return msg.as_bytes()
    except errors:
        pass
    try:
        return msg.as_string().encode("utf-8", "surrogateescape")
    except errors:
        return None


def _mime_defects(msg: Message) -> list[str]:
    return [type(d).__name__ for part in msg.walk() for d in getattr(part, "defects", [])][:50]
