"""Translations: gettext catalogs (`locales/<lang>/LC_MESSAGES/messages.po`) read with Babel."""

from __future__ import annotations

from functools import cache
from pathlib import Path

from babel.messages.pofile import read_po

LOCALES = ("en", "de")
_DIR = Path(__file__).with_name("locales")


@cache
def _catalog(locale: str) -> dict[str, str]:
    path = _DIR / locale / "LC_MESSAGES" / "messages.po"
    if not path.exists():
        return {}
    with path.open("rb") as handle:
        po = read_po(handle, locale=locale)
    return {str(m.id): str(m.string) for m in po if m.id and m.string and not m.fuzzy}


def pick_locale(*candidates: str | None, default: str = "en") -> str:
    """Return the first supported language among IETF tags like `de-DE`."""
    for tag in candidates:
        if tag:
            lang = tag.replace("_", "-").split("-")[0].lower()
            if lang in LOCALES:
                return lang
    return default if default in LOCALES else "en"


def translate(locale: str, message: str, **values: object) -> str:
    """Translate an English message into the locale and fill its `{placeholders}`."""
    text = _catalog(locale).get(message, message) if locale != "en" else message
    return text.format(**values) if values else text
