"""Charset-robust decoding: lying labels, broken encodings, raw 8-bit headers, the corpus."""

from __future__ import annotations

import base64
import email
import json
import os
import re
import time
import unicodedata
from email.message import Message
from pathlib import Path

import pytest

from mailer.ingest.decode import (
    decode_bytes,
    decode_header,
    normalize_charset,
    part_payload,
    part_text,
)

CORPUS = Path(
    os.environ.get("MAILER_CORPUS_DIR")
    or Path(__file__).resolve().parents[2].parent / "shared/corpus/dev"
)


def _leaf(headers: str, body: bytes) -> Message:
    return email.message_from_bytes(headers.encode() + b"\r\n\r\n" + body)


@pytest.mark.parametrize(
    ("label", "codec"),
    [
        ("gb2312", "gb18030"),
        ("GBK", "gb18030"),
        ("x-gbk", "gb18030"),
        ("cp936", "gb18030"),
        ("euc-cn", "gb18030"),
        ("gb18030", "gb18030"),
        ("big5", "big5hkscs"),
        ("Shift_JIS", "cp932"),
        ("sjis", "cp932"),
        ("x-sjis", "cp932"),
        ("ms_kanji", "cp932"),
        ("euc-kr", "cp949"),
        ("ks_c_5601-1987", "cp949"),
        ("ks_c_5601", "cp949"),
        ("cp949", "cp949"),
        ("iso-8859-1", "cp1252"),
        ("latin1", "cp1252"),
        ("us-ascii", "cp1252"),
        ("ascii", "cp1252"),
        ("windows-1258", "cp1258"),
        ("windows-1251", "cp1251"),
        ("koi8-r", "koi8-r"),
        ('"UTF-8"', "utf-8"),
        ("iso-2022-jp", "iso2022_jp"),
        ("x-unknown", None),
        ("", None),
        (None, None),
        ("zlib", None),  # a bytes-to-bytes codec is not a charset
        ("base64", None),
    ],
)
def test_normalize_charset_maps_lying_labels_to_supersets(label, codec):
    assert normalize_charset(label) == codec


def test_gb2312_label_with_gbk_only_characters():
    text = "本人李堃 — 账户被限制"
    data = text.encode("gbk")
    with pytest.raises(UnicodeDecodeError):
        data.decode("gb2312")
    assert decode_bytes(data, "gb2312") == (text, ())


def test_ks_c_5601_1987_decodes_cp949_extensions():
    data = "똠방각하".encode("cp949")
    with pytest.raises(UnicodeDecodeError):
        data.decode("ks_c_5601-1987")
    assert decode_bytes(data, "ks_c_5601-1987") == ("똠방각하", ())


def test_shift_jis_label_decodes_nec_symbols():
    assert decode_bytes("①番".encode("cp932"), "shift_jis") == ("①番", ())


def test_big5_label_decodes_hkscs():
    assert decode_bytes("申請註銷".encode("big5hkscs"), "big5")[0] == "申請註銷"


def test_iso_2022_jp_with_nec_circled_digit():
    data = b"\x1b$B-!$N7o\x1b(B 5\x1b$B7n\x1b(B"  # "①の件 5月"
    with pytest.raises(UnicodeDecodeError):
        data.decode("iso2022_jp")
    assert decode_bytes(data, "ISO-2022-JP") == ("①の件 5月", ())


def test_iso_2022_jp_half_width_katakana():
    assert decode_bytes(b"\x1b(I6\x1b(B", "iso-2022-jp")[0] == "ｶ"


def test_iso_2022_jp_plain():
    text = "お世話になります。"
    assert decode_bytes(text.encode("iso2022_jp"), "iso-2022-jp") == (text, ())


def test_windows_1258_combining_marks_come_back_nfc():
    text, defects = decode_bytes(b"L\xea\xf2nh r\xfat", "windows-1258")
    assert text == "Lệnh rút"
    assert "\u1ec7" in text
    assert unicodedata.is_normalized("NFC", text)
    assert defects == ()


def test_unknown_label_falls_back_to_utf8_with_defect():
    assert decode_bytes("提现".encode(), "x-bogus") == (
        "提现",
        ("charset-fallback:x-bogus->utf-8",),
    )


def test_wrong_label_falls_back_to_gb18030():
    text, defects = decode_bytes("提现未到账".encode("gbk"), "utf-8")
    assert text == "提现未到账"
    assert defects == ("charset-fallback:utf-8->gb18030",)


def test_last_resort_is_cp1252():
    text, defects = decode_bytes(b"caf\xe9 \xff", None)
    assert text == "café ÿ"
    assert defects == ("charset-fallback:none->cp1252",)


def test_latin1_text_is_not_mistaken_for_gbk():
    # "Mañana" is valid GBK byte-wise (F1 61); the plausibility check refuses it.
    assert decode_bytes(b"Ma\xf1ana", None)[0] == "Mañana"


def test_ascii_label_on_utf8_bytes_prefers_utf8():
    text, defects = decode_bytes("Sebastián".encode(), "us-ascii")
    assert text == "Sebastián"
    assert defects == ("charset-fallback:us-ascii->utf-8",)


def test_ascii_label_on_gbk_bytes_guesses_gb18030():
    assert decode_bytes("充值".encode("gbk"), "us-ascii")[0] == "充值"


def test_latin1_label_on_utf8_bytes_is_a_mismatch():
    assert decode_bytes("Díaz".encode(), "iso-8859-1") == (
        "Díaz",
        ("charset-mismatch:iso-8859-1->utf-8",),
    )


def test_latin1_label_is_decoded_as_cp1252():
    assert decode_bytes(b"\x93quoted\x94 caf\xe9", "iso-8859-1") == ("\u201cquoted\u201d café", ())


def test_multibyte_character_cut_at_the_end_is_dropped():
    data = "提现".encode()[:-1]
    assert decode_bytes(data, "utf-8") == ("提", ("charset-truncated-tail",))


def test_bom_is_removed():
    assert decode_bytes(b"\xef\xbb\xbfhi", "utf-8")[0] == "hi"


# --- headers ---------------------------------------------------------------------------


def test_raw_8bit_utf8_header_from_compat32():
    msg = email.message_from_bytes(b"Subject: " + "提现未到帳".encode() + b"\r\n\r\nx")
    assert decode_header(msg.get("Subject")) == ("提现未到帳", ())
    assert decode_header(next(msg.raw_items())[1]) == ("提现未到帳", ())


def test_raw_8bit_gbk_header():
    msg = email.message_from_bytes(b"Subject: " + "提现未到账".encode("gbk") + b"\r\n\r\nx")
    text, defects = decode_header(msg.get("Subject"))
    assert text == "提现未到账"
    assert defects == ("charset-fallback:none->gb18030",)


def test_raw_8bit_big5_header_uses_the_charset_hint():
    raw = "申請註銷帳戶".encode("big5").decode("ascii", "surrogateescape")
    assert decode_header(raw, charset_hint="big5")[0] == "申請註銷帳戶"


def test_encoded_words_with_lying_charset():
    word = base64.b64encode("李堃".encode("gbk")).decode()
    assert decode_header(f"=?gb2312?B?{word}?= <likun@126.example>") == (
        "李堃 <likun@126.example>",
        (),
    )


def test_adjacent_encoded_words_join_and_split_characters_survive():
    data = "中文".encode()
    first = base64.b64encode(data[:2]).decode()
    second = base64.b64encode(data[2:]).decode()
    assert decode_header(f"=?utf-8?B?{first}?=\r\n =?UTF-8?B?{second}?=")[0] == "中文"


def test_whitespace_between_encoded_word_and_text_is_kept():
    assert decode_header("=?utf-8?Q?Re:?= hello =?utf-8?Q?w=C3=B6rld?=")[0] == "Re: hello wörld"


def test_q_encoding_keeps_injected_crlf():
    value = "=?iso-8859-1?Q?Account_help=0D=0ABcc:_promo@victims.test?="
    assert decode_header(value)[0] == "Account help\r\nBcc: promo@victims.test"


def test_folding_is_unfolded():
    assert (
        decode_header("Trading disabled\r\n on my account")[0] == "Trading disabled on my account"
    )


def test_b_encoding_without_padding():
    text, defects = decode_header("=?utf-8?B?5Lit5paHIQ?=")
    assert text == "中文!"
    assert defects == ("base64-truncated",)


def test_koi8_r_encoded_word():
    word = base64.b64encode("Не пришел депозит".encode("koi8-r")).decode()
    assert decode_header(f"=?koi8-r?B?{word}?=") == ("Не пришел депозит", ())


def test_iso_2022_jp_encoded_words_split_across_escape_state():
    data = "入金が未反映".encode("iso2022_jp")
    words = [base64.b64encode(data[:8]).decode(), base64.b64encode(data[8:]).decode()]
    assert decode_header(f"=?ISO-2022-JP?B?{words[0]}?= =?ISO-2022-JP?B?{words[1]}?=")[0] == (
        "入金が未反映"
    )


def test_unknown_charset_in_encoded_word():
    word = base64.b64encode("привет".encode()).decode()
    assert decode_header(f"=?x-unknown?B?{word}?=") == (
        "привет",
        ("charset-fallback:x-unknown->utf-8",),
    )


def test_unterminated_encoded_word_is_decoded():
    text, defects = decode_header("=?utf-8?Q?caf=C3=A9")
    assert text == "café"
    assert "encoded-word-unterminated" in defects


def test_header_none():
    assert decode_header(None) == ("", ())


# --- payloads --------------------------------------------------------------------------


def test_truncated_base64_recovers_every_full_quantum():
    original = b"Hi folks,\nTxID: 0xce40b0bfdf09ccfec64798be399fa22aecc379b337b6\nThanks a lot,\n"
    encoded = base64.b64encode(original)[:-6]
    data, defects = part_payload(_leaf("Content-Transfer-Encoding: base64", encoded))
    assert len(data) >= len(encoded) // 4 * 3
    assert data == original[: len(data)]
    assert defects == ("base64-truncated",)


def test_base64_with_garbage_and_line_breaks():
    encoded = base64.encodebytes("提现未到账".encode()).replace(b"5", b"5!", 1)
    data, defects = part_payload(_leaf("Content-Transfer-Encoding: base64", encoded))
    assert data.decode() == "提现未到账"
    assert defects == ("base64-garbage",)


def test_quoted_printable_with_soft_breaks():
    body = b"Ch=E0o s=E0n,=\r\nL=EA=F2nh"
    part = _leaf("Content-Transfer-Encoding: quoted-printable", body)
    assert part_payload(part) == (b"Ch\xe0o s\xe0n,L\xea\xf2nh", ())


def test_8bit_body_keeps_its_bytes():
    raw = "Доброго времени суток.".encode("windows-1251")
    part = _leaf(
        'Content-Type: text/plain; charset="windows-1251"\r\nContent-Transfer-Encoding: 8bit', raw
    )
    assert part_payload(part) == (raw, ())
    assert part_text(part) == ("Доброго времени суток.", ())


def test_uuencoded_body():
    body = b"begin 644 a.txt\n" + __import__("binascii").b2a_uu(b"hello") + b"`\nend\n"
    assert part_payload(_leaf("Content-Transfer-Encoding: x-uuencode", body))[0] == b"hello"


def test_unknown_transfer_encoding_is_reported():
    data, defects = part_payload(_leaf("Content-Transfer-Encoding: x-weird", b"abc"))
    assert (data, defects) == (b"abc", ("unknown-transfer-encoding:x-weird",))


def test_multipart_has_no_payload():
    msg = email.message_from_bytes(
        b'Content-Type: multipart/mixed; boundary="b"\r\n\r\n--b\r\n\r\nx\r\n--b--\r\n'
    )
    assert part_payload(msg) == (b"", ("multipart-has-no-payload",))


def test_part_text_uses_charset_and_normalises_line_endings():
    body = base64.encodebytes("客服同学好：\r\n李堃".encode("gbk"))
    part = _leaf(
        'Content-Type: text/plain; charset="gb2312"\r\nContent-Transfer-Encoding: base64', body
    )
    assert part_text(part) == ("客服同学好：\n李堃", ())


def test_part_text_sniffs_html_meta_charset():
    html = '<meta charset="gbk"><p>闪兑</p>'.encode("gbk")
    part = _leaf("Content-Type: text/html\r\nContent-Transfer-Encoding: 8bit", html)
    assert part_text(part)[0] == '<meta charset="gbk"><p>闪兑</p>'


# --- the labelled corpus ---------------------------------------------------------------

_SCRIPTS = {
    "zh": re.compile(r"[\u4e00-\u9fff]"),
    "zh-Hant": re.compile(r"[\u4e00-\u9fff]"),
    "ja": re.compile(r"[\u3040-\u30ff]"),
    "ko": re.compile(r"[\uac00-\ud7a3]"),
    "ru": re.compile(r"[\u0400-\u04ff]"),
    "vi": re.compile(r"[ơưạảấầẩẫậắằẳẵặẹẻẽếềểễệỉịọỏốồổỗộớờởỡợụủứừửữựỳỵỷỹđ]", re.I),
}


def _corpus_labels() -> list[dict[str, str]]:
    path = CORPUS / "labels.jsonl"
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text("utf-8").splitlines() if line.strip()]


def _assert_clean(text: str, where: str) -> None:
    assert "\ufffd" not in text, where
    assert "\x1b" not in text, where


@pytest.mark.parametrize("label", _corpus_labels() or [None], ids=lambda lab: lab and lab["file"])
def test_corpus_decodes_without_mojibake(label):
    if label is None:
        pytest.skip(f"corpus not found at {CORPUS} (set MAILER_CORPUS_DIR)")
    msg = email.message_from_bytes((CORPUS / label["file"]).read_bytes())
    subject, _ = decode_header(msg.get("Subject"))
    _assert_clean(subject, "subject")
    assert "=?" not in subject
    bodies = []
    for part in msg.walk():
        if part.get_content_type() in ("text/plain", "text/html"):
            text, _ = part_text(part)
            _assert_clean(text, part.get_content_type())
            bodies.append(text)
    body = "\n".join(bodies)
    script = _SCRIPTS.get(label["language"])
    if script is not None:
        assert script.search(body), f"no {label['language']} script in the body"
        assert unicodedata.is_normalized("NFC", body)


@pytest.mark.parametrize(
    "value", ["=?" * 100_000, "=?utf-8?B?" + "A" * 200_000, "=?utf-8?Q?a?= " * 20_000]
)
def test_hostile_headers_are_linear(value):
    started = time.perf_counter()
    decode_header(value)
    assert time.perf_counter() - started < 2.0
