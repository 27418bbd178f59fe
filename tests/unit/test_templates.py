"""Outbound templates: every kind in every language, fallback, escaping, subjects, sandbox."""

from __future__ import annotations

import re

import pytest

from mailer.errors import ConfigError
from mailer.rules.engine import CATEGORIES
from mailer.rules.language import LANGUAGES
from mailer.templates import KINDS, Renderer
from mailer.templates.labels import CATEGORY_LABELS, category_label, response_time
from mailer.templates.render import SUBJECT_MAX, sample_context, sanitise_subject, short

XSS = "<script>alert(1)</script>"
RESPONSE_WORDS = {
    "zh": "24小时内", "zh-Hant": "24小時內", "en": "within 24 hours", "ja": "24 時間以内",
    "ko": "24시간 이내", "ru": "в течение 24 часов", "es": "en un plazo de 24 horas",
    "vi": "trong vòng 24 giờ",
}


@pytest.fixture(scope="module")
def renderer() -> Renderer:
    return Renderer()


@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize("kind", KINDS)
def test_every_kind_renders_in_every_language(renderer, kind, language):
    mail = renderer.render(kind, language, sample_context(kind))
    assert "[#T-000123]" in mail.subject
    assert "T-000123" in mail.text
    assert "T-000123" in mail.html
    assert mail.html.lstrip().startswith("<!DOCTYPE html>")


@pytest.mark.parametrize("language", LANGUAGES)
def test_ack_states_response_time_number_and_category(renderer, language):
    mail = renderer.render("ack", language, sample_context("ack"))
    label = category_label("deposit_missing", language)
    for part in (mail.text, mail.html):
        assert RESPONSE_WORDS[language] in part
        assert "T-000123" in part
        assert label in part
        assert "0x5c504ed432cb51138bcf09aa5e8a410dd4a1e204ef84bfed1be16dfba1b22060" in part
        assert "0x52908400098527886E0F7030069857D2E4169EE7" in part
    assert mail.subject.endswith(" [#T-000123]")


@pytest.mark.parametrize("language", LANGUAGES)
def test_customer_subjects_end_with_token(renderer, language):
    for kind in ("ack", "reply"):
        assert renderer.render(kind, language, sample_context(kind)).subject.endswith(
            "[#T-000123]")


def test_check_finds_no_problems(renderer):
    assert renderer.check() == []


@pytest.mark.parametrize("language", [None, "xx", "de", "../en"])
def test_unknown_language_falls_back_to_en(renderer, language):
    mail = renderer.render("ack", language, sample_context("ack"))
    assert "Thank you for contacting us" in mail.text
    assert 'lang="en"' in mail.html


def test_kind_missing_in_language_falls_back_to_en(renderer):
    mail = renderer.render("notification", "ja", sample_context("notification"))
    assert "#note" in mail.text
    assert mail.subject == "[#T-000123] HIGH deposit_missing: Deposit not credited"


def test_missing_key_raises_config_error_naming_template(renderer):
    context = sample_context("ack")
    del context["number"]
    with pytest.raises(ConfigError, match=r"ja/ack\.subject\.j2: 'number' is undefined") as info:
        renderer.render("ack", "ja", context)
    assert info.value.key == "templates"


def test_missing_template_everywhere_raises_config_error(renderer):
    with pytest.raises(ConfigError, match=r"en/nonexistent\.subject\.j2"):
        renderer.render("nonexistent", "ja", {})


def test_bad_kind_raises_config_error(renderer):
    with pytest.raises(ConfigError, match="invalid template kind"):
        renderer.render("../etc/passwd", "en", {})


@pytest.mark.parametrize("kind", ["ack", "notification"])
def test_html_escapes_customer_subject(renderer, kind):
    context = sample_context(kind) | {"subject": f"help {XSS}"}
    mail = renderer.render(kind, "en", context)
    assert "<script" not in mail.html
    assert "help &lt;script&gt;alert(1)&lt;/script&gt;" in mail.html
    assert XSS in mail.subject  # a header, not HTML: made one line, not escaped


def test_html_escapes_reply_body_and_keeps_line_breaks(renderer):
    context = sample_context("reply") | {"body": f"line one\r\n{XSS}\nline three"}
    mail = renderer.render("reply", "en", context)
    assert "<script" not in mail.html
    assert "line one<br>\n&lt;script&gt;alert(1)&lt;/script&gt;<br>\nline three" in mail.html
    assert XSS in mail.text  # the plain-text part is not HTML: no escaping there


def test_html_escapes_entities_and_notification_text(renderer):
    entities = sample_context("ack")["entities"] | {"order_ids": [XSS]}
    ack = renderer.render("ack", "en", sample_context("ack") | {"entities": entities})
    note = renderer.render("notification", "en", sample_context("notification") | {"text": XSS})
    assert "<script" not in ack.html
    assert "<script" not in note.html


@pytest.mark.parametrize("kind", KINDS)
def test_crlf_in_customer_subject_never_reaches_rendered_subject(renderer, kind):
    context = sample_context(kind) | {"subject": "a\r\nBcc: evil@example.com\rb\nc\x00d\u2028e"}
    subject = renderer.render(kind, "en", context).subject
    assert not re.search(r"[\x00-\x1f\x7f\u2028\u2029]", subject)
    assert "  " not in subject


@pytest.mark.parametrize("language", LANGUAGES)
def test_long_subject_truncated_with_token_intact(renderer, language):
    words = "My withdrawal of 1500 USDT to my hardware wallet is still pending " * 10
    mail = renderer.render("ack", language, sample_context("ack") | {"subject": words})
    assert len(mail.subject) <= SUBJECT_MAX
    assert mail.subject.endswith("… [#T-000123]")
    last_word = mail.subject.removesuffix("… [#T-000123]").split()[-1]
    assert last_word in words.split()  # cut at a word boundary, not mid-word


def test_long_cjk_subject_truncated(renderer):
    mail = renderer.render("ack", "zh", sample_context("ack") | {"subject": "充值未到账" * 40})
    assert len(mail.subject) <= SUBJECT_MAX
    assert mail.subject.endswith("… [#T-000123]")


def test_short_cuts_latin_at_word_boundary():
    assert short("deposit not credited yet", 17) == "deposit not…"
    assert short("short", 80) == "short"
    assert short("a\r\nb", 80) == "a b"
    assert len(short("x" * 100, 10)) == 10


def test_sanitise_subject_keeps_trailing_token():
    subject = sanitise_subject("Re: " + "word " * 60 + "[#T-000042]")
    assert len(subject) <= SUBJECT_MAX
    assert subject.endswith("… [#T-000042]")


@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize("kind", ["ack", "reply"])
def test_anti_phishing_code_shown_only_when_set(renderer, kind, language):
    context = sample_context(kind)
    with_code = renderer.render(kind, language, context | {"anti_phishing_code": "QZ93"})
    without = renderer.render(kind, language, context | {"anti_phishing_code": None})
    assert "QZ93" in with_code.text
    assert "QZ93" in with_code.html
    assert with_code.text.index("QZ93") < with_code.text.index("T-000123")
    assert "QZ93" not in without.text
    assert "QZ93" not in without.html
    assert len(without.text.splitlines()) < len(with_code.text.splitlines())


@pytest.mark.parametrize("language", LANGUAGES)
def test_secret_warning_only_when_secret_seen(renderer, language):
    seen = renderer.render("ack", language, sample_context("ack") | {"secret_seen": True})
    unseen = renderer.render("ack", language, sample_context("ack") | {"secret_seen": False})
    assert "2FA" in seen.text
    assert "#d93025" in seen.html  # the red warning box
    assert "#d93025" not in unseen.html
    assert "!!!" in seen.text
    assert "!!!" not in unseen.text


def test_empty_customer_name_greets_generically(renderer):
    mail = renderer.render("ack", "en", sample_context("ack") | {"customer_name": ""})
    assert "Hello," in mail.text


@pytest.mark.parametrize(
    "source",
    [
        "{{ ''.__class__.__mro__ }}",
        "{{ cycler.__init__.__globals__ }}",
        "{{ ''.__class__.__mro__[1].__subclasses__() }}",
        "{{ self._TemplateReference__context }}",
    ],
)
def test_sandbox_blocks_python_internals(tmp_path, source):
    (tmp_path / "en").mkdir()
    (tmp_path / "en" / "ack.subject.j2").write_text(source, encoding="utf-8")
    with pytest.raises(ConfigError, match=r"en/ack\.subject\.j2"):
        Renderer(tmp_path).render("ack", "en", sample_context("ack"))


def test_sandbox_cannot_include_files_outside_loader(tmp_path):
    (tmp_path / "en").mkdir()
    (tmp_path / "en" / "ack.txt.j2").write_text(
        '{% include "../../../../etc/passwd" %}', encoding="utf-8")
    with pytest.raises(ConfigError, match=r"en/ack\.txt\.j2"):
        Renderer(tmp_path).render("ack", "en", sample_context("ack"))


def test_override_dir_takes_precedence(tmp_path):
    (tmp_path / "es").mkdir()
    (tmp_path / "es" / "ack.subject.j2").write_text(
        "Recibido: {{ subject|short(80) }} [#{{ number }}]", encoding="utf-8")
    mail = Renderer(tmp_path).render("ack", "es", sample_context("ack"))
    assert mail.subject == "Recibido: Deposit not credited [#T-000123]"
    assert "Gracias por contactarnos" in mail.text  # shipped body still used


def test_override_html_is_autoescaped(tmp_path):
    (tmp_path / "en").mkdir()
    (tmp_path / "en" / "reply.html.j2").write_text("{{ body }} {{ number }}", encoding="utf-8")
    mail = Renderer(tmp_path).render("reply", "en", sample_context("reply") | {"body": XSS})
    assert mail.html == "&lt;script&gt;alert(1)&lt;/script&gt; T-000123"


def test_every_category_has_every_language():
    assert set(CATEGORY_LABELS) == set(CATEGORIES)
    for labels in CATEGORY_LABELS.values():
        assert set(labels) == set(LANGUAGES)


def test_response_time_wording():
    assert response_time(1, "en") == "within 1 hour"
    assert response_time(21, "ru") == "в течение 21 часа"
    assert response_time(11, "ru") == "в течение 11 часов"
    assert response_time(1, "es") == "en un plazo de 1 hora"
    assert response_time(48, None) == "within 48 hours"
