"""Language of a customer's mail: a fast, deterministic script-and-stopword detector.

The answer is one of :data:`LANGUAGES`, the languages the desk answers in, or None when
there is nothing to decide on. No statistical model: lingua restricted to these languages
costs ~120 MB of RAM, and neither it nor py3langid tells Simplified from Traditional
Chinese, which we need anyway (see notes/pitfalls.md, "Language and keywords").

How a text is decided:

1. Noise that nobody "writes in" is removed first: URLs, e-mail addresses, paths, any
   token holding a digit (TxIDs, 0x addresses, TRC20, 2FA, order numbers),
   all-caps tickers (USDT, BTC/USDT), mobile-client signatures, and the signature block:
   everything from an RFC 3676 ``-- `` delimiter or a closing line ("Best regards,").
2. Letters are counted per script and the script with the most writing wins. One CJK
   character weighs :data:`CJK_WEIGHT` Latin letters (a Chinese word is 1-2 characters,
   an English one 4-5 letters), so 30 Chinese characters beat 5 English words, while an
   English mail signed with a Chinese name stays English.
   Latin words that are evidence of no language (TokenPocket, Polygonscan) lose to any
   CJK or Cyrillic writing.
3. Inside the winning script: Hangul -> ko; Han with some hiragana (every Japanese
   sentence has particles) or mostly katakana -> ja, so that a katakana name inside a
   Chinese sentence stays Chinese; other Han -> zh or zh-Hant by GB2312-versus-Big5
   coverage of each character (ties -> zh); Cyrillic -> ru; Latin -> vi, es or en by
   Vietnamese letters and common words, Spanish marks and stopwords, English stopwords
   (ties go to vi/es: English words leak into other languages more than the reverse);
   Latin text with no evidence at all is taken as English.

Only the first :data:`MAX_CHARS` characters are read, so time is bounded on huge mails,
and every pattern anchors its start so that none backtracks quadratically.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from functools import lru_cache

LANGUAGES = ("zh", "zh-Hant", "en", "ja", "ko", "ru", "es", "vi")

MAX_CHARS = 4000
CJK_WEIGHT = 3
HIRAGANA_SHARE = 0.05  # hiragana / (kana + han) from which Han text is Japanese
KATAKANA_SHARE = 0.3  # katakana / (kana + han) for text without hiragana (a loanword title)
MIN_STRENGTH = 12  # weighted letters below which new_text is too short to trust


def _runs(char_class: str) -> str:
    """A pattern for runs of ``char_class`` that starts with the class (see below)."""
    return f"[{char_class}][{char_class}]*"


# Latin letters, with the accented blocks Spanish and Vietnamese need (no × and ÷).
_L = "A-Za-z\u00c0-\u00d6\u00d8-\u00f6\u00f8-\u024f\u1e00-\u1eff"
# Letters Spanish and English never use: Vietnamese (within our eight languages).
_VI = "ăâđêôơưĩũàèìòùãõýỳ\u1ea0-\u1ef9"
_ES = "ñáéíóúü"

# Every pattern starts with a character class or a literal, so that the regex engine can
# skip ahead to candidates; a leading look-behind makes it try the whole pattern at every
# position (3-10x slower). A look-behind that belongs before the first character comes
# right after it instead: ``X(?<!Y.)``. ASCII classes, not \b or \S: CJK counts as \w.
_URL = re.compile(r"(?:https?://|www\.)[!-~]+")
_PATH = re.compile(r"/(?<![A-Za-z0-9/]/)[A-Za-z0-9._~%-]+(?:/[A-Za-z0-9._~%-]+)+/?")
_EMAIL = re.compile(
    r"[A-Za-z0-9._%+-](?<![A-Za-z0-9._%+-]{2})[A-Za-z0-9._%+-]*+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+"
)
# Any token holding a digit: TxIDs, 0x and base58 addresses, TRC20, 2FA, order numbers.
# Possessive ``*+``: a word without a digit fails in one pass, without backtracking.
_TOKEN = re.compile(
    r"[A-Za-z0-9_-](?<![A-Za-z0-9_-]{2})(?:(?<=[0-9])|[A-Za-z_-]*+[0-9])[A-Za-z0-9_-]*+"
)
# Tickers and acronyms: USDT, BTC/USDT, KYC.
_CAPS = re.compile(r"[A-Z](?<![A-Za-z0-9/._-][A-Z])[A-Z]+(?:[/._-][A-Z]+)*(?![A-Za-z0-9])")
_CLIENT_SIGNATURE = re.compile(
    r"\n[ \t]*(?:sent from my|sent from (?:mail|outlook|yahoo)|get outlook for"
    r"|enviado desde mi|được gửi từ|发自我的|從我的|iPhoneから送信)[^\n]*",
    re.IGNORECASE,
)
# Where a signature starts: the RFC 3676 delimiter, or a closing on a line of its own.
# Names, job titles and company lines below it are no language's evidence, and an English
# signature block would outweigh a short CJK message.
_SIGNATURE_START = re.compile(
    r"\n[ \t]*(?:--[ \t]?|(?:best|kind|warm|warmest)? ?regards|best|best wishes|all the best"
    r"|cheers|thanks|thank you|many thanks|thanks in advance|sincerely|yours (?:sincerely|truly)"
    r"|saludos|un saludo|saludos cordiales|atentamente|cordialmente|(?:muchas )?gracias"
    r"|trân trọng|(?:xin )?cảm ơn|с уважением|спасибо|谢谢|謝謝|此致|敬上"
    r"|よろしくお願い(?:します|いたします|致します)|감사합니다)[ \t]*[,.!，。！]?[ \t\r]*(?=\n|\Z)",
    re.IGNORECASE,
)
_REPLY_PREFIX = re.compile(
    r"^\s*(?:(?:re|fwd?|aw|sv|tr|vs|rv|res|enc|antw|回复|回覆|答复|转发|轉寄|轉發)\s*[:：]\s*)+",
    re.IGNORECASE,
)

_NON_LATIN = re.compile(
    "[\u0400-\u04ff\u1100-\u11ff\u3041-\u30ff\u3131-\u318e\u3400-\u4dbf\u4e00-\u9fff"
    "\uac00-\ud7a3\uf900-\ufaff\uff66-\uff9d\U00020000-\U0003134f]"
)
# Runs, not single characters: far fewer objects for findall to build.
_HANGUL = re.compile(_runs("\uac00-\ud7a3\u1100-\u11ff\u3131-\u318e"))
# Kana without the middle dot U+30FB, which Chinese text uses too.
_HIRAGANA = re.compile(_runs("\u3041-\u3096\u309d\u309e"))
_KATAKANA = re.compile(_runs("\u30a1-\u30fa\u30fc-\u30fe\u31f0-\u31ff\uff66-\uff9d"))
_HAN = re.compile(_runs("\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0003134f"))
_CYRILLIC = re.compile(_runs("\u0400-\u04ff"))

_WORD = re.compile(f"[{_L}][{_L}]*(?:'[{_L}]+)*")
# From a word's first mark to its end: one match per marked word.
_VI_WORD = re.compile(f"[{_VI}][{_L}]*")
_ES_WORD = re.compile(f"[{_ES}¿¡][{_L}]*")


def _wordset(words: str) -> frozenset[str]:
    """A frozenset from whitespace-separated words (lists of 100 quoted words are noise)."""
    return frozenset(words.split())


# Words shared by two of the languages (a, me, no, he, an, so, do ...) are left out.
_EN_WORDS = _wordset(
    """the and to my is of i it for you have not was on account please this that with
    from but be are been has had does did we your our they there what why how when where
    which who can could would should will just any yet still since after before about if
    or at by as all get got out up its it's i'm i've i'll can't don't didn't doesn't isn't
    won't haven't hasn't wasn't there's am were being into than then them their some more
    very never always today yesterday now here know let hi hello dear thanks thank regards
    best kindly sincerely help need want received sent again also only us anything
    nothing something tried trying"""
)
_ES_WORDS = _wordset(
    """de la que el en los las mi por para con una es se del al pero cuenta retiro un lo
    su sus y o le les mis esta este esto está están estoy ya muy sin sobre hasta desde
    cuando como cómo qué porque hola gracias saludos buenos buenas días tardes noches
    ayuda favor necesito quiero tengo puedo pueden hay fue han ha he hice todavía aún
    también nada ningún ninguna dinero fondos saldo depósito billetera dirección usted
    ustedes equipo cuál sí ni nos envié recibí funciona llegó recibido aparece aparecen
    puede hacer"""
)
# Common Vietnamese words as written without diacritics (the diacritic forms are caught
# by their letters); forms that are also English or Spanish words are left out.
_VI_WORDS = _wordset(
    """toi khong duoc cua nhung chua nhan tien rut nap tai khoan giup kiem tra xin chao
    cam vui nay lam sao nhe dang lenh giao dich minh bao gio van thi nguoi cho bi vi ve
    cac nhieu mot ngay thang khi neu nen vay nao gi dau hoan phi anh chi em oi roi voi
    duoi tren truoc dien thoai xac du sau hien"""
)


@dataclass(frozen=True, slots=True)
class _Verdict:
    """A decision and how much writing backs it (in weighted letters)."""

    language: str | None
    strength: int


def detect_language(text: str) -> str | None:
    """The language of ``text`` among :data:`LANGUAGES`; None if there is nothing to go on."""
    return _judge(text).language


def detect_for_mail(subject: str, new_text: str, full_text: str) -> str | None:
    """The language of a mail: its subject and new text, else the whole text if too short."""
    subject = _REPLY_PREFIX.sub("", subject[:MAX_CHARS], count=1)
    first = _judge(f"{subject}\n{new_text}")
    if first.strength >= MIN_STRENGTH or full_text == new_text:
        return first.language
    second = _judge(f"{subject}\n{full_text}")
    return second.language if second.strength > first.strength else first.language


def _judge(text: str) -> _Verdict:
    """The verdict on a raw text; tickers are ignored unless they are all there is."""
    text = _strip_noise(text)
    verdict = _decide(_CAPS.sub(" ", text).lower())
    if verdict.language is None:  # all capitals: shouting, or only tickers ("USDT TRC20")
        shouted = _decide(text.lower())
        if shouted.strength:
            return shouted
    return verdict


def _strip_noise(text: str) -> str:
    """``text`` without what nobody writes in: links, addresses, ids, signatures."""
    text = unicodedata.normalize("NFC", text[:MAX_CHARS]).replace("\u2019", "'")
    text = _body(f"\n{text}")
    if "@" in text:
        text = _EMAIL.sub(" ", text)
    if "/" in text:
        text = _PATH.sub(" ", _URL.sub(" ", text))
    elif "www." in text:
        text = _URL.sub(" ", text)
    return _TOKEN.sub(" ", _CLIENT_SIGNATURE.sub(" ", text))


def _body(text: str) -> str:
    """``text`` without its signature block, unless nothing comes before the block."""
    m = _SIGNATURE_START.search(text)
    if m is None or not text[: m.start()].strip():
        return text
    return text[: m.start()]


def _decide(text: str) -> _Verdict:
    """The verdict on a cleaned, lower-cased text: the script with most writing wins.

    Latin words with no evidence of any language (TokenPocket, Polygonscan) are names and
    jargon, not writing: they lose to any CJK or Cyrillic text however short.
    """
    words = _WORD.findall(text)
    letters = sum(map(len, words))
    other = _non_latin(text) if _NON_LATIN.search(text) else _Verdict(None, 0)
    if other.language and other.strength >= letters:
        return other
    latin = _latin(text, words, letters)
    return latin if latin.strength or other.language is None else other


def _non_latin(text: str) -> _Verdict:
    """CJK or Cyrillic, whichever has more (weighted) letters."""
    hangul = _count(_HANGUL, text)
    hiragana = _count(_HIRAGANA, text)
    kana = hiragana + _count(_KATAKANA, text)
    han = "".join(_HAN.findall(text))
    cjk = CJK_WEIGHT * (hangul + kana + len(han))
    cyrillic = _count(_CYRILLIC, text)
    if cjk and cjk >= cyrillic:
        return _Verdict(_cjk_language(hangul, hiragana, kana, han), cjk)
    return _Verdict("ru" if cyrillic else None, cyrillic)


def _count(runs: re.Pattern[str], text: str) -> int:
    return sum(map(len, runs.findall(text)))


def _cjk_language(hangul: int, hiragana: int, kana: int, han: str) -> str:
    if hangul >= len(han) + kana:
        return "ko"
    han_and_kana = kana + len(han)
    if hiragana and hiragana >= HIRAGANA_SHARE * han_and_kana:
        return "ja"
    if kana and kana >= KATAKANA_SHARE * han_and_kana:
        return "ja"
    return "zh-Hant" if sum(map(_han_lean, han)) < 0 else "zh"


@lru_cache(maxsize=16384)
def _han_lean(char: str) -> int:
    """+1 for a Simplified-only character (GB2312 not Big5), -1 for Traditional-only."""
    simplified = _encodes(char, "gb2312")
    traditional = _encodes(char, "big5")
    return int(simplified and not traditional) - int(traditional and not simplified)


def _encodes(char: str, codec: str) -> bool:
    try:
        char.encode(codec)
    except UnicodeEncodeError:
        return False
    return True


def _latin(text: str, words: list[str], letters: int) -> _Verdict:
    """Vietnamese, Spanish or English, on a lower-cased text and its words."""
    if not letters:
        return _Verdict(None, 0)
    scores = (
        (_vietnamese_score(text, words), "vi"),
        (_spanish_score(text, words), "es"),
        (sum(map(_EN_WORDS.__contains__, words)), "en"),
    )
    score, language = max(scores, key=lambda s: s[0])  # first maximum: vi, es, en
    return _Verdict(language if score else "en", letters if score else 0)


def _vietnamese_score(text: str, words: list[str]) -> int:
    return len(_VI_WORD.findall(text)) + sum(map(_VI_WORDS.__contains__, words))


def _spanish_score(text: str, words: list[str]) -> int:
    return len(_ES_WORD.findall(text)) + sum(map(_ES_WORDS.__contains__, words))
