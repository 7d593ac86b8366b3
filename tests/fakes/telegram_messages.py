"""Bot API methods that send, edit and delete messages, validated like Telegram."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from .telegram_html import HtmlError, parse_html, utf16_len
from .telegram_objects import BotMessage
from .telegram_state import TelegramState, bad_request

NOT_MODIFIED = (
    "message is not modified: specified new message content and reply markup are exactly "
    "the same as a current content and reply markup of the message"
)
_ACTIONS = {
    "callback_data", "url", "web_app", "login_url", "switch_inline_query",
    "switch_inline_query_current_chat", "switch_inline_query_chosen_chat", "copy_text",
    "callback_game", "pay",
}


@dataclass(frozen=True)
class Upload:
    """A file uploaded in a multipart request."""

    filename: str
    content_type: str
    data: bytes


def render(
    source: Any, parse_mode: Any, entities: Any, *, limit: int, what: str
) -> tuple[str, list[dict[str, Any]]]:
    """Return the text a user sees and its entities; what is "text" or "caption"."""
    empty = "message text is empty" if what == "text" else "message caption is empty"
    if source is None or source == "":
        raise bad_request(empty)
    source = str(source)
    mode = (parse_mode or "").lower()
    if mode == "html":
        try:
            text, found = parse_html(source)
        except HtmlError as error:
            raise bad_request(f"can't parse entities: {error}") from None
    elif mode in ("", "markdown", "markdownv2"):  # Markdown is recorded as sent, not parsed
        text, found = source, list(entities or [])
    else:
        raise bad_request("unsupported parse_mode")
    if not text.strip():
        raise bad_request(empty)
    if utf16_len(text) > limit:
        too_long = "message is too long" if what == "text" else "message caption is too long"
        raise bad_request(too_long)
    return text, found


def check_markup(markup: Any) -> dict[str, Any] | None:
    """Return reply_markup after Telegram's checks of inline keyboards."""
    if markup is None:
        return None
    if not isinstance(markup, dict):
        raise bad_request("can't parse reply keyboard markup JSON object")
    rows = markup.get("inline_keyboard")
    if rows is None:
        return markup
    if not isinstance(rows, list) or not all(isinstance(row, list) for row in rows):
        raise bad_request("field \"inline_keyboard\" of the InlineKeyboardMarkup must be an Array")
    for button in (button for row in rows for button in row):
        if not button.get("text"):
            raise bad_request("BUTTON_TEXT_INVALID")
        if not _ACTIONS & set(button):
            raise bad_request("text buttons are unallowed in the inline keyboard")
        data = button.get("callback_data")
        if data is not None and not 1 <= len(str(data).encode()) <= 64:
            raise bad_request("BUTTON_DATA_INVALID")
        url = button.get("url")
        if url is not None and urlsplit(str(url)).scheme not in ("http", "https", "tg"):
            raise bad_request(f"inline keyboard button URL '{url}' is invalid: Wrong HTTP URL")
    return markup


def _shown_markup(markup: dict[str, Any] | None) -> dict[str, Any] | None:
    """Return the markup Telegram echoes in a Message: only a non-empty inline keyboard."""
    if markup and markup.get("inline_keyboard"):
        return {"inline_keyboard": markup["inline_keyboard"]}
    return None


def _raw(
    state: TelegramState, chat: dict[str, Any], message_id: int, body: dict[str, Any],
    markup: dict[str, Any] | None,
) -> dict[str, Any]:
    """Return the Message JSON of a bot message."""
    raw = {"message_id": message_id, "from": state.bot_user, "chat": chat,
           "date": int(time.time()), **body}
    if shown := _shown_markup(markup):
        raw["reply_markup"] = shown
    return raw


def send_message(state: TelegramState, params: dict[str, Any]) -> dict[str, Any]:
    """Send a text message (sendMessage)."""
    chat = state.chat(params.get("chat_id", ""))
    text, entities = render(params.get("text"), params.get("parse_mode"),
                            params.get("entities"), limit=4096, what="text")
    markup = check_markup(params.get("reply_markup"))
    message_id = state.new_message_id(chat["id"])
    body: dict[str, Any] = {"text": text}
    if entities:
        body["entities"] = entities
    if (preview := params.get("link_preview_options")) is not None:
        body["link_preview_options"] = preview
    raw = _raw(state, chat, message_id, body, markup)
    state.record(BotMessage(
        chat["id"], message_id, "sendMessage", text, str(params["text"]),
        params.get("parse_mode"), tuple(entities), _shown_markup(markup), None, params, raw,
    ))
    return raw


# What Telegram decodes as a photo: an upload of anything else is refused.
IMAGE_MAGIC = (b"\x89PNG", b"\xff\xd8\xff", b"GIF87a", b"GIF89a", b"RIFF")
MAX_PHOTO = 10 * 1024 * 1024  # "The photo must be at most 10 MB in size" (Bot API, sendPhoto)
MAX_DOCUMENT = 50 * 1024 * 1024  # bots send files of up to 50 MB


def send_photo(state: TelegramState, params: dict[str, Any]) -> dict[str, Any]:
    """Send a photo by URL, file_id or upload, with an optional caption (sendPhoto)."""
    chat = state.chat(params.get("chat_id", ""))
    photo = params.get("photo")
    if not photo:
        raise bad_request("there is no photo in the request")
    if isinstance(photo, Upload) and (len(photo.data) > MAX_PHOTO
                                      or not photo.data.startswith(IMAGE_MAGIC)):
        raise bad_request("IMAGE_PROCESS_FAILED")
    caption: str | None = None
    entities: list[dict[str, Any]] = []
    if params.get("caption"):
        caption, entities = render(params["caption"], params.get("parse_mode"),
                                   params.get("caption_entities"), limit=1024, what="caption")
    markup = check_markup(params.get("reply_markup"))
    message_id = state.new_message_id(chat["id"])
    file_id = state.new_file_id()
    sizes = [{"file_id": f"{file_id}_{side}", "file_unique_id": f"{file_id[-8:]}{side}",
              "width": side, "height": side, "file_size": side * 40} for side in (90, 320)]
    body: dict[str, Any] = {"photo": sizes}
    if caption is not None:
        body["caption"] = caption
        if entities:
            body["caption_entities"] = entities
    raw = _raw(state, chat, message_id, body, markup)
    shown = f"upload:{photo.filename}" if isinstance(photo, Upload) else str(photo)
    state.record(BotMessage(
        chat["id"], message_id, "sendPhoto", caption, params.get("caption"),
        params.get("parse_mode"), tuple(entities), _shown_markup(markup), shown, params, raw,
    ))
    return raw


def send_document(state: TelegramState, params: dict[str, Any]) -> dict[str, Any]:
    """Send a file by URL, file_id or upload, with an optional caption (sendDocument)."""
    chat = state.chat(params.get("chat_id", ""))
    document = params.get("document")
    if not document:
        raise bad_request("there is no document in the request")
    if isinstance(document, Upload) and len(document.data) > MAX_DOCUMENT:
        raise bad_request("file is too big")
    caption: str | None = None
    entities: list[dict[str, Any]] = []
    if params.get("caption"):
        caption, entities = render(params["caption"], params.get("parse_mode"),
                                   params.get("caption_entities"), limit=1024, what="caption")
    markup = check_markup(params.get("reply_markup"))
    message_id = state.new_message_id(chat["id"])
    file_id = state.new_file_id()
    described: dict[str, Any] = {"file_id": file_id, "file_unique_id": file_id[-8:]}
    if isinstance(document, Upload):
        described.update(file_name=document.filename, mime_type=document.content_type,
                         file_size=len(document.data))
    body: dict[str, Any] = {"document": described}
    if caption is not None:
        body["caption"] = caption
        if entities:
            body["caption_entities"] = entities
    raw = _raw(state, chat, message_id, body, markup)
    shown = f"upload:{document.filename}" if isinstance(document, Upload) else str(document)
    state.record(BotMessage(
        chat["id"], message_id, "sendDocument", caption, params.get("caption"),
        params.get("parse_mode"), tuple(entities), _shown_markup(markup), None, params, raw,
        document=shown,
    ))
    return raw


def _editable(state: TelegramState, params: dict[str, Any]) -> tuple[dict[str, Any], BotMessage]:
    """Return the chat and current state of the message an edit targets."""
    if "inline_message_id" in params:
        raise bad_request("inline messages are not supported by the fake")
    chat = state.chat(params.get("chat_id", ""))
    message_id = int(params.get("message_id") or 0)
    current = state.current(chat["id"], message_id)
    if current is None:
        if state.is_user_message(chat["id"], message_id):  # a bot edits only its own
            raise bad_request("message can't be edited")
        raise bad_request("message to edit not found")
    return chat, current


def edit_message_text(state: TelegramState, params: dict[str, Any]) -> dict[str, Any]:
    """Replace a message's text; its inline keyboard goes unless sent again."""
    chat, current = _editable(state, params)
    if current.photo is not None or current.document is not None:
        raise bad_request("there is no text in the message to edit")
    text, entities = render(params.get("text"), params.get("parse_mode"),
                            params.get("entities"), limit=4096, what="text")
    markup = _shown_markup(check_markup(params.get("reply_markup")))
    if (text, tuple(entities), markup) == (current.text, current.entities, current.reply_markup):
        raise bad_request(NOT_MODIFIED)
    body: dict[str, Any] = {"text": text, "edit_date": int(time.time())}
    if entities:
        body["entities"] = entities
    raw = _raw(state, chat, current.message_id, body, markup)
    state.record(BotMessage(
        chat["id"], current.message_id, "editMessageText", text, str(params["text"]),
        params.get("parse_mode"), tuple(entities), markup, None, params, raw,
    ))
    return raw


def edit_message_reply_markup(state: TelegramState, params: dict[str, Any]) -> dict[str, Any]:
    """Replace or remove a message's inline keyboard."""
    chat, current = _editable(state, params)
    markup = _shown_markup(check_markup(params.get("reply_markup")))
    if markup == current.reply_markup:
        raise bad_request(NOT_MODIFIED)
    raw = {key: value for key, value in current.raw.items() if key != "reply_markup"}
    raw["edit_date"] = int(time.time())
    if markup:
        raw["reply_markup"] = markup
    state.record(BotMessage(
        chat["id"], current.message_id, "editMessageReplyMarkup", current.text, current.source,
        current.parse_mode, current.entities, markup, current.photo, params, raw,
        document=current.document,
    ))
    return raw


def delete_message(state: TelegramState, params: dict[str, Any]) -> bool:
    """Delete a message (deleteMessage)."""
    chat = state.chat(params.get("chat_id", ""))
    if not state.delete(chat["id"], int(params.get("message_id") or 0)):
        raise bad_request("message to delete not found")
    return True
