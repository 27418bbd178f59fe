"""From a parsed (and redacted) mail to a :class:`Classification`: language, entities, rules.

Used by the pipeline's classify stage and by ``mailer rules explain`` (which writes nothing).
"""

from __future__ import annotations

from dataclasses import dataclass

from mailer.ingest.mail import ParsedMail
from mailer.rules.engine import Decision, RuleSet, evaluate, raise_urgency
from mailer.rules.entities import extract_entities
from mailer.rules.facts import MailFacts
from mailer.rules.language import detect_for_mail
from mailer.rules.secrets import is_critical


@dataclass(frozen=True, slots=True)
class Classification:
    """Everything the rules stage concluded about one mail."""

    decision: Decision
    language: str | None
    entities: dict[str, list[str]]
    secrets: tuple[str, ...]
    extra_tags: tuple[str, ...] = ()

    @property
    def urgency(self) -> str:
        """The rules' urgency, raised by any secret seen (never lowered)."""
        if not self.secrets:
            return self.decision.urgency
        floor = "critical" if is_critical(self.secrets) else "high"
        return raise_urgency(self.decision.urgency, floor) or floor

    @property
    def tags(self) -> tuple[str, ...]:
        """The rules' tags plus one ``secret:<kind>`` per secret kind seen."""
        return tuple(dict.fromkeys([*self.decision.tags, *(f"secret:{k}" for k in self.secrets),
                                    *self.extra_tags]))


def classify(mail: ParsedMail, rules: RuleSet, *, is_reply: bool, is_machine: bool,
             secrets: tuple[str, ...]) -> Classification:
    """Detect the language, extract entities and evaluate the rules for ``mail``."""
    language = detect_for_mail(mail.subject, mail.new_text, mail.text)
    entities = extract_entities(f"{mail.subject}\n{mail.new_text or mail.text}").as_dict()
    facts = MailFacts(
        subject=mail.subject, body=mail.text, new_text=mail.new_text or mail.text,
        sender=mail.from_.address if mail.from_ else "", headers=mail.headers,
        language=language, attachment_types=tuple(a.content_type for a in mail.attachments),
        entities=tuple((k, tuple(v)) for k, v in entities.items()),
        is_reply=is_reply, is_machine=is_machine, secrets=secrets,
    )
    decision = evaluate(rules, facts)
    for name, values in decision.captures:
        if name in entities:
            entities[name] = list(dict.fromkeys([*entities[name], *values]))
    return Classification(decision, language, entities, secrets)
