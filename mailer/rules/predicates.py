"""Predicates: small named functions over :class:`MailFacts`, built from rule data.

In a rule file a predicate is a table whose one predicate key names it, plus modifiers:
``{ keywords = ["冻结", "frozen"], in = ["subject", "new_text"] }``. :data:`BUILDERS` is
the explicit registry; building validates everything (unknown names, bad regexes, unknown
fields), so no error can surface at evaluation time.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from mailer.errors import ConfigError
from mailer.rules.facts import FIELDS, MailFacts
from mailer.rules.keywords import KeywordIndex

LANGUAGES = ("zh", "zh-Hant", "en", "ja", "ko", "ru", "es", "vi")
ENTITY_FIELDS = ("txids", "order_ids", "addresses", "assets", "networks", "amounts")
SECRET_KINDS = ("mnemonic", "private_key", "password", "api_secret", "2fa_backup_code")
DEFAULT_FIELDS = ("subject", "new_text")


@dataclass(slots=True)
class Scan:
    """Per-evaluation state: the facts, keyword hits per field, regex captures."""

    facts: MailFacts
    index: KeywordIndex
    _hits: dict[str, frozenset[int]] = field(default_factory=dict)
    captures: dict[str, list[str]] = field(default_factory=dict)

    def keyword_hits(self, name: str) -> frozenset[int]:
        """Keyword ids found in field ``name`` (scanned once, on first use)."""
        hits = self._hits.get(name)
        if hits is None:
            hits = self._hits[name] = self.index.scan(self.facts.text(name, normalized=True))
        return hits


Test = Callable[[Scan], bool]


@dataclass(frozen=True, slots=True)
class Predicate:
    """A built predicate: its test, a short description, and its keyword guard.

    ``guard`` is a set of keyword ids of which at least one must occur in the mail for the
    predicate to be true (None: it can be true without any keyword). The engine uses it to
    skip rules whose keywords are absent, so 2,000 rules cost little more than 20.
    """

    label: str
    test: Test
    guard: frozenset[int] | None = None
    domains: frozenset[str] | None = None


Builder = Callable[[Any, Mapping[str, Any], str, KeywordIndex], Predicate]


def build(spec: Any, path: str, index: KeywordIndex) -> Predicate:
    """Build the predicate tree at ``path`` (e.g. ``rules[3].when``)."""
    if not isinstance(spec, Mapping) or not spec:
        raise ConfigError(path, "a predicate must be a non-empty table")
    names = [k for k in spec if k in BUILDERS]
    if len(names) != 1:
        modifiers = {m for ms in MODIFIERS.values() for m in ms}
        unknown = next((k for k in spec if k not in BUILDERS and k not in modifiers), None)
        if unknown is not None:
            raise ConfigError(path, f"unknown predicate {unknown!r}")
        raise ConfigError(path, f"exactly one predicate per table, got {names or 'none'}")
    for key in spec:
        if key != names[0] and key not in MODIFIERS.get(names[0], ()):
            raise ConfigError(f"{path}.{key}", f"not a modifier of {names[0]!r}")
    return BUILDERS[names[0]](spec[names[0]], spec, path, index)


def _strings(value: Any, path: str, allow_one: bool = True) -> tuple[str, ...]:
    if allow_one and isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not value or not all(isinstance(v, str) for v in value):
        raise ConfigError(path, "expected a non-empty list of strings")
    return tuple(value)


def _fields(spec: Mapping[str, Any], path: str) -> tuple[str, ...]:
    fields = _strings(spec.get("in", list(DEFAULT_FIELDS)), f"{path}.in")
    bad = [f for f in fields if f not in FIELDS]
    if bad:
        raise ConfigError(f"{path}.in", f"unknown field {bad[0]!r} (fields: {', '.join(FIELDS)})")
    return fields


def _tree(kind: str) -> Builder:
    def builder(value: Any, _spec: Mapping[str, Any], path: str, index: KeywordIndex) -> Predicate:
        where = f"{path}.{kind}"
        if kind == "not":
            inner = build(value, where, index)
            return Predicate(f"not({inner.label})", lambda s: not inner.test(s))
        if not isinstance(value, list) or not value:
            raise ConfigError(where, "expected a non-empty list of predicates")
        parts = tuple(build(v, f"{where}[{i}]", index) for i, v in enumerate(value))
        tests = tuple(p.test for p in parts)
        if kind == "all":
            def test(s: Scan) -> bool:
                return all(t(s) for t in tests)
        else:
            def test(s: Scan) -> bool:
                return any(t(s) for t in tests)
        return Predicate(f"{kind}({', '.join(p.label for p in parts)})", test,
                         _guard(kind, parts), _domains(kind, parts))
    return builder


def _domains(kind: str, parts: tuple[Predicate, ...]) -> frozenset[str] | None:
    """Like :func:`_guard`, for sender-domain guards."""
    found = [p.domains for p in parts]
    if kind == "all":
        present = [d for d in found if d is not None]
        return min(present, key=len) if present else None
    if any(d is None for d in found):
        return None
    return frozenset().union(*(d for d in found if d is not None))


def _guard(kind: str, parts: tuple[Predicate, ...]) -> frozenset[int] | None:
    """``all``: any one child's guard is necessary; ``any``: the union, if every child has one."""
    guards = [p.guard for p in parts]
    if kind == "all":
        present = [g for g in guards if g is not None]
        return min(present, key=len) if present else None
    if any(g is None for g in guards):
        return None
    return frozenset().union(*(g for g in guards if g is not None))


def _keywords(value: Any, spec: Mapping[str, Any], path: str, index: KeywordIndex) -> Predicate:
    words = _strings(value, f"{path}.keywords")
    try:
        ids = frozenset(index.add(w) for w in words)
    except ValueError as exc:
        raise ConfigError(f"{path}.keywords", str(exc)) from exc
    fields = _fields(spec, path)
    label = f"keywords[{words[0]}…]" if len(words) > 1 else f"keywords[{words[0]}]"
    if len(fields) == 1:
        only = fields[0]
        return Predicate(label, lambda s: not ids.isdisjoint(s.keyword_hits(only)), ids)
    return Predicate(label, lambda s: any(not ids.isdisjoint(s.keyword_hits(f)) for f in fields),
                     ids)


def _regex(value: Any, spec: Mapping[str, Any], path: str, _index: KeywordIndex) -> Predicate:
    if not isinstance(value, str) or not value:
        raise ConfigError(f"{path}.regex", "expected a regular expression string")
    try:
        pattern = re.compile(value, re.IGNORECASE | re.MULTILINE)
    except re.error as exc:
        raise ConfigError(f"{path}.regex", f"bad regex: {exc}") from exc
    for group in pattern.groupindex:
        if group not in ENTITY_FIELDS and not group.startswith("x_"):
            raise ConfigError(f"{path}.regex", f"capture {group!r} must be an entity field "
                              f"({', '.join(ENTITY_FIELDS)}) or start with x_")
    fields = _fields(spec, path)
    if not pattern.groupindex:  # nothing to capture: stop at the first match
        return Predicate(f"regex[{value[:30]}]", lambda s: any(
            pattern.search(s.facts.text(f)) is not None for f in fields))

    def test(scan: Scan) -> bool:
        hit = False
        for f in fields:
            for m in pattern.finditer(scan.facts.text(f)):
                hit = True
                for group, text in m.groupdict().items():
                    if text:
                        scan.captures.setdefault(group, []).append(text)
        return hit
    return Predicate(f"regex[{value[:30]}]", test)


def _sender(value: Any, _spec: Mapping[str, Any], path: str, _i: KeywordIndex) -> Predicate:
    globs = tuple(g.lower() for g in _strings(value, f"{path}.sender"))
    return Predicate(f"sender[{globs[0]}]",
                     lambda s: any(fnmatch.fnmatchcase(s.facts.sender, g) for g in globs))


def _domain(value: Any, _spec: Mapping[str, Any], path: str, _i: KeywordIndex) -> Predicate:
    domains = tuple(d.lower().lstrip("@") for d in _strings(value, f"{path}.sender-domain"))

    def test(scan: Scan) -> bool:
        own = scan.facts.sender_domain
        return any(own == d or own.endswith("." + d) for d in domains)
    return Predicate(f"sender-domain[{domains[0]}]", test, domains=frozenset(domains))


def _header(value: Any, spec: Mapping[str, Any], path: str, _i: KeywordIndex) -> Predicate:
    if not isinstance(value, str) or not value:
        raise ConfigError(f"{path}.header", "expected a header name")
    equals, matches = spec.get("equals"), spec.get("matches")
    if equals is not None and not isinstance(equals, str):
        raise ConfigError(f"{path}.equals", "expected a string")
    try:
        pattern = re.compile(matches, re.IGNORECASE) if isinstance(matches, str) else None
    except re.error as exc:
        raise ConfigError(f"{path}.matches", f"bad regex: {exc}") from exc

    def test(scan: Scan) -> bool:
        got = scan.facts.header(value)
        if got is None:
            return False
        if equals is not None:
            return got.strip().lower() == equals.strip().lower()
        return pattern.search(got) is not None if pattern else True
    return Predicate(f"header[{value}]", test)


def _language(value: Any, _spec: Mapping[str, Any], path: str, _i: KeywordIndex) -> Predicate:
    langs = _strings(value, f"{path}.language")
    bad = [lang for lang in langs if lang not in LANGUAGES]
    if bad:
        raise ConfigError(f"{path}.language", f"unknown language {bad[0]!r}")
    return Predicate(f"language[{','.join(langs)}]", lambda s: s.facts.language in langs)


def _flag(name: str, getter: Callable[[MailFacts], bool]) -> Builder:
    def builder(value: Any, spec: Mapping[str, Any], path: str, _i: KeywordIndex) -> Predicate:
        if not isinstance(value, bool):
            raise ConfigError(f"{path}.{name}", "expected true or false")
        return Predicate(f"{name}={str(value).lower()}", lambda s: getter(s.facts) is value)
    return builder


def _attachment(value: Any, spec: Mapping[str, Any], path: str, _i: KeywordIndex) -> Predicate:
    if not isinstance(value, bool):
        raise ConfigError(f"{path}.has-attachment", "expected true or false")
    kind = spec.get("type", "*")
    if not isinstance(kind, str):
        raise ConfigError(f"{path}.type", "expected a MIME type glob")

    def test(scan: Scan) -> bool:
        found = any(fnmatch.fnmatchcase(t, kind) for t in scan.facts.attachment_types)
        return found is value
    return Predicate(f"has-attachment[{kind}]={str(value).lower()}", test)


def _entity(value: Any, _spec: Mapping[str, Any], path: str, _i: KeywordIndex) -> Predicate:
    names = _strings(value, f"{path}.entity")
    bad = [n for n in names if n not in ENTITY_FIELDS]
    if bad:
        raise ConfigError(f"{path}.entity", f"unknown entity field {bad[0]!r}")
    return Predicate(f"entity[{','.join(names)}]",
                     lambda s: any(s.facts.entity(n) for n in names))


def _amount(value: Any, spec: Mapping[str, Any], path: str, _i: KeywordIndex) -> Predicate:
    if not isinstance(value, int | float) or isinstance(value, bool):
        raise ConfigError(f"{path}.amount-above", "expected a number")
    limit = Decimal(str(value))
    asset = spec.get("asset")
    if asset is not None and not isinstance(asset, str):
        raise ConfigError(f"{path}.asset", "expected an asset code")
    code = asset.upper() if asset else None
    return Predicate(f"amount-above[{value}{' ' + code if code else ''}]", lambda s: any(
        n > limit and (code is None or c == code) for n, c in s.facts.amounts()))


def _secret(value: Any, _spec: Mapping[str, Any], path: str, _i: KeywordIndex) -> Predicate:
    kinds = SECRET_KINDS if value is True else _strings(value, f"{path}.secret")
    bad = [k for k in kinds if k not in SECRET_KINDS]
    if bad:
        raise ConfigError(f"{path}.secret", f"unknown secret kind {bad[0]!r}")
    return Predicate(f"secret[{','.join(kinds)}]",
                     lambda s: any(k in s.facts.secrets for k in kinds))


BUILDERS: dict[str, Builder] = {
    "all": _tree("all"), "any": _tree("any"), "not": _tree("not"),
    "keywords": _keywords, "regex": _regex, "sender": _sender, "sender-domain": _domain,
    "header": _header, "language": _language, "has-attachment": _attachment,
    "entity": _entity, "amount-above": _amount, "secret": _secret,
    "is-reply": _flag("is-reply", lambda f: f.is_reply),
    "is-machine": _flag("is-machine", lambda f: f.is_machine),
}
MODIFIERS: dict[str, tuple[str, ...]] = {
    "keywords": ("in",), "regex": ("in",), "header": ("equals", "matches"),
    "has-attachment": ("type",), "amount-above": ("asset",),
}
