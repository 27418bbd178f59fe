"""Render outbound mails (subject, plain text, HTML) from the per-language Jinja2 templates.

Security decisions made here:

- The environment is a ``SandboxedEnvironment``: an operator's override template cannot
  reach Python internals (``''.__class__``, ``cycler.__init__.__globals__``), and no global
  or filter gives access to files or configuration.
- ``StrictUndefined``: a missing context key fails loudly instead of mailing a blank.
- Autoescape is on for ``*.html.j2`` only; customer text (subject, body, entities) is
  untrusted and is escaped there. Subjects go through :func:`sanitise_subject`, so a CR/LF
  in a customer's subject can never become a header injection.
- Every Jinja error is translated into :class:`~mailer.errors.ConfigError` naming the
  template, once, here.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jinja2 import (
    BaseLoader,
    ChoiceLoader,
    FileSystemLoader,
    StrictUndefined,
    Template,
    TemplateError,
    TemplatesNotFound,
    select_autoescape,
)
from jinja2.sandbox import SandboxedEnvironment
from markupsafe import Markup, escape

from mailer.errors import ConfigError
from mailer.templates.labels import (
    DEFAULT_LANGUAGE,
    LANGUAGES,
    category_label,
    entity_label,
    known_language,
    response_time,
)

KINDS = ("ack", "reply", "notification")
PARTS = ("subject", "txt", "html")
SUBJECT_MAX = 150
ELLIPSIS = "…"

_SHIPPED_DIR = Path(__file__).resolve().parent
_KIND_RE = re.compile(r"[a-z][a-z0-9_]*")
_TOKEN_RE = re.compile(r"\s*(\[#T-\d+\])$")
# C0/C1 controls, DEL, and the Unicode line/paragraph separators all end a header line
# somewhere; they become spaces before whitespace is collapsed.
_CONTROL_RE = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\u0085]")
_SPACE_RE = re.compile(r"\s+")


@dataclass(frozen=True, slots=True)
class Rendered:
    """One mail ready for the sender: a one-line subject, a text part and an HTML part."""

    subject: str
    text: str
    html: str


class Renderer:
    """Sandboxed Jinja2 renderer; templates in ``override_dir`` win over the shipped ones."""

    def __init__(self, override_dir: Path | None = None) -> None:
        loaders: list[BaseLoader] = []
        if override_dir is not None:
            loaders.append(FileSystemLoader(override_dir))
        loaders.append(FileSystemLoader(_SHIPPED_DIR))
        self._env = SandboxedEnvironment(
            loader=ChoiceLoader(loaders),
            undefined=StrictUndefined,
            autoescape=select_autoescape(["html.j2"], default_for_string=False),
            trim_blocks=True,
            lstrip_blocks=True,
        )
        self._env.filters.update(short=short, nl2br=nl2br)
        self._env.globals.update(
            category_label=category_label, entity_label=entity_label,
            response_time=response_time,
        )

    def render(self, kind: str, language: str | None, context: Mapping[str, Any]) -> Rendered:
        """Render ``kind`` in ``language`` (falling back to en) with ``context``."""
        lang = known_language(language)
        values = dict(context)
        subject, text, html = (
            self._render_part(kind, lang, part, values) for part in PARTS
        )
        return Rendered(subject=sanitise_subject(subject), text=text, html=html)

    def check(self) -> list[str]:
        """Render every shipped kind in every language with a sample; list the problems."""
        return [problem for kind in KINDS for lang in LANGUAGES
                for problem in self._check_one(kind, lang)]

    def _check_one(self, kind: str, language: str) -> Iterator[str]:
        context = sample_context(kind)
        try:
            mail = self.render(kind, language, context)
        except ConfigError as exc:
            yield f"{kind}/{language}: {exc}"
            return
        token = f"[#{context['number']}]"
        if token not in mail.subject:
            yield f"{kind}/{language}: subject lacks {token}: {mail.subject!r}"
        for name, body in (("text", mail.text), ("html", mail.html)):
            if context["number"] not in body:
                yield f"{kind}/{language}: {name} part does not mention {context['number']}"

    def _render_part(self, kind: str, lang: str, part: str, values: dict[str, Any]) -> str:
        template = self._template(kind, lang, part)
        try:
            return template.render(values)
        except TemplateError as exc:
            raise ConfigError("templates", f"{template.name}: {exc}") from exc

    def _template(self, kind: str, lang: str, part: str) -> Template:
        if not _KIND_RE.fullmatch(kind):
            raise ConfigError("templates", f"invalid template kind {kind!r}")
        names = [f"{lang}/{kind}.{part}.j2"]
        if lang != DEFAULT_LANGUAGE:
            names.append(f"{DEFAULT_LANGUAGE}/{kind}.{part}.j2")
        try:
            return self._env.select_template(names)
        except TemplatesNotFound as exc:
            raise ConfigError("templates", f"{names[-1]}: template not found") from exc
        except TemplateError as exc:
            raise ConfigError("templates", f"{' or '.join(names)}: {exc}") from exc


def one_line(text: str) -> str:
    """``text`` with every control character made a space and whitespace collapsed."""
    return _SPACE_RE.sub(" ", _CONTROL_RE.sub(" ", text)).strip()


def short(text: str, n: int) -> str:
    """``text`` on one line, cut to at most ``n`` characters with an ellipsis.

    Latin text is cut at a word boundary when one lies in the second half of the budget;
    text without spaces there (Chinese, Japanese, one long token) is cut mid-run.
    """
    text = one_line(str(text))
    if len(text) <= n:
        return text
    if n <= len(ELLIPSIS):
        return text[:n]
    cut = text[: n - len(ELLIPSIS)]
    space = cut.rfind(" ")
    if space >= len(cut) // 2:
        cut = cut[:space]
    return cut.rstrip(" ,.;:-") + ELLIPSIS


def sanitise_subject(subject: str) -> str:
    """One header-safe line of at most :data:`SUBJECT_MAX` characters, token kept at the end."""
    subject = one_line(subject)
    if len(subject) <= SUBJECT_MAX:
        return subject
    match = _TOKEN_RE.search(subject)
    if match is None:
        return short(subject, SUBJECT_MAX)
    token = match.group(1)
    head = short(subject[: match.start()], SUBJECT_MAX - len(token) - 1)
    return f"{head} {token}"


def nl2br(text: str) -> Markup:
    """Escape plain ``text`` for HTML and turn its line breaks into ``<br>``."""
    lines = str(text).replace("\r\n", "\n").replace("\r", "\n").split("\n")
    return Markup("<br>\n").join(escape(line) for line in lines)


def sample_context(kind: str) -> dict[str, Any]:
    """A complete context for ``kind``, as the outbox would store it; used by :meth:`check`."""
    entities = {
        "txids": ["0x5c504ed432cb51138bcf09aa5e8a410dd4a1e204ef84bfed1be16dfba1b22060"],
        "order_ids": ["884213377"], "addresses": ["0x52908400098527886E0F7030069857D2E4169EE7"],
        "assets": ["USDT"], "networks": ["ERC20"], "amounts": ["1500 USDT"],
    }
    common: dict[str, Any] = {
        "number": "T-000123", "subject": "Deposit not credited", "brand": "Exchange Support",
    }
    if kind == "notification":
        return common | {
            "requester": "alice@example.com", "category": "deposit_missing",
            "urgency": "high", "language": "en", "entities": entities,
            "text": "My deposit has not arrived.", "secret_seen": True,
            "hits": ["deposit-keywords"],
        }
    common |= {"customer_name": "Alice", "anti_phishing_code": "X7K2"}
    if kind == "reply":
        return common | {"body": "Hello,\nyour deposit is credited.", "agent_name": "Bob"}
    return common | {
        "category": "deposit_missing", "entities": entities, "response_hours": 24,
        "secret_seen": True,
    }
