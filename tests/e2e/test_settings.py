"""Settings (SPEC §6.8): offers, reminders, language and time zone — as a chat user."""

from __future__ import annotations

import io

import pytest

from billing.models import Preference
from billing.prefs import get_prefs
from bot.console import Console
from handlers.flows.settings import find_zone
from tests.fakes.telegram_objects import BotMessage, FakeUser
from tests.world import World


async def _prefs(world: World, user_id: str, channel: str = "telegram") -> Preference | None:
    async with world.service.runtime.billing.db.session() as session:
        return await get_prefs(session, channel=channel, user_id=user_id)


async def _press(world: World, user: FakeUser, message: BotMessage, label: str) -> BotMessage:
    answer = await world.press(user, message, label)
    assert not isinstance(answer, str), answer
    return answer


def _labels(message: BotMessage) -> list[str]:
    return [b["text"] for row in message.keyboard for b in row]


async def test_unlinked_user_turns_offers_on_and_reminders_off(world: World) -> None:
    """Offers start off and reminders on; each tap saves and redraws the settings."""
    user = world.user()
    menu = await world.say(user, "/settings")
    text = menu.text or ""
    assert text.startswith("Settings")
    assert "Offers and news: off" in text and "Renewal reminders: on" in text
    assert "Language: English" in text and "Time zone: UTC" in text
    menu = await _press(world, user, menu, "Turn offers and news on")
    assert menu.edited and "Offers and news: on" in (menu.text or "")
    assert "Saved" in [c.get("text") for c in world.telegram.answered_callbacks]
    menu = await _press(world, user, menu, "Turn reminders off")
    assert "Renewal reminders: off" in (menu.text or "")
    assert "Turn reminders on" in _labels(menu)
    prefs = await _prefs(world, str(user.id))
    assert prefs is not None and (prefs.offers, prefs.reminders) == (True, False)


async def test_time_zone_from_a_button_or_typed(world: World) -> None:
    """A zone comes from the short list or as a typed IANA name (any case, or a city)."""
    user = world.user()
    menu = await world.say(user, "/settings")
    picker = await _press(world, user, menu, "Change time zone")
    assert "Berlin" in _labels(picker) and "New York" in _labels(picker)
    menu = await _press(world, user, picker, "Berlin")
    assert "Time zone: Europe/Berlin" in (menu.text or "")
    await _press(world, user, menu, "Change time zone")
    typed = await world.say(user, "america/new_york")
    assert "Time zone: America/New_York" in (typed.text or "")
    prefs = await _prefs(world, str(user.id))
    assert prefs is not None and prefs.timezone == "America/New_York"


async def test_unknown_time_zone_changes_nothing(world: World) -> None:
    """A bad zone name gets a clear answer, keeps the stored zone, and may be typed again."""
    user = world.user()
    menu = await world.say(user, "/settings")
    menu = await _press(world, user, await _press(world, user, menu, "Change time zone"),
                        "London")
    await _press(world, user, menu, "Change time zone")
    wrong = await world.say(user, "Mars/Olympus_Mons")
    assert "don't know the time zone “Mars/Olympus_Mons”" in (wrong.text or "")
    assert "Nothing was changed" in (wrong.text or "")
    prefs = await _prefs(world, str(user.id))
    assert prefs is not None and prefs.timezone == "Europe/London"
    again = await world.say(user, "Tokyo")
    assert "Time zone: Asia/Tokyo" in (again.text or "")


async def test_back_from_the_zone_choice_stops_waiting_for_a_name(world: World) -> None:
    """Back returns to the settings in place; later free text is not taken as a zone."""
    user = world.user()
    menu = await world.say(user, "/settings")
    picker = await _press(world, user, menu, "Change time zone")
    back = await _press(world, user, picker, "Back")
    assert back.edited and back.message_id == menu.message_id
    assert "Time zone: UTC" in (back.text or "")
    assert "Please use the buttons" in ((await world.say(user, "Europe/Paris")).text or "")
    prefs = await _prefs(world, str(user.id))
    assert prefs is None or prefs.timezone is None


async def test_forged_zone_button_changes_nothing(world: World) -> None:
    """A button naming a zone that does not exist says so and stores nothing."""
    user = world.user()
    menu = await world.say(user, "/settings")
    await world.telegram.press_data(user, menu, "set:tz:Mars/Olympus")
    answer = await world.telegram.next_message(user)
    assert "no longer valid" in (answer.text or "")
    prefs = await _prefs(world, str(user.id))
    assert prefs is None or prefs.timezone is None


async def test_language_change_answers_in_the_new_language(world: World) -> None:
    """Choosing Deutsch saves it and answers in German from then on, whatever Telegram says."""
    user = world.user(language_code="en")
    menu = await world.say(user, "/settings")
    german = await _press(world, user, menu, "Deutsch")
    text = german.text or ""
    assert text.startswith("Einstellungen") and "Sprache: Deutsch" in text
    assert "Angebote und Neuigkeiten: aus" in text and "English" in _labels(german)
    assert "Gespeichert" in [c.get("text") for c in world.telegram.answered_callbacks]
    assert "Was ich kann" in ((await world.say(user, "/help")).text or "")
    english = await _press(world, user, german, "English")
    assert "Language: English" in (english.text or "")


async def test_language_change_shows_the_command_menu_in_it(world: World) -> None:
    """The chat's command menu follows the language chosen in /settings, not the app's."""
    user = world.user(language_code="en")
    scope = {"type": "chat", "chat_id": user.id}
    menu = await world.say(user, "/settings")
    assert world.telegram.commands(scope=scope) == []  # the app's language decides
    german = await _press(world, user, menu, "Deutsch")
    described = {c["command"]: c["description"] for c in world.telegram.commands(scope=scope)}
    assert described["help"] == "Was ich kann" and "plan" in described
    await _press(world, user, german, "English")
    described = {c["command"]: c["description"] for c in world.telegram.commands(scope=scope)}
    assert described["help"] == "What I can do"


async def test_a_group_keeps_its_shared_command_menu(world: World) -> None:
    """A language chosen in a group changes the answers, not the group's shared menu."""
    user, group = world.user(language_code="en"), world.group()
    menu = await world.say(user, "/settings", group)
    await _press(world, user, menu, "Deutsch")
    assert world.telegram.commands(scope={"type": "chat", "chat_id": group.id}) == []


async def test_settings_from_my_plan(world: World) -> None:
    """A linked user reaches the settings from My plan's `settings` button."""
    user, _ = await world.linked_user()
    plan = await world.say(user, "/plan")
    await world.telegram.press_data(user, plan, "settings")
    menu = await world.telegram.next_message(user)
    assert "Offers and news: off" in (menu.text or "")


async def test_settings_in_the_console(world: World) -> None:
    """The console channel has the same settings, stored for its own user."""
    console = Console(world.service.runtime.portal, out=io.StringIO())
    try:
        await console.handle("/settings")
        await console.handle(str(console.buttons.index(
            next(b for b in console.buttons if b.label == "Turn offers and news on")) + 1))
        await console.handle(str(next(i for i, b in enumerate(console.buttons, 1)
                                      if b.label == "Change time zone")))
        await console.handle("Europe/Vienna")
    finally:
        await console.aclose()
    out = console.out.getvalue()  # type: ignore[attr-defined]
    assert "Offers and news: on" in out and "Time zone: Europe/Vienna" in out
    prefs = await _prefs(world, "demo", channel="console")
    assert prefs is not None and (prefs.offers, prefs.timezone) == (True, "Europe/Vienna")


@pytest.mark.parametrize(("typed", "zone"), [
    ("Europe/Berlin", "Europe/Berlin"), ("  europe/berlin ", "Europe/Berlin"),
    ("New York", "America/New_York"), ("utc", "UTC"), ("Mars/Olympus", None),
    ("../../etc/passwd", None), ("", None),
])
def test_find_zone(typed: str, zone: str | None) -> None:
    """It accepts IANA names in any case, or a unique city, and refuses anything else."""
    assert find_zone(typed) == zone
