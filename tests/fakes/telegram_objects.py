"""Users, chats, recorded bot messages and the Update JSON the fake Bot API builds."""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from typing import Any

from .telegram_html import utf16_len

# A bot command is "/" + up to 32 letters, digits or underscores, optionally "@botname",
# at the start of the text or after whitespace (Telegram marks it as a bot_command entity).
_COMMAND = re.compile(r"(?<!\S)/[A-Za-z0-9_]{1,32}(?:@[A-Za-z0-9_]{3,32})?(?![A-Za-z0-9_@])")


@dataclass(frozen=True)
class FakeUser:
    """A Telegram user who talks to the bot; their private chat has the same id."""

    id: int
    first_name: str = "Ada"
    last_name: str | None = None
    username: str | None = None
    language_code: str | None = "en"

    def to_dict(self) -> dict[str, Any]:
        """Return the User object Telegram sends."""
        data: dict[str, Any] = {"id": self.id, "is_bot": False, "first_name": self.first_name}
        for key in ("last_name", "username", "language_code"):
            if getattr(self, key) is not None:
                data[key] = getattr(self, key)
        return data

    def chat_dict(self) -> dict[str, Any]:
        """Return the private Chat object of this user."""
        data: dict[str, Any] = {"id": self.id, "type": "private", "first_name": self.first_name}
        for key in ("last_name", "username"):
            if getattr(self, key) is not None:
                data[key] = getattr(self, key)
        return data


@dataclass(frozen=True)
class FakeChat:
    """A group or supergroup (ids starting with -100 are supergroups, as in Telegram)."""

    id: int
    title: str = "Team"
    type: str = ""

    def __post_init__(self) -> None:
        if not self.type:
            kind = "supergroup" if str(self.id).startswith("-100") else "group"
            object.__setattr__(self, "type", kind)

    def chat_dict(self) -> dict[str, Any]:
        """Return the Chat object of this group."""
        return {"id": self.id, "type": self.type, "title": self.title}


ChatRef = int | FakeUser | FakeChat


def chat_id_of(chat: ChatRef) -> int:
    """Return the chat id of a user (their private chat), a group or a plain id."""
    return chat if isinstance(chat, int) else chat.id


@dataclass(frozen=True)
class BotMessage:
    """A bot message as the user sees it after one send or edit.

    ``text`` is what the user reads (HTML markup removed, the caption of a photo);
    ``source`` is the string the bot sent; ``raw`` is the Message JSON Telegram returned.
    """

    chat_id: int
    message_id: int
    method: str
    text: str | None
    source: str | None
    parse_mode: str | None
    entities: tuple[dict[str, Any], ...]
    reply_markup: dict[str, Any] | None
    photo: str | None
    params: dict[str, Any]
    raw: dict[str, Any]
    at: float = field(default_factory=time.perf_counter)
    document: str | None = None  # a sent file: its URL, file_id or "upload:<file name>"

    @property
    def edited(self) -> bool:
        """Tell whether this snapshot comes from an edit."""
        return self.method.startswith("edit")

    @property
    def keyboard(self) -> list[list[dict[str, Any]]]:
        """Return the inline keyboard rows (empty when there is none)."""
        markup = self.reply_markup or {}
        return [list(row) for row in markup.get("inline_keyboard", [])]

    def buttons(self) -> list[list[str]]:
        """Return the labels of the inline keyboard, row by row."""
        return [[button["text"] for button in row] for row in self.keyboard]

    def button(self, label: str) -> dict[str, Any]:
        """Return the inline button with this label or raise LookupError naming the others."""
        for row in self.keyboard:
            for button in row:
                if button.get("text") == label:
                    return button
        raise LookupError(
            f"no button {label!r} on message {self.message_id} in chat {self.chat_id}; "
            f"buttons: {self.buttons()}"
        )


def command_entities(text: str) -> list[dict[str, Any]]:
    """Return the bot_command entities Telegram marks in a user's text."""
    return [
        {"type": "bot_command", "offset": utf16_len(text[: m.start()]),
         "length": utf16_len(m.group(0))}
        for m in _COMMAND.finditer(text)
    ]


def message_update(
    update_id: int, message_id: int, user: FakeUser, chat: dict[str, Any], text: str
) -> dict[str, Any]:
    """Return an Update carrying a text message from user in chat."""
    message: dict[str, Any] = {
        "message_id": message_id,
        "from": user.to_dict(),
        "chat": chat,
        "date": int(time.time()),
        "text": text,
    }
    if entities := command_entities(text):
        message["entities"] = entities
    return {"update_id": update_id, "message": message}


def callback_update(
    update_id: int, query_id: str, user: FakeUser, message: dict[str, Any], data: str
) -> dict[str, Any]:
    """Return an Update carrying a callback query from user pressing a button on message."""
    return {
        "update_id": update_id,
        "callback_query": {
            "id": query_id,
            "from": user.to_dict(),
            "message": message,
            "chat_instance": f"ci{abs(message['chat']['id'])}",
            "data": data,
        },
    }
