"""What rules look at: a mail's facts, computed once per evaluation.

Rules see :class:`MailFacts`, never ORM rows and never the raw mail. Texts are normalised
once (NFKC, lower-case) so keyword matching is case-folded and full-width-insensitive.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation

FIELDS = ("subject", "body", "new_text")


def normalize(text: str) -> str:
    """NFKC + lower-case, length-stable enough for keyword scanning."""
    return unicodedata.normalize("NFKC", text).lower()


@dataclass(frozen=True, slots=True)
class MailFacts:
    """The facts of one mail that predicates test."""

    subject: str = ""
    body: str = ""
    new_text: str = ""
    sender: str = ""
    headers: tuple[tuple[str, str], ...] = ()
    language: str | None = None
    attachment_types: tuple[str, ...] = ()
    entities: tuple[tuple[str, tuple[str, ...]], ...] = ()
    is_reply: bool = False
    is_machine: bool = False
    secrets: tuple[str, ...] = ()
    normalized: tuple[tuple[str, str], ...] = field(default=(), init=False)

    def __post_init__(self) -> None:
        norm = tuple((f, normalize(getattr(self, f))) for f in FIELDS)
        object.__setattr__(self, "normalized", norm)

    def text(self, name: str, normalized: bool = False) -> str:
        """The text of field ``name`` (subject, body, new_text)."""
        if normalized:
            return dict(self.normalized).get(name, "")
        return self.subject if name == "subject" else self.new_text if name == "new_text" \
            else self.body

    @property
    def sender_domain(self) -> str:
        """The part after the @ of the sender address."""
        return self.sender.rpartition("@")[2].lower()

    def header(self, name: str) -> str | None:
        """First value of a header (name case-insensitive)."""
        wanted = name.lower()
        return next((v for k, v in self.headers if k == wanted), None)

    def entity(self, name: str) -> tuple[str, ...]:
        """Values of one entity field."""
        return dict(self.entities).get(name, ())

    def amounts(self) -> list[tuple[Decimal, str]]:
        """Parsed ``"<number> <CODE>"`` amounts."""
        out = []
        for value in self.entity("amounts"):
            number, _, code = value.partition(" ")
            try:
                out.append((Decimal(number), code.upper()))
            except InvalidOperation:
                continue
        return out
