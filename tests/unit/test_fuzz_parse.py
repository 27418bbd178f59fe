"""Hostile and broken input: the parser never crashes and stays bounded.

The contract: ``parse_mail(raw)`` returns a ParsedMail or raises ParseError (the pipeline
quarantines it); anything else is a bug. Whatever it returns goes through ``redact_mail``
and ``classify`` without raising, holds only text a database can store (no lone
surrogates), and attachment names that are safe to show (no path separators, no control
characters, at most 200 bytes of UTF-8).
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import email.header
import io
import quopri
import struct
import time
import tracemalloc
import unicodedata
import zipfile
import zlib
from collections.abc import Callable, Iterator
from email.message import EmailMessage, Message

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from mailer.errors import ParseError
from mailer.ingest.mail import ParsedMail
from mailer.ingest.parse import parse_mail
from mailer.rules.classify import classify
from mailer.rules.loader import load_rules
from mailer.rules.stage import redact_mail

RULES = load_rules()
FUZZ = settings(deadline=None, suppress_health_check=list(HealthCheck))
TIME_BOUND = 10.0  # seconds; generous, these take well under a second each on 2 cores
MEMORY_BOUND = 300 * 2**20  # bytes, tracemalloc peak
# Bidi controls safe_filename must have removed, on top of the Cc/Cs/Zl/Zp categories.
_BIDI = frozenset("\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


def _parse(raw: bytes) -> ParsedMail | None:
    """parse_mail, with ParseError (the only allowed failure) turned into None."""
    try:
        return parse_mail(raw)
    except ParseError:
        return None


def _strings(value: object, path: str = "mail") -> Iterator[tuple[str, str]]:
    if isinstance(value, str):
        yield path, value
    elif isinstance(value, tuple | list):
        for i, item in enumerate(value):
            yield from _strings(item, f"{path}[{i}]")
    elif dataclasses.is_dataclass(value) and not isinstance(value, type):
        for f in dataclasses.fields(value):
            yield from _strings(getattr(value, f.name), f"{path}.{f.name}")


def _check(mail: ParsedMail | None, *, rules: bool = True) -> None:
    """Everything downstream of the parser accepts what it produced."""
    if mail is None:
        return
    for path, text in _strings(mail):
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            pytest.fail(f"{path} cannot be stored as UTF-8: {text!r}")
    for att in mail.attachments:
        _check_filename(att.filename)
    if not rules:
        return
    redacted, kinds = redact_mail(mail)
    classify(redacted, RULES, is_reply=False, is_machine=False, secrets=kinds)


def _check_filename(name: str) -> None:
    assert name, "an attachment always gets a name"
    assert "/" not in name and "\\" not in name, name
    bad = [c for c in name if unicodedata.category(c) in ("Cc", "Cs", "Zl", "Zp") or c in _BIDI]
    assert not bad, f"control characters {bad!r} in {name!r}"
    assert len(name.encode("utf-8")) <= 200, name


# -- 1. random bytes ---------------------------------------------------------------------------

_HEADERISH = st.sampled_from([
    b"From: a@b.example", b"To: \"\xff\xfe\" <x@y.example>", b"Subject: =?utf-8?b?5L2g5aW9?=",
    b"Subject: =?utf-8?q?a=0D=0Ab?=", b"Subject: =?x-unknown?q?=FF?= =?utf-7?b?K2RnQS0=?=",
    b"Message-ID: <\xe4\xbd\xa0@x>", b"References: <a@b> <\xff@c>", b"In-Reply-To: <\x00@x>",
    b"Date: Mon, 99 Foo 2026 99:99:99 +9999", b"MIME-Version: 1.0",
    b"Content-Type: multipart/mixed; boundary=X", b"Content-Type: multipart/alternative",
    b"Content-Type: message/rfc822", b"Content-Type: text/html; charset=utf-7",
    b"Content-Type: text/plain; charset=\"utf\x008\"", b"Content-Type: text/plain; charset=idna",
    b"Content-Transfer-Encoding: base64", b"Content-Transfer-Encoding: quoted-printable",
    b"Content-Transfer-Encoding: x-uuencode", b"begin 644 x", b"end",
    b"Content-Disposition: attachment; filename*=utf-8''..%2F%E2%80%AE%C2%80.exe",
    b"--X", b"--X--", b"", b" folded", b"\t", b"=?utf-8?b?", b"<p>hi<br>", b"\x1b$B$3$s\x1b(B",
])
_MAILISH = st.tuples(
    st.lists(st.one_of(_HEADERISH, st.binary(max_size=80)), max_size=40),
    st.sampled_from([b"\r\n", b"\n", b"\r", b"\n\r"]),
).map(lambda lines_eol: lines_eol[1].join(lines_eol[0]))


@settings(FUZZ, max_examples=500)
@given(st.one_of(st.binary(max_size=3000), _MAILISH))
@example(b"")
@example(b"\x00" * 64)
@example(b"\r\r\r\r")
@example(b"From: a@b.example\nContent-Type: text/plain; charset=\"utf\x008\"\n\nhi")  # NUL label
@example(b"From: a@b.example\nReferences: <\xff@x>\n\nhi")  # raw 8-bit Message-ID
def test_random_bytes_parse_or_parse_error(raw: bytes) -> None:
    _check(_parse(raw))


# -- 2. random MIME trees built with the stdlib -------------------------------------------------

CHARSETS = [
    "utf-8", "us-ascii", "iso-8859-1", "windows-1252", "gb2312", "gbk", "big5", "shift_jis",
    "euc-jp", "iso-2022-jp", "ks_c_5601-1987", "koi8-r", "utf-16", "utf-7", "x-unknown", "",
    "utf-8'", '"utf-8"', "unicode-escape", "raw-unicode-escape", "idna", "punycode", "base64",
    "zlib", "rot13", "hz", "utf-32", "cp65001",
]
LEAF_TYPES = ["text/plain", "text/html", "application/octet-stream", "image/png",
              "message/rfc822"]
MULTIPART = ["mixed", "alternative", "related", "report", "digest", "signed"]
ENCODINGS = ["7bit", "8bit", "binary", "base64", "BASE64", "quoted-printable", "x-uuencode",
             "x-made-up", ""]
FILENAMES = st.one_of(
    st.text(max_size=300),
    st.sampled_from([
        "../../etc/passwd", "..\\..\\windows\\system32\\cmd.exe", "invoice\u202efdp.exe",
        "CON", "nul.txt", ".htaccess", "a/b\\c", "   ", ".", "..", "x" * 1000,
        "报告" * 150 + ".pdf", "口座\u0085明細\u009f.xlsx", "\u2028line\u2029.txt", "\x00\x1b.txt",
        "\ud800broken.txt", "\u2066isolate\u2069.pdf", "a\u061cb.doc",
    ]),
)
_HTML = st.sampled_from([
    "<html><body><p>hello</p><script>alert(1)</script></body></html>",
    "<div>" * 500 + "deep", "<blockquote>" * 200 + "quoted", "<a href='javascript:x'>x</a>",
    "<meta charset=x-unknown><p>\u4f60\u597d</p>", "<<<>>>&#0;&#xD800;", "</p></div>x<",
])


def _encode(data: bytes, cte: str, broken: bool) -> bytes:
    if cte.lower() == "base64":
        out = base64.encodebytes(data)
        return out[: len(out) * 2 // 3] + b"!*&\n" + out[-3:] if broken else out
    if cte == "quoted-printable":
        return quopri.encodestring(data) + (b"=\n=Z=4" if broken else b"")
    if cte == "x-uuencode":
        lines = binascii.b2a_uu(data[:45]) if data else b""
        return b"begin 644 x\n" + (lines[:5] if broken else lines) + b"`\nend\n"
    return data


@st.composite
def _leaf(draw: st.DrawFn, depth: int) -> Message:
    part = Message()
    ctype = draw(st.sampled_from(LEAF_TYPES if depth > 0 else LEAF_TYPES[:-1]))
    charset = draw(st.sampled_from(CHARSETS))
    quoted = draw(st.booleans())
    param = f'"{charset}"' if quoted else charset
    part["Content-Type"] = f"{ctype}; charset={param}"
    if ctype == "message/rfc822":
        part.set_payload([draw(_tree(depth - 1))])
        return part
    cte = draw(st.sampled_from(ENCODINGS))
    if cte:
        part["Content-Transfer-Encoding"] = cte
    if draw(st.booleans()):
        style = draw(st.sampled_from(["param", "2231", "2047", "name"]))
        disposition = draw(st.sampled_from(["attachment", "inline", "bogus"]))
        _add_filename(part, draw(FILENAMES), style, disposition)
    if draw(st.booleans()):
        part["Content-ID"] = f"<{draw(st.text(max_size=20))}>"
    body = draw(st.one_of(st.binary(max_size=400), st.text(max_size=400).map(
        lambda t: t.encode("utf-8", "surrogatepass")), _HTML.map(str.encode)))
    raw = _encode(body, cte, draw(st.booleans()))
    part.set_payload(raw.decode("ascii", "surrogateescape"))
    return part


def _add_filename(part: Message, name: str, style: str, disposition: str) -> None:
    safe = name.encode("utf-8", "surrogatepass").decode("utf-8", "replace")
    if style == "param":
        part.add_header("Content-Disposition", disposition, filename=safe)
    elif style == "2231":
        part.add_header("Content-Disposition", disposition, filename=("utf-8", "", safe))
    elif style == "2047":
        encoded = email.header.Header(safe, "utf-8").encode().replace("\n", "")
        part["Content-Disposition"] = f'{disposition}; filename="{encoded}"'
    else:
        part["Content-Type"] = f'{part["Content-Type"]}; name="{safe.replace(chr(34), "")}"'


@st.composite
def _multipart(draw: st.DrawFn, depth: int) -> Message:
    part = Message()
    part["Content-Type"] = f"multipart/{draw(st.sampled_from(MULTIPART))}"
    # Always explicit: the stdlib would draw a random one (and Hypothesis forbids `random`).
    part.set_boundary(draw(st.sampled_from([f"=={depth}==", "x", "--", "a b", "=_"])))
    part.set_payload([draw(_tree(depth - 1)) for _ in range(draw(st.integers(0, 4)))])
    return part


def _tree(depth: int) -> st.SearchStrategy[Message]:
    if depth <= 0:
        return _leaf(0)
    return st.one_of(_leaf(depth), _multipart(depth))


@st.composite
def _mime_mail(draw: st.DrawFn) -> bytes:
    root = draw(_tree(3))
    root["From"] = draw(st.sampled_from(
        ["a@b.example", "=?utf-8?b?5L2g5aW9?= <x@y.example>", "<<>>@@", "", "undisclosed:;"]))
    subject = draw(st.text(max_size=120))
    root["Subject"] = email.header.Header(  # type: ignore[assignment]  # compat32 takes one
        subject.encode("utf-8", "surrogatepass").decode("utf-8", "replace"), "utf-8")
    raw = root.as_bytes()
    if draw(st.booleans()):
        raw = raw[: draw(st.integers(0, len(raw)))]
    return raw


@settings(FUZZ, max_examples=400)
@given(_mime_mail())
@example(  # C1 control (U+0080) out of an encoded-word file name
    b'Content-Type: text/plain; charset=utf-8\nContent-Disposition: attachment; '
    b'filename="=?utf-8?b?woA=?="\nFrom: a@b.example\n\nx'
)
@example(  # utf-7 decodes to a lone surrogate, in a header and in a body
    b"From: a@b.example\nSubject: =?utf-7?q?+2AA-?=\n"
    b"Content-Type: text/plain; charset=utf-7\n\n+2AA- hi"
)
@example(  # RFC 2231 name in a codec that yields a surrogate: crashed header decoding
    b"From: a@b.example\nContent-Type: application/x; name*=unicode-escape''%5Cud800.txt\n\nx"
)
def test_random_mime_trees(raw: bytes) -> None:
    _check(_parse(raw))


# -- 3. pathological sizes ---------------------------------------------------------------------


def _bounded(build: Callable[[], bytes], *, rules: bool = True) -> tuple[ParsedMail | None, float]:
    """Parse under tracemalloc: no RecursionError/MemoryError, time and peak memory bounded.

    ``rules``: also redact and classify the result (not timed: the parser is what is bounded
    here; test_fuzz_rules bounds the rules on long input).
    """
    raw = build()
    tracemalloc.start()
    try:
        started = time.perf_counter()
        mail = _parse(raw)
        elapsed = time.perf_counter() - started
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert elapsed < TIME_BOUND, f"{elapsed:.1f} s"
    assert peak < MEMORY_BOUND, f"{peak / 2**20:.0f} MB"
    _check(mail, rules=rules)
    return mail, elapsed


def _nested_multipart(depth: int, body: bytes = b"deep\r\n") -> bytes:
    head = b"From: a@b.example\r\nMIME-Version: 1.0\r\n"
    out = [head, b"Content-Type: multipart/mixed; boundary=b0\r\n\r\n"]
    for i in range(1, depth):
        out.append(b"--b%d\r\nContent-Type: multipart/mixed; boundary=b%d\r\n\r\n" % (i - 1, i))
    out.append(b"--b%d\r\nContent-Type: text/plain\r\n\r\n%s" % (depth - 1, body))
    out.extend(b"--b%d--\r\n" % i for i in range(depth - 1, -1, -1))
    return b"".join(out)


def test_huge_header() -> None:
    def build() -> bytes:
        many = b"".join(b"X-Header-%d: value %d\r\n" % (i, i) for i in range(2000))
        return (b"From: a@b.example\r\nSubject: " + b"x" * 100_000 + b"\r\n" + many
                + b"\r\nbody\r\n")
    mail, _ = _bounded(build)
    assert mail is not None and "too-many-headers" in mail.defects
    assert mail.text.strip() == "body"


def test_ten_thousand_parts() -> None:
    def build() -> bytes:
        parts = b"".join(b"--B\r\nContent-Type: text/plain\r\n\r\npart %d\r\n" % i
                         for i in range(10_000))
        return (b"From: a@b.example\r\nMIME-Version: 1.0\r\n"
                b"Content-Type: multipart/mixed; boundary=B\r\n\r\n" + parts + b"--B--\r\n")
    mail, _ = _bounded(build)
    assert mail is not None and "too-many-parts" in mail.defects


def test_message_rfc822_nested_200_deep() -> None:
    def build() -> bytes:
        raw = b"From: x@y.example\r\nSubject: leaf\r\n\r\nhello\r\n"
        for _ in range(200):
            raw = b"From: x@y.example\r\nContent-Type: message/rfc822\r\n\r\n" + raw
        return raw
    mail, _ = _bounded(build)
    assert mail is not None and len(mail.attachments) == 1


def test_message_rfc822_nested_900_deep_with_long_body() -> None:
    """Regression: re-serialising the attached message recursed past the limit."""
    def build() -> bytes:
        raw = b"From: x@y.example\r\nSubject: leaf\r\n\r\n" + b"a\n" * 50_000
        for _ in range(900):
            raw = b"Content-Type: message/rfc822\r\n\r\n" + raw
        return b"From: a@b.example\r\n" + raw
    mail, _ = _bounded(build)
    assert mail is not None and "too-deep" in mail.defects


def test_multipart_nested_1000_deep() -> None:
    mail, _ = _bounded(lambda: _nested_multipart(1000))
    assert mail is not None and "too-deep" in mail.defects


def test_deep_multipart_with_many_lines_is_not_quadratic() -> None:
    """Regression: the stdlib parser's work per line grows with the depth (7 s for 260 KB)."""
    mail, elapsed = _bounded(lambda: _nested_multipart(900, b"a\n" * 100_000))
    assert mail is not None and "too-deep" in mail.defects
    assert elapsed < 2.0, f"{elapsed:.1f} s"


def test_rfc822_around_deep_multipart() -> None:
    """Regression: an attached message nested 300 deep raised RecursionError in as_bytes."""
    def build() -> bytes:
        return (b"From: a@b.example\r\nMIME-Version: 1.0\r\nContent-Type: message/rfc822\r\n\r\n"
                + _nested_multipart(300))
    mail, _ = _bounded(build)
    assert mail is not None and len(mail.attachments) == 1


def _zip_bomb(chunks: int = 128) -> bytes:
    """A ~2 MB zip of one member that inflates to ``chunks`` x 16 MiB of zeros (2 GiB).

    Built by hand from one deflate piece repeated: a full flush resets the compressor, so
    every 16 MiB of zeros compresses to the same bytes (zipfile would spend seconds on it).
    """
    block = bytes(2**24)
    deflate = zlib.compressobj(9, zlib.DEFLATED, -15)
    piece = deflate.compress(block) + deflate.flush(zlib.Z_FULL_FLUSH)
    data = piece * chunks + deflate.flush()
    crc = 0
    for _ in range(chunks):
        crc = zlib.crc32(block, crc)
    name, size = b"bomb.bin", len(block) * chunks
    local = struct.pack("<4s5H3L2H", b"PK\x03\x04", 20, 0, 8, 0, 0x21, crc, len(data), size,
                        len(name), 0) + name
    central = struct.pack("<4s6H3L5H2L", b"PK\x01\x02", 20, 20, 0, 8, 0, 0x21, crc, len(data),
                          size, len(name), 0, 0, 0, 0, 0, 0) + name
    end = struct.pack("<4s4H2LH", b"PK\x05\x06", 0, 0, 1, 1, len(central),
                      len(local) + len(data), 0)
    return local + data + central + end


def test_zip_bomb_is_stored_as_given() -> None:
    bomb = _zip_bomb()
    (member,) = zipfile.ZipFile(io.BytesIO(bomb)).infolist()  # read, never inflated
    assert member.file_size == 2**31 and len(bomb) < 3 * 2**20

    def build() -> bytes:
        msg = EmailMessage()
        msg["From"] = "a@b.example"
        msg["Subject"] = "see attachment"
        msg.set_content("please check")
        msg.add_attachment(bomb, maintype="application", subtype="zip", filename="bomb.zip")
        return msg.as_bytes()
    mail, _ = _bounded(build)
    assert mail is not None
    (att,) = mail.attachments
    assert att.data == bomb and att.filename == "bomb.zip" and att.size == len(bomb)
    assert att.content_type == "application/zip"


@pytest.mark.parametrize("unit", [b"a", b"abandon ", "\u4f60".encode()], ids=["ascii", "words",
                                                                              "cjk"])
def test_twenty_megabyte_single_line(unit: bytes) -> None:
    def build() -> bytes:
        return (b"From: a@b.example\r\nSubject: s\r\nContent-Type: text/plain; charset=utf-8\r\n"
                b"\r\n" + unit * (20_000_000 // len(unit)))
    mail, _ = _bounded(build, rules=False)
    assert mail is not None and len(mail.text) >= 20_000_000 // len(unit) - 1


def test_filename_sanitising_is_checked() -> None:
    """The filename check itself rejects what it should (guards the property above)."""
    for bad in ("a/b", "a\\b", "a\x85b", "a\u202eb", "x" * 201, ""):
        with pytest.raises(AssertionError):
            _check_filename(bad)
    _check_filename("报告.pdf")
