"""Charset-robust decoding of headers and MIME parts.

Real-world mail lies about its charsets, truncates its base64 and puts raw 8-bit bytes in
headers. Everything here decodes as much as it can, never raises, and reports what it had to
repair as short defect strings (``"charset-fallback:gb2312->utf-8"``, ``"base64-truncated"``)
so the caller can record them. All text comes back NFC-normalised.
"""

from __future__ import annotations

import binascii
import codecs
import email.header
import logging
import re
import unicodedata
from email.message import Message

log = logging.getLogger(__name__)

Defects = tuple[str, ...]

_ASCII = "us-ascii ascii us ansi_x3.4-1968 iso646-us"
# Labels that lie in practice, mapped to the superset that decodes what senders really wrote.
_SUPERSETS = {
    "gb18030": "gb2312 gbk x-gbk cp936 euc-cn x-euc-cn gb_2312-80 csgb2312 ms936 windows-936",
    "big5hkscs": "big5 x-big5 csbig5 cn-big5 big5-hkscs",
    "cp932": "shift_jis shift-jis sjis x-sjis ms_kanji csshiftjis windows-31j",
    "cp949": "euc-kr euckr cseuckr ks_c_5601-1987 ks_c_5601 ksc5601 ksc_5601 ks_c_5601-1989"
    " cp949 uhc windows-949 x-windows-949",
    "cp1252": "iso-8859-1 iso8859-1 iso_8859-1 latin1 latin-1 l1 windows-1252 " + _ASCII,
}
_ALIASES = {alias: name for name, aliases in _SUPERSETS.items() for alias in aliases.split()}
_FALLBACKS = ("utf-8", "gb18030")
_GB_TRAIL = re.compile(rb"[\x81-\xfe]([\x40-\xfe])")
_JIS_ESC = re.compile(rb"\x1b(\$[@B]|\$\(Q|\([BJHI]|&@)")
_JIS_ASCII = frozenset((b"(B", b"(J", b"(H", b"&@"))
_EW = re.compile(r"=\?([^?\s]+)\?([QqBb])\?([^?]*)(\?=|$)")
_FOLD = re.compile(r"\r?\n(?=[ \t])")
_QP_HEX = re.compile(rb"=([0-9A-Fa-f]{2})")
_B64_SPLIT = re.compile(rb"=+")
_B64_JUNK = re.compile(rb"[^A-Za-z0-9+/=]")
_HTML_META = re.compile(rb"""<meta[^>]{0,200}?charset\s*=\s*["']?([\w.:-]+)""", re.I)
_EOL = re.compile(r"\r\n?")
# Lone surrogates: utf-7 and the *unicode_escape codecs decode to them, and no database or
# file can store them. In a header, \udc80-\udcff are the raw 8-bit bytes (surrogateescape).
_SURROGATE = re.compile("[\ud800-\udfff]")
_NOT_ESCAPE = re.compile("[\ud800-\udc7f\udd00-\udfff]")


def normalize_charset(label: str | None) -> str | None:
    """Return the Python codec name to decode ``label`` with, or None if it is unknown."""
    if not label:
        return None
    key = label.strip().strip("\"'").lower()
    key = _ALIASES.get(key, key)
    try:
        name = codecs.lookup(key).name
    except (LookupError, ValueError):  # ValueError: a NUL in the label
        return None
    try:
        b"a".decode(name)  # LookupError for bytes-to-bytes codecs such as zlib or base64
    except LookupError:
        return None
    except ValueError:
        pass  # a text codec that only dislikes this probe
    return _ALIASES.get(name, name)


def decode_bytes(data: bytes, label: str | None) -> tuple[str, Defects]:
    """Decode ``data`` labelled ``label``; fall back to utf-8, gb18030, cp1252. Never raises."""
    codec = normalize_charset(label)
    defects: list[str] = []
    text = _decode_labelled(data, codec, label, defects)
    if text is not None and not text.isascii() and _SURROGATE.search(text):
        text = _SURROGATE.sub("\ufffd", text)
        defects.append("charset-surrogates")
    if text is None:
        text, used = _decode_fallback(data, skip=codec)
        if label or used not in ("utf-8", "ascii"):
            tag = (label or "none").lower()[:40].encode("ascii", "replace").decode("ascii")
            defects.append(f"charset-fallback:{tag}->{used}")
            log.debug("charset fallback %s -> %s", label, used)
    return unicodedata.normalize("NFC", text.removeprefix("\ufeff")), tuple(defects)


def _decode_labelled(
    data: bytes, codec: str | None, label: str | None, defects: list[str]
) -> str | None:
    name = (label or "").strip().strip("\"'").lower()[:40]
    if codec is None or (not data.isascii() and name in _ASCII.split()):
        return None  # 8-bit data under an ASCII label: the label says nothing, guess
    if codec == "cp1252" and not data.isascii():
        # ascii/latin-1 labels on valid UTF-8 are mislabelled UTF-8: latin-1 text is
        # practically never valid UTF-8 by accident.
        utf8 = _strict(data, "utf-8", defects)
        if utf8 is not None:
            defects.append(f"charset-mismatch:{name}->utf-8")
            return utf8
    text = _strict(data, codec, defects)
    if text is None and codec.startswith("iso2022_jp"):
        text = _decode_jis(data, defects)
    return text


def _strict(data: bytes, codec: str, defects: list[str]) -> str | None:
    """Strict decode; a multibyte character cut off at the very end is dropped, not fatal."""
    try:
        return data.decode(codec)
    except UnicodeDecodeError as exc:
        truncated = "end" in exc.reason or "incomplete" in exc.reason
        if exc.start < len(data) - 3 or not truncated:
            return None
        try:
            text = data[: exc.start].decode(codec)
        except (ValueError, TypeError):
            return None
        defects.append("charset-truncated-tail")
        return text
    except (LookupError, ValueError, TypeError):  # odd codecs (idna, punycode) fail oddly
        return None


def _decode_fallback(data: bytes, skip: str | None) -> tuple[str, str]:
    if data.isascii():
        return data.decode("ascii"), "ascii"
    for codec in _FALLBACKS:
        if codec != skip and (codec != "gb18030" or _plausible_gb(data)):
            text = _strict(data, codec, [])
            if text is not None:
                return text, codec
    return data.decode("cp1252", "replace"), "cp1252"


def _plausible_gb(data: bytes) -> bool:
    """Chinese text is mostly GB2312 pairs (trail byte >= 0xA1); Latin-1 text that happens to
    be valid GBK pairs an accented letter with the ASCII letter after it."""
    trails: list[bytes] = _GB_TRAIL.findall(data)
    return sum(trail >= b"\xa1" for trail in trails) * 2 >= len(trails)


def _decode_jis(data: bytes, defects: list[str]) -> str | None:
    """ISO-2022-JP with NEC/IBM extensions (①, ㈱): re-encode as Shift_JIS, decode as cp932."""
    sjis = _jis_to_sjis(data)
    if sjis is not None:
        text = _strict(sjis, "cp932", defects)
        if text is not None:
            return text
    for codec in ("iso2022_jp_2", "iso2022_jp_ext"):
        text = _strict(data, codec, defects)
        if text is not None:
            return text
    return None


def _jis_to_sjis(data: bytes) -> bytes | None:
    out = bytearray()
    mode, pos = b"(B", 0
    for match in _JIS_ESC.finditer(data):
        if not _jis_segment(data[pos : match.start()], mode, out):
            return None
        mode, pos = match.group(1), match.end()
    return bytes(out) if _jis_segment(data[pos:], mode, out) else None


def _jis_segment(seg: bytes, mode: bytes, out: bytearray) -> bool:
    if b"\x1b" in seg:
        return False  # an escape sequence we cannot map to Shift_JIS (e.g. JIS X 0212)
    if mode in _JIS_ASCII:
        out += seg
    elif mode == b"(I":
        out += bytes(b + 0x80 if 0x21 <= b <= 0x5F else b for b in seg)
    else:
        return _jis_kanji(seg, out)
    return True


def _jis_kanji(seg: bytes, out: bytearray) -> bool:
    i = 0
    while i < len(seg):
        j1 = seg[i]
        if j1 in (0x0A, 0x0D):  # tolerate encoders that forget ESC ( B before a line break
            out.append(j1)
            i += 1
            continue
        if i + 1 >= len(seg) or not (0x21 <= j1 <= 0x7E and 0x21 <= seg[i + 1] <= 0x7E):
            return False
        j2 = seg[i + 1]
        out.append((j1 + 1) // 2 + (0x70 if j1 <= 0x5E else 0xB0))
        out.append(j2 + (0x1F + (j2 >= 0x60) if j1 % 2 else 0x7E))
        i += 2
    return True


def decode_header(value: object, charset_hint: str | None = None) -> tuple[str, Defects]:
    """Decode a header (``str``, compat32 ``Header`` or None) to text; CR/LF decoded out of
    encoded words are kept so the caller can spot header injection."""
    raw = _FOLD.sub("", _header_source(value)).strip(" \t\r\n")
    if not raw.isascii():
        raw = _NOT_ESCAPE.sub("\ufffd", raw)
    parts: list[str] = []
    defects: list[str] = []
    run: list[tuple[str, bytes]] = []
    pos = 0
    for match in _EW.finditer(raw):
        gap = raw[pos : match.start()]
        if gap and not (run and gap.isspace()):  # whitespace between encoded words is dropped
            parts.append(_decode_run(run, defects) + _decode_raw(gap, charset_hint, defects))
            run = []
        run.append(_decode_word(match, defects))
        pos = match.end()
    parts.append(_decode_run(run, defects) + _decode_raw(raw[pos:], charset_hint, defects))
    return unicodedata.normalize("NFC", "".join(parts)).strip(" \t"), tuple(defects)


def _header_source(value: object) -> str:
    """The header as a str; raw 8-bit bytes are kept as surrogate escapes."""
    if value is None:
        return ""
    if not isinstance(value, email.header.Header):
        return str(value)
    chunks = []
    for data, charset in email.header.decode_header(value):
        if isinstance(data, str):
            chunks.append(data)
        elif charset in (None, "unknown-8bit", "us-ascii"):
            chunks.append(data.decode("ascii", "surrogateescape"))
        else:
            chunks.append(decode_bytes(data, charset)[0])
    return "".join(chunks)


def _decode_word(match: re.Match[str], defects: list[str]) -> tuple[str, bytes]:
    charset, kind, text, end = match.groups()
    if not end:
        defects.append("encoded-word-unterminated")
    data = text.encode("utf-8", "surrogateescape")
    if kind in "Bb":
        data, more = _b64decode(data)
        defects.extend(more)
    else:
        data = _QP_HEX.sub(lambda m: bytes.fromhex(m.group(1).decode()), data.replace(b"_", b" "))
    return charset.split("*", 1)[0], data  # RFC 2231 language suffix: utf-8*en


def _decode_run(run: list[tuple[str, bytes]], defects: list[str]) -> str:
    """Decode adjacent encoded words; same-charset neighbours are joined first because
    encoders split multibyte characters (and ISO-2022 state) across words."""
    out: list[str] = []
    i = 0
    while i < len(run):
        charset, data = run[i]
        i += 1
        while i < len(run) and run[i][0].lower() == charset.lower():
            data += run[i][1]
            i += 1
        text, more = decode_bytes(data, charset)
        out.append(text)
        defects.extend(more)
    return "".join(out)


def _decode_raw(text: str, hint: str | None, defects: list[str]) -> str:
    """Header text outside encoded words; may hold raw 8-bit bytes (UTF-8 is tried first)."""
    if text.isascii():
        return text
    data = text.encode("utf-8", "surrogateescape")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        decoded, more = decode_bytes(data, hint)
        defects.extend(more)
        return decoded


def _b64decode(data: bytes) -> tuple[bytes, Defects]:
    """Decode base64 as far as it goes: junk skipped, missing padding and cut-off tails
    tolerated, each padded chunk of concatenated base64 decoded on its own."""
    defects: set[str] = set()
    clean = b"".join(data.split())
    if _B64_JUNK.search(clean):
        defects.add("base64-garbage")
        clean = _B64_JUNK.sub(b"", clean)
    out = bytearray()
    chunks = _B64_SPLIT.split(clean)
    for index, chunk in enumerate(chunks):
        usable = len(chunk) - len(chunk) % 4
        out += binascii.a2b_base64(chunk[:usable])
        rest = chunk[usable:]
        if len(rest) > 1:
            out += binascii.a2b_base64(rest + b"=" * (4 - len(rest)))
        if len(rest) == 1 or (rest and index == len(chunks) - 1):
            defects.add("base64-truncated")
    return bytes(out), tuple(sorted(defects))


def part_payload(part: Message) -> tuple[bytes, Defects]:
    """Transfer-decoded bytes of a non-multipart part."""
    raw = _raw_payload(part)
    if raw is None:
        return b"", ("multipart-has-no-payload",)
    cte = str(part.get("content-transfer-encoding", "")).strip().strip("\"'").lower()
    if cte == "base64":
        return _b64decode(raw)
    if cte == "quoted-printable":
        return binascii.a2b_qp(raw), ()
    if cte in ("x-uuencode", "uuencode", "x-uue", "uue"):
        data = part.get_payload(decode=True)  # compat32 decodes uuencode leniently itself
        return (data if isinstance(data, bytes) else raw), ()
    if cte in ("", "7bit", "8bit", "binary"):
        return raw, ()
    return raw, (f"unknown-transfer-encoding:{cte[:40]}",)


def _raw_payload(part: Message) -> bytes | None:
    # compat32 keeps a body as str with surrogate escapes; get_payload(decode=False)
    # re-decodes 8-bit bodies with the declared charset and 'replace', losing the bytes.
    payload = getattr(part, "_payload", None)
    if part.is_multipart() or not isinstance(payload, str | bytes):
        return None
    return payload if isinstance(payload, bytes) else payload.encode("utf-8", "surrogateescape")


def part_text(part: Message) -> tuple[str, Defects]:
    """Decoded text of a text/* part, line endings normalised to ``\\n``."""
    data, defects = part_payload(part)
    label = part.get_content_charset()
    if label is None and part.get_content_subtype() == "html":
        meta = _HTML_META.search(data, 0, 4096)
        label = meta.group(1).decode("ascii") if meta else None
    text, more = decode_bytes(data, label)
    return _EOL.sub("\n", text), defects + more
