"""Attachment file names are untrusted: make them safe to show and to offer for download.

We never use the customer's name as a path (files are stored by sha256), but agents see and
save these names, so path separators, control characters, leading dots, bidi overrides and
Windows-reserved names are removed and the length is capped.
"""

from __future__ import annotations

import mimetypes
import re
import unicodedata

MAX_NAME_BYTES = 200
_UNSAFE = re.compile(r'[\x00-\x1f\x7f<>:"/\\|?*\u202a-\u202e\u2066-\u2069\u200e\u200f]')
_RESERVED = {"con", "prn", "aux", "nul", *(f"com{i}" for i in range(1, 10)),
             *(f"lpt{i}" for i in range(1, 10))}


def safe_filename(name: str, content_type: str, index: int) -> str:
    """A display-safe file name; falls back to ``attachment-<index><ext>``."""
    name = unicodedata.normalize("NFC", name or "")
    name = name.replace("\\", "/").rsplit("/", 1)[-1]
    name = _UNSAFE.sub("_", name).strip().lstrip(".").strip()
    if name.split(".", 1)[0].lower() in _RESERVED:
        name = f"_{name}"
    if not name:
        ext = mimetypes.guess_extension(content_type) or ".bin"
        name = f"attachment-{index}{ext}"
    return _cap(name)


def _cap(name: str) -> str:
    """Cut to MAX_NAME_BYTES of UTF-8, keeping the extension."""
    if len(name.encode()) <= MAX_NAME_BYTES:
        return name
    stem, dot, ext = name.rpartition(".")
    if not dot or len(ext) > 16:
        stem, ext = name, ""
    budget = MAX_NAME_BYTES - len(ext.encode()) - 1
    cut = stem.encode()[:budget].decode("utf-8", "ignore")
    return f"{cut}.{ext}" if ext else cut
