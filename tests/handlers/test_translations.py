"""Every text a user sees has a German translation that keeps its placeholders.

The texts are extracted from the source tree at test time with Babel, so a new English text
without a German translation fails here. Fix: `python -m handlers.i18n extract`, then fill
the new `msgstr` entries in handlers/locales/de/LC_MESSAGES/messages.po.
"""

from __future__ import annotations

from typing import Any, cast

import pytest
from babel.messages.catalog import Catalog
from babel.messages.pofile import read_po

from billing.errors import CardDeclined, TokenInvalid
from handlers.context import Actor, Ctx
from handlers.flows.invoices import STATUSES
from handlers.i18n import (
    LOCALE_DIR,
    LOCALES,
    extract,
    pick_locale,
    placeholders,
    po_path,
    problems,
    translate,
)
from handlers.portal import COMMANDS, Portal
from handlers.problems import explain


@pytest.fixture(scope="module")
def template() -> Catalog:
    """The texts in the source tree right now."""
    return extract()


def _read(path: Any, locale: str | None = None) -> Catalog:
    with open(path, "rb") as handle:
        return read_po(handle, locale=locale, abort_invalid=True)


def _ctx(locale: str) -> Ctx:
    return Ctx(actor=Actor("telegram", "1", "1", True), billing=cast(Any, None), locale=locale)


def test_every_text_is_translated_into_german(template: Catalog) -> None:
    """Each extracted text has a German translation, not fuzzy, with the same placeholders."""
    assert len(template) > 50  # the extractor found the texts (`ctx.t`, `N_`, `translate`)
    assert problems(template, "de") == []


def test_the_template_lists_the_texts_in_the_source(template: Catalog) -> None:
    """messages.pot holds exactly the texts of the source tree (refreshed after changes)."""
    pot = _read(LOCALE_DIR / "messages.pot")
    assert {m.id for m in pot if m.id} == {m.id for m in template if m.id}


@pytest.mark.parametrize("locale", LOCALES)
def test_catalogs_parse_and_have_no_fuzzy_entries(locale: str) -> None:
    """Each catalog parses as a PO file, names its language and has no fuzzy entry."""
    catalog = _read(po_path(locale), locale)
    assert str(catalog.locale) == locale
    assert [m.id for m in catalog if m.id and m.fuzzy] == []
    assert not catalog.obsolete


def test_translations_keep_their_placeholders() -> None:
    """No German entry drops or adds a `{placeholder}` (its format spec included)."""
    catalog = _read(po_path("de"), "de")
    wrong = [(m.id, m.string) for m in catalog
             if m.id and m.string and placeholders(str(m.id)) != placeholders(str(m.string))]
    assert wrong == []


def test_placeholders_are_named_with_their_spec() -> None:
    """It finds `{name}` and `{month:02d}` fields, and none in plain text."""
    assert placeholders("Card expires {month:02d}/{year}") == {"{month:02d}", "{year}"}
    assert placeholders("No card on file") == set()


def test_translate_falls_back_to_english() -> None:
    """German texts come from the catalog; an unknown text stays English; values are filled."""
    assert translate("de", "Renews on {date}", date="1. April 2026") == (
        "Verlängert sich am 1. April 2026")
    assert translate("de", "A text nobody wrote") == "A text nobody wrote"
    assert translate("en", "Renews on {date}", date="Apr 1, 2026") == "Renews on Apr 1, 2026"


def test_language_tags_pick_a_supported_locale() -> None:
    """It takes the first supported language of tags like `de-AT`, else the default."""
    assert pick_locale(None, "de-AT") == "de"
    assert pick_locale("fr", default="de") == "de"
    assert pick_locale("pt_BR") == "en"


def test_tables_are_translated_where_shown() -> None:
    """Texts kept in module tables (declines, link problems, invoice statuses) show in German."""
    ctx = _ctx("de")
    assert explain(ctx, CardDeclined("insufficient_funds")).text == (
        "Die Karte ist nicht ausreichend gedeckt. Es wurde nichts geändert.")
    assert explain(ctx, CardDeclined("do_not_honor")).text.startswith("Die Karte wurde abgelehnt.")
    assert "abgelaufen" in explain(ctx, TokenInvalid("expired")).text
    assert [ctx.t(s) for s in STATUSES.values()] == [
        "Bezahlt", "Offen", "Storniert", "Uneinbringlich"]


def test_command_menu_in_each_language() -> None:
    """The menu lists the registered commands, /settings among them, in the user's language."""
    portal = Portal(cast(Any, None))
    english = dict(portal.command_menu("en"))
    german = dict(portal.command_menu("de"))
    assert {"start", "plan", "invoices", "card", "settings", "help", "forget"} <= set(english)
    assert set(english) == set(german) <= {name for name, _ in COMMANDS}
    assert german["settings"] == "Angebote, Erinnerungen, Sprache, Zeitzone"
    assert german["plan"] == "Ihr Tarif, Verlängerung und Karte"
