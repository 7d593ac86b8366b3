"""Telegram as the neutral layer sees it: links into the bot's chat and pasted tokens."""

from __future__ import annotations

from bot.telegram_app import TelegramApp


def test_a_pasted_deep_link_gives_its_whole_token() -> None:
    """A token ending in "-" or "_" comes out whole (a `\\b` there once cut a "-" off)."""
    app = TelegramApp("acme_bot")
    for token in ("abc-", "abc_", "a-b_c", "x" * 64):
        assert app.token_in(f"https://t.me/acme_bot?start={token}") == token
        assert app.token_in(f"see https://t.me/acme_bot?start={token} please") == token
    assert app.token_in("just-a-token") == "just-a-token"
    assert app.token_in("no token here!") is None
    assert app.link_url("abc") == "https://t.me/acme_bot?start=abc"
    assert TelegramApp(None).private_chat_url() is None
