"""Replies as data: each channel adapter renders them natively."""

from __future__ import annotations

from dataclasses import dataclass

USER, CONVERSATION = "user", "conversation"  # what a question may ask the chat user to pick


@dataclass(frozen=True)
class Button:
    """A button: an action sent back to us, or a URL the chat opens."""

    label: str
    action: str | None = None
    url: str | None = None


@dataclass(frozen=True)
class Attachment:
    """A file sent with a reply: a photo the chat shows, or a document to save."""

    data: bytes
    filename: str
    photo: bool = False


@dataclass(frozen=True)
class Reply:
    """A message to show: text, buttons and rendering hints."""

    text: str
    title: str | None = None
    buttons: tuple[tuple[Button, ...], ...] = ()
    private: bool = False
    expect_text: bool = False
    edit: bool = False
    image_url: str | None = None
    toast: str | None = None
    attachment: Attachment | None = None  # sent with the text as its caption
    # The same text as formatted markup, already checked (billing.broadcasts.check_html: b, i,
    # u, s, a, code, pre, blockquote, spoiler): a channel that shows formatting sends it as
    # it is, any other shows `text`, the plain version.
    html: str | None = None
    # With expect_text: the answer is a chat user (USER) or a conversation (CONVERSATION) —
    # a picker where the chat app has one, else the id or name typed.
    pick: str | None = None
    ref: str | None = None  # names a message sent to several chats (a seat request)
    replaces: str | None = None  # this reply replaces every copy of the message so named
    # With `ref`: the language the copy was written in (each reader gets their own). With
    # `replaces`: the same reply in each language, so that every copy keeps its reader's.
    locale: str | None = None
    versions: tuple[tuple[str, Reply], ...] = ()

    def in_locale(self, locale: str | None) -> Reply:
        """Return this reply's version in a language (itself when it has none)."""
        return next((version for name, version in self.versions if name == locale), self)


def rows(*buttons: Button | None, per_row: int = 1) -> tuple[tuple[Button, ...], ...]:
    """Lay buttons out in rows, skipping the ones left out."""
    present = [b for b in buttons if b is not None]
    return tuple(tuple(present[i:i + per_row]) for i in range(0, len(present), per_row))
