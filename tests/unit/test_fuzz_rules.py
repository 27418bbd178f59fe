"""Hostile text through the rules side: nothing raises, redaction is idempotent and complete.

Random text mixes every script with the things the rules look for (BIP-39 words, hex,
``0x`` strings, amounts, secret labels, quote markers, HTML bits). Checksum-valid seed
phrases are built from Hypothesis-drawn entropy (``Mnemonic.to_mnemonic`` is what
``Mnemonic.generate`` does with random entropy, made reproducible) and inserted anywhere:
every one must be redacted, whatever BIP-39 words stand next to it.
"""

from __future__ import annotations

import re
import time
import unicodedata
from email.message import EmailMessage

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from mnemonic import Mnemonic

from mailer.ingest.htmltext import html_to_text, sanitize_html
from mailer.ingest.parse import parse_mail
from mailer.ingest.quotes import split_reply
from mailer.rules.classify import classify
from mailer.rules.entities import extract_entities
from mailer.rules.language import LANGUAGES, detect_language
from mailer.rules.loader import load_rules
from mailer.rules.secrets import KINDS, find_secrets, redact
from mailer.rules.stage import redact_mail

RULES = load_rules()
BIP39 = Mnemonic("english")
WORDLIST = frozenset(BIP39.wordlist)
FUZZ = settings(deadline=None, suppress_health_check=list(HealthCheck))

_SCRIPTS = st.characters(codec="utf-8", categories=("L", "M", "N", "P", "S", "Z", "Cc"))
_PIECES = st.one_of(
    st.text(_SCRIPTS, max_size=40),
    st.sampled_from(BIP39.wordlist),
    st.text("0123456789abcdefABCDEF", min_size=30, max_size=70),
    st.text("0123456789abcdef", min_size=64, max_size=64).map(lambda h: f"0x{h}"),
    st.text("0123456789abcdefABCDEF", min_size=40, max_size=40).map(lambda h: f"0x{h}"),
    st.from_regex(r"[0-9]{1,3}([.,][0-9]{3}){0,3}([.,][0-9]{1,2})? ?(USDT|BTC|eth|USD|TON|VND)",
                  fullmatch=True),
    st.sampled_from([
        "password: ", "密码：", "비밀번호는 ", "пароль: ", "contraseña: ", "mật khẩu: ",
        "seed:", "助记词：", "private key: ", "私钥 ", "backup codes: ", "API secret:",
        "secret key = ", "passphrase is ", "1. ", "12) ", "\n", "\r\n", " ", "\t", ", ",
        "> ", "On Mon, 1 Jan 2024 at 10:00, a@b.example wrote:\n", "-----Original Message-----\n",
        "From: x\nSent: y\nSubject: z\n", "<br>", "<p>", "</li><li>", "&nbsp;", "<blockquote>",
        "[REDACTED: password]", "[REDACTED: mnemonic]", "İ", "ß", "ﬁ", "\u200b", "\ufeff",
        "\u202e", "１２３", "：", "0x", "txid ", "order no. ", "订单号：", "TRC20", "ERC-20",
        "bc1qar0srrr7xfkvy5l643lydnw9re59gtzzwf5mdq", "1BvBMSEYstWetqTFn5Au4m4GFg7xJaNVN2",
        "5HueCGU8rMjxEXxiPuD5BDku4MkFqeZyd4dZ1jvhTVqvbTLvyTJ", "Abc12345!", "%s%n{0}\\x00",
    ]),
)
TEXTS = st.lists(_PIECES, max_size=30).map("".join)
_LINE_BREAKS = re.compile("[\r\n\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029]")


def _mail_of(text: str) -> bytes:
    msg = EmailMessage()
    msg["From"] = "Customer <customer@example.com>"
    msg["To"] = "support@exchange.example"
    msg["Subject"] = _LINE_BREAKS.sub(" ", text)[:300]
    msg.set_content(text)
    return msg.as_bytes()


@settings(FUZZ, max_examples=250)
@given(TEXTS)
@example("")
@example("abandon " * 300)  # a run longer than any seed list
@example("password: \u0130\u0130\u0130\u0130\u0130\u0130x1")  # "İ".lower() is two characters
def test_nothing_raises(text: str) -> None:
    redact(text)
    entities = extract_entities(text)
    assert all(isinstance(v, list) for v in entities.as_dict().values())
    assert detect_language(text) in (None, *LANGUAGES)
    new, quoted = split_reply(text)
    assert len(new) + len(quoted) <= len(text) + 1
    html_to_text(text)
    sanitize_html(text)
    mail = parse_mail(_mail_of(text))
    redacted, kinds = redact_mail(mail)
    assert set(kinds) <= set(KINDS)
    result = classify(redacted, RULES, is_reply=False, is_machine=False, secrets=kinds)
    assert result.urgency in ("low", "normal", "high", "critical")


@settings(FUZZ, max_examples=300)
@given(TEXTS)
@example("password: [REDACTED: password] Abc12345!")
def test_redact_is_idempotent(text: str) -> None:
    once = redact(text)
    twice = redact(once.text)
    assert twice.text == once.text
    assert twice.kinds == ()
    assert set(once.kinds) <= set(KINDS)


def _checksum_valid_windows(text: str) -> list[str]:
    """Every 12..24-word checksum-valid phrase among list words separated only by blanks or
    commas (an oracle independent of mailer's own search)."""
    found = []
    for run in re.finditer(r"[A-Za-z]+(?:[\s,]+[A-Za-z]+)*", text):
        words = re.findall(r"[A-Za-z]+", run.group())
        for i in range(len(words)):
            for size in (12, 15, 18, 21, 24):
                window = [w.lower() for w in words[i : i + size]]
                if len(window) == size and set(window) <= WORDLIST:
                    phrase = " ".join(window)
                    if BIP39.check(phrase):
                        found.append(phrase)
    return found


_SEPARATORS = st.sampled_from([" ", "  ", "\n", ", ", "\t", " <br>", "numbered"])


def _lay_out(phrase: str, separator: str) -> str:
    words = phrase.split()
    if separator == "numbered":
        return " ".join(f"{i}. {w}" for i, w in enumerate(words, 1))
    return separator.join(words)


@settings(FUZZ, max_examples=300)
@given(TEXTS, TEXTS, st.sampled_from([16, 32]).flatmap(
    lambda n: st.binary(min_size=n, max_size=n)), _SEPARATORS, st.sampled_from([" ", "\n", ": "]))
@example(  # regression: list words before a seed made a chance-valid window win, tail leaked
    "second float mad food save polar", "",
    bytes(BIP39.to_entropy("idea pact engine black egg receive wave onion parrot essence pride "
                           "glimpse")), " ", " ")
def test_inserted_seed_is_always_redacted(
    before: str, after: str, entropy: bytes, separator: str, edge: str
) -> None:
    phrase = BIP39.to_mnemonic(entropy)
    laid_out = _lay_out(phrase, separator)
    before, after = (unicodedata.normalize("NFC", t) for t in (before, after))
    text = f"{before}{edge}{laid_out} {after}"
    start = len(before) + len(edge)
    # Every character of the phrase lies in a mnemonic span.
    spans = [s for s in find_secrets(unicodedata.normalize("NFC", text)) if s.kind == "mnemonic"]
    if unicodedata.is_normalized("NFC", text):
        uncovered = [i for i in range(start, start + len(laid_out))
                     if text[i].isalpha() and not any(s.start <= i < s.end for s in spans)]
        assert not uncovered, f"seed letters left at {uncovered[:5]} in {text!r}"
    result = redact(text)
    assert "mnemonic" in result.kinds
    assert laid_out not in result.text
    assert not _checksum_valid_windows(result.text), result.text


@settings(FUZZ, max_examples=150)
@given(st.lists(st.sampled_from([16, 20, 24, 28, 32]).flatmap(
    lambda n: st.binary(min_size=n, max_size=n)), min_size=2, max_size=4),
    st.sampled_from([" ", "\n", ", "]))
@example(  # regression: a chance-valid 15-word window across two seeds left 9 words in clear
    [bytes(BIP39.to_entropy(p)) for p in (
        "phrase scene fresh season atom rose hundred oil pledge recipe merit second",
        "method ice shiver affair soft dinner perfect trial among cricket club six")], " ")
def test_seeds_back_to_back_are_all_redacted(entropies: list[bytes], separator: str) -> None:
    phrases = [BIP39.to_mnemonic(e) for e in entropies]
    result = redact("my seeds: " + separator.join(phrases) + " thanks")
    assert result.kinds == ("mnemonic",)
    left = set(re.findall(r"[a-z]+", result.text)) - {"my", "seeds", "mnemonic", "thanks"}
    assert not left, result.text


def test_a_megabyte_of_list_words_is_redacted_in_bounded_time() -> None:
    """Regression: every window of a huge run was checksummed (a minute for 20 MB)."""
    text = "please see: " + " ".join(BIP39.wordlist[i % 2048] for i in range(150_000))
    started = time.perf_counter()
    result = redact(text)
    elapsed = time.perf_counter() - started
    assert result.kinds == ("mnemonic",)
    assert result.text == "please see: [REDACTED: mnemonic]"
    assert elapsed < 5.0, f"{elapsed:.1f} s"


def test_hostile_text_mail_classifies_in_bounded_time() -> None:
    text = ("0x" + "ab" * 32 + " 1,000.5 USDT TRC20 密码：Abc12345! " + "İ" * 50 + "\n") * 5_000
    started = time.perf_counter()
    mail = parse_mail(_mail_of(text))
    redacted, kinds = redact_mail(mail)
    classify(redacted, RULES, is_reply=False, is_machine=False, secrets=kinds)
    assert "password" in kinds
    assert time.perf_counter() - started < 10.0
