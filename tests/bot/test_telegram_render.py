"""Replies rendered for Telegram: captions within Telegram's limit, never cut inside markup."""

from __future__ import annotations

from bot.telegram_render import MAX_CAPTION, caption, html, keyboard
from handlers.replies import Button, Reply, rows


def test_a_long_caption_is_cut_before_an_entity() -> None:
    """A caption past 1,024 characters is shortened in the text, then escaped whole."""
    text = "a" * 1015 + " & < > " * 20
    found = caption(Reply(text, title="MRR"))
    assert len(found) <= MAX_CAPTION
    assert found.startswith("<b>MRR</b>\n")
    tail = found.rsplit("a", 1)[1]
    assert tail.count("&") == tail.count(";")  # every entity complete


def test_a_short_caption_is_kept() -> None:
    """Short text is only escaped."""
    assert caption(Reply("1 < 2")) == "1 &lt; 2"


def test_checked_markup_goes_as_it_is() -> None:
    """A reply's checked HTML is sent unescaped under the escaped title; the plain text is
    what the other channels show."""
    reply = Reply("Sale (https://x.example)", title="A & B",
                  html='<b>Sale</b> <a href="https://x.example">x</a>')
    assert html(reply) == '<b>A &amp; B</b>\n<b>Sale</b> <a href="https://x.example">x</a>'
    assert caption(reply) == html(reply)


def test_markup_too_long_falls_back_to_the_plain_text() -> None:
    """Markup that does not fit is never cut: the escaped plain text is sent instead."""
    reply = Reply("1 < 2", html="<b>" + "x" * MAX_CAPTION + "</b>")
    assert caption(reply) == "1 &lt; 2"


def test_keyboards_of_action_and_url_buttons() -> None:
    """Rows of buttons become an inline keyboard (core.telegram.org/bots/api#inlinekeyboardbutton:
    `callback_data` sent back on a press, or a `url` opened); an action button, the same in
    every reply, is one object, a URL button is made anew."""
    def reply() -> Reply:
        return Reply("x", buttons=rows(Button("Invoices", action="inv"),
                                       Button("Update card", url="https://x.example/card/t")))
    first, second = keyboard(reply()), keyboard(reply())
    assert first is not None and second is not None
    assert first.to_dict() == second.to_dict() == {"inline_keyboard": [
        [{"text": "Invoices", "callback_data": "inv"}],
        [{"text": "Update card", "url": "https://x.example/card/t"}]]}
    assert first.inline_keyboard[0][0] is second.inline_keyboard[0][0]
    assert first.inline_keyboard[1][0] is not second.inline_keyboard[1][0]
    assert keyboard(Reply("no buttons")) is None
