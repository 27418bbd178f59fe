from __future__ import annotations

import pytest

from mailer.ingest.filenames import safe_filename


@pytest.mark.parametrize(("name", "want"), [
    ("../../etc/passwd", "passwd"),
    ("C:\\Users\\x\\evil.exe", "evil.exe"),
    (".bashrc", "bashrc"),
    ("inv\u202eoice.pdf.exe", "inv_oice.pdf.exe"),
    ("a\r\nb.txt", "a__b.txt"),
    ("CON.txt", "_CON.txt"),
    ("收据.pdf", "收据.pdf"),
])
def test_unsafe_names_are_neutralised(name, want):
    assert safe_filename(name, "application/octet-stream", 1) == want


def test_empty_name_gets_a_typed_fallback():
    assert safe_filename("", "application/pdf", 3) == "attachment-3.pdf"
    assert safe_filename("///", "image/png", 1) == "attachment-1.png"


def test_long_names_keep_their_extension():
    out = safe_filename("x" * 500 + ".pdf", "application/pdf", 1)
    assert out.endswith(".pdf") and len(out.encode()) <= 200
    cjk = safe_filename("字" * 300 + ".png", "image/png", 1)
    assert cjk.endswith(".png") and len(cjk.encode()) <= 200
