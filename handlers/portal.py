"""The entry point every channel calls: routes an update, answers with replies."""

from __future__ import annotations

import logging
from collections.abc import Collection, Mapping
from typing import Any

from billing.deliveries import mark_reachable
from billing.errors import BillingError
from billing.mirror import read_context
from billing.prefs import get_profile, remember_locale
from billing.services import Billing
from billing.state import take
from handlers import flows  # noqa: F401 - registers every conversation on the router
from handlers.apps import ChatApp, PlainApp
from handlers.context import Actor, Ctx
from handlers.i18n import N_, pick_locale, supported, translate
from handlers.notices import render_notice
from handlers.problems import explain
from handlers.replies import Button, Reply, rows
from handlers.router import Route, router

log = logging.getLogger(__name__)
MAX_TEXT = 1000

# The command menu, in the order Telegram shows it (SPEC §5); /help lists the same.
COMMANDS = (
    ("start", N_("Start and see your options")),
    ("plan", N_("Your plan, renewal and card")),
    ("invoices", N_("Your invoices")),
    ("card", N_("Update your card")),
    ("cancel", N_("Cancel your subscription")),
    ("settings", N_("Offers, reminders, language, time zone")),
    ("help", N_("What I can do")),
    ("forget", N_("Forget this chat")),
)
# Shown, and answered, only for business admins (SPEC §5, §6c).
ADMIN_COMMANDS = (
    ("stats", N_("Revenue figures and the MRR chart")),
    ("broadcast", N_("Send a message to your customers")),
)


class Portal:
    """Channel-neutral conversations over the billing domain."""

    def __init__(self, billing: Billing, *, default_locale: str = "en",
                 admins: Mapping[str, Collection[str]] | None = None) -> None:
        self.billing = billing
        self.default_locale = default_locale
        self.admins = {channel: frozenset(ids) for channel, ids in (admins or {}).items()}
        self.apps: dict[str, ChatApp] = {}

    def register(self, app: ChatApp) -> None:
        """Make a chat app known: its links and private chat, for updates from it."""
        self.apps[app.name] = app

    def app(self, channel: str) -> ChatApp:
        """Return the chat app of a channel (a plain one if none registered)."""
        return self.apps.get(channel) or PlainApp(channel)

    def chat_url(self) -> str | None:
        """Return where a browser goes back to a chat with the bot (the first app that has
        one), for the pages after Stripe's."""
        return next((url for app in self.apps.values() if (url := app.private_chat_url())),
                    None)

    def is_admin(self, actor: Actor) -> bool:
        """Tell whether the actor is one of their channel's business admins."""
        return actor.user_id in self.admins.get(actor.channel, frozenset())

    async def context(self, actor: Actor, *, incoming: bool = True,
                      route: Route | None = None) -> Ctx:
        """Build the context of one update (or, not incoming, of a pushed notice): the user's
        language, time zone and link; and, for a route that starts by reading the linked
        customer's mirror rows, those rows, in the same read."""
        who = {"channel": actor.channel, "user_id": actor.user_id, "chat_id": actor.chat_id}
        view = None
        async with self.billing.db.read_rows() as rows:
            if self._runs(route, actor):
                profile, view = await read_context(rows, **who)
            else:
                profile = await get_profile(rows, **who)
        if profile.unreachable and incoming:
            # The chat refused a message earlier (blocked, removed); it talks to us again now.
            async with self.billing.db.session() as session:
                await mark_reachable(session, channel=actor.channel, chat_id=actor.chat_id)
        spoken = supported(actor.language)
        if spoken and profile.locale is None:
            # Remember the language the chat app reports, so that pushed notices (which come
            # with no update, hence no language) speak it too. /settings changes it. A
            # transaction of its own that starts with the write (see remember_locale).
            async with self.billing.db.session() as session:
                await remember_locale(session, channel=actor.channel, user_id=actor.user_id,
                                      locale=spoken)
        locale = pick_locale(profile.locale, actor.language, default=self.default_locale)
        return Ctx(actor=actor, billing=self.billing, locale=locale,
                   zone=profile.timezone or "UTC", app=self.app(actor.channel),
                   link=profile.link, admin=self.is_admin(actor), view=view)

    def _runs(self, route: Route | None, actor: Actor) -> bool:
        """Tell whether `_run` will run a route that reads the mirror first (not one it
        answers itself: an admin's route for anyone else, a private one in a group)."""
        return (route is not None and route.mirror and (actor.private or not route.private)
                and (self.is_admin(actor) or not route.admin))

    def command_menu(self, locale: str, *, admin: bool = False) -> list[tuple[str, str]]:
        """Return the registered commands and their descriptions for a language (an admin's
        with the admin commands)."""
        listed = COMMANDS + ADMIN_COMMANDS if admin else COMMANDS
        return [(name, translate(locale, text)) for name, text in listed
                if name in router.commands]

    async def command(self, actor: Actor, name: str, args: str = "") -> list[Reply]:
        """Answer a command such as `/plan`."""
        route = router.commands.get(name.lower())
        ctx = await self.context(actor, route=route)
        if route is None or (route.admin and not ctx.admin):
            return [Reply(ctx.t("I don't know that command. /help lists what I can do."))]
        return await self._run(ctx, route, args[:MAX_TEXT].strip())

    async def button(self, actor: Actor, data: str) -> list[Reply]:
        """Answer the press of a button carrying `data`."""
        found = router.match_button(data) if len(data) <= 64 else None
        ctx = await self.context(actor, route=found[0] if found else None)
        if found is None:
            return [Reply(ctx.t("That button is no longer valid. Nothing was changed."),
                          toast=ctx.t("That button is no longer valid."),
                          buttons=rows(Button(ctx.t("Help"), action="help")))]
        route, match = found
        return await self._run(ctx, route, match)

    async def text(self, actor: Actor, text: str) -> list[Reply]:
        """Answer free text: the answer to a pending question, or a pointer to the buttons."""
        ctx = await self.context(actor)
        async with self.billing.db.session() as session:
            pending = await take(session, channel=actor.channel, user_id=actor.user_id)
        route = router.answers.get(pending.kind) if pending else None
        if pending is None or route is None:
            return [Reply(ctx.t("Please use the buttons or a command. /help lists them."))]
        if len(text) > MAX_TEXT:
            return [Reply(ctx.t("That message is too long. Nothing was changed."))]
        return await self._run(ctx, route, text.strip(), pending.data)

    async def notice(self, *, actor: Actor, kind: str, params: dict[str, Any]) -> Reply:
        """Render a pushed notice for its recipient."""
        ctx = await self.context(actor, incoming=False)
        return render_notice(ctx, kind, params)

    def render_for(self, *, actor: Actor, kind: str, params: dict[str, Any],
                   locale: str | None, zone: str | None) -> Reply:
        """Render a notice for a recipient whose stored language and time zone are known
        (the outbox reads them with its claim instead of once per notice)."""
        ctx = Ctx(actor=actor, billing=self.billing,
                  locale=pick_locale(locale, default=self.default_locale),
                  zone=zone or "UTC", app=self.app(actor.channel))
        return render_notice(ctx, kind, params)

    async def _run(self, ctx: Ctx, route: Route, *args: Any) -> list[Reply]:
        if route.admin and not ctx.admin:  # a button or answer of an admin flow: nothing
            return [Reply(ctx.t("I don't know that command. /help lists what I can do."))]
        if route.private and not ctx.actor.private:
            return [self._go_private(ctx)]
        try:
            replies: list[Reply] = await route.handler(ctx, *args)
        except BillingError as error:
            log.info("handled %s for %s", type(error).__name__, ctx.actor.channel)
            return [explain(ctx, error)]
        return replies

    def _go_private(self, ctx: Ctx) -> Reply:
        text = ctx.t("Billing details are shown only in a private chat with me.")
        url = self.app(ctx.actor.channel).private_chat_url()
        if not url:
            return Reply(text)
        return Reply(text, buttons=rows(Button(ctx.t("Open private chat"), url=url)))
