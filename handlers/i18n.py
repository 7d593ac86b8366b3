"""Translations: gettext catalogs (`locales/<lang>/LC_MESSAGES/messages.po`) read with Babel.

Texts are written in English in the code, as `ctx.t("…")`, or marked with `N_("…")` where they
sit in a module-level table and are translated where they are shown. Refresh the catalogs
after adding or changing texts, then translate the new German entries:

    python -m handlers.i18n extract     # messages.pot from the source; en and de .po updated
    python -m handlers.i18n check       # lists German entries missing, fuzzy or mismatched
"""

from __future__ import annotations

import string
import sys
from collections.abc import Iterable
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from babel.messages.pofile import read_po

if TYPE_CHECKING:
    from babel.messages.catalog import Catalog

LOCALES = ("en", "de")
LANGUAGES = {"en": "English", "de": "Deutsch"}  # each named in its own language
DOMAIN = "messages"
LOCALE_DIR = Path(__file__).with_name("locales")
ROOT = Path(__file__).resolve().parents[1]
# `ctx.t("…")` in handlers, `N_("…")` in tables, `translate(locale, "…")` in the adapters.
KEYWORDS: dict[str, Any] = {"t": None, "N_": None, "translate": (2,)}
HEADER = ("# Portier's texts. Refresh with `python -m handlers.i18n extract`.\n"
          "# Copyright (C) YEAR Portier contributors (MIT licence).")


def N_(message: str) -> str:  # noqa: N802 - gettext's conventional name for the no-op marker
    """Mark a text for extraction without translating it (it is translated where shown)."""
    return message


def po_path(locale: str) -> Path:
    """Return the path of a locale's message catalog."""
    return LOCALE_DIR / locale / "LC_MESSAGES" / f"{DOMAIN}.po"


@cache
def _catalog(locale: str) -> dict[str, str]:
    path = po_path(locale)
    if not path.exists():
        return {}
    with path.open("rb") as handle:
        po = read_po(handle, locale=locale)
    return {str(m.id): str(m.string) for m in po if m.id and m.string and not m.fuzzy}


def supported(tag: str | None) -> str | None:
    """Return the supported language of an IETF tag like `de-DE`, if it is one."""
    lang = (tag or "").replace("_", "-").split("-")[0].lower()
    return lang if lang in LOCALES else None


def pick_locale(*candidates: str | None, default: str = "en") -> str:
    """Return the first supported language among IETF tags like `de-DE`."""
    for tag in candidates:
        if lang := supported(tag):
            return lang
    return default if default in LOCALES else "en"


def translate(locale: str, message: str, **values: object) -> str:
    """Translate an English message into the locale and fill its `{placeholders}`."""
    text = _catalog(locale).get(message, message)
    return text.format(**values) if values else text


def placeholders(message: str) -> set[str]:
    """Return the `{placeholders}` of a message, with their format specs (`{month:02d}`)."""
    fields = string.Formatter().parse(message)
    return {f"{{{name}{':' + spec if spec else ''}}}" for _, name, spec, _ in fields
            if name is not None}


# -- maintaining the catalogs (a developer's tool; the running bot only reads them) --------

def extract(root: Path = ROOT) -> Catalog:
    """Extract every translatable text from the source tree, as `babel.cfg` maps it."""
    from babel.messages.catalog import Catalog
    from babel.messages.extract import extract_from_dir
    from babel.messages.frontend import parse_mapping_cfg

    with (root / "babel.cfg").open(encoding="utf-8") as handle:
        method_map, options_map = parse_mapping_cfg(handle)  # type: ignore[no-untyped-call]
    template = Catalog(project="Portier", domain=DOMAIN, header_comment=HEADER,
                       copyright_holder="Portier contributors", fuzzy=False)
    found = extract_from_dir(root, method_map, options_map, keywords=KEYWORDS,
                             directory_filter=lambda path: not _skipped(root, Path(path)))
    for filename, lineno, message, comments, context in found:
        template.add(message, None, [(filename, lineno)], auto_comments=comments,
                     context=context)
    return template


def _skipped(root: Path, path: Path) -> bool:
    relative = path.resolve().relative_to(root)
    return relative.parts[:1] not in (("handlers",), ("bot",), ()) or any(
        part.startswith((".", "_")) for part in relative.parts)


def refresh(root: Path = ROOT, locales: Iterable[str] = LOCALES) -> Catalog:
    """Write `messages.pot` from the source and merge it into each locale's catalog."""
    from babel.messages.catalog import Catalog
    from babel.messages.pofile import write_po

    template = extract(root)
    with (LOCALE_DIR / f"{DOMAIN}.pot").open("wb") as handle:
        write_po(handle, template, width=100, include_lineno=False)
    for locale in locales:
        path = po_path(locale)
        if path.exists():
            with path.open("rb") as handle:
                catalog = read_po(handle, locale=locale)
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            catalog = Catalog(locale=locale, domain=DOMAIN, project="Portier", fuzzy=False,
                              header_comment=HEADER, copyright_holder="Portier contributors")
        # English is the source language: its entries stay empty (the msgid is the text),
        # so a guessed "fuzzy" match would only be noise there.
        catalog.update(template, no_fuzzy_matching=locale == "en", update_creation_date=False)
        with path.open("wb") as handle:
            write_po(handle, catalog, width=100, ignore_obsolete=True, include_lineno=False)
    _catalog.cache_clear()
    return template


def problems(template: Catalog, locale: str = "de") -> list[str]:
    """List what keeps a locale's catalog from covering the template, one line each."""
    with po_path(locale).open("rb") as handle:
        catalog = read_po(handle, locale=locale)
    found: list[str] = []
    for message in template:
        msgid = str(message.id)
        if not msgid:
            continue
        entry = catalog.get(msgid)
        if entry is None or not entry.string:
            found.append(f"untranslated: {msgid!r}")
        elif entry.fuzzy:
            found.append(f"fuzzy: {msgid!r}")
        elif placeholders(msgid) != placeholders(str(entry.string)):
            found.append(f"placeholders differ: {msgid!r} -> {entry.string!r}")
    return found


def main(argv: list[str]) -> int:
    """Refresh the catalogs (`extract`) or list missing German translations (`check`)."""
    if argv[:1] == ["extract"]:
        template = refresh()
        missing = problems(template)
        print(f"{len(template)} texts; German needs {len(missing)}:")  # noqa: T201
    elif argv[:1] == ["check"]:
        missing = problems(extract())
    else:
        print("usage: python -m handlers.i18n extract|check")  # noqa: T201
        return 2
    for line in missing:
        print(" ", line)  # noqa: T201
    return 1 if missing and argv[:1] == ["check"] else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
