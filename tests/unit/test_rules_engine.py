from __future__ import annotations

import pytest

from mailer.errors import ConfigError
from mailer.rules.engine import evaluate
from mailer.rules.facts import MailFacts
from mailer.rules.loader import load_rules, parse_rules


def rules(*specs, **top):
    return parse_rules({"rules": [
        {"name": f"r{i}", **spec} for i, spec in enumerate(specs)], **top})


def decide(ruleset, **facts):
    return evaluate(ruleset, MailFacts(**facts))


def one(when, **facts):
    """Whether a single predicate matches."""
    d = decide(rules({"when": when, "set": {"tags": ["hit"]}}), **facts)
    return "hit" in d.tags


# -- predicates ---------------------------------------------------------------------------

def test_keywords_case_folded_and_word_bounded_for_latin():
    assert one({"keywords": ["Frozen"]}, subject="ACCOUNT FROZEN!")
    assert not one({"keywords": ["frozen"]}, subject="it is unfrozen now")
    assert not one({"keywords": ["api"]}, new_text="a rapid reply")


def test_keywords_substring_for_cjk_and_next_to_cjk():
    assert one({"keywords": ["冻结"]}, new_text="我的账户被冻结了")
    assert one({"keywords": ["usdt"]}, new_text="我的USDT没到账")
    assert one({"keywords": ["ＡＰＩ"]}, new_text="the API is down")  # NFKC: full width


def test_keyword_prefix_star():
    assert one({"keywords": ["withdraw*"]}, subject="Withdrawals pending")
    assert not one({"keywords": ["withdraw"]}, subject="Withdrawals pending")


def test_keywords_respect_the_field():
    assert not one({"keywords": ["frozen"], "in": ["subject"]}, new_text="frozen")
    assert one({"keywords": ["frozen"], "in": ["body"]}, body="> frozen")


def test_regex_captures_into_entities():
    rs = rules({"when": {"regex": r"ticket id[: ]+(?P<order_ids>\d{6,})", "in": "new_text"}})
    d = decide(rs, new_text="Ticket ID: 1234567 and ticket id 7654321")
    assert dict(d.captures)["order_ids"] == ("1234567", "7654321")


@pytest.mark.parametrize(("when", "facts", "want"), [
    ({"sender": ["*@vip.example"]}, {"sender": "a@vip.example"}, True),
    ({"sender": ["*@vip.example"]}, {"sender": "a@vip.example.org"}, False),
    ({"sender-domain": "example.com"}, {"sender": "x@mail.example.com"}, True),
    ({"sender-domain": "example.com"}, {"sender": "x@badexample.com"}, False),
    ({"header": "X-Priority"}, {"headers": (("x-priority", "1"),)}, True),
    ({"header": "X-Priority", "equals": "1"}, {"headers": (("x-priority", "3"),)}, False),
    ({"header": "Subject", "matches": "^re:"}, {"headers": (("subject", "Re: x"),)}, True),
    ({"language": ["zh", "zh-Hant"]}, {"language": "zh-Hant"}, True),
    ({"language": "en"}, {"language": None}, False),
    ({"has-attachment": True}, {"attachment_types": ("image/png",)}, True),
    ({"has-attachment": True, "type": "application/*"}, {"attachment_types": ("image/png",)},
     False),
    ({"entity": "txids"}, {"entities": (("txids", ("ab" * 32,)),)}, True),
    ({"entity": "txids"}, {"entities": (("txids", ()),)}, False),
    ({"amount-above": 1000}, {"entities": (("amounts", ("1500 USDT",)),)}, True),
    ({"amount-above": 1000, "asset": "BTC"}, {"entities": (("amounts", ("1500 USDT",)),)}, False),
    ({"is-reply": True}, {"is_reply": True}, True),
    ({"is-machine": False}, {"is_machine": True}, False),
    ({"secret": ["mnemonic"]}, {"secrets": ("mnemonic",)}, True),
    ({"secret": True}, {"secrets": ()}, False),
    ({"not": {"is-reply": True}}, {"is_reply": False}, True),
    ({"all": [{"is-reply": True}, {"language": "en"}]}, {"is_reply": True, "language": "es"},
     False),
    ({"any": [{"is-reply": True}, {"language": "en"}]}, {"is_reply": False, "language": "en"},
     True),
])
def test_each_predicate(when, facts, want):
    assert one(when, **facts) is want


# -- semantics ----------------------------------------------------------------------------

def test_first_category_wins_and_urgency_only_rises():
    rs = rules({"when": {"keywords": ["a"]}, "set": {"category": "kyc", "urgency": "high"}},
               {"when": {"keywords": ["a"]}, "set": {"category": "api", "urgency": "low"}})
    d = decide(rs, subject="a")
    assert (d.category, d.urgency) == ("kyc", "high")
    assert d.hits == ("r0", "r1")


def test_force_overrides():
    rs = rules({"when": {"keywords": ["a"]}, "set": {"category": "kyc", "urgency": "high"}},
               {"when": {"keywords": ["a"]},
                "set": {"category": "api", "urgency": "low", "force": True}})
    d = decide(rs, subject="a")
    assert (d.category, d.urgency) == ("api", "low")


def test_stop_ends_evaluation_and_misses_are_kept():
    rs = rules({"when": {"keywords": ["zzz"]}, "set": {"tags": ["x"]}},
               {"when": {"keywords": ["a"]}, "set": {"tags": ["y"]}, "stop": True},
               {"when": {"keywords": ["a"]}, "set": {"tags": ["z"]}})
    d = decide(rs, subject="a")
    assert d.tags == ("y",) and d.misses == ("r0",) and d.hits == ("r1",)


def test_defaults_apply_when_nothing_matches():
    rs = rules({"when": {"keywords": ["zzz"]}, "set": {"category": "kyc"}},
               defaults={"category": "general", "urgency": "low"})
    d = decide(rs, subject="hello")
    assert (d.category, d.urgency) == ("general", "low")


def test_named_keyword_lists():
    rs = rules({"when": {"keywords": ["@frozen", "locked"]}, "set": {"tags": ["f"]}},
               lists={"frozen": ["冻结", "frozen"]})
    assert decide(rs, new_text="账户冻结").tags == ("f",)
    assert decide(rs, subject="account locked").tags == ("f",)


# -- loader errors ------------------------------------------------------------------------

@pytest.mark.parametrize(("spec", "where", "what"), [
    ({"name": "a", "when": {"any": [{"keywords": ["x"]}, {"form-domain": "x"}]}},
     "rules[0] (a).when.any[1]", "unknown predicate 'form-domain'"),
    ({"name": "a", "when": {"regex": "(unclosed"}}, "rules[0] (a).when.regex", "bad regex"),
    ({"name": "a", "when": {"regex": "(?P<foo>x)"}}, "rules[0] (a).when.regex", "capture 'foo'"),
    ({"name": "a", "when": {"keywords": ["x"]}, "set": {"category": "nope"}},
     "rules[0] (a).set.category", "unknown category 'nope'"),
    ({"name": "a", "when": {"keywords": ["x"]}, "set": {"urgency": "asap"}},
     "rules[0] (a).set.urgency", "unknown urgency"),
    ({"name": "a", "when": {"keywords": ["x"]}, "set": {"colour": "red"}},
     "rules[0] (a).set.colour", "unknown field"),
    ({"name": "a", "when": {"keywords": ["x"], "in": ["bodyy"]}}, "rules[0] (a).when.in",
     "unknown field 'bodyy'"),
    ({"name": "a", "when": {"language": "fr"}}, "rules[0] (a).when.language", "unknown language"),
    ({"name": "a", "when": {"entity": "iban"}}, "rules[0] (a).when.entity", "unknown entity"),
    ({"name": "a", "when": {"keywords": ["x"], "equals": "1"}}, "rules[0] (a).when.equals",
     "not a modifier"),
    ({"name": "a", "when": {"keywords": "@nolist"}}, "rules[0].when.keywords",
     "unknown keyword list"),
    ({"when": {"keywords": ["x"]}}, "rules[0].name", "needs a name"),
    ({"name": "a"}, "rules[0] (a).when", "required"),
    ({"name": "a", "when": {}}, "rules[0] (a).when", "non-empty"),
    ({"name": "a", "when": {"any": []}}, "rules[0] (a).when.any", "non-empty list"),
])
def test_loader_errors_name_rule_and_path(spec, where, what):
    with pytest.raises(ConfigError) as info:
        parse_rules({"rules": [spec]})
    assert info.value.key == where
    assert what in str(info.value)


def test_duplicate_rule_names_refused():
    spec = {"name": "a", "when": {"keywords": ["x"]}}
    with pytest.raises(ConfigError, match="used twice"):
        parse_rules({"rules": [spec, spec]})


def test_extra_categories_can_be_declared():
    rs = parse_rules({"categories": ["vip"], "rules": [
        {"name": "a", "when": {"keywords": ["x"]}, "set": {"category": "vip"}}]})
    assert decide(rs, subject="x").category == "vip"


def test_shipped_pack_loads_and_covers_the_taxonomy():
    pack = load_rules()
    categories = {r.action.category for r in pack.rules} | {pack.defaults.category}
    assert categories >= {"account_frozen", "login_issue", "deposit_missing", "withdrawal",
                          "security", "kyc", "trading", "api", "promotion", "fees_refund",
                          "feedback", "scam_report", "general"}
    urgencies = {r.action.urgency for r in pack.rules}
    assert urgencies >= {"critical", "high", "normal", "low"}
