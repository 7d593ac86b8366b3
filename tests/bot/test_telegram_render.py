"""Replies rendered for Telegram: captions within Telegram's limit, never cut inside markup."""

from __future__ import annotations

from bot.telegram_render import MAX_CAPTION, caption
from handlers.replies import Reply


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
