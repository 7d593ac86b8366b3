"""A German-speaking customer sees German texts, money and dates from /start to /invoices."""

from __future__ import annotations

import re

from handlers.router import router
from tests.fakes.telegram_objects import BotMessage, FakeUser
from tests.world import World

MONTH = 31 * 24 * 3600
# A day as German readers write it: "12. März 2026", "3. Sept. 2026".
DAY = r"\d{1,2}\. [A-ZÄÖÜ][a-zäöü]+\.? \d{4}"


async def _press(world: World, user: FakeUser, message: BotMessage, label: str) -> BotMessage:
    answer = await world.press(user, message, label)
    assert not isinstance(answer, str), answer
    return answer


async def test_german_user_subscribes_and_sees_everything_in_german(world: World) -> None:
    """Telegram's language_code "de": German greeting, prices, Checkout, welcome, plan, invoices."""
    user = world.user(language_code="de")
    hello = await world.say(user, "/start")
    assert (hello.text or "").startswith("Willkommen bei Acme Cloud")
    plans = await _press(world, user, hello, "Tarife ansehen")
    assert "Tarife" in (plans.text or "") and "29,00\xa0€ pro Monat" in (plans.text or "")
    offer = await _press(world, user, plans, "Pro · 29,00\xa0€ pro Monat")
    assert "sicheren Seite von Stripe" in (offer.text or "")
    url = await world.press(user, offer, "Mit Stripe bezahlen")
    assert isinstance(url, str)
    assert world.sandbox.get(url.rsplit("/", 1)[-1])["locale"] == "de"  # Checkout in German
    await world.follow(url)
    await world.settle()
    welcome = await world.telegram.next_message(user)
    text = welcome.text or ""
    assert "Willkommen bei Acme Cloud!" in text
    assert "Sie haben Pro abonniert (29,00\xa0€ pro Monat)." in text
    assert re.search(rf"Es verlängert sich am {DAY}\.", text), text
    plan = await _press(world, user, welcome, "Mein Tarif")
    text = plan.text or ""
    assert "Status: Aktiv" in text and re.search(rf"Verlängert sich am {DAY}", text), text
    assert "Karte: Visa •••• 4242, gültig bis" in text
    assert re.search(rf"Nächste Rechnung: 29,00\xa0€ am {DAY}", text), text
    invoices = await world.say(user, "/invoices")
    lines = (invoices.text or "").splitlines()
    assert lines[0] == "Rechnungen"
    assert re.fullmatch(rf"{DAY} · 29,00\xa0€ · Bezahlt( · .*)?", lines[1]), lines


async def test_german_chosen_in_settings_while_telegram_is_english(world: World) -> None:
    """A linked user with English Telegram picks Deutsch and reads plan and invoices in German."""
    user, _ = await world.linked_user(language_code="en")
    world.sandbox.advance_time(MONTH)
    await world.settle()
    menu = await world.say(user, "/settings")
    await _press(world, user, menu, "Deutsch")
    plan = await world.say(user, "/plan")
    text = plan.text or ""
    assert "29,00\xa0€ pro Monat" in text and re.search(rf"Verlängert sich am {DAY}", text)
    invoices = await world.say(user, "/invoices")
    lines = (invoices.text or "").splitlines()
    assert lines[0] == "Rechnungen" and len(lines) == 3
    assert all(re.match(rf"{DAY} · 29,00\xa0€ · Bezahlt", line) for line in lines[1:]), lines
    labels = [b["text"] for row in invoices.keyboard for b in row]
    assert any(label.startswith("Rechnung ") for label in labels)


async def test_german_errors_and_help(world: World) -> None:
    """Unknown commands, stray text and billing errors answer in German too."""
    user = world.user(language_code="de-AT")
    assert "Diesen Befehl kenne ich nicht" in ((await world.say(user, "/frobnicate")).text or "")
    assert "Bitte nutzen Sie die Schaltflächen" in ((await world.say(user, "hallo")).text or "")
    plan = await world.say(user, "/plan")
    assert "noch mit keinem Abo verbunden" in (plan.text or "")
    assert "Tarife ansehen" in [b["text"] for row in plan.keyboard for b in row]
    assert "/settings — Angebote, Erinnerungen, Sprache, Zeitzone" in (
        (await world.say(user, "/help")).text or "")


async def test_commands_are_registered_in_each_language(world: World) -> None:
    """setMyCommands holds English by default and German for "de", /settings included."""
    english = {c["command"]: c["description"] for c in world.telegram.commands()}
    german = {c["command"]: c["description"] for c in world.telegram.commands(language_code="de")}
    assert english["settings"] == "Offers, reminders, language, time zone"
    assert german["settings"] == "Angebote, Erinnerungen, Sprache, Zeitzone"
    assert german["plan"] == "Ihr Tarif, Verlängerung und Karte"
    assert ("cancel" in german) == ("cancel" in router.commands)
    assert list(english) == list(german)
