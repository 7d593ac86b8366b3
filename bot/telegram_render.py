"""Neutral replies rendered as Telegram messages: HTML text and inline keyboards."""

from __future__ import annotations

from html import escape

from telegram import InlineKeyboardButton, InlineKeyboardMarkup

from handlers.replies import Reply

MAX_TEXT = 4096  # Telegram's limit for one message's text


def html(reply: Reply) -> str:
    """Return the reply's text as Telegram HTML, title in bold."""
    body = escape(reply.text)
    text = f"<b>{escape(reply.title)}</b>\n{body}" if reply.title else body
    return text[:MAX_TEXT]


def keyboard(reply: Reply) -> InlineKeyboardMarkup | None:
    """Return the reply's buttons as an inline keyboard."""
    if not reply.buttons:
        return None
    return InlineKeyboardMarkup([
        [InlineKeyboardButton(b.label, url=b.url) if b.url
         else InlineKeyboardButton(b.label, callback_data=b.action) for b in row]
        for row in reply.buttons])
