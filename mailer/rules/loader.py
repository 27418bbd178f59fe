"""Load and validate a rule file (TOML) into a :class:`RuleSet`.

Every problem is a :class:`ConfigError` naming the rule and the path inside it
(``rules[3].when.any[1]: unknown predicate 'form-domain'``), so a rule file that loads
cannot fail at evaluation time.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from mailer.config import read_toml
from mailer.errors import ConfigError
from mailer.rules.engine import CATEGORIES, URGENCIES, Action, Rule, RuleSet
from mailer.rules.keywords import KeywordIndex
from mailer.rules.predicates import DEFAULT_FIELDS, build

DEFAULT_RULES = Path(__file__).with_name("default.toml")
RULE_KEYS = ("name", "when", "set", "stop")
TOP_KEYS = ("version", "categories", "defaults", "lists", "rules")
SET_KEYS = ("category", "urgency", "tags", "queue", "sla", "force")


def load_rules(path: Path | None = None) -> RuleSet:
    """Load ``path`` (default: the shipped pack)."""
    path = path or DEFAULT_RULES
    return parse_rules(read_toml(path, "rules", "rule file"), str(path))


def parse_rules(data: Mapping[str, Any], source: str = "<rules>") -> RuleSet:
    """Validate a decoded rule document."""
    for key in data:
        if key not in TOP_KEYS:
            raise ConfigError(key, f"unknown top-level key ({', '.join(TOP_KEYS)})")
    categories = _categories(data.get("categories", []))
    lists = _lists(data.get("lists", {}))
    raw_rules = data.get("rules", [])
    if not isinstance(raw_rules, list):
        raise ConfigError("rules", "must be an array of tables ([[rules]])")
    index = KeywordIndex()
    rules = tuple(_rule(_expand(r, lists, f"rules[{i}]"), f"rules[{i}]", index, categories)
                  for i, r in enumerate(raw_rules))
    names = [r.name for r in rules]
    dup = next((n for n in names if names.count(n) > 1), None)
    if dup:
        raise ConfigError("rules", f"rule name {dup!r} is used twice")
    defaults = _action(data.get("defaults", {}), "defaults", categories)
    fields = tuple(sorted({f for r in raw_rules if isinstance(r, Mapping)
                           for f in _keyword_fields(r.get("when"))}))
    return RuleSet.build(rules, index, defaults, source, fields)


def _lists(raw: Any) -> dict[str, list[str]]:
    """Named keyword lists (``[lists] frozen = [...]``), used as ``keywords = "@frozen"``."""
    if not isinstance(raw, Mapping):
        raise ConfigError("lists", "must be a table of keyword lists")
    for name, words in raw.items():
        if not isinstance(words, list) or not all(isinstance(w, str) and w for w in words):
            raise ConfigError(f"lists.{name}", "expected a list of non-empty strings")
    return {k: list(v) for k, v in raw.items()}


def _expand(raw: Any, lists: Mapping[str, list[str]], path: str) -> Any:
    """Replace ``"@name"`` entries of keyword lists with the named list's words."""
    if isinstance(raw, Mapping):
        out = {k: _expand(v, lists, f"{path}.{k}") for k, v in raw.items()}
        if "keywords" in out:
            out["keywords"] = _words(out["keywords"], lists, f"{path}.keywords")
        return out
    if isinstance(raw, list):
        return [_expand(v, lists, f"{path}[{i}]") for i, v in enumerate(raw)]
    return raw


def _words(value: Any, lists: Mapping[str, list[str]], path: str) -> Any:
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list):
        return value
    out: list[Any] = []
    for item in items:
        if isinstance(item, str) and item.startswith("@"):
            if item[1:] not in lists:
                raise ConfigError(path, f"unknown keyword list {item!r}")
            out.extend(lists[item[1:]])
        else:
            out.append(item)
    return out


def _keyword_fields(spec: Any) -> set[str]:
    """The text fields that keyword predicates in ``spec`` look at."""
    if isinstance(spec, list):
        return set().union(*(_keyword_fields(s) for s in spec)) if spec else set()
    if not isinstance(spec, Mapping):
        return set()
    trees = (v for k, v in spec.items() if k in ("all", "any", "not"))
    found: set[str] = set().union(*(_keyword_fields(v) for v in trees))
    if "keywords" in spec:
        fields = spec.get("in", list(DEFAULT_FIELDS))
        found |= {fields} if isinstance(fields, str) else set(fields)
    return found


def _categories(extra: Any) -> tuple[str, ...]:
    if not isinstance(extra, list) or not all(isinstance(c, str) and c for c in extra):
        raise ConfigError("categories", "expected a list of extra category names")
    return (*CATEGORIES, *extra)


def _rule(raw: Any, path: str, index: KeywordIndex, categories: tuple[str, ...]) -> Rule:
    if not isinstance(raw, Mapping):
        raise ConfigError(path, "a rule must be a table")
    for key in raw:
        if key not in RULE_KEYS:
            raise ConfigError(f"{path}.{key}", f"unknown key (rule keys: {', '.join(RULE_KEYS)})")
    name = raw.get("name")
    if not isinstance(name, str) or not name.strip():
        raise ConfigError(f"{path}.name", "every rule needs a name")
    where = f"{path} ({name})"
    if "when" not in raw:
        raise ConfigError(f"{where}.when", "is required")
    stop = raw.get("stop", False)
    if not isinstance(stop, bool):
        raise ConfigError(f"{where}.stop", "expected true or false")
    return Rule(name, build(raw["when"], f"{where}.when", index),
                _action(raw.get("set", {}), f"{where}.set", categories), stop)


def _action(raw: Any, path: str, categories: tuple[str, ...]) -> Action:
    if not isinstance(raw, Mapping):
        raise ConfigError(path, "must be a table")
    for key in raw:
        if key not in SET_KEYS:
            raise ConfigError(f"{path}.{key}", f"unknown field (fields: {', '.join(SET_KEYS)})")
    _check_choice(raw.get("category"), categories, f"{path}.category", "category")
    _check_choice(raw.get("urgency"), URGENCIES, f"{path}.urgency", "urgency")
    tags = raw.get("tags", [])
    if not isinstance(tags, list) or not all(isinstance(t, str) and t for t in tags):
        raise ConfigError(f"{path}.tags", "expected a list of tag strings")
    for key in ("queue", "sla"):
        if key in raw and not (isinstance(raw[key], str) and raw[key]):
            raise ConfigError(f"{path}.{key}", "expected a non-empty string")
    if not isinstance(raw.get("force", False), bool):
        raise ConfigError(f"{path}.force", "expected true or false")
    return Action(raw.get("category"), raw.get("urgency"), tuple(tags), raw.get("queue"),
                  raw.get("sla"), raw.get("force", False))


def _check_choice(value: Any, choices: tuple[str, ...], path: str, what: str) -> None:
    if value is not None and value not in choices:
        raise ConfigError(path, f"unknown {what} {value!r} (known: {', '.join(choices)})")
