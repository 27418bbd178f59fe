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

from dataclasses import dataclass, field

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
    """A loaded rule file: its rules, the shared keyword index and the defaults.

    ``by_keyword`` maps a keyword id to the positions of the rules it can trigger and
    ``unguarded`` lists the rules that can match without any keyword; together they let
    :func:`evaluate` test only the rules that can possibly match.
    """

    rules: tuple[Rule, ...]
    index: KeywordIndex
    defaults: Action
    source: str = "<rules>"
    names: tuple[str, ...] = ()
    by_keyword: dict[int, tuple[int, ...]] = field(default_factory=dict)
    by_domain: dict[str, tuple[int, ...]] = field(default_factory=dict)
    unguarded: frozenset[int] = frozenset()
    fields: tuple[str, ...] = ()

    @classmethod
    def build(cls, rules: tuple[Rule, ...], index: KeywordIndex, defaults: Action,
              source: str, fields: tuple[str, ...]) -> RuleSet:
        """Index the rules by their keyword guards."""
        by_keyword: dict[int, list[int]] = {}
        by_domain: dict[str, list[int]] = {}
        unguarded = []
        for pos, rule in enumerate(rules):
            guard, domains = rule.when.guard, rule.when.domains
            if guard is not None:
                for kid in guard:
                    by_keyword.setdefault(kid, []).append(pos)
            elif domains is not None:
                for domain in domains:
                    by_domain.setdefault(domain, []).append(pos)
            else:
                unguarded.append(pos)
        return cls(rules, index, defaults, source, tuple(r.name for r in rules),
                   {k: tuple(v) for k, v in by_keyword.items()},
                   {k: tuple(v) for k, v in by_domain.items()}, frozenset(unguarded), fields)


@dataclass(frozen=True, slots=True)
class Decision:
    """The outcome of one evaluation."""

    category: str
    urgency: str
    tags: tuple[str, ...]
    queue: str | None
    sla: str | None
    hits: tuple[str, ...]
    captures: tuple[tuple[str, tuple[str, ...]], ...] = ()
    evaluated: tuple[str, ...] = ()

    @property
    def misses(self) -> tuple[str, ...]:
        """The rules that did not match (up to a ``stop``; rules after it were not run)."""
        hit = set(self.hits)
        return tuple(n for n in self.evaluated if n not in hit)


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
    tags: dict[str, None] = field(default_factory=dict)

    def apply(self, action: Action) -> None:
        if action.category is not None:
            self.category = _first(self.category, action.category, action.force)
        if action.queue is not None:
            self.queue = _first(self.queue, action.queue, action.force)
        if action.sla is not None:
            self.sla = _first(self.sla, action.sla, action.force)
        if action.urgency is not None:
            self.urgency = raise_urgency(self.urgency, action.urgency, action.force)
        for tag in action.tags:
            self.tags[tag] = None


def _first(current: str | None, new: str | None, force: bool) -> str | None:
    return new if new is not None and (current is None or force) else current


def _candidates(ruleset: RuleSet, scan: Scan) -> list[int]:
    """Positions of the rules that can match, in order: unguarded ones and those whose
    keyword guard met a keyword found in any field that rules look at."""
    found: set[int] = set()
    for name in ruleset.fields:
        found.update(scan.keyword_hits(name))
    positions = set(ruleset.unguarded)
    for kid in found:
        positions.update(ruleset.by_keyword.get(kid, ()))
    labels = scan.facts.sender_domain.split(".")
    for i in range(len(labels)):  # the domain and each parent: a.b.example, b.example, ...
        positions.update(ruleset.by_domain.get(".".join(labels[i:]), ()))
    return sorted(positions)


def evaluate(ruleset: RuleSet, facts: MailFacts) -> Decision:
    """Run the rules over ``facts``; see the module docstring."""
    scan = Scan(facts, ruleset.index)
    state, hits, last = _State(), [], len(ruleset.rules)
    for pos in _candidates(ruleset, scan):
        rule = ruleset.rules[pos]
        if not rule.when.test(scan):
            continue
        hits.append(rule.name)
        state.apply(rule.action)
        if rule.stop:
            last = pos + 1
            break
    d = ruleset.defaults
    return Decision(
        category=state.category or d.category or "general",
        urgency=state.urgency or d.urgency or "normal",
        tags=tuple(state.tags), queue=state.queue or d.queue, sla=state.sla or d.sla,
        hits=tuple(hits),
        captures=tuple((k, tuple(dict.fromkeys(v))) for k, v in scan.captures.items()),
        evaluated=ruleset.names[:last],
    )
