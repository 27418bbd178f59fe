"""Measure entity extraction and secret redaction against a labelled corpus.

    .venv/bin/python -m bench.entities_eval [CORPUS_DIR]

Entities are extracted from each mail's new text (quotes removed), which is what the labels
describe; mails labelled ``no_autoreply_and_no_ticket`` (newsletters, list mail, bounces,
duplicate deliveries) carry no entity labels by design and are left out of the entity score.
Prints micro-averaged precision/recall per field, every miss and false hit, the secret
results (each ``contains_secret`` mail redacted, none of the others), and µs per mail.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from mailer.corpus import load_labels
from mailer.ingest.parse import parse_mail
from mailer.rules.entities import extract_entities
from mailer.rules.secrets import redact

FIELDS = ("txids", "order_ids", "addresses", "assets", "networks", "amounts")
SKIP_EXPECT = "no_autoreply_and_no_ticket"


@dataclass(slots=True)
class Score:
    """Counts for one field."""

    tp: int = 0
    fp: int = 0
    fn: int = 0
    errors: list[str] = field(default_factory=list)

    @property
    def precision(self) -> float:
        """Share of extracted values that are labelled."""
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else 1.0

    @property
    def recall(self) -> float:
        """Share of labelled values that were extracted."""
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else 1.0


@dataclass(frozen=True, slots=True)
class SecretResult:
    """One mail's redaction against its label."""

    file: str
    labelled: bool
    kinds: tuple[str, ...]


def default_corpus() -> Path:
    """``$MAILER_CORPUS_DIR`` or ``<repo>/../shared/corpus/dev``."""
    configured = os.environ.get("MAILER_CORPUS_DIR")
    repo = Path(__file__).resolve().parent.parent
    return Path(configured) if configured else repo.parent / "shared" / "corpus" / "dev"


def score_entities(corpus: Path) -> dict[str, Score]:
    """Micro-averaged counts per entity field over the corpus."""
    scores = {name: Score() for name in FIELDS}
    for label in load_labels(corpus):
        if label.expect == SKIP_EXPECT:
            continue
        mail = parse_mail((corpus / label.file).read_bytes())
        found = extract_entities(mail.new_text or mail.text).as_dict()
        for name in FIELDS:
            _count(scores[name], label.file, set(label.entities[name]), set(found[name]))
    return scores


def _count(score: Score, file: str, want: set[str], got: set[str]) -> None:
    score.tp += len(want & got)
    score.fp += len(got - want)
    score.fn += len(want - got)
    score.errors += [f"{file} false {v!r}" for v in sorted(got - want)]
    score.errors += [f"{file} missed {v!r}" for v in sorted(want - got)]


def check_secrets(corpus: Path) -> list[SecretResult]:
    """Redact subject and text of every mail; return kinds next to the label."""
    results = []
    for label in load_labels(corpus):
        mail = parse_mail((corpus / label.file).read_bytes())
        kinds = redact(mail.subject).kinds + redact(mail.text).kinds
        results.append(SecretResult(label.file, bool(label.contains_secret), kinds))
    return results


def time_per_mail(texts: Iterable[str], rounds: int = 20) -> tuple[float, float]:
    """Mean µs per mail for ``extract_entities`` and for ``redact``."""
    texts = list(texts)
    timings = []
    for func in (extract_entities, redact):
        start = time.perf_counter()
        for _ in range(rounds):
            for text in texts:
                func(text)
        timings.append((time.perf_counter() - start) / (rounds * len(texts)) * 1e6)
    return timings[0], timings[1]


def main(argv: list[str]) -> int:
    """Print the report; exit 1 if a target is missed."""
    corpus = Path(argv[0]) if argv else default_corpus()
    scores = score_entities(corpus)
    ok = True
    print(f"{'field':<10} {'P':>6} {'R':>6}  tp  fp  fn")
    for name, s in scores.items():
        ok &= s.precision >= 0.95 and s.recall >= 0.90
        print(f"{name:<10} {s.precision:6.3f} {s.recall:6.3f} {s.tp:3} {s.fp:3} {s.fn:3}")
        for error in s.errors:
            print(f"    {error}")
    results = check_secrets(corpus)
    missed = [r.file for r in results if r.labelled and not r.kinds]
    false = [f"{r.file} {r.kinds}" for r in results if r.kinds and not r.labelled]
    caught = sum(1 for r in results if r.labelled and r.kinds)
    print(f"secrets: {caught}/{caught + len(missed)} redacted, false redactions: {len(false)}")
    for line in [*missed, *false]:
        print(f"    {line}")
    mails = [parse_mail(p.read_bytes()) for p in sorted(corpus.glob("*.eml"))]
    entities_us, redact_us = time_per_mail(f"{m.subject}\n{m.text}" for m in mails)
    print(f"µs per mail: extract_entities {entities_us:.0f}, redact {redact_us:.0f}")
    return 0 if ok and not missed and not false else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
