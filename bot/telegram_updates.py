"""The shape of the webhook updates Portier acts on, checked before python-telegram-bot reads
them.

PTB's `de_json` trusts its input: a `message` that is a string or a list raises
AttributeError or TypeError, a missing `date` a KeyError, a far `date` an OverflowError,
and a `text` that is a number or a chat id that is a word pass through to fail later in a
handler (which then reports an internal error into the chat). Telegram sends none of these;
whoever does gets the update dropped. Only what Portier reads is checked (strictly: no
"5" for 5, no true for 1); other fields pass through as Telegram adds them.
https://core.telegram.org/bots/api#update
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

# "at most 52 significant bits, so a signed 64-bit integer or double-precision float type
# are safe for storing this identifier" (User.id, Chat.id)
Id = Annotated[int, Field(ge=-(2**52), le=2**52)]
# Message dates are Unix times; 0 marks an inaccessible message (MaybeInaccessibleMessage).
Date = Annotated[int, Field(ge=0, le=2**33)]
Small = Annotated[int, Field(ge=0, le=2**31)]


class _Shape(BaseModel):
    model_config = ConfigDict(strict=True, extra="ignore")


class _Chat(_Shape):
    id: Id
    type: str


class _User(_Shape):
    id: Id
    is_bot: bool
    first_name: str
    language_code: str | None = None


class _Entity(_Shape):
    type: str
    offset: Small
    length: Small


class _Message(_Shape):
    message_id: Small
    date: Date
    chat: _Chat
    from_: _User | None = Field(None, alias="from")
    sender_chat: _Chat | None = None
    text: str | None = None
    entities: list[_Entity] | None = None


class _CallbackQuery(_Shape):
    id: str
    from_: _User = Field(alias="from")
    chat_instance: str
    message: _Message | None = None
    data: str | None = None


class _Update(_Shape):
    update_id: Annotated[int, Field(ge=0, le=2**52)]
    message: _Message | None = None
    callback_query: _CallbackQuery | None = None


def problem(data: Any) -> str | None:
    """Say why parsed JSON is not an update Portier can act on, or None when it is one."""
    if isinstance(data, dict) and data.get("message") is None and data.get(
            "callback_query") is None:
        return "neither a message nor a callback query (the webhook's allowed_updates)"
    try:
        _Update.model_validate(data)
    except ValidationError as error:
        first = error.errors(include_url=False, include_input=False)[0]
        where = ".".join(str(part) for part in first["loc"]) or "update"
        return f"{where}: {first['msg']}"
    return None
