"""Split a reply into what the sender just wrote and the quoted history below it.

Rules see only the new part, so an old acknowledgement quoted at the bottom of a reply
cannot trigger anything twice. Markers are recognised for English, Chinese (Simplified and
Traditional, incl. QQ Mail and NetEase), Japanese, Korean, Russian, Spanish and Vietnamese
clients: attribution lines ("On ... wrote:", "... 于 ... 写道：", "... <a@b>:"), possibly
wrapped over two lines; separator lines ("-----Original Message-----", "---- 回复的原邮件 ----");
Outlook header blocks ("From:/Sent:/Subject:", localised); and runs of ``>`` lines.
The text is cut at the first marker; interleaved replies are not reassembled.
"""

from __future__ import annotations

import logging
import re
import unicodedata

log = logging.getLogger(__name__)


def _rx(pattern: str, flags: int = re.IGNORECASE) -> re.Pattern[str]:
    return re.compile(unicodedata.normalize("NFC", pattern), flags)


# A line ending like an attribution: "... wrote:", "... 写道：", "...님이 작성:".
_TERMINATOR = _rx(
    r"(?:wrote|writes|escribió|escribio|escreveu|a\s+écrit|schrieb|ha\s+scritto|schreef|skrev"
    r"|пишет|писал\(а\)|писала?|написал\(а\)|написала?|写道|寫道|書きました|のメッセージ"
    r"|のメール|작성|đã\s+viết)\s*[:：]\s*$"
)
# Gmail in ja/ru/ko/... ends the attribution with the address: "... Name <a@b.example>:".
_ADDR_END = _rx(r"@[^<>\s]+>\)?\s*[:：]\s*$")
# An attribution carries a date, a time or an address; "Here is what I wrote:" does not.
_YEAR = r"(?<!\d)(?:19|20)\d{2}(?!\d)"
_EVIDENCE = _rx(rf"@|\d{{1,2}}:\d{{2}}|{_YEAR}|\d{{1,2}}[./-]\d{{1,2}}[./-]\d{{2,4}}")
_TIME_OR_YEAR = _rx(rf"\d{{1,2}}:\d{{2}}|{_YEAR}")
# An attribution that starts with one of these is complete on its own line.
_INTRO = _rx(r"^(?:on|el|em|le|am|il|op|vào|在|於|于)\s")
_SEPARATOR = _rx(
    r"^(?:[-=_*]{2,}\s*(?:original\s+message|forwarded\s+message|mensaje\s+original"
    r"|mensaje\s+reenviado|message\s+d'origine|message\s+transféré|ursprüngliche\s+nachricht"
    r"|исходное\s+сообщение|пересылаемое\s+сообщение|原始邮件|原始郵件|回复的原邮件|回覆的原郵件"
    r"|转发邮件|轉寄郵件|元のメッセージ|転送されたメッセージ|원본\s*메시지|전달된\s*메시지"
    r"|thư\s+gốc|tin\s+nhắn\s+gốc|thư\s+chuyển\s+tiếp|mensagem\s+original)"
    r"|begin\s+forwarded\s+message\s*:)"
)
_UNDERLINE = _rx(r"^_{8,}$")
_KEY = r"^[|*]?\s*\*?\s*(?:{})\s*\*?\s*[:：|]"
_FROM = _rx(
    _KEY.format(
        r"from|发件人|發件人|寄件者|寄件人|差出人|送信者|보낸\s*사람|от|de|từ|von|da|van|expéditeur"
    )
)
_DATE = _rx(
    _KEY.format(
        r"sent|date|发送时间|發送時間|时间|時間|日期|寄件日期|傳送時間|送信日時|日時|보낸\s*날짜|날짜"
        r"|отправлено|дата|enviado|fecha|đã\s+gửi|ngày(?:\s+gửi)?|gesendet|datum|envoyé|data|inviato"
    )
)
_SUBJECT = _rx(
    _KEY.format(
        r"subject|主题|主題|主旨|件名|제목|тема|asunto|assunto|chủ\s+đề|betreff|objet|oggetto|onderwerp"
    )
)
_BLOCK_LINES = 8
_MAX_ATTRIBUTION = 400  # longer lines are not attributions; also bounds regex work


def split_reply(text: str) -> tuple[str, str]:
    """Return ``(new_text, quoted_history)``; ``("", text)`` when nothing new was written."""
    lines = text.splitlines(keepends=True)
    probe = _probe_lines(text, lines)
    cut = _find_marker(probe, 0)
    if cut is None:
        return text.rstrip(), ""
    new = "".join(lines[:cut]).rstrip()
    if new.strip():
        return new, "".join(lines[cut:])
    return _bottom_posted(lines, probe, cut) or ("", text)


def _probe_lines(text: str, lines: list[str]) -> list[str]:
    """Stripped lines in NFC for matching (NFC never adds or removes line breaks)."""
    if not unicodedata.is_normalized("NFC", text):
        lines = unicodedata.normalize("NFC", text).splitlines()
    return [line.strip() for line in lines]


def _bottom_posted(lines: list[str], probe: list[str], cut: int) -> tuple[str, str] | None:
    """A reply written below a leading ``>`` quote: the unquoted lines after it are new."""
    end = cut + 1 if not probe[cut].startswith(">") else cut
    start = end
    while end < len(probe) and (not probe[end] or probe[end].startswith(">")):
        end += 1
    if not any(line.startswith(">") for line in probe[start:end]):
        return None
    stop = _find_marker(probe, end)
    stop = len(lines) if stop is None else stop
    new = "".join(lines[end:stop]).strip()
    return (new, "".join(lines[:end] + lines[stop:])) if new else None


def _find_marker(probe: list[str], start: int) -> int | None:
    """Index of the first line that starts quoted history, or None."""
    for i in range(start, len(probe)):
        line = probe[i]
        if not line:
            continue
        first, last = line[0], line[-1]
        if first == ">":
            return _quote_start(probe, i, start)
        if first in "-=_*bB" and _separator_at(probe, i):
            return i
        if last in ":：" and _is_attribution(line):
            found = _attribution_start(probe, i, start)
            if found is not None:
                return found
        if (":" in line or "：" in line or "|" in line) and _header_block_at(probe, i):
            return i
    return None


def _separator_at(probe: list[str], i: int) -> bool:
    if _SEPARATOR.match(probe[i]):
        return True
    if not _UNDERLINE.match(probe[i]):
        return False
    following = [line for line in probe[i + 1 : i + 4] if line]
    return bool(following) and bool(_FROM.match(following[0]))


def _is_attribution(line: str) -> bool:
    if len(line) > _MAX_ATTRIBUTION:
        return False
    if _TERMINATOR.search(line):
        return True
    return bool(_ADDR_END.search(line))


def _attribution_start(probe: list[str], i: int, floor: int) -> int | None:
    """Start of an attribution ending at line i; Gmail wraps long ones over two lines."""
    line, prev = probe[i], probe[i - 1] if i > floor else ""
    wrapped = (
        bool(prev)
        and not _INTRO.match(line)
        and prev[-1] not in ":：.!?。！？"
        and (_INTRO.match(prev) is not None or i - 1 == floor or not probe[i - 2])
        and len(prev) + len(line) < 300
    )
    text = f"{prev} {line}" if wrapped else line
    needs = _EVIDENCE if _TERMINATOR.search(line) else _TIME_OR_YEAR
    if not needs.search(text):
        return None
    return i - 1 if wrapped else i


def _quote_start(probe: list[str], i: int, floor: int) -> int:
    """A ``>`` run starts the history; an attribution just above it belongs to it."""
    j = i - 1
    while j >= floor and j >= i - 2 and not probe[j]:
        j -= 1
    if j < floor or not probe[j] or probe[j][-1] not in ":：" or len(probe[j]) > _MAX_ATTRIBUTION:
        return i
    if not (_TERMINATOR.search(probe[j]) or _EVIDENCE.search(probe[j])):
        return i
    found = _attribution_start(probe, j, floor)
    return j if found is None else found


def _header_block_at(probe: list[str], i: int) -> bool:
    """An Outlook/QQ/NetEase style header block: From plus Date/Sent plus Subject."""
    if not _FROM.match(probe[i]):
        return False
    block: list[str] = []
    for line in probe[i + 1 : i + 1 + 2 * _BLOCK_LINES]:
        if not line and block and not block[-1]:
            break  # two blank lines end the block; one is allowed (Outlook HTML <p> lines)
        block.append(line)
    has_date = any(_DATE.match(line) for line in block)
    return has_date and any(_SUBJECT.match(line) for line in block)
