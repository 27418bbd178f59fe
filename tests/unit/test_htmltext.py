"""HTML bodies: visible text for the rules, and a sanitised copy for the agents' screen."""

from __future__ import annotations

import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mailer.ingest.htmltext import html_to_text, sanitize_html
from mailer.ingest.quotes import split_reply

FEEDBACK = (
    "<p>The new fee page is confusing.</p><script>alert('xss')</script>"
    '<iframe src="https://tracker.test/frame" width="0" height="0">frame text</iframe>'
    "<p>Please make it a simple table.</p>"
)


def test_script_and_iframe_are_not_text():
    assert html_to_text(FEEDBACK) == (
        "The new fee page is confusing.\n\nPlease make it a simple table."
    )


@pytest.mark.parametrize(
    "hidden",
    [
        "<div hidden>secret</div>",
        '<span style="display:none">secret</span>',
        '<span style="DISPLAY : none !important">secret</span>',
        '<span style="visibility: hidden">secret</span>',
        '<span style="font-size:0px">secret</span>',
        '<span style="opacity:0">secret</span>',
        "<style>.x{}</style><noscript>secret</noscript><template>secret</template>",
        "<object>secret</object><embed>",
        "<head><title>secret</title></head>",
    ],
)
def test_hidden_content_is_dropped(hidden):
    text = html_to_text(f"<p>visible</p>{hidden}<p>also visible</p>")
    assert "secret" not in text
    assert text == "visible\n\nalso visible"


def test_small_but_visible_font_is_kept():
    assert html_to_text('<span style="font-size:0.9em">small</span>') == "small"


def test_line_breaks_from_blocks():
    html = "<div>a<br></div><div>b</div><ul><li>x</li><li>y</li></ul><h1>T</h1>c<br>d"
    assert html_to_text(html) == "a\nb\n- x\n- y\nT\nc\nd"


def test_table_cells_and_rows():
    html = "<table><tr><td>Order</td><td>123</td></tr><tr><th>Amount</th><td>5</td></tr></table>"
    assert html_to_text(html) == "Order 123\nAmount 5"


def test_whitespace_collapses_and_entities_unescape():
    assert html_to_text("<p>  a \n\t b&nbsp;&amp;&lt;c&gt;  </p>\n\n\n<p>d</p>") == "a b &<c>\n\nd"


def test_pre_keeps_its_line_breaks():
    assert html_to_text("<pre>line 1\nline 2</pre>") == "line 1\nline 2"


def test_blockquote_becomes_quoted_lines_and_splits():
    html = (
        '<div dir="ltr">Still nothing.<br><br>On Wed, May 22, 2024 at 1:16 PM Nathan '
        "&lt;nate@gmail.example&gt; wrote:<br></div>"
        '<blockquote class="gmail_quote">Hey there,<br><br>Request ID: 1'
        "<blockquote>older</blockquote></blockquote>"
    )
    text = html_to_text(html)
    assert text.endswith("> Hey there,\n>\n> Request ID: 1\n> > older")
    assert split_reply(text)[0] == "Still nothing."


def test_deep_nesting_does_not_recurse():
    html = "<div>" * 5000 + "deep" + "</div>" * 5000
    assert html_to_text(html) == "deep"


@pytest.mark.parametrize("garbage", ["", "<", "<<<>>>", "\x00\ud800&#0;", "</p></div>x", "<a href"])
def test_garbage_never_raises(garbage):
    assert isinstance(html_to_text(garbage), str)
    assert isinstance(sanitize_html(garbage), str)


@settings(max_examples=150, deadline=None)
@given(st.text())
def test_any_text_never_raises(text):
    assert isinstance(html_to_text(text), str)
    assert "<script" not in sanitize_html(text).lower()


# --- sanitising ------------------------------------------------------------------------


def test_sanitize_drops_script_iframe_and_keeps_content():
    assert sanitize_html(FEEDBACK) == (
        "<p>The new fee page is confusing.</p><p>Please make it a simple table.</p>"
    )


@pytest.mark.parametrize(
    "attack",
    [
        '<a href="javascript:alert(1)">x</a>',
        '<a href=" jav&#x09;ascript:alert(1)">x</a>',
        '<a href="VBScript:msgbox(1)">x</a>',
        '<a href="data:text/html;base64,PHNjcmlwdD4=">x</a>',
        '<img src="data:image/png;base64,iVBORw0KGgo=">',
        '<img srcset="ok.png 1x, javascript:alert(1) 2x">',
        '<img src="x" onerror="alert(1)">',
        '<body onload="alert(1)"><p>x</p></body>',
        '<div style="width: expression(alert(1))">x</div>',
        "<svg><a xlink:href='javascript:alert(1)'>x</a></svg>",
        '<form action="https://phish.test"><input name="password"></form>',
        '<meta http-equiv="refresh" content="0;url=https://phish.test">',
        '<base href="https://phish.test/"><link rel="stylesheet" href="x.css">',
        "<object data='x.swf'></object><embed src='x.swf'>",
        "<!--[if IE]><script>alert(1)</script><![endif]-->",
        '<noscript><p title="</noscript><img src=x onerror=alert(1)>"></noscript>',
    ],
)
def test_sanitize_removes_active_content(attack):
    clean = sanitize_html(f"<p>keep</p>{attack}").lower()
    assert "<p>keep</p>" in clean
    for needle in (
        "javascript",
        "vbscript",
        "data:",
        "onerror",
        "onload",
        "expression",
        "<form",
        "<input",
        "<meta",
        "<base",
        "<link",
        "<object",
        "<embed",
        "<script",
        "<svg",
        "<!--",
    ):
        assert needle not in clean


def test_sanitize_drops_hidden_elements():
    html = '<p>shown</p><p hidden>h1</p><div style="display:none">h2</div>'
    assert sanitize_html(html) == "<p>shown</p>"


def test_sanitize_keeps_safe_links_and_images():
    html = '<a href="https://exchange.example/help" title="t">help</a><img src="cid:part1" alt="a">'
    assert sanitize_html(html) == html


@pytest.mark.parametrize(
    "html",
    [
        "<pre>" + " " * 200_000 + "</pre>",
        "<" * 200_000,
        "<p>x </p>" * 50_000,
        "<blockquote>x" * 3_000,
    ],
)
def test_hostile_html_is_linear(html):
    started = time.perf_counter()
    html_to_text(html)
    sanitize_html(html)
    assert time.perf_counter() - started < 3.0


def test_quote_depth_is_capped():
    text = html_to_text("<blockquote>x" * 50)
    assert text.splitlines()[-1] == "> " * 10 + "x"


def test_text_after_nested_quote_returns_to_outer_level():
    html = "<p>Hi</p><blockquote>q1<br><br>q2<blockquote>qq</blockquote>back</blockquote>after"
    assert html_to_text(html) == "Hi\n> q1\n>\n> q2\n> > qq\n> back\nafter"
