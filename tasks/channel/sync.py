"""Importing channel feeds: claim, fetch with no transaction open, apply (SPEC 6.4, 7.1).

One import of a batch of mappings (channel.sync_mapping), in three steps:

1. **claim** the mappings in one short transaction (`claimed_by` = this run, `claimed_until` =
   a lease longer than the task's hard time limit): a second import of a claimed mapping skips
   it instead of fetching it twice; a claim whose worker died lapses by itself;
2. **fetch** them through the process's FeedFetcher (tasks.channel.fetch), many in flight at
   once, with no transaction and no pooled connection held while they are awaited;
3. **apply** each one as its fetch completes, in a transaction of its own (`ctx.transaction()`:
   its follow-ups are sent when it commits): check the claim is still ours and release it;
   a failed fetch is a sync_log `error` with the mapping's backoff; an unchanged feed (a 304,
   or the same body but for DTSTAMPs) is a cheap `not_modified` run that folds into the last
   sync_log row; a changed one is parsed (outside the transaction), then written under the
   property's advisory lock (so two feeds of one property never check overlaps without seeing
   each other's stays): bookings, reservations, cancellations or held cancellations, overlap
   tickets, the sync_log row and the mapping's and connection's state.

One feed's failure never fails another: every fetch failure is that feed's sync error, and a
bug while applying one feed is recorded as that feed's error and logged, and the batch goes
on. A batch stops starting fetches when its time budget is spent (the task's soft limit less
the slowest fetch it may still wait for); what it did not start is left requested for the next
batch, which it enqueues.
"""

from __future__ import annotations

import concurrent.futures
import datetime as dt
import logging
import time
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy.engine import Row
from sqlalchemy.orm import Session

from db.settings import get_settings
from tasks.channel import apply as applying
from tasks.channel import queries as q
from tasks.channel.bookkeeping import queue_hold_notice, record_failure, record_success
from tasks.channel.fetch import (
    DEFAULT_CONNECT_TIMEOUT,
    DEFAULT_MAX_BYTES,
    DEFAULT_TOTAL_TIMEOUT,
    FeedFetcher,
    FeedRequest,
    Fetched,
    FetchError,
    shared_fetcher,
    url_origin,
)
from tasks.channel.ical import FeedParseError, FeedSettings, ParsedFeed, content_hash, parse_feed
from tasks.channel.overlaps import raise_overlap_tickets
from workers.base import TRANSIENT_ERRORS, JobContext, NotFound

log = logging.getLogger("cmw.channel")

# Time kept back from a batch's budget for applying what is still in flight.
APPLY_MARGIN_S = 30.0


class UnknownMapping(NotFound):
    """No channel mapping with this id."""


@dataclass(frozen=True)
class FetchLimits:
    """Per-connection overrides (connection.settings), bounded so a typo cannot hang a worker."""

    connect_timeout: float = DEFAULT_CONNECT_TIMEOUT
    total_timeout: float = DEFAULT_TOTAL_TIMEOUT
    max_bytes: int = DEFAULT_MAX_BYTES

    @classmethod
    def from_settings(cls, settings: Mapping[str, Any] | None) -> FetchLimits:
        settings = settings or {}

        def bounded(key: str, default: float, upper: float) -> float:
            value = settings.get(key)
            if isinstance(value, int | float) and not isinstance(value, bool) and value > 0:
                return float(min(value, upper))
            return default

        return cls(
            connect_timeout=bounded("connect_timeout_seconds", DEFAULT_CONNECT_TIMEOUT, 30),
            total_timeout=bounded("timeout_seconds", DEFAULT_TOTAL_TIMEOUT, 120),
            max_bytes=int(bounded("max_feed_bytes", DEFAULT_MAX_BYTES, 50 * 1024 * 1024)),
        )


@dataclass
class ImportOutcome:
    """One feed's summary and the follow-ups it asked for (already enqueued in a task)."""

    result: dict[str, Any]
    reservations_to_sync: list[uuid.UUID] = field(default_factory=list)
    tickets_created: list[uuid.UUID] = field(default_factory=list)


@dataclass
class BatchOutcome:
    claimed: int = 0
    outcomes: dict[uuid.UUID, ImportOutcome] = field(default_factory=dict)
    # Claimed but not started within the time budget: released, still requested.
    deferred: int = 0

    def summary(self) -> dict[str, Any]:
        statuses: dict[str, int] = {}
        for outcome in self.outcomes.values():
            key = outcome.result.get("status", "skipped")
            statuses[key] = statuses.get(key, 0) + 1
        return {
            "mappings": self.claimed,
            **{f"feeds_{k}": v for k, v in sorted(statuses.items())},
            "deferred": self.deferred,
            "created": sum(o.result.get("created", 0) for o in self.outcomes.values()),
            "cancelled": sum(o.result.get("cancelled", 0) for o in self.outcomes.values()),
            "held": sum(o.result.get("held", 0) for o in self.outcomes.values()),
            "tickets_created": sum(len(o.tickets_created) for o in self.outcomes.values()),
        }


# -- 1. claim --------------------------------------------------------------------------------


def claim_lease_seconds() -> int:
    """Longer than any task can run, so a live import never loses its claim."""
    return get_settings().task_time_limit + 60


def claim_mapping(session: Session, mapping_id: uuid.UUID, token: str) -> Row | dict[str, str]:
    """One mapping, by hand: its claimed row, or {"skipped": why}. Raises UnknownMapping."""
    row = session.execute(
        q.CLAIM_ONE, {"mapping_id": mapping_id, "token": token, "lease": claim_lease_seconds()}
    ).one_or_none()
    if row is not None:
        return row
    why = session.execute(q.WHY_NOT_CLAIMED, {"mapping_id": mapping_id}).one_or_none()
    if why is None:
        raise UnknownMapping(f"unknown mapping_id {mapping_id}")
    if not why.is_active:
        return {"skipped": "mapping is inactive"}
    if why.connection_status != "active":
        return {"skipped": f"connection is {why.connection_status}"}
    if not why.imports:
        return {"skipped": "export-only mapping (no import_url)"}
    return {"skipped": "another import of this mapping is running"}


def claim_batch(session: Session, token: str, limit: int) -> list[Row]:
    """Up to `limit` requested mappings, hosts taking turns."""
    session.execute(q.LOCK_CLAIMS)
    session.execute(q.DROP_UNSYNCABLE)
    return session.execute(
        q.CLAIM_BATCH, {"token": token, "limit": limit, "lease": claim_lease_seconds()}
    ).all()


# -- 2 and 3. fetch, apply -------------------------------------------------------------------


def import_mappings(
    ctx: JobContext,
    *,
    mapping_id: uuid.UUID | None = None,
    batch_size: int | None = None,
    allowed_hosts: Iterable[str] | None = None,
    fetcher: FeedFetcher | None = None,
    budget_s: float | None = None,
) -> BatchOutcome:
    """Import one mapping (by hand) or a batch of requested ones (see the module docstring).

    `ctx` supplies the clock (`as_of`), the claim token (the task id, so a redelivered task
    takes its own claims back at once) and the transactions; a plain `JobContext` works
    outside Celery, its follow-ups collected in `ctx._after_commit`.
    """
    token = ctx.task_id or str(ctx.run_id)
    batch = BatchOutcome()
    with ctx.transaction() as session:
        if mapping_id is not None:
            claimed = claim_mapping(session, mapping_id, token)
            if isinstance(claimed, dict):
                batch.outcomes[mapping_id] = ImportOutcome(claimed)
                return batch
            rows = [claimed]
        else:
            rows = claim_batch(session, token, batch_size or get_settings().cmw_channel_batch_size)
    batch.claimed = len(rows)
    if not rows:
        return batch
    fetcher = fetcher or shared_fetcher(allowed_hosts)
    limits = {r.id: FetchLimits.from_settings(r.settings) for r in rows}
    if budget_s is None:
        slowest = max(lim.total_timeout for lim in limits.values())
        budget_s = max(30.0, get_settings().task_soft_time_limit - slowest - APPLY_MARGIN_S)
    deadline = time.monotonic() + budget_s
    by_id = {r.id: r for r in rows}
    pending: dict[concurrent.futures.Future[Fetched], uuid.UUID] = {}
    for row in rows:
        lim = limits[row.id]
        request = FeedRequest(
            row.import_url,
            row.last_etag,
            row.last_modified,
            lim.connect_timeout,
            lim.total_timeout,
            lim.max_bytes,
        )
        pending[fetcher.start(row.id, request)] = row.id
    try:
        while pending:
            timeout = deadline - time.monotonic()
            done, _ = concurrent.futures.wait(
                pending,
                timeout=max(0.0, timeout),
                return_when=concurrent.futures.FIRST_COMPLETED,
            )
            if not done:
                break  # the budget is spent: what has not finished is deferred
            for future in done:
                row = by_id[pending.pop(future)]
                fetched = _fetched(future, row)
                try:
                    batch.outcomes[row.id] = apply_fetched(ctx, row, fetched, token)
                finally:
                    fetched.done()
    finally:
        deferred = _abandon(pending, by_id)
    if deferred:
        batch.deferred = len(deferred)
        with ctx.transaction() as session:
            session.execute(q.UNCLAIM, {"ids": deferred, "token": token})
    return batch


def _fetched(future: concurrent.futures.Future[Fetched], row: Row) -> Fetched:
    """The future's Fetched; a bug in the fetch code becomes that feed's error."""
    try:
        return future.result()
    except Exception as exc:  # a bug, not a feed's failure: logged, and only this feed's
        log.exception(
            "channel fetch failed unexpectedly",
            extra={"mapping_id": str(row.id), "feed": url_origin(row.import_url)},
        )
        return Fetched(row.id, FetchError(f"internal error while fetching: {type(exc).__name__}"),
                       lambda: None)  # fmt: skip


def _abandon(
    pending: dict[concurrent.futures.Future[Fetched], uuid.UUID], by_id: dict[uuid.UUID, Row]
) -> list[uuid.UUID]:
    """Cancel what is still in flight (or give back its slot if it finished meanwhile)."""
    deferred = []
    for future, mapping_id in pending.items():
        if not future.cancel():
            try:
                future.result(timeout=0).done()
            except Exception:  # a cancelled or failed fetch holds no slot
                pass
        deferred.append(mapping_id)
    return deferred


def apply_fetched(ctx: JobContext, mapping: Row, fetched: Fetched, token: str) -> ImportOutcome:
    """Step 3 for one feed, in its own transaction. A bug here is this feed's error."""
    started = time.monotonic()
    tz = ZoneInfo(mapping.timezone)
    as_of = ctx.as_of
    today = as_of.astimezone(tz).date()
    feed_settings = FeedSettings.from_settings(mapping.settings)
    # Parsing is CPU work with nothing to lock: done before the transaction opens.
    feed: ParsedFeed | None = None
    parse_error: str | None = None
    feed_hash = None
    result = fetched.result
    if result is not None and result.status == "ok":
        feed_hash = content_hash(result.body, feed_settings)
        if feed_hash != mapping.last_feed_hash:
            try:
                feed = parse_feed(
                    result.body, channel=mapping.channel, today=today, tz=tz, settings=feed_settings
                )
            except FeedParseError as exc:
                parse_error = f"unparsable feed: {exc}"
    try:
        with ctx.transaction() as session:
            if (
                session.execute(q.STILL_CLAIMED, {"mapping_id": mapping.id, "token": token}).first()
                is None
            ):
                return ImportOutcome({"skipped": "the claim lapsed; another import took it"})
            finished = _finished(as_of, started)
            if fetched.error is not None or parse_error is not None:
                error = parse_error or str(fetched.error)
                http = fetched.error.http_status if fetched.error else result and result.http_status
                retry_after = fetched.error.retry_after if fetched.error else None
                return ImportOutcome(
                    record_failure(
                        session,
                        mapping,
                        as_of=as_of,
                        finished_at=finished,
                        error=error,
                        http_status=http,
                        retry_after=retry_after,
                    )
                )
            assert result is not None
            outcome = _apply(session, ctx, mapping, result, feed, feed_hash, as_of, today, started)
            return outcome
    except Exception as exc:
        # Not this feed's data: a bug, or the database failing. A database that is down fails
        # the batch (retried whole: claims are ours again by task id); anything else is this
        # feed's error so the others go on.
        if isinstance(exc, TRANSIENT_ERRORS):
            raise
        log.exception(
            "channel import failed unexpectedly",
            extra={"mapping_id": str(mapping.id), "feed": url_origin(mapping.import_url)},
        )
        with ctx.transaction() as session:
            return ImportOutcome(
                record_failure(
                    session,
                    mapping,
                    as_of=as_of,
                    finished_at=_finished(as_of, started),
                    error=f"internal error while applying the feed: {type(exc).__name__}",
                    http_status=result.http_status if result else None,
                )
            )


def _apply(
    session: Session,
    ctx: JobContext,
    mapping: Row,
    fetched: Any,
    feed: ParsedFeed | None,
    feed_hash: str | None,
    as_of: dt.datetime,
    today: dt.date,
    started: float,
) -> ImportOutcome:
    # Serialises the writes of every feed of this property, so the overlap check of one sees
    # the stays another has just written; held only from here to the commit.
    _lock_property(session, mapping.property_id)
    if feed is None:
        # A 304, or the same content as last time (a feed without validators): nothing of the
        # feed changed. Held cancellations whose time has come are applied; the overlap check
        # still runs (a stay another service recorded since may overlap one of this feed's).
        status = "not_modified"
        applied = applying.settle_holds(session, mapping, as_of=as_of, today=today)
        # A 304 may carry fresh validators (RFC 9110 15.4.5); else the old ones stand.
        not_modified = fetched.status == "not_modified"
        etag = fetched.etag or (mapping.last_etag if not_modified else None)
        last_modified = fetched.last_modified or (mapping.last_modified if not_modified else None)
        feed_hash = mapping.last_feed_hash
    else:
        status = "ok"
        applied = applying.apply_feed(session, mapping, feed, as_of=as_of, today=today)
        etag, last_modified = fetched.etag, fetched.last_modified
    if applied.held:
        status = "held"
    elif status == "not_modified" and applied.cancelled:
        status = "ok"  # an expired hold applied: something changed
    conflicts, tickets = raise_overlap_tickets(
        session, mapping_id=mapping.id, property_id=mapping.property_id, as_of=as_of, today=today
    )
    counts = {
        "events_seen": feed.events_seen if feed else 0,
        "created": applied.created,
        "updated": applied.updated,
        "cancelled": applied.cancelled,
        "conflicts": conflicts,
        "held": applied.held,
        "rejected": feed.rejected if feed else 0,
        "tickets": len(tickets),
    }
    notices = 0
    if applied.hold_began:
        notices = queue_hold_notice(
            session,
            mapping_id=mapping.id,
            episode=applied.hold_started_at,
            held=applied.held,
            live=applied.live,
            hold_hours=applying.hold_hours(mapping.settings),
        )
    log_id, folded = record_success(
        session,
        mapping,
        as_of=as_of,
        finished_at=_finished(as_of, started),
        status=status,
        http_status=fetched.http_status,
        etag=etag,
        last_modified=last_modified,
        feed_hash=feed_hash,
        counts=counts,
        hold_started_at=applied.hold_started_at,
    )
    _follow_up_stays(ctx, applied.reservations_to_sync)
    for ticket_id in tickets:
        ctx.enqueue_after_commit("sla.apply", ticket_id=str(ticket_id))
    result: dict[str, Any] = {
        "status": status,
        "http_status": fetched.http_status,
        "sync_log_id": str(log_id),
        "folded": folded,
        "events_seen": counts["events_seen"],
        "created": applied.created,
        "updated": applied.updated,
        "cancelled": applied.cancelled,
        "held": applied.held,
        "rejected": counts["rejected"],
        "conflicts": conflicts,
        "tickets_created": len(tickets),
        "hold_notices": notices,
    }
    if feed is not None:
        result.update(
            flavor=feed.flavor,
            parser=feed.parser,
            ignored_past=feed.ignored_past,
            ignored_own_export=feed.ignored_own_export,
            ignored_cancelled=feed.ignored_cancelled,
            ignored_invalid=feed.ignored_invalid,
            reservations_created=applied.reservations_created,
            reservations_adopted=applied.reservations_adopted,
            reservations_updated=applied.reservations_updated,
            reservations_cancelled=applied.reservations_cancelled,
            kept_checked_in=applied.kept_checked_in,
        )
    return ImportOutcome(result, applied.reservations_to_sync, tickets)


def _finished(as_of: dt.datetime, started: float) -> dt.datetime:
    return as_of + dt.timedelta(seconds=time.monotonic() - started)


# -- by hand ---------------------------------------------------------------------------------


def _lock_property(session: Session, property_id: uuid.UUID) -> None:
    """Serialises the writes of every feed of one property (imports and releases)."""
    session.execute(q.LOCK_PROPERTY, {"key": f"cmw.channel.property:{property_id}"})


def _follow_up_stays(ctx: JobContext, reservation_ids: Iterable[uuid.UUID]) -> None:
    """Every stay an import or a release changed: its tickets and its guest journey."""
    for reservation_id in reservation_ids:
        ctx.enqueue_after_commit("recurring.sync_reservation", reservation_id=str(reservation_id))
        ctx.enqueue_after_commit("journeys.plan_stay", reservation_id=str(reservation_id))


def release_held(ctx: JobContext, mapping_id: uuid.UUID) -> dict[str, Any]:
    """Ops: the held cancellations of this mapping are real; apply them now."""
    with ctx.transaction() as session:
        mapping = session.execute(q.RELEASE_CLAIM, {"mapping_id": mapping_id}).one_or_none()
        if mapping is None:
            raise UnknownMapping(f"unknown mapping_id {mapping_id}")
        _lock_property(session, mapping.property_id)
        today = ctx.as_of.astimezone(ZoneInfo(mapping.timezone)).date()
        applied = applying.release_held(session, mapping, as_of=ctx.as_of, today=today)
        _follow_up_stays(ctx, applied.reservations_to_sync)
    return {
        "mapping_id": str(mapping_id),
        "cancelled": applied.cancelled,
        "reservations_cancelled": applied.reservations_cancelled,
        "kept_checked_in": applied.kept_checked_in,
    }


def import_mapping(
    mapping_id: uuid.UUID,
    *,
    as_of: dt.datetime,
    allowed_hosts: Iterable[str] | None = None,
) -> ImportOutcome:
    """Import one mapping now, outside Celery (tests, scripts): the same three steps."""
    ctx = plain_context(as_of)
    batch = import_mappings(ctx, mapping_id=mapping_id, allowed_hosts=allowed_hosts)
    return batch.outcomes[mapping_id]


def plain_context(as_of: dt.datetime, task_name: str = "channel.sync_mapping") -> JobContext:
    """A context for calling the import outside Celery: its follow-ups are collected in
    `ctx._after_commit`, not sent."""
    return JobContext(None, as_of, task_name, None, uuid.uuid4(), as_of_given=True)
