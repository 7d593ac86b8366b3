"""Portier's HTTP server: webhooks, the return page, link tokens, health and metrics."""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import (
    HTMLResponse,
    JSONResponse,
    RedirectResponse,
    Response,
)
from starlette.routing import Route

from billing.errors import NotFound, StripeProblem, WebhookRejected
from billing.links import mint_token
from billing.payloads import MalformedPayload, parse
from billing.webhooks import Intake, verify
from bot.channels import Channel
from bot.limits import BodyLimit
from bot.metrics import CONTENT_TYPE as METRICS_TYPE
from bot.metrics import Metrics
from bot.pages import PRIVATE, chat_page
from bot.runtime import Runtime, same_secret, secret
from bot.worker import Worker
from handlers.flows.card import tap_card_link
from handlers.i18n import N_, pick_locale, translate

log = logging.getLogger(__name__)
CUSTOMER_ID = re.compile(r"cus_[A-Za-z0-9]{1,250}")  # used with fullmatch: `$` allows "\n"
LINK_CHANNELS = ("telegram", "slack")  # where a link token may be redeemed (SPEC §5)


def accepted_languages(header: str) -> list[str]:
    """Return the language tags of an Accept-Language header, most wanted first."""
    ranked = []
    for n, part in enumerate(header.split(",")[:20]):
        tag, _, params = part.strip().partition(";")
        try:
            weight = float(params.strip()[2:]) if params.strip().startswith("q=") else 1.0
        except ValueError:
            weight = 0.0
        if tag and tag != "*" and weight > 0:
            ranked.append((-weight, n, tag))
    return [tag for _, _, tag in sorted(ranked)]


class Server:
    """Portier's own routes, bound to the runtime and the worker, and each channel's."""

    def __init__(self, runtime: Runtime, worker: Worker,
                 channels: Sequence[Channel] = ()) -> None:
        self.runtime = runtime
        self.worker = worker
        # Deliveries arriving together are stored in one transaction (group commit).
        self.intake = Intake(runtime.billing.db)
        self.stats = Metrics(runtime.billing, worker.outbox)
        self.app = Starlette(routes=[
            Route("/stripe/webhook", self.stripe_webhook, methods=["POST"]),
            Route("/return", self.return_page, methods=["GET"]),
            Route("/card/{token}", self.card_page, methods=["GET"]),
            Route("/api/link-tokens", self.link_tokens, methods=["POST"]),
            Route("/healthz", self.healthz, methods=["GET"]),
            Route("/metrics", self.metrics, methods=["GET"]),
            *(route for channel in channels
              for route in channel.routes(self.stats.updates.labels(channel.name).inc)),
        ], middleware=[Middleware(BodyLimit)])

    async def stripe_webhook(self, request: Request) -> Response:
        """Verify a Stripe event on the raw body, store it once, answer at once."""
        payload = await request.body()
        try:
            event = verify(payload, request.headers.get("stripe-signature"),
                           secret(self.runtime.settings.stripe_webhook_secret))
        except WebhookRejected as error:
            self.stats.webhooks.labels("rejected").inc()
            log.warning("Stripe webhook refused: %s", error)
            return JSONResponse({"error": str(error)}, status_code=400)
        fresh = await self.intake.store(event)
        self.stats.webhooks.labels("received" if fresh else "duplicate").inc()
        if fresh:
            self.worker.kick()
        return JSONResponse({"received": True, "duplicate": not fresh})

    async def return_page(self, request: Request) -> Response:
        """Tell a customer back from Stripe's page to return to the chat, in their language
        (the `lang` Portier put in the return URL, else the browser's)."""
        locale = pick_locale(request.query_params.get("lang"),
                             *accepted_languages(request.headers.get("accept-language", "")),
                             default=self.runtime.settings.locale)
        name = self.runtime.billing.catalog.business.name
        canceled = request.query_params.get("canceled") == "1"
        headline = translate(locale, N_("Nothing was charged.") if canceled else N_("All done."))
        back = translate(locale, N_("You can return to the chat with {business}."),
                         business=name)
        return HTMLResponse(chat_page(locale, business=name, headline=headline, text=back,
                                      chat_url=self.runtime.portal.chat_url()))

    async def card_page(self, request: Request) -> Response:
        """Open Stripe's card page for an Update card button (the portal session is made
        now, at the tap), or say in the user's language why not; the token is never logged."""
        answer = await tap_card_link(
            self.runtime.billing, request.path_params["token"],
            languages=accepted_languages(request.headers.get("accept-language", "")),
            default_locale=self.runtime.settings.locale)
        if answer.url is not None:
            return RedirectResponse(answer.url, status_code=302, headers=PRIVATE)
        return HTMLResponse(chat_page(answer.locale, headline=answer.headline, text=answer.text,
                                      business=self.runtime.billing.catalog.business.name,
                                      chat_url=self.runtime.portal.chat_url()),
                            status_code=answer.status, headers=PRIVATE)

    async def link_tokens(self, request: Request) -> Response:
        """Mint a one-time Telegram deep link for a customer of the business's web app."""
        expected = secret(self.runtime.settings.api_key)
        auth = request.headers.get("authorization", "")
        if not auth.startswith("Bearer ") or not same_secret(auth[7:], expected):
            return JSONResponse({"error": "unauthorized"}, status_code=401)
        # What was sent is not logged: it came from outside.
        why = "no customer id of Stripe's form"
        try:
            body = parse(await request.body())
        except MalformedPayload as error:
            body, why = None, str(error)
        customer = body.get("customer") if isinstance(body, dict) else None
        channel = body.get("channel", "telegram") if isinstance(body, dict) else None
        if isinstance(body, dict) and channel not in LINK_CHANNELS:
            why = "an unknown channel"
        if channel not in LINK_CHANNELS or not isinstance(customer, str) or not (
                CUSTOMER_ID.fullmatch(customer)):
            log.info("link token request refused: %s", why)
            return JSONResponse({"error": "expected {\"customer\": \"cus_…\", \"channel\": "
                                          "\"telegram\" or \"slack\"}"}, status_code=422)
        billing = self.runtime.billing
        try:
            async with billing.db.session() as session:
                minted = await mint_token(session, gateway=billing.gateway,
                                          secret=billing.link_secret, customer_id=customer)
        except NotFound:
            return JSONResponse({"error": "unknown customer"}, status_code=404)
        except StripeProblem:
            return JSONResponse({"error": "Stripe is unavailable; nothing was created"},
                                status_code=503)
        app = self.runtime.portal.app(channel)
        return JSONResponse({"token": minted.token, "url": app.link_url(minted.token),
                             "command": app.link_command(minted.token),
                             "expires_at": int(minted.expires_at.timestamp())}, status_code=201)

    async def healthz(self, _request: Request) -> Response:
        """Answer 200 when the database answers, 503 otherwise."""
        if await self.runtime.billing.db.ping():
            return JSONResponse({"status": "ok"})
        return JSONResponse({"status": "database unavailable"}, status_code=503)

    async def metrics(self, _request: Request) -> Response:
        """Expose the metrics in Prometheus' text format (bot.metrics)."""
        return Response(await self.stats.render(), media_type=METRICS_TYPE)
