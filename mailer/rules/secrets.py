"""Find the secrets customers paste into mail and replace them before anything is stored.

Kinds, strongest first: ``mnemonic``, ``private_key`` (both critical: funds are exposed),
``api_secret``, ``2fa_backup_code``, ``password``. Only the secret is replaced
(``"비밀번호: [REDACTED: password]"``); the label stays so an agent sees what was there.
Decisions, made for zero false redactions on ordinary mail:

- BIP-39: a run of >= 12 English-list words (any case) joined only by spaces, commas, line
  breaks, HTML breaks or numbering (``1. abandon 2. ability``, ``1) ...``, ``1-abandon``).
  It is redacted when a window of 12/15/18/21/24 of its words has a valid checksum, or, with
  a bad checksum, when it is numbered or follows a seed label (a mistyped seed is still a
  leaked seed). Unlabelled, unnumbered, bad checksum: not redacted. In 1.4 M words of English
  prose the longest run of list words was 9.
- Private keys: WIF, ``xprv``/``yprv``/``zprv``/``tprv`` (base58check-validated) and PEM
  blocks anywhere; a 64-hex or other long key-like token only after a private-key label in
  one of our languages (an unlabelled 64-hex is a txid).
- Passwords, API secrets, passphrases, 2FA backup codes: the value after a label and a
  separator (``:``, ``is``, ``是``, ``는`` ...). A bare value must look like a secret (digits,
  symbols or inner capitals); a plain word counts only quoted, or after a colon when it ends
  the line. API *keys* are identifiers support needs for logs and are kept; only the secret
  half of a key pair is redacted.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from mailer.rules.addresses import find_mnemonics, find_private_keys

KINDS = ("mnemonic", "private_key", "api_secret", "2fa_backup_code", "password")
CRITICAL = frozenset({"mnemonic", "private_key"})

_SEED_LABEL = re.compile(
    r"(?i)seed|mnemonic|recovery\s+(?:phrase|words)|secret\s+(?:recovery\s+)?phrase|"
    r"backup\s+phrase|(?:12|24)[\s-]words?|助记词|助記詞|种子|種子|シード|ニーモニック|"
    r"復元フレーズ|リカバリーフレーズ|시드|니모닉|복구\s*(?:구문|문구)|сид|мнемони|"
    r"секретн\w*\s+фраз|фраз\w*\s+восстановлени|semilla|frase\s+de\s+recuperaci[oó]n|"
    r"cụm\s+từ|từ\s+khôi\s+phục"
)
# Label vocabularies, lower case. Latin and Cyrillic labels must start a word; CJK labels
# may follow anything ("API密钥"). Each pattern is one group of ``_LABELS``.
_LABEL_WORDS = {
    "private_key": (
        r"priv(?:ate)?[\s_-]*key(?![a-z])|privkey|приватн\w*\s+ключ|закрыт\w*\s+ключ|"
        r"clave\s+privada|llave\s+privada|chave\s+privada|clé\s+privée|privater?\s+schlüssel|"
        r"khóa\s+(?:riêng|bí\s+mật)",
        r"私钥|私鑰|秘密鍵|プライベートキー|개인\s*키|프라이빗\s*키|비밀\s*키",
    ),
    "two_fa": (
        r"backup\s+(?:codes?|keys?)(?![a-z])|recovery\s+(?:codes?|keys?)(?![a-z])|"
        r"emergency\s+codes?(?![a-z])|2fa\s+(?:secret|key|seed)(?![a-z])|"
        r"totp\s+(?:secret|key|seed)(?![a-z])|authenticator\s+(?:secret|key)(?![a-z])|"
        r"setup\s+key(?![a-z])|резервн\w*\s+(?:код|ключ)|код\w*\s+восстановлени|"
        r"códigos?\s+de\s+(?:respaldo|recuperaci[oó]n|reserva)|"
        r"codigos?\s+de\s+(?:respaldo|recuperacion|reserva)|clave\s+de\s+respaldo|"
        r"mã\s+(?:dự\s+phòng|khôi\s+phục|sao\s+lưu)|khóa\s+(?:dự\s+phòng|sao\s+lưu)",
        r"备用码|备份码|恢复码|备用代码|备份密钥|验证器密钥|備用碼|備份碼|恢復碼|備份密鑰|驗證器密鑰|"
        r"バックアップコード|リカバリーコード|バックアップキー|復旧コード|백업\s*(?:코드|키)|"
        r"복구\s*(?:코드|키)",
    ),
    "passphrase": (r"pass[\s_-]?phrase(?![a-z])", r"パスフレーズ|암호\s*문구"),
    "api_secret": (
        r"secret(?:[\s_-]*key)?(?![a-z])|секретн\w*\s+ключ|clave\s+secreta|chave\s+secreta",
        r"密钥|密鑰|秘钥|秘鑰|シークレット(?:キー)?|시크릿\s*키",
    ),
    "password": (
        r"(?:password|passwort|passwd|kennwort|senha|şifre|contraseña|contrasena|mot\s+de\s+passe)"
        r"(?<!one-time password)(?![a-z])|pass(?=\s*[:：=])|pwd?(?=\s*[:：=])|пароль|"
        r"clave(?![a-z])(?!\s*(?:privada|p[uú]blica|secreta|api|de\s+api|de\s+respaldo))|"
        r"mật\s*khẩu",
        r"密码|密碼|口令|パスワード|暗証番号|비밀번호|비번|패스워드",
    ),
}
# Matched on the lower-cased text, one flat alternation per script: named groups and re.I
# would make the scan several times slower on long mails.
_LATIN_LABELS = re.compile(
    r"(?<![a-zа-яё])(?:" + "|".join(latin for latin, _ in _LABEL_WORDS.values()) + ")"
)
_CJK_LABELS = re.compile("|".join(cjk for _, cjk in _LABEL_WORDS.values()))
_LABEL_KINDS = tuple(
    (name, re.compile(f"{latin}|{cjk}")) for name, (latin, cjk) in _LABEL_WORDS.items()
)
_QUALIFIER = re.compile(
    r"[ \t]*(?:\([^()\n]{0,30}\)|(?:of|for|on|from|to|de|del|для|от|của)[ \t]+(?:my|the|mi|моего)?"
    r"[ \t]*\w+(?:[ \t]+\w+)?(?=[ \t]*[:：=]))?"
)
_SEPARATOR = re.compile(
    r"[ \t]*(?:(?P<colon>[:：=＝])|(?P<word>(?:is|was|are|es|son|era|est|ist|é|là|—|–)(?=[ \t])|"
    r"是|为|為|は|는|은|이|가))?[ \t]*(?:<[^<>\n]{0,40}>|&nbsp;)*"
)
_QUOTED = re.compile(r"[\"'“‘「『«]([^\"'”’」』»\n]{4,128})[\"'”’」』»]")
_BARE = re.compile(
    r"[^\s\"'“”‘’«»「」『』<>()\[\]{}（）【】，。、；：！？\u3000-\u30ff\u3400-\u9fff\uac00-\ud7af]+"
)
_LONG_TOKEN = re.compile(r"(?<![0-9A-Za-z])[0-9A-Za-z+/=_-]{16,}(?![0-9A-Za-z])")
_KEY_TOKEN = re.compile(r"(?<![0-9A-Za-z])(?:0x)?[0-9A-Za-z+/=]{32,}(?![0-9A-Za-z])")
_CODE_TOKEN = re.compile(
    r"(?<![0-9A-Za-z])(?:[A-Z2-7]{4}(?:[ -][A-Z2-7]{4}){3,7}|[A-Z2-7]{16,32}|"
    r"(?=[0-9A-Za-z-]*\d)[0-9A-Za-z]{3,10}(?:-[0-9A-Za-z]{3,10}){0,3})(?![0-9A-Za-z])"
)
_HEX_KEY = re.compile(r"(?:0x)?[0-9a-fA-F]{64}")
_OPEN_QUOTES = "\"'`“‘「『«"
_VALUE_GAP = re.compile(r"(?:[ \t,;/|]+|\n|\d{1,2}[.)](?=[ \t])|[-*•](?=[ \t])){0,12}")
_NOT_PASSWORD = re.compile(
    r"^[*•●xX#.·-]+$|@.+\.|://|^www\.|^\d{4}-\d{2}-\d{2}|^\d{1,2}[/.]\d{1,2}[/.]"
)


@dataclass(frozen=True, slots=True)
class Redaction:
    """A text with its secrets replaced, and the kinds found (never the secrets)."""

    text: str
    kinds: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class SecretSpan:
    """Where one secret is in a text, and its kind."""

    start: int
    end: int
    kind: str


def redact(text: str) -> Redaction:
    """Replace every secret in ``text`` by ``[REDACTED: <kind>]``."""
    # Canonically equivalent text, so composed labels match decomposed input (mật khẩu).
    text = unicodedata.normalize("NFC", text)
    spans = find_secrets(text)
    if not spans:
        return Redaction(text, ())
    out, last = [], 0
    for span in spans:
        out += [text[last : span.start], f"[REDACTED: {span.kind}]"]
        last = span.end
    out.append(text[last:])
    return Redaction("".join(out), tuple(dict.fromkeys(s.kind for s in spans)))


def is_critical(kinds: Iterable[str]) -> bool:
    """Whether a seed phrase or a private key was among the secrets seen."""
    return any(kind in CRITICAL for kind in kinds)


def find_secrets(text: str) -> list[SecretSpan]:
    """Non-overlapping secret spans in ``text``, in order (overlaps keep the strongest kind)."""
    keys = [SecretSpan(start, end, "private_key") for start, end in find_private_keys(text)]
    found = [*_mnemonic_spans(text), *keys, *_labelled(text)]
    found.sort(key=lambda s: (s.start, -s.end))
    merged: list[SecretSpan] = []
    for span in found:
        if merged and span.start < merged[-1].end:
            top = merged.pop()
            kind = min(top.kind, span.kind, key=KINDS.index)
            span = SecretSpan(top.start, max(top.end, span.end), kind)
        merged.append(span)
    return merged


# -- BIP-39 mnemonics -------------------------------------------------------------------------


def _mnemonic_spans(text: str) -> Iterator[SecretSpan]:
    for run in find_mnemonics(text):
        labelled = _SEED_LABEL.search(text, max(0, run.start - 100), run.start)
        if run.checksum_ok or run.numbered or labelled:
            yield SecretSpan(run.start, run.end, "mnemonic")


# -- values after a label --------------------------------------------------------------------


def lowered(text: str) -> str:
    """``text.lower()`` with offsets unchanged (``"İ".lower()`` is two characters long)."""
    low = text.lower()
    if len(low) == len(text):
        return low
    return "".join(c.lower() if len(c.lower()) == 1 else c for c in text)


def _labelled(text: str) -> Iterator[SecretSpan]:
    low = lowered(text)
    for label in [*_LATIN_LABELS.finditer(low), *_CJK_LABELS.finditer(low)]:
        qualifier = _QUALIFIER.match(low, label.end())
        sep = _SEPARATOR.match(low, qualifier.end() if qualifier else label.end())
        if sep is None:  # never: every part of the pattern is optional
            continue
        strength = "colon" if sep["colon"] else "word" if sep["word"] else "none"
        if strength == "none" and label.group().isascii() and sep.end() == label.end():
            continue  # "password-protected", "passwords"
        start = sep.end()
        if strength == "colon" and text[start : start + 1] in ("\n", "\r", ""):
            start = len(text) - len(text[start:].lstrip())
        yield from _values(text, start, _label_kind(low, label), strength)


def _label_kind(low: str, label: re.Match[str]) -> str:
    """Which vocabulary a label came from (the first that matches it, as in ``_LABEL_WORDS``)."""
    for name, pattern in _LABEL_KINDS:
        match = pattern.match(low, label.start())
        if match is not None and match.end() == label.end():
            return name
    return "password"


def _values(text: str, start: int, group: str, strength: str) -> Iterator[SecretSpan]:
    if group == "private_key":
        yield from _token_list(text, start, _KEY_TOKEN, "private_key", limit=1)
    elif group == "api_secret":
        yield from _token_list(text, start, _LONG_TOKEN, "api_secret", limit=3)
    elif group == "two_fa":
        yield from _token_list(text, start, _CODE_TOKEN, "2fa_backup_code", limit=16)
    else:
        kind = "api_secret" if group == "passphrase" else "password"
        span = _password(text, start, strength)
        if span is not None:
            yield SecretSpan(*span, kind)


def _token_list(
    text: str, pos: int, pattern: re.Pattern[str], kind: str, *, limit: int
) -> Iterator[SecretSpan]:
    """Consecutive tokens from ``pos`` (codes in a list, the two halves of a key pair)."""
    if text[pos : pos + 1] and text[pos] in _OPEN_QUOTES:
        pos += 1
    for _ in range(limit):
        match = pattern.match(text, pos)
        if match is None or not _random_looking(match.group(), kind):
            return
        yield SecretSpan(*match.span(), kind)
        gap = _VALUE_GAP.match(text, match.end())
        pos = gap.end() if gap else match.end()


def _random_looking(token: str, kind: str) -> bool:
    """Secrets mix character classes; a long plain word is not one."""
    if kind == "2fa_backup_code":
        return len(token.replace("-", "").replace(" ", "")) >= 6
    if _HEX_KEY.fullmatch(token):
        return True  # a 64-hex key may, rarely, hold no digit
    return sum(any(map(test, token)) for test in (str.isdigit, str.islower, str.isupper)) >= 2


def _password(text: str, start: int, strength: str) -> tuple[int, int] | None:
    quoted = _QUOTED.match(text, start)
    if quoted is not None:
        return quoted.span(1)
    bare = _BARE.match(text, start)
    if bare is None:
        return None
    end = bare.end() - (len(bare.group()) - len(bare.group().rstrip(".,;:")))
    token = text[start:end]
    if len(token) < 4 or _NOT_PASSWORD.search(token):
        return None
    if not token[0].isalnum() and strength != "colon":  # "password-protected"
        return None
    newline = text.find("\n", end)
    line_end = not text[end : newline if newline >= 0 else len(text)].strip()
    if _strong(token) or (strength == "colon" and line_end and len(token) >= 6):
        return start, end
    return None


def _strong(token: str) -> bool:
    """Password-like: six or more characters with digits, symbols or inner capitals in it."""
    if len(token) < 6:
        return False
    digit = any(c.isdigit() for c in token)
    letter = any(c.isalpha() for c in token)
    symbol = any(not c.isalnum() for c in token)
    inner_caps = any(c.isupper() for c in token[1:]) and any(c.islower() for c in token)
    return digit or (symbol and letter) or inner_caps
