"""The `portier` command line: run, demo, sandbox, db upgrade, catalog check, sync, metrics,
notices, link."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

from sqlalchemy.exc import SQLAlchemyError

from billing.catalog import load_catalog, resolve_prices
from billing.errors import BillingError, CatalogError, NotFound
from billing.migrate import upgrade
from bot.logs import configure_logging
from bot.runtime import build_billing, make_gateway, secret
from bot.settings import Settings, SettingsError, load_settings
from bot.slack_app import connect_command
from bot.telegram_app import TelegramApp
from handlers.formatting import money


class CommandError(Exception):
    """A failure to report as one line and a non-zero exit."""


def _settings() -> Settings:
    settings = load_settings()
    configure_logging(settings.log_format, settings.secrets())
    return settings


def _need_stripe(settings: Settings) -> None:
    if settings.stripe_secret_key is None:
        raise CommandError("STRIPE_SECRET_KEY: required, expected sk_test_…, sk_live_… or rk_…")


async def _run(_args: argparse.Namespace) -> None:
    from bot.service import running

    settings = _settings()
    settings.require_for_run()
    if settings.database_url.startswith("sqlite"):
        await asyncio.to_thread(upgrade, settings.database_url)  # the embedded default
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    async with running(settings) as service:
        print(f"portier: serving on {service.url}", file=sys.stderr)
        await stop.wait()


async def _db_upgrade(_args: argparse.Namespace) -> None:
    settings = _settings()
    await asyncio.to_thread(upgrade, settings.database_url)
    print("database is up to date")


async def _catalog_check(_args: argparse.Namespace) -> None:
    settings = _settings()
    _need_stripe(settings)
    catalog = load_catalog(settings.catalog_path)
    gateway = make_gateway(settings)
    try:
        prices = await resolve_prices(gateway, catalog)
    finally:
        await gateway.close()
    print(f"{catalog.business.name}: {len(catalog.plans)} plan(s)")
    print(f"{'plan':<12} {'lookup key':<24} {'price':>12}  interval  stripe id")
    rows = [(p.key, k) for p in catalog.plans for k in p.prices]
    rows += [("team", k) for k in catalog.team_prices]
    for plan_key, lookup in rows:
        price = prices.by_key[lookup]
        every = price.interval if price.interval_count == 1 else (
            f"{price.interval_count} {price.interval}s")
        print(f"{plan_key:<12} {lookup:<24} {money(price.unit_amount, price.currency, 'en'):>12}"
              f"  {every:<8}  {price.id}")


async def _link(args: argparse.Namespace) -> None:
    settings = _settings()
    _need_stripe(settings)
    if not secret(settings.link_secret):
        raise CommandError("PORTIER_LINK_SECRET: required, expected at least 16 characters")
    billing = await build_billing(settings)
    from billing.links import mint_token

    try:
        async with billing.db.session() as session:
            minted = await mint_token(session, gateway=billing.gateway,
                                      secret=billing.link_secret, customer_id=args.customer)
    except NotFound:
        raise CommandError(f"{args.customer}: Stripe has no such customer") from None
    finally:
        await billing.gateway.close()
        await billing.db.close()
    if args.slack:  # a workspace admin redeems it in Slack (SPEC §5)
        print(connect_command(minted.token))
    else:
        print(TelegramApp(await _bot_username(settings)).link_url(minted.token) or minted.token)
    print(f"expires {minted.expires_at:%Y-%m-%d %H:%M} UTC, single use", file=sys.stderr)


async def _sync(_args: argparse.Namespace) -> None:
    from billing.sync import sync_mirror

    settings = _settings()
    _need_stripe(settings)
    if settings.database_url.startswith("sqlite"):
        await asyncio.to_thread(upgrade, settings.database_url)  # as `portier run` does
    billing = await build_billing(settings)
    bar = _ProgressLine()
    try:
        synced = await sync_mirror(billing, progress=bar.show)
    finally:
        bar.done()
        await billing.gateway.close()
        await billing.db.close()
    print(f"mirror synced: {synced.customers} customer(s), {synced.subscriptions} "
          f"subscription(s), {synced.invoices} invoice(s)")
    await _backfill_revenue(settings)


async def _backfill_revenue(settings: Settings) -> None:
    from billing.db import Database
    from billing.revenue import backfill

    db = Database(settings.database_url)
    try:
        done = await backfill(db)
    finally:
        await db.close()
    print(f"revenue history: {done.subscriptions} subscription(s) backfilled from invoices "
          f"({done.rows} state(s)); Stripe's invoices cannot tell:")
    for unknown in done.unknown:
        print(f"  - {unknown}")


async def _broadcast(args: argparse.Namespace) -> None:
    from bot.broadcast_cmd import BroadcastCommandError, run

    try:
        print(await run(_settings(), args))
    except BroadcastCommandError as error:
        raise CommandError(str(error)) from None


async def _metrics(args: argparse.Namespace) -> None:
    from bot.revenue_cmd import show_metrics

    settings = _settings()
    try:
        print(await show_metrics(settings.database_url, args.month, args.csv))
    except ValueError as error:
        raise CommandError(str(error)) from None
    if args.csv is not None:
        print(f"CSV of the 12 months up to then written to {args.csv}", file=sys.stderr)


async def _notices(args: argparse.Namespace) -> None:
    from billing.db import Database
    from billing.deliveries import counts, in_doubt

    settings = _settings()
    db = Database(settings.database_url)
    try:
        async with db.read() as session:
            doubtful = await in_doubt(session) if args.unknown else []
            states = {} if args.unknown else await counts(session)
    except (SQLAlchemyError, OSError) as error:
        raise CommandError(f"cannot read the notices ({type(error).__name__}); is DATABASE_URL "
                           "right and the database upgraded (portier db upgrade)?") from None
    finally:
        await db.close()
    if not args.unknown:
        for state, n in sorted(states.items()):
            print(f"{state:<12} {n}")
        return
    if not doubtful:
        print("no notice is in doubt", file=sys.stderr)
        return
    # In doubt: the request left, the sender stopped before Telegram's answer was recorded.
    print(f"{'id':>8}  {'created (UTC)':<16}  {'sent (UTC)':<16}  {'chat':<24}  dedupe key")
    for notice in doubtful:
        left = f"{notice.claimed_at:%Y-%m-%d %H:%M}" if notice.claimed_at else "-"
        print(f"{notice.id:>8}  {notice.created_at:%Y-%m-%d %H:%M}  {left:<16}  "
              f"{notice.channel + ':' + notice.chat_id:<24}  {notice.dedupe_key}")
    print(f"{len(doubtful)} notice(s) may or may not have reached their chat", file=sys.stderr)


class _ProgressLine:
    """A one-line progress display on stderr: a moving bar and counts (Stripe gives no totals)."""

    WIDTH = 20

    def __init__(self) -> None:
        self.counts: dict[str, int] = {}
        self.tty = sys.stderr.isatty()
        self.ticks = 0

    def show(self, kind: str, done: int) -> None:
        """Redraw the line with a new count for one kind of object."""
        self.counts[kind] = done
        self.ticks += 1
        if self.tty or (done and done % 100 == 0):  # a log gets a line every 100 objects
            self._draw()

    def _draw(self) -> None:
        spot = self.ticks % self.WIDTH
        bar = "." * spot + "#" + "." * (self.WIDTH - spot - 1)
        counts = ", ".join(f"{k} {n}" for k, n in self.counts.items())
        print(f"\rsync [{bar}] {counts}", end="" if self.tty else "\n", file=sys.stderr,
              flush=True)

    def done(self) -> None:
        """Draw the final counts and end the progress line."""
        if self.counts:
            self._draw()
            if self.tty:
                print(file=sys.stderr)


async def _bot_username(settings: Settings) -> str | None:
    if settings.telegram_bot_token is None:
        return None
    from telegram import Bot

    bot = Bot(secret(settings.telegram_bot_token), base_url=settings.telegram_api_base)
    async with bot:
        return bot.username


async def _sandbox(args: argparse.Namespace) -> None:
    from bot.sandbox_cmd import serve_sandbox

    await serve_sandbox(args.host, args.port)


async def _demo(args: argparse.Namespace) -> None:
    from bot.demo import run_demo

    await run_demo(script=args.script)


def parser() -> argparse.ArgumentParser:
    """Build the argument parser of every subcommand."""
    top = argparse.ArgumentParser(prog="portier", description="Chat-native billing portal "
                                  "for Stripe subscriptions.")
    sub = top.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def add(name: str, func: Callable[[argparse.Namespace], Coroutine[Any, Any, None]],
            text: str) -> argparse.ArgumentParser:
        command = sub.add_parser(name, help=text, description=text)
        command.set_defaults(func=func)
        return command

    add("run", _run, "Serve everything configured (HTTP, Telegram, scheduler).")
    demo = add("demo", _demo, "Try Portier offline: a local Stripe sandbox and a console chat.")
    demo.add_argument("--script", help="read chat input from this file instead of the terminal")
    box = add("sandbox", _sandbox, "Run the local Stripe sandbox alone, with the demo catalog.")
    box.add_argument("--host", default="127.0.0.1")
    box.add_argument("--port", type=int, default=12111)
    db = sub.add_parser("db", help="Database commands.", description="Database commands.")
    db_sub = db.add_subparsers(dest="db_command", required=True, metavar="COMMAND")
    up = db_sub.add_parser("upgrade", help="Apply the database migrations.",
                           description="Apply the database migrations.")
    up.set_defaults(func=_db_upgrade)
    cat = sub.add_parser("catalog", help="Catalog commands.", description="Catalog commands.")
    cat_sub = cat.add_subparsers(dest="catalog_command", required=True, metavar="COMMAND")
    check = cat_sub.add_parser("check", help="Resolve the catalog's prices against Stripe.",
                               description="Resolve the catalog's prices against Stripe.")
    check.set_defaults(func=_catalog_check)
    add("sync", _sync, "Copy customers, subscriptions and invoices from Stripe into the "
        "local mirror.")
    metrics = add("metrics", _metrics, "Show a month's revenue figures (MRR, movements, "
                  "churn) from the local mirror and its history.")
    metrics.add_argument("--month", metavar="YYYY-MM", help="the month (default: this one)")
    metrics.add_argument("--csv", metavar="FILE", type=Path,
                         help="also write the 12 months up to it as CSV (see README)")
    from bot.broadcast_cmd import add_arguments as broadcast_arguments

    broadcast_arguments(add("broadcast", _broadcast, "Send a message to a segment of the "
                            "linked customers; `broadcast status|cancel ID`."))
    notices = add("notices", _notices, "Count the notices by delivery state, or list those "
                  "in doubt.")
    notices.add_argument("--unknown", action="store_true",
                         help="list the notices a stopped sender left in doubt (it may or may "
                         "not have reached the chat)")
    link = add("link", _link, "Print a one-time Telegram deep link for a Stripe customer "
               "(with --slack: the /billing connect command a workspace admin types).")
    link.add_argument("customer", metavar="CUSTOMER_ID")
    link.add_argument("--slack", action="store_true",
                      help="link a Slack workspace instead of a Telegram chat")
    return top


def main(argv: list[str] | None = None) -> int:
    """Run the `portier` command line."""
    args = parser().parse_args(argv)
    try:
        asyncio.run(args.func(args))
    except (SettingsError, CommandError, CatalogError, BillingError) as error:
        for line in str(error).splitlines() or [type(error).__name__]:
            print(f"portier: {line}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
