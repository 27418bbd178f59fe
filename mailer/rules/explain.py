"""``mailer rules explain``: run the rules side of the pipeline on one .eml, writing nothing."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mailer.config import Config
from mailer.errors import ConfigError, ParseError
from mailer.ingest import machine
from mailer.ingest.parse import parse_mail
from mailer.rules.classify import classify
from mailer.rules.loader import load_rules
from mailer.rules.stage import redact_mail


def explain_file(path: Path, config: Config, is_reply: bool = False) -> dict[str, Any]:
    """The classification of the mail in ``path`` as a plain dict (no secret in it)."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ConfigError("mail", f"cannot read {path}: {exc.strerror}") from exc
    try:
        mail = parse_mail(raw)
    except ParseError as exc:
        raise ConfigError("mail", f"{path} cannot be parsed: {exc}") from exc
    mail, secrets = redact_mail(mail)
    rules = load_rules(Path(config.rules.path) if config.rules.path else None)
    verdict = machine.classify(mail)
    found = classify(mail, rules, is_reply=is_reply, is_machine=verdict != "human",
                     secrets=secrets)
    d = found.decision
    return {
        "subject": mail.subject, "machine": verdict, "language": found.language,
        "category": d.category, "urgency": found.urgency, "tags": list(found.tags),
        "queue": d.queue, "sla": d.sla, "hits": list(d.hits),
        "misses": f"{len(d.misses)} rules did not match",
        "redactions": list(secrets), "entities": found.entities,
    }
