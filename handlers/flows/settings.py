"""Settings (SPEC §6.8): offers and news, renewal reminders, language and time zone.

Settings belong to the chat user, linked or not, so they work before subscribing and in any
channel. Each change is saved at the tap and answered with the settings, in the (new) language.
"""

from __future__ import annotations

import re
import zoneinfo
from dataclasses import replace
from datetime import UTC, datetime
from functools import cache

from babel.dates import format_time, get_timezone_location

from billing.prefs import get_prefs, save_prefs
from billing.state import clear, expect
from handlers.context import Ctx
from handlers.i18n import LANGUAGES
from handlers.replies import Button, Reply, rows
from handlers.router import router

# The zones offered as buttons; any other IANA name can be typed.
ZONES = ("UTC", "Europe/London", "Europe/Berlin", "Europe/Vienna", "Europe/Zurich",
         "America/New_York", "America/Chicago", "America/Los_Angeles", "Asia/Tokyo",
         "Australia/Sydney")
_ZONE = r"[A-Za-z0-9_+\-/]{1,50}"


@cache
def _known_zones() -> dict[str, str]:
    return {name.lower(): name for name in zoneinfo.available_timezones()}


def find_zone(text: str) -> str | None:
    """Return the IANA time zone a user means (`europe/berlin`, `New York`), if it exists."""
    key = text.strip().replace(" ", "_").lower()
    known = _known_zones()
    if key in known:
        return known[key]
    cities = [name for lower, name in known.items()
              if "/" in lower and lower.rsplit("/", 1)[1] == key]
    return cities[0] if len(cities) == 1 else None


def _shown(text: str) -> str:
    """Return typed text fit to echo: a lone surrogate (no channel can send one) as "?"."""
    return text.encode("utf-8", "replace").decode("utf-8")


def zone_label(ctx: Ctx, zone: str) -> str:
    """Name a zone by its city in the user's language ("Wien"), or as it is ("UTC")."""
    if "/" not in zone:
        return zone
    return str(get_timezone_location(zone, locale=ctx.locale, return_city=True))


def _on_off(ctx: Ctx, value: bool) -> str:
    return ctx.t("on") if value else ctx.t("off")


async def _menu(ctx: Ctx, *, edit: bool = False, toast: str | None = None) -> list[Reply]:
    async with ctx.billing.db.session() as session:
        prefs = await get_prefs(session, channel=ctx.actor.channel, user_id=ctx.actor.user_id)
    offers = prefs.offers if prefs else False
    reminders = prefs.reminders if prefs else True
    now = format_time(datetime.now(UTC), "short", tzinfo=zoneinfo.ZoneInfo(ctx.zone),
                      locale=ctx.locale)
    text = "\n".join([
        ctx.t("Offers and news: {state}", state=_on_off(ctx, offers)),
        ctx.t("Renewal reminders: {state}", state=_on_off(ctx, reminders)),
        ctx.t("Language: {language}", language=LANGUAGES[ctx.locale]),
        ctx.t("Time zone: {zone} (now {time})", zone=ctx.zone, time=now),
        "",
        ctx.t("Offers and news are occasional messages about new plans and discounts. "
              "Reminders come a few days before each renewal. I keep quiet at night in "
              "your time zone."),
    ])
    buttons = [
        Button(ctx.t("Turn offers and news off") if offers else ctx.t("Turn offers and news on"),
               action=f"set:offers:{'off' if offers else 'on'}"),
        Button(ctx.t("Turn reminders off") if reminders else ctx.t("Turn reminders on"),
               action=f"set:reminders:{'off' if reminders else 'on'}"),
        *(Button(name, action=f"set:lang:{code}")
          for code, name in LANGUAGES.items() if code != ctx.locale),
        Button(ctx.t("Change time zone"), action="set:tz"),
    ]
    return [Reply(text, title=ctx.t("Settings"), buttons=rows(*buttons), edit=edit,
                  toast=toast)]


async def _save(ctx: Ctx, **values: object) -> None:
    async with ctx.billing.db.session() as session:
        await clear(session, channel=ctx.actor.channel, user_id=ctx.actor.user_id)
        await save_prefs(session, channel=ctx.actor.channel, user_id=ctx.actor.user_id,
                         **values)


def _zone_picker(ctx: Ctx, text: str) -> Reply:
    buttons = [Button(zone_label(ctx, zone), action=f"set:tz:{zone}") for zone in ZONES]
    return Reply(text, title=ctx.t("Time zone"), expect_text=True,
                 buttons=rows(*buttons, per_row=2) + rows(Button(ctx.t("Back"),
                                                                 action="set:menu")))


@router.command("settings", private=False)
async def show_settings(ctx: Ctx, _args: str) -> list[Reply]:
    """Show the user's settings with a button to change each."""
    return await _menu(ctx)


@router.button("settings", private=False)
async def settings_button(ctx: Ctx, _match: re.Match[str]) -> list[Reply]:
    """Show the settings from a button elsewhere (My plan), below the message it sat on."""
    return await _menu(ctx)


@router.button("set:menu", private=False)
async def back_to_settings(ctx: Ctx, _match: re.Match[str]) -> list[Reply]:
    """Go back from the time zone choice to the settings, in place."""
    async with ctx.billing.db.session() as session:
        await clear(session, channel=ctx.actor.channel, user_id=ctx.actor.user_id)
    return await _menu(ctx, edit=True)


@router.button("set:(offers|reminders):(on|off)", private=False)
async def toggle(ctx: Ctx, match: re.Match[str]) -> list[Reply]:
    """Turn offers and news, or renewal reminders, on or off."""
    await _save(ctx, **{match.group(1): match.group(2) == "on"})
    return await _menu(ctx, edit=True, toast=ctx.t("Saved"))


@router.button("set:lang:([a-z]{2})", private=False)
async def choose_language(ctx: Ctx, match: re.Match[str]) -> list[Reply]:
    """Switch the user's language and answer in it."""
    locale = match.group(1)
    if locale not in LANGUAGES:
        return [Reply(ctx.t("That button is no longer valid. Nothing was changed."))]
    await _save(ctx, locale=locale)
    ctx = replace(ctx, locale=locale)
    if ctx.app is not None:  # e.g. Telegram shows this chat's command menu in it too
        await ctx.app.language_chosen(ctx.actor, locale)
    return await _menu(ctx, edit=True, toast=ctx.t("Saved"))


@router.button("set:tz", private=False)
async def ask_zone(ctx: Ctx, _match: re.Match[str]) -> list[Reply]:
    """Offer common time zones as buttons, or to type one."""
    async with ctx.billing.db.session() as session:
        await expect(session, channel=ctx.actor.channel, user_id=ctx.actor.user_id,
                     kind="timezone")
    return [replace(_zone_picker(ctx, ctx.t(
        "Pick your time zone, or send its name, for example Europe/Berlin or "
        "America/New_York.")), edit=True)]


@router.button(f"set:tz:({_ZONE})", private=False)
async def choose_zone(ctx: Ctx, match: re.Match[str]) -> list[Reply]:
    """Save a time zone picked from the buttons."""
    zone = find_zone(match.group(1))
    if zone is None:
        return [Reply(ctx.t("That button is no longer valid. Nothing was changed."))]
    await _save(ctx, timezone=zone)
    return await _menu(replace(ctx, zone=zone), edit=True, toast=ctx.t("Saved"))


@router.answer("timezone", private=False)
async def type_zone(ctx: Ctx, text: str, _data: dict[str, object]) -> list[Reply]:
    """Save a typed IANA time zone, or say that it is unknown and change nothing."""
    zone = find_zone(text)
    if zone is None:
        async with ctx.billing.db.session() as session:
            await expect(session, channel=ctx.actor.channel, user_id=ctx.actor.user_id,
                         kind="timezone")
        return [_zone_picker(ctx, ctx.t(
            "I don't know the time zone “{name}”. Nothing was changed. Send a name like "
            "Europe/Berlin, or pick one.", name=_shown(text[:60])))]
    await _save(ctx, timezone=zone)
    return await _menu(replace(ctx, zone=zone))
