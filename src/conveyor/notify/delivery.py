"""Sending the outbox: due rows go out, failures are retried with backoff, nothing is lost.

A row's life (`notifications`, written by the listener in the build's transaction):
- pending: `sent IS NULL`; due when `next_attempt <= now`.
- delivered: `sent` = the Unix time it went out.
- abandoned: `sent = -1` (SENT_ABANDONED) after `max_attempts` failed tries; `last_error`
  says why. Rows are kept either way: they are the history of what people were told.

Each try first claims its row (a conditional UPDATE that moves `next_attempt` past the try),
so two processes delivering at once never send the same row twice; a process killed after
sending but before recording makes the row due again when the claim expires: delivery is
at least once. No database transaction is open while talking to a server.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, cast

from pydantic import ValidationError
from sqlalchemy import CursorResult, select, update

from conveyor.config import NotificationsConfig
from conveyor.notify.channels import EMAIL, WEBHOOK, Channel, ChannelDown, DeliveryFailed
from conveyor.notify.events import Payload
from conveyor.notify.mail import MailChannel
from conveyor.notify.webhook import WebhookChannel
from conveyor.store.database import Database
from conveyor.store.models import Notification

if TYPE_CHECKING:
    from conveyor.config import Config

log = logging.getLogger(__name__)

SENT_ABANDONED = -1
BACKOFF_FIRST = 60  # seconds after the first failure
BACKOFF_MAX = 3600  # the wait doubles up to this: with 48 tries, about two days in all
# Rows sent per pass: a backlog is worked through over a few passes, never in one long stall.
BATCH = 200
_ERROR_CHARS = 2000


def backoff(attempts: int) -> int:
    """Seconds to wait after the `attempts`-th failed try."""
    return int(min(BACKOFF_MAX, BACKOFF_FIRST * 2 ** min(max(attempts - 1, 0), 20)))


@dataclass
class DeliveryReport:
    sent: int = 0
    retried: int = 0  # failed, will be tried again
    abandoned: int = 0  # failed for the last time
    deferred: int = 0  # not tried: their channel was down earlier in this pass
    errors: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class _Due:
    id: int
    channel: str
    payload: str


def _channels(settings: NotificationsConfig) -> dict[str, Callable[[], Channel]]:
    factories: dict[str, Callable[[], Channel]] = {}
    if settings.email_enabled:
        factories[EMAIL] = lambda: MailChannel(settings)
    if settings.webhook_enabled:
        factories[WEBHOOK] = lambda: WebhookChannel(settings)
    return factories


def _due(db: Database, channels: list[str], now: int) -> list[_Due]:
    # Rows of a channel that is not configured stay pending: configuring it later sends them.
    query = (
        select(Notification.id, Notification.channel, Notification.payload)
        .where(
            Notification.sent.is_(None),
            Notification.next_attempt <= now,
            Notification.channel.in_(channels),
        )
        .order_by(Notification.next_attempt, Notification.id)
        .limit(BATCH)
    )
    with db.reader() as session:
        return [_Due(*row) for row in session.execute(query)]


def _claim(db: Database, row_id: int, now: int, until: int) -> bool:
    with db.transaction() as session:
        result = session.execute(
            update(Notification)
            .where(
                Notification.id == row_id,
                Notification.sent.is_(None),
                Notification.next_attempt <= now,
            )
            .values(next_attempt=until)
        )
        return cast(CursorResult[Any], result).rowcount == 1


def _record(
    db: Database, row_id: int, now: int, error: str | None, give_up: bool, max_attempts: int
) -> str:
    """Store a try's outcome; returns 'sent', 'retried' or 'abandoned'."""
    with db.transaction() as session:
        row = session.get(Notification, row_id)
        if row is None:  # deleted meanwhile (a purge): nothing to record
            return "sent" if error is None else "abandoned"
        row.attempts = (row.attempts or 0) + 1
        if error is None:
            row.sent = now
            row.last_error = None
            return "sent"
        row.last_error = error[:_ERROR_CHARS]
        if give_up or row.attempts >= max_attempts:
            row.sent = SENT_ABANDONED
            return "abandoned"
        row.next_attempt = now + backoff(row.attempts)
        return "retried"


def deliver_pending(
    config: Config,
    db: Database,
    now: int | None = None,
    settings: NotificationsConfig | None = None,
) -> DeliveryReport:
    """Send every due notification once. Never raises for a delivery problem: a failure is
    recorded on its row and tried again later; a channel that is down costs one timeout."""
    settings = settings or config.notifications
    factories = _channels(settings)
    report = DeliveryReport()
    if not factories:
        return report
    now = int(time.time()) if now is None else now
    # Long enough to cover one try (connect, TLS, send); after it, a crashed try is due again.
    claim_until = now + int(settings.timeout * 6) + 60
    open_channels: dict[str, Channel] = {}
    down: set[str] = set()
    try:
        for due in _due(db, list(factories), now):
            if due.channel in down:
                report.deferred += 1
                continue
            if not _claim(db, due.id, now, claim_until):
                continue  # another process has it
            error, give_up = _try(due, factories, open_channels, down)
            outcome = _record(db, due.id, now, error, give_up, settings.max_attempts)
            _count(report, outcome, due, error)
    finally:
        for channel in open_channels.values():
            channel.close()
    return report


def _try(
    due: _Due,
    factories: Mapping[str, Callable[[], Channel]],
    open_channels: dict[str, Channel],
    down: set[str],
) -> tuple[str | None, bool]:
    """(error or None, whether retrying is pointless)."""
    try:
        payload = Payload.from_json(due.payload)
    except ValidationError as exc:
        return f"unreadable payload: {exc}", True
    channel = open_channels.get(due.channel)
    if channel is None:
        channel = open_channels[due.channel] = factories[due.channel]()
    try:
        channel.send(payload, due.id)
    except ChannelDown as exc:
        down.add(due.channel)
        return str(exc), False
    except DeliveryFailed as exc:
        return str(exc), False
    return None, False


def _count(report: DeliveryReport, outcome: str, due: _Due, error: str | None) -> None:
    if outcome == "sent":
        report.sent += 1
        return
    message = f"notification {due.id} ({due.channel}): {error}"
    report.errors.append(message)
    if outcome == "retried":
        report.retried += 1
        log.warning("%s; will retry", message)
    else:
        report.abandoned += 1
        log.error("%s; giving up", message)
