"""Replies shown to a Slack user: ephemerally where they acted (response_url, else
chat.postEphemeral, else a DM), in a modal where a reply asks for an answer (views.open with
the update's trigger), or in place of every copy of a message sent to several (chat.update).

The client is the update's (SlackChannel._web: its workspace's token), asked for at each call.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from billing import teams
from bot.slack_app import CHANNEL
from bot.slack_errors import error_code
from bot.slack_render import answer_modal, ask_button, blocks, fallback, pick_block
from handlers.context import Actor
from handlers.i18n import N_, pick_locale, translate
from handlers.portal import Portal
from handlers.replies import Reply

log = logging.getLogger(__name__)


class SlackAnswers:
    """Show a listener's replies to the actor."""

    def __init__(self, portal: Portal, web: Callable[[], AsyncWebClient],
                 default_locale: str) -> None:
        self._portal = portal
        self._web = web  # the update's client
        self._default_locale = default_locale

    async def answer(self, actor: Actor, replies: list[Reply], *, respond: Any,
                     trigger: Any, where: str | None) -> None:
        """Show the replies to the actor: ephemerally where they acted, in a modal where a
        reply asks for an answer."""
        for reply in replies:
            if reply.replaces and await self._replace_copies(actor, reply, reply.replaces):
                continue
            if reply.expect_text:
                if await self.open_modal(actor, reply, trigger, where):
                    trigger = None  # a trigger opens one view
                    continue
            await self._show(actor, reply, respond=respond, where=where)

    async def _replace_copies(self, actor: Actor, reply: Reply, ref: str) -> bool:
        """Update every copy of the message named `ref` (each admin's seat request) with
        chat.update; return False when none was found."""
        async with self._portal.billing.db.session() as session:
            copies = await teams.take_copies(session, channel=CHANNEL, ref=ref)
        team, _, _user = actor.user_id.partition(":")
        updated = False
        for chat, ts, locale in copies:
            where_team, _, conversation = chat.partition(":")
            if where_team != team:
                continue
            shown = reply.in_locale(locale)  # the copy's reader's language, not the actor's
            try:
                await self._web().chat_update(channel=conversation, ts=ts, text=fallback(shown),
                                              blocks=blocks(shown))
                updated = True
            except SlackApiError as error:
                log.info("chat.update failed: %s", error_code(error))
        return updated

    def _locale(self, actor: Actor) -> str:
        return pick_locale(actor.language, default=self._default_locale)

    async def open_modal(self, actor: Actor, reply: Reply, trigger: Any,
                          where: str | None) -> bool:
        if not isinstance(trigger, str) or not trigger:
            return False
        locale = self._locale(actor)
        view = answer_modal(reply, title=translate(locale, N_("Billing")),
                            choose=translate(locale, N_("Choose")),
                            submit=translate(locale, N_("Continue")),
                            label=translate(locale, N_("Your answer")),
                            metadata={"channel": where or ""})
        try:
            await self._web().views_open(trigger_id=trigger, view=view)
        except SlackApiError as error:  # an expired or used trigger: a button opens it
            log.info("views.open failed: %s", error_code(error))
            return False
        return True

    async def _show(self, actor: Actor, reply: Reply, *, respond: Any,
                    where: str | None) -> None:
        shown = blocks(reply)
        if reply.expect_text and reply.pick:  # no modal: the picker in the message itself
            shown.append(pick_block(reply.pick, translate(self._locale(actor), N_("Choose"))))
        elif reply.expect_text:
            shown.append(ask_button(translate(self._locale(actor), N_("Answer")), reply.text))
        text = fallback(reply)
        if respond is not None:
            try:
                await respond(text=text, blocks=shown, response_type="ephemeral",
                              replace_original=bool(reply.edit))
                return
            except Exception as error:  # noqa: BLE001 - an expired response_url: post instead
                log.info("response_url failed: %s", type(error).__name__)
        _team, _, user = actor.user_id.partition(":")
        try:
            if where is not None:
                await self._web().chat_postEphemeral(channel=where, user=user, text=text,
                                                     blocks=shown)
                return
        except SlackApiError as error:
            log.info("chat.postEphemeral failed: %s", error_code(error))
        await self._web().chat_postMessage(channel=user, text=text, blocks=shown)


def answered(element: dict[str, Any]) -> str:
    """Return what an input or picker holds: typed text, a user or a conversation id."""
    for key in ("value", "selected_user", "selected_conversation", "selected_channel"):
        found = element.get(key)
        if isinstance(found, str):
            return found
    return ""
