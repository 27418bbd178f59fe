"""Reply splitting: the new part of a reply versus the quoted history, in every language."""

from __future__ import annotations

import time

import pytest

from mailer.ingest.quotes import split_reply

NEW = "I still have not received my 0.5 BTC."
QUOTE = "> Greetings,\n>\n> We opened case [#T-200136].\n"


@pytest.mark.parametrize(
    "marker",
    [
        # English (Gmail, Thunderbird, Apple)
        "On Wed, May 22, 2024 at 1:16 PM Exchange Support <support@exchange.example> wrote:",
        "On 21/05/2024 19:25, Exchange Support wrote:",
        # Chinese, Simplified: Gmail, QQ/Foxmail
        "Exchange Customer Care <support@exchange.example> 于2024年5月21日周二 19:25写道：",
        "在 2024年5月21日 19:25，Exchange Support <support@exchange.example> 写道：",
        # Chinese, Traditional
        "於 2024年5月21日 週二 下午7:25，Exchange Support <support@exchange.example> 寫道：",
        # Japanese: Gmail ends with the address, others with のメッセージ / 書きました
        "2024年5月21日(火) 19:25 Exchange <support@exchange.example>:",
        "2024/05/21 19:25、Exchange Support <support@exchange.example>のメッセージ:",
        "2024年5月21日 19:25 Exchange Support さんは書きました:",
        # Korean
        "2024년 5월 21일 (화) 오후 7:25, Exchange <support@exchange.example>님이 작성:",
        "2024년 5월 21일 화요일, Exchange Support 작성:",
        # Russian
        "вт, 21 мая 2024 г. в 19:25, Exchange Support <support@exchange.example>:",
        "21.05.2024 19:25, Exchange Support пишет:",
        "Exchange Support <support@exchange.example> писал(а) 21.05.2024:",
        # Spanish
        "El mar, 21 may 2024 a las 19:25, Exchange (<support@exchange.example>) escribió:",
        # Vietnamese
        "Vào 19:25 Th 3, 21 thg 5, 2024 Exchange <support@exchange.example> đã viết:",
    ],
)
def test_attribution_line_starts_the_history(marker):
    text = f"{NEW}\n\n{marker}\n\n{QUOTE}"
    assert split_reply(text) == (NEW, f"{marker}\n\n{QUOTE}")


@pytest.mark.parametrize(
    ("first", "second"),
    [
        (
            "On Tue, May 21, 2024 at 7:25 PM Exchange Customer Care <",
            "support@exchange.example> wrote:",
        ),
        (
            "Exchange Customer Care <support@exchange.example> 于2024年5月21日周二",
            "19:25写道：",
        ),
        (
            "El mar, 21 may 2024 a las 19:25, Exchange Customer Care (<",
            "support@exchange.example>) escribió:",
        ),
        ("2024年5月21日(火) 19:25 Exchange Customer Care <", "support@exchange.example>:"),
    ],
)
def test_attribution_wrapped_over_two_lines(first, second):
    text = f"{NEW}\n\n{first}\n{second}\n\n{QUOTE}"
    assert split_reply(text) == (NEW, f"{first}\n{second}\n\n{QUOTE}")


@pytest.mark.parametrize(
    "separator",
    [
        "-----Original Message-----",
        "-------- Original Message --------",
        "---------- Forwarded message ---------",
        "-----原始邮件-----",
        "------------------ 原始邮件 ------------------",
        "---- 回复的原邮件 ----",
        "-----Mensaje original-----",
        "-----Исходное сообщение-----",
        "-----원본 메시지-----",
        "Begin forwarded message:",
    ],
)
def test_separator_line_starts_the_history(separator):
    text = f"{NEW}\n\n{separator}\nGreetings,\nWe opened case [#T-200136].\n"
    new, quoted = split_reply(text)
    assert new == NEW
    assert quoted.startswith(separator)


def test_netease_table_quote():
    text = (
        "收到，谢谢阿杰。\n\n\n---- 回复的原邮件 ----\n"
        "| 发件人 | Exchange Customer Care<support@exchange.example> |\n"
        "| 日期 | 2024年05月21日 23:47 |\n| 主题 | Re: 提币 [#T-200101] |\n\n曹先生好，\n"
    )
    new, quoted = split_reply(text)
    assert new == "收到，谢谢阿杰。"
    assert quoted.startswith("---- 回复的原邮件 ----\n| 发件人 |")


OUTLOOK = (
    "{from_} Exchange Customer Care <support@exchange.example>\n"
    "{sent} Tuesday, May 21, 2024 3:44 PM\n"
    "{to} Oliver Grant <oliver.grant@grantcapital.test>\n"
    "{subject} Re: Trading disabled [#T-200164]\n\nGreetings,\n"
)


@pytest.mark.parametrize(
    ("from_", "sent", "to", "subject"),
    [
        ("From:", "Sent:", "To:", "Subject:"),
        ("*From:*", "*Sent:*", "*To:*", "*Subject:*"),
        ("发件人:", "发送时间:", "收件人:", "主题:"),
        ("寄件者:", "寄件日期:", "收件者:", "主旨:"),
        ("差出人:", "送信日時:", "宛先:", "件名:"),
        ("보낸 사람:", "보낸 날짜:", "받는 사람:", "제목:"),
        ("От:", "Отправлено:", "Кому:", "Тема:"),
        ("De:", "Enviado:", "Para:", "Asunto:"),
        ("Từ:", "Đã gửi:", "Đến:", "Chủ đề:"),
    ],
)
def test_outlook_header_block(from_, sent, to, subject):
    block = OUTLOOK.format(from_=from_, sent=sent, to=to, subject=subject)
    underlined = f"{NEW}\n\n________________________________\n{block}"
    assert split_reply(underlined) == (NEW, f"________________________________\n{block}")
    bare = f"{NEW}\n\n{block}"
    assert split_reply(bare) == (NEW, block)


def test_outlook_block_with_blank_lines_from_html_paragraphs():
    block = "From: Exchange <support@exchange.example>\n\nSent: Tuesday\n\nSubject: Re: help\n"
    assert split_reply(f"{NEW}\n\n{block}") == (NEW, block)


def test_angle_bracket_quote_without_attribution():
    assert split_reply(f"{NEW}\n\n{QUOTE}") == (NEW, QUOTE)


def test_attribution_in_unknown_language_just_above_a_quote():
    text = f"{NEW}\n\nLe 21 mai 2024 à 19:25, Exchange a dit :\n{QUOTE}"
    assert split_reply(text)[0] == NEW


def test_nothing_new():
    text = "On Tue, May 21, 2024 at 7:25 PM Exchange <support@exchange.example> wrote:\n> hi\n"
    assert split_reply(text) == ("", text)
    assert split_reply(QUOTE) == ("", QUOTE)


def test_bottom_posted_reply_below_a_leading_quote():
    text = "> Does anyone know?\n\nWe used a fork.\n\n--\nList footer\n"
    new, quoted = split_reply(text)
    assert new == "We used a fork.\n\n--\nList footer"
    assert quoted == "> Does anyone know?\n\n"


def test_no_marker_returns_everything():
    text = "Hello,\n\nMy deposit is missing.\n\n"
    assert split_reply(text) == ("Hello,\n\nMy deposit is missing.", "")


def test_empty_text():
    assert split_reply("") == ("", "")


@pytest.mark.parametrize(
    "text",
    [
        "Thanks,\n-- \nOliver Grant\nGrant Capital",  # a signature is not a quote
        "Here is what I wrote:\nplease refund the fee.",  # no date, no address
        "From: 0x3529d7fbc8d82aec8246182d994465c74ad2f012\nTo: 0xfe4d92eca407ee42d302\n",
        "Details:\nDate: 2024-05-21\nAmount: 5 BTC",
        "__________\nSignature line",
        "Price went up -> 72,350 and the order did not fire.",
        "エラーコード 40014 のメッセージ:\n権限がありません",
        "I sent 0.5 BTC and 20000 DOGE, as you wrote:\nplease check.",
    ],
)
def test_ordinary_text_is_not_a_marker(text):
    assert split_reply(text) == (text.rstrip(), "")


def test_cut_at_first_marker_for_interleaved_replies():
    text = f"Hi,\n\n{QUOTE}\nMy answer.\n\n> more quote\n"
    assert split_reply(text) == ("Hi,", f"{QUOTE}\nMy answer.\n\n> more quote\n")


def test_crlf_text_keeps_the_original_slices():
    text = f"{NEW}\r\n\r\nOn Tue, 21 May 2024 19:25, Exchange wrote:\r\n> hi\r\n"
    assert split_reply(text) == (NEW, "On Tue, 21 May 2024 19:25, Exchange wrote:\r\n> hi\r\n")


def test_decomposed_vietnamese_attribution_is_found():
    marker = "Vào 19:25 Th 3, Exchange <support@exchange.example> đa\u0303 viê\u0301t:"
    assert split_reply(f"{NEW}\n\n{marker}\n{QUOTE}")[0] == NEW


@pytest.mark.parametrize(
    "text",
    [
        "@" * 200_000 + ":",
        "wrote " * 40_000 + ":",
        "a:\n" * 100_000,
        "-" * 200_000,
        "_" * 200_000 + "\nFrom: x\n",
        "> x\n" * 100_000,
    ],
)
def test_hostile_input_is_linear(text):
    started = time.perf_counter()
    split_reply(text)
    assert time.perf_counter() - started < 2.0
