"""`portier broadcast`: send a message to a segment from the terminal, watch it, cancel it.

    portier broadcast --text-file MSG.html [--button-url URL | --button-plan PLAN]
                      [--plan PLAN] [--status STATUS] [--language LANG]
                      [--kind offer|service] [--dry-run] [--at ISO-TIME] [--no-wait]
    portier broadcast status ID
    portier broadcast cancel ID

The broadcast is queued in the database; the outbox of the running `portier run` sends it
(billing.broadcasts). Without --no-wait, an immediate one is followed with a tqdm progress
bar until every recipient is settled; Ctrl-C stops watching, not the broadcast.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
from datetime import UTC, datetime
from pathlib import Path

from tqdm import tqdm  # type: ignore[import-untyped]

from billing import broadcasts
from billing.broadcast_text import BroadcastError, check_html
from billing.broadcasts import Progress, Segment
from billing.catalog import load_catalog, resolve_prices
from billing.db import Database
from bot.runtime import make_gateway
from bot.settings import Settings

POLL = 0.5  # seconds between looks at the counts


class BroadcastCommandError(Exception):
    """A broadcast command that cannot run as asked."""


def parse_at(text: str) -> datetime:
    """Return an ISO 8601 time as UTC (a time without an offset is taken as UTC)."""
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise BroadcastCommandError(f"--at {text!r}: expected an ISO time such as "
                                    "2026-12-24T09:00+01:00") from None
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).astimezone(UTC)


def describe(p: Progress) -> str:
    """Return a broadcast's counts as one line."""
    return (f"broadcast {p.id}: {p.status}, {p.recipients} recipient(s): "
            f"{p.delivered} delivered, {p.blocked} blocked, {p.failed} failed, "
            f"{p.skipped} skipped, {p.pending} to send"
            + (f" (from {p.send_at:%Y-%m-%d %H:%M} UTC)" if p.status == "scheduled" else ""))


async def _segment(settings: Settings, args: argparse.Namespace) -> Segment:
    if args.plan is None and args.button_plan is None:
        return Segment(status=args.status, language=args.language)
    catalog = load_catalog(settings.catalog_path)
    for key in (args.plan, args.button_plan):
        if key is not None and catalog.plan(key) is None:
            raise BroadcastCommandError(f"{key}: no such plan in the catalog (one of "
                                        + ", ".join(p.key for p in catalog.plans) + ")")
    prices: frozenset[str] = frozenset()
    if args.plan is not None:
        plan = catalog.plan(args.plan)
        gateway = make_gateway(settings)
        try:
            book = await resolve_prices(gateway, catalog)
        finally:
            await gateway.close()
        prices = broadcasts.plan_prices(plan.prices if plan else (), book.by_key)
    return Segment(plan=args.plan, prices=prices, status=args.status, language=args.language)


async def watch(db: Database, broadcast_id: int, *, poll: float = POLL) -> Progress:
    """Show a progress bar until the broadcast is settled; return its last counts."""
    first = await _progress(db, broadcast_id)
    with tqdm(total=first.recipients, unit="msg", desc=f"broadcast {broadcast_id}") as bar:
        current = first
        while True:
            bar.n = current.settled
            bar.set_postfix(delivered=current.delivered, blocked=current.blocked,
                            failed=current.failed, skipped=current.skipped)
            bar.refresh()
            if current.finished or current.status == "canceled":
                return current
            await asyncio.sleep(poll)  # polling the counts the sender writes
            current = await _progress(db, broadcast_id)


async def run(settings: Settings, args: argparse.Namespace) -> str:
    """Run `portier broadcast` as parsed; return what to print."""
    db = Database(settings.database_url)
    try:
        if args.action in ("status", "cancel"):
            return await _status_or_cancel(db, args)
        if args.text_file is None:
            raise BroadcastCommandError("--text-file: required (the message, Telegram HTML)")
        try:
            text = (await asyncio.to_thread(Path(args.text_file).read_text,
                                            encoding="utf-8")).strip()
        except (OSError, UnicodeDecodeError) as error:
            raise BroadcastCommandError(f"{args.text_file}: cannot read it ({error})") from None
        check_html(text)
        segment = await _segment(settings, args)
        if args.dry_run:
            async with db.read() as s:
                found = await broadcasts.targets(s, segment, kind=args.kind,
                                                 default_locale=settings.locale)
            return f"{len(found)} recipient(s); nothing sent (--dry-run)"
        at = parse_at(args.at) if args.at else None
        async with db.session() as s:
            made = await broadcasts.create(
                s, text=text, kind=args.kind, segment=segment, button_url=args.button_url,
                button_plan=args.button_plan, send_at=at, created_by="cli",
                default_locale=settings.locale)
        if at is not None or args.no_wait:
            return describe(await _progress(db, made.id))
        with contextlib.suppress(KeyboardInterrupt, asyncio.CancelledError):
            return describe(await watch(db, made.id))
        return f"broadcast {made.id}: still sending; `portier broadcast status {made.id}`"
    except BroadcastError as error:
        raise BroadcastCommandError(str(error)) from None
    finally:
        await db.close()


async def _status_or_cancel(db: Database, args: argparse.Namespace) -> str:
    if args.id is None or not str(args.id).isdigit():
        raise BroadcastCommandError(f"portier broadcast {args.action} ID: a broadcast number")
    broadcast_id = int(args.id)
    if args.action == "cancel":
        async with db.session() as s:
            dropped = await broadcasts.cancel(s, broadcast_id)
        if dropped is None:
            raise BroadcastCommandError(f"broadcast {broadcast_id}: no such broadcast")
    return describe(await _progress(db, broadcast_id))


async def _progress(db: Database, broadcast_id: int) -> Progress:
    async with db.read() as s:
        found = await broadcasts.progress(s, broadcast_id)
    if found is None:
        raise BroadcastCommandError(f"broadcast {broadcast_id}: no such broadcast")
    return found


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add `portier broadcast`'s arguments to its parser."""
    parser.add_argument("action", nargs="?", choices=("status", "cancel"),
                        help="show or cancel broadcast ID instead of sending one")
    parser.add_argument("id", nargs="?", metavar="ID", help="the broadcast's number")
    parser.add_argument("--text-file", type=Path, help="the message, in Telegram's HTML")
    button = parser.add_mutually_exclusive_group()
    button.add_argument("--button-url", help="a button opening this http(s) link")
    button.add_argument("--button-plan", metavar="PLAN",
                        help="a button opening the plan's Checkout (a plan change for "
                        "subscribers)")
    parser.add_argument("--plan", help="only customers subscribed to this catalog plan")
    parser.add_argument("--status", choices=broadcasts.STATUSES,
                        help="only customers with a subscription in this status")
    parser.add_argument("--language", help="only chats using this language (en, de)")
    parser.add_argument("--kind", choices=broadcasts.KINDS, default="service",
                        help="offer: only customers who opted in to offers; service: all "
                        "(default)")
    parser.add_argument("--dry-run", action="store_true",
                        help="print the number of recipients and send nothing")
    parser.add_argument("--at", metavar="TIME", help="send at this ISO time (UTC unless it "
                        "has an offset)")
    parser.add_argument("--no-wait", action="store_true",
                        help="queue it and return without a progress bar")
