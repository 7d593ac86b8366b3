"""Neutral replies rendered as Telegram messages: HTML text and inline keyboards."""

from __future__ import annotations

from functools import lru_cache
from html import escape
from typing import Any

from telegram import Bot, InlineKeyboardButton, InlineKeyboardMarkup, InputFile
from telegram.constants import ParseMode

from handlers.replies import Reply

MAX_TEXT = 4096  # Telegram's limit for one message's text
MAX_CAPTION = 1024  # and for a photo's or document's caption


def html(reply: Reply, limit: int = MAX_TEXT) -> str:
    """Return the reply's text as Telegram HTML, title in bold: its checked markup as it is
    (when it fits: cutting markup could split a tag), else the plain text escaped."""
    head = f"<b>{escape(reply.title)}</b>\n" if reply.title else ""
    if reply.html is not None and len(head) + len(reply.html) <= limit:
        return head + reply.html
    return (head + escape(reply.text))[:limit]


def keyboard(reply: Reply) -> InlineKeyboardMarkup | None:
    """Return the reply's buttons as an inline keyboard."""
    if not reply.buttons:
        return None
    return InlineKeyboardMarkup([
        [InlineKeyboardButton(b.label, url=b.url) if b.url
         else _action_button(b.label, b.action) for b in row]
        for row in reply.buttons])


@lru_cache(maxsize=4096)
def _action_button(label: str, action: str | None) -> InlineKeyboardButton:
    """Return a button that sends `action` back: the same few in every reply, and PTB's
    objects are immutable, so each is built once (a URL button carries a fresh link)."""
    return InlineKeyboardButton(label, callback_data=action)


def caption(reply: Reply) -> str:
    """Return the reply's text as a Telegram HTML caption, cut before an entity or tag
    could be split."""
    if reply.html is not None and (found := html(reply, MAX_CAPTION)).endswith(reply.html):
        return found  # the markup fits whole
    text = reply.text
    while len(found := html(Reply(text, title=reply.title))) > MAX_CAPTION:
        text = text[:len(text) - (len(found) - MAX_CAPTION) - 1]
    return found


async def send_attachment(bot: Bot, chat_id: int, reply: Reply, **options: Any) -> None:
    """Send a reply's attachment as an uploaded photo or document, the text as caption."""
    attached = reply.attachment
    if attached is None:
        raise ValueError("the reply has no attachment")
    upload = InputFile(attached.data, filename=attached.filename)
    send = bot.send_photo if attached.photo else bot.send_document
    await send(chat_id, upload, caption=caption(reply) if reply.text else None,
               parse_mode=ParseMode.HTML, reply_markup=keyboard(reply), **options)
