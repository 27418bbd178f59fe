"""Sender trust: SPF/DKIM/DMARC verdicts from Authentication-Results, sensitive requests,
and the inbound flood limit.

Our MX (or the mailbox provider) records its verdicts in ``Authentication-Results``
(RFC 8601). We read the topmost one, or only those whose authserv-id is
``support.authserv_id`` when that is configured (anything below our own MX may be forged).
A mail that fails authentication and asks for something sensitive (2FA reset, e-mail or
phone change, withdrawal address change) is tagged and never threaded onto an existing
ticket: the request must not ride on someone else's conversation.
"""

from __future__ import annotations

import re

from mailer.ingest.mail import ParsedMail
from mailer.rules.facts import normalize

FAILING = {"fail", "softfail", "permerror"}
_RESULT = re.compile(r"\b(spf|dkim|dmarc)\s*=\s*([a-z]+)", re.IGNORECASE)
SENSITIVE = tuple(normalize(w) for w in (
    "reset 2fa", "reset my 2fa", "reset the 2fa", "disable 2fa", "remove 2fa", "unbind",
    "change my email", "change the login email", "switch the login email", "new email address",
    "change my phone", "withdrawal address", "whitelist address", "address book",
    "重置谷歌", "解绑", "解綁", "更换邮箱", "更換郵箱", "修改邮箱", "更换手机", "提币地址",
    "提幣地址",
    "2段階認証を解除", "メールアドレスを変更", "出金先アドレス",
    "2단계 인증 해제", "이메일 변경", "출금 주소",
    "сбросить 2fa", "отключить 2fa", "сменить почту", "адрес вывода",
    "restablecer 2fa", "desactivar 2fa", "cambiar mi correo", "dirección de retiro",
    "đặt lại 2fa", "tắt 2fa", "đổi email", "địa chỉ rút",
))


def auth_results(mail: ParsedMail, authserv_id: str | None) -> dict[str, str]:
    """``{"spf": "pass", "dkim": "fail", ...}`` from the trusted Authentication-Results."""
    values = [v for k, v in mail.headers if k == "authentication-results"]
    if authserv_id:
        values = [v for v in values if v.split(";", 1)[0].strip().lower() == authserv_id.lower()]
    if not values:
        return {}
    found: dict[str, str] = {}
    for method, result in _RESULT.findall(values[0]):
        found.setdefault(method.lower(), result.lower())
    return found


def auth_failed(results: dict[str, str]) -> bool:
    """Whether any of SPF, DKIM, DMARC failed."""
    return any(results.get(m) in FAILING for m in ("spf", "dkim", "dmarc"))


def is_sensitive(mail: ParsedMail) -> bool:
    """Whether the mail asks for a change an attacker would want."""
    text = normalize(f"{mail.subject}\n{mail.new_text or mail.text}")
    return any(word in text for word in SENSITIVE)
