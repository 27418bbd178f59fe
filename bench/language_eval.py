"""Language detection on a labelled corpus: mismatches, accuracy and time per call.

Run::

    .venv/bin/python -m bench.language_eval [CORPUS_DIR] [--repeat N]

CORPUS_DIR defaults to ``$MAILER_CORPUS_DIR``, else ``../shared/corpus/dev``. Mails labelled
``quarantine`` are skipped, as in ``tests/unit/test_language.py``. Timing calls
:func:`detect_for_mail` on the already-parsed mails (parsing is not measured), N rounds
over the whole corpus after one warm-up round (so the per-character cache is warm, as it
is in the running daemon).
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

from mailer.corpus import load_labels
from mailer.ingest.mail import ParsedMail
from mailer.ingest.parse import parse_mail
from mailer.rules.language import detect_for_mail

REPO = Path(__file__).resolve().parent.parent


def default_corpus() -> Path:
    """``$MAILER_CORPUS_DIR`` or the shared dev corpus next to the repository."""
    configured = os.environ.get("MAILER_CORPUS_DIR")
    return Path(configured) if configured else REPO.parent / "shared" / "corpus" / "dev"


def load(corpus: Path) -> list[tuple[str, str, ParsedMail]]:
    """(file, expected language, parsed mail) for every mail not meant for quarantine."""
    out = []
    for label in load_labels(corpus):
        if label.expect == "quarantine":
            continue
        mail = parse_mail((corpus / label.file).read_bytes())
        out.append((label.file, label.language, mail))
    return out


def detect(mail: ParsedMail) -> str | None:
    """The detector as the pipeline calls it."""
    return detect_for_mail(mail.subject, mail.new_text, mail.text)


def report_accuracy(mails: list[tuple[str, str, ParsedMail]]) -> None:
    """Print each mismatch, then the overall accuracy."""
    right = 0
    for name, expected, mail in mails:
        got = detect(mail)
        if got == expected:
            right += 1
            continue
        snippet = " ".join(f"{mail.subject} | {mail.new_text}".split())[:100]
        print(f"MISMATCH {name}: expected {expected}, got {got}: {snippet}")
    print(f"accuracy: {right}/{len(mails)} = {right / len(mails):.3f}")


def report_speed(mails: list[tuple[str, str, ParsedMail]], repeat: int) -> None:
    """Print mean microseconds per call and the mean input size."""
    for _, _, mail in mails:
        detect(mail)
    start = time.perf_counter()
    for _ in range(repeat):
        for _, _, mail in mails:
            detect(mail)
    elapsed = time.perf_counter() - start
    calls = repeat * len(mails)
    chars = sum(len(m.subject) + len(m.new_text) for _, _, m in mails) / len(mails)
    print(
        f"speed: {elapsed / calls * 1e6:.1f} us/call over {calls} calls "
        f"(mean subject + new_text: {chars:.0f} chars)"
    )


def main() -> None:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("corpus", nargs="?", type=Path, default=default_corpus())
    parser.add_argument("--repeat", type=int, default=200)
    args = parser.parse_args()
    mails = load(args.corpus)
    report_accuracy(mails)
    report_speed(mails, args.repeat)


if __name__ == "__main__":
    main()
