"""The labelled dev corpus (used by the demo, the tests and the benchmarks).

Labels, and rewriting replies to what our daemon really issued.

Replies in the corpus carry tokens (``[#T-200157]``) and acknowledgement Message-IDs
(``<ack-T-200157.d@exchange.example>``) of a run that never happened here. Before a reply
is delivered, :func:`rewrite` swaps them for the ticket number and a signed Message-ID of
the ticket our daemon opened from the same root mail.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from email.header import Header
from pathlib import Path
from typing import Any

from mailer.ingest.decode import decode_header

TOKEN = re.compile(r"T-2\d{5}")
OWN_ID = re.compile(rb"<(ack|reply)-(T-2\d{5})(?:-\d+)?\.d@exchange\.example>")


@dataclass(frozen=True)
class Label:
    """One line of labels.jsonl."""

    file: str
    data: dict[str, Any]

    def __getattr__(self, name: str) -> Any:
        try:
            return self.data[name]
        except KeyError as exc:
            raise AttributeError(name) from exc


def load_labels(corpus: Path) -> list[Label]:
    """Labels in delivery (file name) order."""
    lines = (corpus / "labels.jsonl").read_text(encoding="utf-8").splitlines()
    labels = [Label(d["file"], d) for d in map(json.loads, lines) if d]
    return sorted(labels, key=lambda label: label.file)


def load_tokens(corpus: Path) -> dict[str, str]:
    """Corpus token -> the root file of its ticket."""
    data = json.loads((corpus / "tickets.json").read_text(encoding="utf-8"))
    return {token: info["root_file"] for token, info in data.items()}


def rewrite(raw: bytes, number_for: Callable[[str], str | None],
            own_id: Callable[[str, str], str]) -> bytes:
    """Swap corpus tokens and our-own Message-IDs for real ones (unknown tokens stay)."""

    def swap_id(m: re.Match[bytes]) -> bytes:
        number = number_for(m.group(2).decode())
        return own_id(m.group(1).decode(), number).encode() if number else m.group(0)

    head, sep, body = _split(raw)
    head = OWN_ID.sub(swap_id, head)
    head = _rewrite_subject(head, number_for)
    return head + sep + body


def _split(raw: bytes) -> tuple[bytes, bytes, bytes]:
    for sep in (b"\r\n\r\n", b"\n\n"):
        i = raw.find(sep)
        if i >= 0:
            return raw[:i], sep, raw[i + len(sep):]
    return raw, b"", b""


def _rewrite_subject(head: bytes, number_for: Callable[[str], str | None]) -> bytes:
    nl = b"\r\n" if b"\r\n" in head else b"\n"
    lines = head.split(nl)
    out: list[bytes] = []
    i = 0
    while i < len(lines):
        line = lines[i]
        j = i + 1
        while j < len(lines) and lines[j][:1] in (b" ", b"\t"):
            j += 1
        if line.lower().startswith(b"subject:"):
            value = nl.join(lines[i:j])[len(b"subject:"):].decode("ascii", "surrogateescape")
            text, _ = decode_header(value)
            new = TOKEN.sub(lambda m: number_for(m.group(0)) or m.group(0), text)
            if new != text:
                out.append(b"Subject: " + Header(new, "utf-8").encode().encode())
                i = j
                continue
        out.extend(lines[i:j])
        i = j
    return nl.join(out)
