"""Evaluate an ordered rule list over one mail's facts into a frozen :class:`Decision`.

Semantics, in rule order:
* ``category``, ``queue`` and ``sla`` are set by the first matching rule that sets them; a
  later rule overrides them only with ``force = true``.
* ``urgency`` only rises (low < normal < high < critical) unless the rule says ``force``.
* ``tags`` accumulate; regex captures accumulate into entity fields.
* ``stop = true`` ends the evaluation after that rule matches.
The hits (rules that matched) and misses (rules evaluated that did not) are kept so anyone
can see why a ticket got its category.
"""

from __future__ import annotations

from dataclasses import dataclass

from mailer.rules.facts import MailFacts
from mailer.rules.keywords import KeywordIndex
from mailer.rules.predicates import Predicate, Scan

URGENCIES = ("low", "normal", "high", "critical")
CATEGORIES = ("account_frozen", "login_issue", "deposit_missing", "withdrawal", "security",
              "kyc", "trading", "api", "promotion", "fees_refund", "feedback", "scam_report",
              "general")


@dataclass(frozen=True, slots=True)
class Action:
    """What a matching rule sets."""

    category: str | None = None
    urgency: str | None = None
    tags: tuple[str, ...] = ()
    queue: str | None = None
    sla: str | None = None
    force: bool = False


@dataclass(frozen=True, slots=True)
class Rule:
    """One validated rule."""

    name: str
    when: Predicate
    action: Action
    stop: bool = False


@dataclass(frozen=True, slots=True)
class RuleSet:
    """A loaded rule file: its rules, the shared keyword index and the defaults."""

    rules: tuple[Rule, ...]
    index: KeywordIndex
    defaults: Action
    source: str = "<rules>"


@dataclass(frozen=True, slots=True)
class Decision:
    """The outcome of one evaluation."""

    category: str
    urgency: str
    tags: tuple[str, ...]
    queue: str | None
    sla: str | None
    hits: tuple[str, ...]
    misses: tuple[str, ...]
    captures: tuple[tuple[str, tuple[str, ...]], ...] = ()


def rank(urgency: str | None) -> int:
    """Order of an urgency; unknown or None is below low."""
    return URGENCIES.index(urgency) if urgency in URGENCIES else -1


def raise_urgency(current: str | None, new: str | None, force: bool = False) -> str | None:
    """``new`` if it is higher than ``current`` (or forced), else ``current``."""
    if new is None:
        return current
    return new if force or rank(new) > rank(current) else current


@dataclass(slots=True)
class _State:
    category: str | None = None
    urgency: str | None = None
    queue: str | None = None
    sla: str | None = None
    tags: tuple[str, ...] = ()

    def apply(self, action: Action) -> None:
        self.category = _first(self.category, action.category, action.force)
        self.queue = _first(self.queue, action.queue, action.force)
        self.sla = _first(self.sla, action.sla, action.force)
        self.urgency = raise_urgency(self.urgency, action.urgency, action.force)
        self.tags = tuple(dict.fromkeys([*self.tags, *action.tags]))


def _first(current: str | None, new: str | None, force: bool) -> str | None:
    return new if new is not None and (current is None or force) else current


def evaluate(ruleset: RuleSet, facts: MailFacts) -> Decision:
    """Run every rule over ``facts``; see the module docstring."""
    scan = Scan(facts, ruleset.index)
    state, hits, misses = _State(), [], []
    for rule in ruleset.rules:
        if not rule.when.test(scan):
            misses.append(rule.name)
            continue
        hits.append(rule.name)
        state.apply(rule.action)
        if rule.stop:
            break
    d = ruleset.defaults
    return Decision(
        category=state.category or d.category or "general",
        urgency=state.urgency or d.urgency or "normal",
        tags=state.tags, queue=state.queue or d.queue, sla=state.sla or d.sla,
        hits=tuple(hits), misses=tuple(misses),
        captures=tuple((k, tuple(dict.fromkeys(v))) for k, v in scan.captures.items()),
    )
