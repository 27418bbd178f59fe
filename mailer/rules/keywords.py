"""Every keyword of every rule in one Aho-Corasick automaton (pyahocorasick).

A mail's text is scanned once per field, whatever the number of rules; each keyword
predicate then only checks set membership. Latin keywords must sit on word boundaries
(checked here: ``\\b`` does not work next to CJK); CJK keywords match as substrings. A
keyword ending in ``*`` matches as a prefix (``withdraw*`` finds "withdrawals").
"""

from __future__ import annotations

import ahocorasick

from mailer.rules.facts import normalize


def _wordish(ch: str) -> bool:
    """A letter or digit of an alphabetic script (CJK is not word-delimited)."""
    return ch.isalnum() and ord(ch) < 0x2E80


class KeywordIndex:
    """Collects keywords at load time; scans texts at evaluation time."""

    def __init__(self) -> None:
        self._ids: dict[tuple[str, bool], int] = {}
        self._automaton: ahocorasick.Automaton | None = None

    def add(self, keyword: str) -> int:
        """Register ``keyword``; returns its id (the same id for the same keyword)."""
        prefix = keyword.endswith("*")
        word = normalize(keyword.rstrip("*")).strip()
        if not word:
            raise ValueError("empty keyword")
        key = (word, prefix)
        if key not in self._ids:
            self._ids[key] = len(self._ids)
            self._automaton = None
        return self._ids[key]

    def __len__(self) -> int:
        return len(self._ids)

    def _build(self) -> ahocorasick.Automaton:
        automaton = ahocorasick.Automaton()
        by_word: dict[str, list[tuple[int, bool]]] = {}
        for (word, prefix), kid in self._ids.items():
            by_word.setdefault(word, []).append((kid, prefix))
        for word, entries in by_word.items():
            automaton.add_word(word, (word, tuple(entries)))
        if by_word:
            automaton.make_automaton()
        return automaton

    def scan(self, normalized_text: str) -> frozenset[int]:
        """Ids of the keywords found in an already normalised text."""
        if not self._ids or not normalized_text:
            return frozenset()
        if self._automaton is None:
            self._automaton = self._build()
        found: set[int] = set()
        for end, (word, entries) in self._automaton.iter(normalized_text):
            start = end - len(word) + 1
            left_ok = not (_wordish(word[0]) and start > 0 and _wordish(normalized_text[start - 1]))
            if not left_ok:
                continue
            after = normalized_text[end + 1] if end + 1 < len(normalized_text) else ""
            right_ok = not (_wordish(word[-1]) and after and _wordish(after))
            found.update(kid for kid, prefix in entries if prefix or right_ok)
        return frozenset(found)
