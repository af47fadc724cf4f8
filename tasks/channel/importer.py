"""Importing one mapping's iCal feed, the channel.sync fan-out, and feed health (SPEC 6.4).

One import (`import_mapping`), in the task's one transaction:

1. take the mapping's advisory lock (try: a second import of the same mapping running at the
   same time skips instead of waiting behind a slow feed);
2. fetch the feed (tasks.channel.fetch); a failure is the run's outcome: a sync_log `error`
   row, the mapping's backoff, the connection's aggregate, perhaps a feed-health notice;
3. a 304, or a body byte-identical to the last one imported, is a cheap `not_modified` run
   (only the overlap check of step 5 runs: another service may have recorded a stay since);
4. parse it (tasks.channel.ical), take the property's advisory lock (so two feeds of one
   property never check overlaps without seeing each other's stays), and apply it set-based:
   upsert channel_bookings by UID, create / adopt / update their reservations, cancel the
   bookings (and reservations) of events gone from the feed while their stay has not ended
   (check-out after the property's today); the stays created, changed or cancelled are
   returned for `recurring.sync_reservation`;
5. raise one urgent RSV ticket per pair of overlapping live stays (guest and owner stays;
   blocks overlap stays by design: a channel re-exporting our calendar shows our stays as its
   blocks), never again for the same pair, resolved or not;
6. record the sync_log row, the mapping's bookkeeping and the connection's aggregate.

Decisions where SPEC 6.4 is silent are in the docstrings and comments below.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import time
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import text
from sqlalchemy.engine import Row
from sqlalchemy.orm import Session

from tasks.channel.fetch import (
    DEFAULT_CONNECT_TIMEOUT,
    DEFAULT_MAX_BYTES,
    DEFAULT_TOTAL_TIMEOUT,
    FetchError,
    fetch_feed,
)
from tasks.channel.ical import (
    SOURCES,
    FeedEvent,
    FeedParseError,
    FeedSettings,
    ParsedFeed,
    parse_feed,
)

# Backoff: the interval doubles per consecutive failure, up to this; a Retry-After longer than
# this is clipped to it too, so a feed is never silently dropped for longer than the cap.
MAX_BACKOFF = dt.timedelta(hours=6)
# Feed health: no successful sync for this long queues one ops notification.
HEALTH_AFTER = dt.timedelta(hours=24)
# Unchanged bookings are not rewritten; their last_seen_at is refreshed at most this often.
LAST_SEEN_REFRESH = dt.timedelta(hours=1)
# Where feed-health notices go (comms.messages; delivery is another service's work).
OPS_CHANNEL = "slack"
OPS_RECIPIENT = "#ops-channel-sync"
# reservations.reservation_type values that are stays for double booking.
STAY_TYPES = ("guest", "owner_stay")
ERROR_MAX = 500


class UnknownMapping(LookupError):
    """No channel mapping with this id."""


class UnknownConnection(LookupError):
    """No channel connection with this id."""


@dataclass
class ImportOutcome:
    """The import's summary and the follow-ups to enqueue after the commit."""

    result: dict[str, Any]
    reservations_to_sync: list[uuid.UUID] = field(default_factory=list)
    tickets_created: list[uuid.UUID] = field(default_factory=list)


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


def backoff_delay(
    interval_minutes: int, failures: int, retry_after: float | None = None
) -> dt.timedelta:
    """interval x 2^failures, at most MAX_BACKOFF; at least Retry-After (also capped)."""
    delay = min(dt.timedelta(minutes=interval_minutes) * (2 ** min(failures, 20)), MAX_BACKOFF)
    if retry_after is not None and retry_after > 0:
        delay = max(delay, min(dt.timedelta(seconds=retry_after), MAX_BACKOFF))
    return delay


def source_for(flavor: str, channel: str) -> str:
    """reservations.source: the channel the feed turned out to be, else the connection's."""
    if flavor != "generic":
        return SOURCES[flavor]
    return channel if channel in ("airbnb", "vrbo", "booking_com") else "ical"


# -- one import ------------------------------------------------------------------------------

# The mapping, with its advisory lock tried in the same round trip (transaction-scoped: a
# crashed import never leaves it held).
LOAD_MAPPING = text(
    """
    SELECT m.id, m.connection_id, m.property_id, m.import_url, m.is_active, m.last_etag,
           m.last_modified, m.last_feed_hash, m.consecutive_failures, c.channel,
           c.status AS connection_status, c.sync_interval_minutes, c.settings,
           c.consecutive_failures AS connection_failures, p.timezone,
           pg_try_advisory_xact_lock(hashtextextended('cmw.channel.mapping:' || m.id::text, 0))
               AS locked
    FROM channel.channel_mappings m
    JOIN channel.channel_connections c ON c.id = m.connection_id
    JOIN property.properties p ON p.id = m.property_id
    WHERE m.id = :id
    """
)
LOCK = text("SELECT pg_advisory_xact_lock(hashtextextended(:key, 0))")


def import_mapping(
    session: Session,
    mapping_id: uuid.UUID,
    *,
    as_of: dt.datetime,
    allowed_hosts: Iterable[str] | None = None,
) -> ImportOutcome:
    """Import one mapping's feed as of `as_of` (see the module docstring)."""
    row = session.execute(LOAD_MAPPING, {"id": mapping_id}).one_or_none()
    if row is None:
        raise UnknownMapping(f"unknown mapping_id {mapping_id}")
    if not row.is_active:
        return ImportOutcome({"skipped": "mapping is inactive"})
    if row.connection_status != "active":
        return ImportOutcome({"skipped": f"connection is {row.connection_status}"})
    if not row.import_url:
        return ImportOutcome({"skipped": "export-only mapping (no import_url)"})
    if not row.locked:
        return ImportOutcome({"skipped": "another import of this mapping is running"})

    clock = time.monotonic()
    tz = ZoneInfo(row.timezone)
    today = as_of.astimezone(tz).date()
    feed_settings = FeedSettings.from_settings(row.settings)
    limits = FetchLimits.from_settings(row.settings)
    try:
        fetched = fetch_feed(
            row.import_url,
            etag=row.last_etag,
            last_modified=row.last_modified,
            allowed_hosts=allowed_hosts,
            connect_timeout=limits.connect_timeout,
            total_timeout=limits.total_timeout,
            max_bytes=limits.max_bytes,
        )
    except FetchError as exc:
        return _fail(session, row, as_of, clock, str(exc), exc.http_status, exc.retry_after)

    feed_hash = None
    if fetched.status == "ok":
        feed_hash = hashlib.sha256(fetched.body + feed_settings.fingerprint().encode()).hexdigest()
    if fetched.status == "not_modified" or feed_hash == row.last_feed_hash:
        # A 304, or the same bytes as last time (a feed without validators): nothing of the
        # feed changed. The overlap check still runs: a stay another service has recorded
        # since (a direct booking) may now overlap one of this feed's.
        conflicts, tickets = raise_overlap_tickets(
            session, mapping_id=row.id, property_id=row.property_id, as_of=as_of, today=today
        )
        outcome = _succeed(
            session,
            row,
            as_of,
            clock,
            status="not_modified",
            http_status=fetched.http_status,
            # A 304 may carry fresh validators (RFC 9110 15.4.5); else the old ones stand.
            etag=fetched.etag or (row.last_etag if fetched.status == "not_modified" else None),
            last_modified=fetched.last_modified
            or (row.last_modified if fetched.status == "not_modified" else None),
            feed_hash=row.last_feed_hash,
            conflicts=conflicts,
        )
        outcome.tickets_created = tickets
        outcome.result["tickets_created"] = len(tickets)
        return outcome
    try:
        feed = parse_feed(
            fetched.body, channel=row.channel, today=today, tz=tz, settings=feed_settings
        )
    except FeedParseError as exc:
        return _fail(session, row, as_of, clock, f"unparsable feed: {exc}", fetched.http_status)

    # Serialises the writes of every feed of this property, so the overlap check of one sees
    # the stays another has just written; held only from here to the commit.
    session.execute(LOCK, {"key": f"cmw.channel.property:{row.property_id}"})
    applied = apply_feed(session, row, feed, as_of=as_of, today=today)
    conflicts, tickets = raise_overlap_tickets(
        session, mapping_id=row.id, property_id=row.property_id, as_of=as_of, today=today
    )
    outcome = _succeed(
        session,
        row,
        as_of,
        clock,
        status="ok",
        http_status=fetched.http_status,
        etag=fetched.etag,
        last_modified=fetched.last_modified,
        feed_hash=feed_hash,
        applied=applied,
        conflicts=conflicts,
        feed=feed,
    )
    outcome.reservations_to_sync = applied.reservations_to_sync
    outcome.tickets_created = tickets
    outcome.result["tickets_created"] = len(tickets)
    return outcome


@dataclass
class Applied:
    created: int = 0
    updated: int = 0
    cancelled: int = 0
    kept_checked_in: int = 0
    reservations_created: int = 0
    reservations_adopted: int = 0
    reservations_updated: int = 0
    reservations_cancelled: int = 0
    reservations_to_sync: list[uuid.UUID] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return bool(self.created or self.updated or self.cancelled)


EXISTING_BOOKINGS = text(
    """
    SELECT external_uid, kind, payload_hash, status, reservation_id
    FROM channel.channel_bookings
    WHERE mapping_id = :mapping_id AND external_uid = ANY(CAST(:uids AS text[]))
    """
)
UPSERT_BOOKINGS = text(
    """
    INSERT INTO channel.channel_bookings AS b
        (mapping_id, external_uid, kind, start_date, end_date, summary, description,
         payload_hash, status, first_seen_at, last_seen_at)
    SELECT :mapping_id, f.uid, f.kind, f.start_date, f.end_date, f.summary, f.description,
           f.payload_hash, 'active', :as_of, :as_of
    FROM unnest(CAST(:uids AS text[]), CAST(:kinds AS text[]), CAST(:starts AS date[]),
                CAST(:ends AS date[]), CAST(:summaries AS text[]),
                CAST(:descriptions AS text[]), CAST(:hashes AS text[]))
         AS f(uid, kind, start_date, end_date, summary, description, payload_hash)
    ON CONFLICT (mapping_id, external_uid) DO UPDATE SET
        kind = EXCLUDED.kind,
        start_date = EXCLUDED.start_date,
        end_date = EXCLUDED.end_date,
        summary = EXCLUDED.summary,
        description = EXCLUDED.description,
        payload_hash = EXCLUDED.payload_hash,
        status = 'active',
        cancelled_at = NULL,
        last_seen_at = EXCLUDED.last_seen_at
    """
)
REFRESH_LAST_SEEN = text(
    """
    UPDATE channel.channel_bookings SET last_seen_at = :as_of
    WHERE mapping_id = :mapping_id AND external_uid = ANY(CAST(:uids AS text[]))
      AND last_seen_at < :stale_before
    """
)
# New events: each booking is inserted with its reservation in one statement (the reservation
# id made here, so neither row is written twice). A live reservation of this property that
# another service (the channel gateway) already recorded under the same channel and
# confirmation code is adopted rather than duplicated: a duplicate would be a ghost double
# booking.
INSERT_NEW = text(
    """
    WITH feed AS (
        SELECT * FROM unnest(CAST(:uids AS text[]), CAST(:kinds AS text[]),
                             CAST(:starts AS date[]), CAST(:ends AS date[]),
                             CAST(:summaries AS text[]), CAST(:descriptions AS text[]),
                             CAST(:hashes AS text[]), CAST(:codes AS text[]))
            AS f(uid, kind, start_date, end_date, summary, description, payload_hash, code)
    ),
    candidates AS (
        SELECT DISTINCT ON (f.uid) f.uid, r.id AS reservation_id
        FROM feed f
        JOIN reservations.reservations r
          ON r.property_id = :property_id AND r.confirmation_code = f.code
         AND r.source = :source AND r.status <> 'cancelled' AND r.reservation_type <> 'block'
        WHERE f.kind = 'reservation' AND f.code IS NOT NULL
          AND NOT EXISTS (
              SELECT 1 FROM channel.channel_bookings x WHERE x.reservation_id = r.id
          )
        ORDER BY f.uid, r.id
    ),
    adopted AS (
        SELECT DISTINCT ON (reservation_id) uid, reservation_id
        FROM candidates ORDER BY reservation_id, uid
    ),
    ids AS (
        SELECT f.*, coalesce(a.reservation_id, ops.uuid_generate_v7()) AS reservation_id,
               a.uid IS NOT NULL AS adopted
        FROM feed f LEFT JOIN adopted a ON a.uid = f.uid
    ),
    created AS (
        INSERT INTO reservations.reservations
            (id, property_id, source, reservation_type, status, check_in, check_out,
             confirmation_code, booked_at)
        SELECT reservation_id, :property_id, :source,
               CASE WHEN kind = 'block' THEN 'block' ELSE 'guest' END, 'confirmed',
               start_date, end_date, code, :as_of
        FROM ids WHERE NOT adopted
        RETURNING id
    ),
    booked AS (
        INSERT INTO channel.channel_bookings
            (mapping_id, external_uid, kind, start_date, end_date, summary, description,
             payload_hash, status, reservation_id, first_seen_at, last_seen_at)
        SELECT :mapping_id, uid, kind, start_date, end_date, summary, description,
               payload_hash, 'active', reservation_id, :as_of, :as_of
        FROM ids
        RETURNING external_uid
    )
    SELECT uid, reservation_id, kind, adopted FROM ids
    """
)
# A changed booking without a reservation (another service deleted it) gets one again: a
# live reservation of this property that another
# service (the channel gateway) already recorded under the same channel and confirmation code
# is adopted rather than duplicated (a duplicate would be a ghost double booking); otherwise a
# new one. Ids are made here so the link is written in the same statement.
LINK_RESERVATIONS = text(
    """
    WITH src AS (
        SELECT b.id AS booking_id, b.kind, b.start_date, b.end_date, f.code
        FROM unnest(CAST(:uids AS text[]), CAST(:codes AS text[])) AS f(uid, code)
        JOIN channel.channel_bookings b
          ON b.mapping_id = :mapping_id AND b.external_uid = f.uid
        WHERE b.reservation_id IS NULL AND b.status = 'active'
    ),
    candidates AS (
        SELECT DISTINCT ON (s.booking_id) s.booking_id, r.id AS reservation_id
        FROM src s
        JOIN reservations.reservations r
          ON r.property_id = :property_id AND r.confirmation_code = s.code
         AND r.source = :source AND r.status <> 'cancelled' AND r.reservation_type <> 'block'
        WHERE s.kind = 'reservation' AND s.code IS NOT NULL
          AND NOT EXISTS (
              SELECT 1 FROM channel.channel_bookings x WHERE x.reservation_id = r.id
          )
        ORDER BY s.booking_id, r.id
    ),
    adopted AS (
        SELECT DISTINCT ON (reservation_id) booking_id, reservation_id
        FROM candidates ORDER BY reservation_id, booking_id
    ),
    fresh AS (
        SELECT s.*, ops.uuid_generate_v7() AS reservation_id
        FROM src s
        WHERE NOT EXISTS (SELECT 1 FROM adopted a WHERE a.booking_id = s.booking_id)
    ),
    created AS (
        INSERT INTO reservations.reservations
            (id, property_id, source, reservation_type, status, check_in, check_out,
             confirmation_code, booked_at)
        SELECT reservation_id, :property_id, :source,
               CASE WHEN kind = 'block' THEN 'block' ELSE 'guest' END, 'confirmed',
               start_date, end_date, code, :as_of
        FROM fresh
        RETURNING id
    ),
    links AS (
        SELECT booking_id, reservation_id, false AS adopted FROM fresh
        UNION ALL
        SELECT booking_id, reservation_id, true AS adopted FROM adopted
    )
    UPDATE channel.channel_bookings b SET reservation_id = l.reservation_id
    FROM links l
    WHERE b.id = l.booking_id
    RETURNING b.external_uid, b.reservation_id, b.kind, l.adopted
    """
)
# The reservations of written bookings follow their events: dates, stay vs block, the code,
# and a cancelled one comes back when its event is in the feed again.
UPDATE_RESERVATIONS = text(
    """
    WITH target AS (
        SELECT r.id, b.external_uid, b.start_date, b.end_date,
               CASE WHEN b.kind = 'block' THEN 'block'
                    WHEN r.reservation_type = 'block' THEN 'guest'
                    ELSE r.reservation_type END AS new_type,
               CASE WHEN r.status = 'cancelled' THEN 'confirmed' ELSE r.status END
                   AS new_status,
               coalesce(f.code, r.confirmation_code) AS new_code,
               r.status = 'cancelled' AS reactivated
        FROM unnest(CAST(:uids AS text[]), CAST(:codes AS text[])) AS f(uid, code)
        JOIN channel.channel_bookings b
          ON b.mapping_id = :mapping_id AND b.external_uid = f.uid
        JOIN reservations.reservations r ON r.id = b.reservation_id
    )
    UPDATE reservations.reservations r SET
        check_in = t.start_date,
        check_out = t.end_date,
        reservation_type = t.new_type,
        status = t.new_status,
        cancelled_at = CASE WHEN t.reactivated THEN NULL ELSE r.cancelled_at END,
        confirmation_code = t.new_code
    FROM target t
    WHERE r.id = t.id
      AND (r.check_in, r.check_out, r.reservation_type, r.status, r.confirmation_code)
          IS DISTINCT FROM (t.start_date, t.end_date, t.new_type, t.new_status, t.new_code)
    RETURNING r.id, t.external_uid, r.reservation_type
    """
)
# An event gone from the feed while its stay has not ended (check-out after today) is
# cancelled, with its reservation -- unless the guest is already checked in or out, which a
# person must sort out (the booking is still marked cancelled, and the result counts it).
CANCEL_GONE = text(
    """
    WITH gone AS (
        UPDATE channel.channel_bookings b SET status = 'cancelled', cancelled_at = :as_of
        WHERE b.mapping_id = :mapping_id AND b.status = 'active' AND b.end_date > :today
          AND b.external_uid <> ALL(CAST(:present AS text[]))
        RETURNING b.id, b.reservation_id
    ),
    cancelled AS (
        UPDATE reservations.reservations r SET status = 'cancelled', cancelled_at = :as_of
        FROM gone
        WHERE r.id = gone.reservation_id AND r.status IN ('inquiry', 'confirmed')
        RETURNING r.id, r.reservation_type
    )
    SELECT
        (SELECT count(*) FROM gone) AS bookings,
        (SELECT count(*) FROM cancelled) AS reservations,
        (SELECT count(*) FROM gone JOIN reservations.reservations r ON r.id = gone.reservation_id
          WHERE r.status IN ('checked_in', 'checked_out')) AS kept,
        coalesce(
            (SELECT array_agg(id) FROM cancelled WHERE reservation_type <> 'block'),
            '{}'::uuid[]
        ) AS stays
    """
)


def _booking_arrays(events: list[FeedEvent]) -> dict[str, list[Any]]:
    """The events as parallel arrays, for unnest()."""
    return {
        "uids": [e.uid for e in events],
        "kinds": [e.kind for e in events],
        "starts": [e.start for e in events],
        "ends": [e.end for e in events],
        "summaries": [e.summary for e in events],
        "descriptions": [e.description for e in events],
        "hashes": [e.payload_hash for e in events],
        "codes": [e.confirmation_code for e in events],
    }


def apply_feed(
    session: Session, mapping: Row, feed: ParsedFeed, *, as_of: dt.datetime, today: dt.date
) -> Applied:
    """Write one parsed feed: bookings by UID, their reservations, cancellations."""
    applied = Applied()
    source = source_for(feed.flavor, mapping.channel)
    uids = [e.uid for e in feed.events]
    existing = {
        r.external_uid: r
        for r in session.execute(EXISTING_BOOKINGS, {"mapping_id": mapping.id, "uids": uids})
    }
    new, changed, unchanged = [], [], []
    for event in feed.events:
        old = existing.get(event.uid)
        if old is None:
            new.append(event)
        elif (
            old.payload_hash != event.payload_hash
            or old.status != "active"
            or old.reservation_id is None
        ):
            changed.append(event)
        else:
            unchanged.append(event.uid)
    applied.created, applied.updated = len(new), len(changed)
    sync: list[uuid.UUID] = []
    # Reservations created here are already right; changed and adopted ones are updated.
    follow: dict[str, FeedEvent] = {e.uid: e for e in changed}
    property_and_source = {"property_id": mapping.property_id, "source": source}
    if new:
        by_uid = {e.uid: e for e in new}
        for row in session.execute(
            INSERT_NEW,
            {**_booking_arrays(new), **property_and_source, "mapping_id": mapping.id,
             "as_of": as_of},
        ):  # fmt: skip
            if row.adopted:
                applied.reservations_adopted += 1
                follow[row.uid] = by_uid[row.uid]
            else:
                applied.reservations_created += 1
                if row.kind == "reservation":
                    sync.append(row.reservation_id)
    if changed:
        session.execute(
            UPSERT_BOOKINGS, {**_booking_arrays(changed), "mapping_id": mapping.id, "as_of": as_of}
        )
        repairs = [e for e in changed if existing[e.uid].reservation_id is None]
        if repairs:
            for link in session.execute(
                LINK_RESERVATIONS,
                {
                    **property_and_source,
                    "mapping_id": mapping.id,
                    "uids": [e.uid for e in repairs],
                    "codes": [e.confirmation_code for e in repairs],
                    "as_of": as_of,
                },
            ):
                if link.adopted:
                    applied.reservations_adopted += 1
                else:
                    applied.reservations_created += 1
                    follow.pop(link.external_uid, None)
                    if link.kind == "reservation":
                        sync.append(link.reservation_id)
    if follow:
        params = {
            "mapping_id": mapping.id,
            "uids": list(follow),
            "codes": [e.confirmation_code for e in follow.values()],
        }
        for updated in session.execute(UPDATE_RESERVATIONS, params):
            applied.reservations_updated += 1
            old = existing.get(updated.external_uid)
            was_stay = old is not None and old.kind == "reservation"
            if updated.reservation_type != "block" or was_stay:
                sync.append(updated.id)
    if unchanged:
        session.execute(
            REFRESH_LAST_SEEN,
            {
                "mapping_id": mapping.id,
                "uids": unchanged,
                "as_of": as_of,
                "stale_before": as_of - LAST_SEEN_REFRESH,
            },
        )
    gone = session.execute(
        CANCEL_GONE,
        {
            "mapping_id": mapping.id,
            "as_of": as_of,
            "today": today,
            "present": sorted(feed.present_uids),
        },
    ).one()
    applied.cancelled = gone.bookings
    applied.reservations_cancelled = gone.reservations
    applied.kept_checked_in = gone.kept
    sync.extend(gone.stays)
    applied.reservations_to_sync = list(dict.fromkeys(sync))
    return applied


# -- double bookings -------------------------------------------------------------------------

OVERLAP_TICKETS = text(
    """
    WITH mine AS (
        SELECT DISTINCT r.id, r.check_in, r.check_out
        FROM channel.channel_bookings b
        JOIN reservations.reservations r ON r.id = b.reservation_id
        WHERE b.mapping_id = :mapping_id AND b.status = 'active' AND b.end_date > :today
          AND r.status <> 'cancelled' AND r.reservation_type IN ('guest', 'owner_stay')
          AND r.check_out > :today
    ),
    pairs AS (
        SELECT least(a.id, o.id) AS lo, greatest(a.id, o.id) AS hi, a.id AS mine_id
        FROM mine a
        JOIN reservations.reservations o
          ON o.property_id = :property_id AND o.id <> a.id
         AND o.check_in < a.check_out AND o.check_out > a.check_in
         AND o.status <> 'cancelled' AND o.reservation_type IN ('guest', 'owner_stay')
    ),
    keyed AS (
        SELECT DISTINCT lo, hi, 'channel:overlap:' || lo::text || ':' || hi::text AS dedupe_key
        FROM pairs
    ),
    fresh AS (
        -- One ticket per pair, ever: a resolved ticket is not raised again every sync.
        SELECT k.* FROM keyed k
        WHERE NOT EXISTS (
            SELECT 1 FROM service.tickets t
            WHERE t.reservation_id = k.hi AND t.dedupe_key = k.dedupe_key
        )
    ),
    created AS (
        INSERT INTO service.tickets
            (ticket_type, category, title, description, status, priority, source,
             property_id, reservation_id, dedupe_key)
        SELECT 'RSV', 'double_booking',
               format('Possible double booking at %s: %s to %s', p.property_code,
                      greatest(a.check_in, b.check_in), least(a.check_out, b.check_out)),
               format('Two live stays of %s overlap: %s (%s, %s, %s to %s) and %s (%s, %s,'
                      ' %s to %s). Found by channel sync: move or cancel one of them.',
                      p.property_code,
                      coalesce(a.confirmation_code, 'no code'), a.source, a.reservation_type,
                      a.check_in, a.check_out,
                      coalesce(b.confirmation_code, 'no code'), b.source, b.reservation_type,
                      b.check_in, b.check_out),
               'open', 'urgent', 'channel', :property_id, f.hi, f.dedupe_key
        FROM fresh f
        JOIN reservations.reservations a ON a.id = f.lo
        JOIN reservations.reservations b ON b.id = f.hi
        JOIN property.properties p ON p.id = :property_id
        ON CONFLICT (dedupe_key)
            WHERE dedupe_key IS NOT NULL
              AND status NOT IN ('resolved', 'closed', 'cancelled')
            DO NOTHING
        RETURNING id, dedupe_key
    ),
    events AS (
        INSERT INTO service.ticket_events (ticket_id, event_type, occurred_at, actor, data)
        SELECT c.id, 'created', :as_of, 'system',
               jsonb_build_object('reason', 'possible_double_booking',
                                  'reservation_ids', jsonb_build_array(k.lo, k.hi),
                                  'mapping_id', CAST(:mapping_id AS uuid))
        FROM created c JOIN keyed k ON k.dedupe_key = c.dedupe_key
    )
    SELECT (SELECT count(DISTINCT mine_id) FROM pairs) AS conflicts,
           coalesce((SELECT array_agg(id) FROM created), '{}'::uuid[]) AS tickets
    """
)


def raise_overlap_tickets(
    session: Session,
    *,
    mapping_id: uuid.UUID,
    property_id: uuid.UUID,
    as_of: dt.datetime,
    today: dt.date,
) -> tuple[int, list[uuid.UUID]]:
    """(this mapping's stays that overlap another live stay, the tickets created)."""
    row = session.execute(
        OVERLAP_TICKETS,
        {"mapping_id": mapping_id, "property_id": property_id, "as_of": as_of, "today": today},
    ).one()
    return row.conflicts, list(row.tickets)


# -- recording the outcome -------------------------------------------------------------------

INSERT_SYNC_LOG = text(
    """
    INSERT INTO channel.sync_log
        (connection_id, mapping_id, started_at, finished_at, status, http_status, events_seen,
         created, updated, cancelled, conflicts, error)
    VALUES (:connection_id, :mapping_id, :started_at, :finished_at, :status, :http_status,
            :events_seen, :created, :updated, :cancelled, :conflicts, :error)
    RETURNING id
    """
)
# The mapping's bookkeeping and the run's sync_log row, in one round trip.
MAPPING_SUCCEEDED = text(
    """
    WITH mapping AS (
        UPDATE channel.channel_mappings SET
            last_etag = :etag, last_modified = :last_modified, last_feed_hash = :feed_hash,
            last_synced_at = :as_of,
            last_changed_at = CASE WHEN :changed THEN :as_of ELSE last_changed_at END,
            next_sync_at = NULL, consecutive_failures = 0, failing_since = NULL,
            last_error = NULL
        WHERE id = :mapping_id
    )
    INSERT INTO channel.sync_log
        (connection_id, mapping_id, started_at, finished_at, status, http_status, events_seen,
         created, updated, cancelled, conflicts, error)
    VALUES (:connection_id, :mapping_id, :started_at, :finished_at, :status, :http_status,
            :events_seen, :created, :updated, :cancelled, :conflicts, NULL)
    RETURNING id
    """
)
MAPPING_FAILED = text(
    """
    UPDATE channel.channel_mappings SET
        consecutive_failures = consecutive_failures + 1,
        failing_since = coalesce(failing_since, :as_of),
        last_error = :error,
        next_sync_at = :next_sync_at
    WHERE id = :id
    """
)
# The connection aggregates its active mappings: failing (and backing off as a whole, to the
# earliest retry any of them wants) only while every one of them is failing.
CONNECTION_AGGREGATE = text(
    """
    UPDATE channel.channel_connections c SET
        consecutive_failures = a.min_failures,
        failing_since = CASE WHEN a.min_failures > 0 THEN a.failing_since END,
        last_error = CASE WHEN :failed THEN :error
                          WHEN a.max_failures = 0 THEN NULL
                          ELSE c.last_error END,
        last_success_at = CASE WHEN :failed THEN c.last_success_at
                               ELSE greatest(c.last_success_at, :as_of) END,
        next_sync_at = CASE WHEN a.min_failures > 0 THEN greatest(c.next_sync_at, a.retry_at)
                            WHEN :failed THEN c.next_sync_at
                            ELSE least(coalesce(c.next_sync_at, :next_round), :next_round) END
    FROM (
        SELECT coalesce(min(consecutive_failures), 0) AS min_failures,
               coalesce(max(consecutive_failures), 0) AS max_failures,
               max(failing_since) AS failing_since,
               min(next_sync_at) AS retry_at
        FROM channel.channel_mappings
        WHERE connection_id = :connection_id AND is_active AND import_url IS NOT NULL
    ) a
    WHERE c.id = :connection_id
    """
)


def _finished(as_of: dt.datetime, clock: float) -> dt.datetime:
    return as_of + dt.timedelta(seconds=time.monotonic() - clock)


CONNECTION_SUCCEEDED = text(
    """
    UPDATE channel.channel_connections SET last_success_at = :as_of
    WHERE id = :connection_id AND (last_success_at IS NULL OR last_success_at < :as_of)
    """
)


def _update_connection(
    session: Session, mapping: Row, as_of: dt.datetime, *, failed: bool, error: str | None
) -> None:
    if not failed and mapping.consecutive_failures == 0 and mapping.connection_failures == 0:
        # A healthy mapping of a healthy connection stayed healthy: the aggregate cannot have
        # changed but for the last success (the common case: no scan of the connection's
        # mappings).
        session.execute(
            CONNECTION_SUCCEEDED, {"connection_id": mapping.connection_id, "as_of": as_of}
        )
        return
    session.execute(
        CONNECTION_AGGREGATE,
        {
            "connection_id": mapping.connection_id,
            "failed": failed,
            "error": error,
            "as_of": as_of,
            "next_round": as_of + dt.timedelta(minutes=mapping.sync_interval_minutes),
        },
    )


def _succeed(
    session: Session,
    mapping: Row,
    as_of: dt.datetime,
    clock: float,
    *,
    status: str,
    http_status: int,
    etag: str | None,
    last_modified: str | None,
    feed_hash: str | None,
    applied: Applied | None = None,
    conflicts: int = 0,
    feed: ParsedFeed | None = None,
) -> ImportOutcome:
    applied = applied or Applied()
    events_seen = feed.events_seen if feed else 0
    log_id = session.execute(
        MAPPING_SUCCEEDED,
        {
            "mapping_id": mapping.id,
            "connection_id": mapping.connection_id,
            "etag": etag,
            "last_modified": last_modified,
            "feed_hash": feed_hash,
            "as_of": as_of,
            "changed": applied.changed,
            "started_at": as_of,
            "finished_at": _finished(as_of, clock),
            "status": status,
            "http_status": http_status,
            "events_seen": events_seen,
            "created": applied.created,
            "updated": applied.updated,
            "cancelled": applied.cancelled,
            "conflicts": conflicts,
        },
    ).scalar_one()
    # Last: the connection row is shared by every import of the connection, so its lock is
    # held only from here to the commit.
    _update_connection(session, mapping, as_of, failed=False, error=None)
    result: dict[str, Any] = {
        "status": status,
        "http_status": http_status,
        "sync_log_id": str(log_id),
        "events_seen": events_seen,
        "created": applied.created,
        "updated": applied.updated,
        "cancelled": applied.cancelled,
        "conflicts": conflicts,
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
    return ImportOutcome(result)


def _fail(
    session: Session,
    mapping: Row,
    as_of: dt.datetime,
    clock: float,
    error: str,
    http_status: int | None,
    retry_after: float | None = None,
) -> ImportOutcome:
    error = error[:ERROR_MAX]
    failures = mapping.consecutive_failures + 1
    next_sync_at = as_of + backoff_delay(mapping.sync_interval_minutes, failures, retry_after)
    session.execute(
        MAPPING_FAILED,
        {"id": mapping.id, "as_of": as_of, "error": error, "next_sync_at": next_sync_at},
    )
    log_id = session.execute(
        INSERT_SYNC_LOG,
        {
            "connection_id": mapping.connection_id,
            "mapping_id": mapping.id,
            "started_at": as_of,
            "finished_at": _finished(as_of, clock),
            "status": "error",
            "http_status": http_status,
            "events_seen": 0,
            "created": 0,
            "updated": 0,
            "cancelled": 0,
            "conflicts": 0,
            "error": error,
        },
    ).scalar_one()
    notices = queue_feed_health_notices(session, as_of=as_of, mapping_id=mapping.id)
    _update_connection(session, mapping, as_of, failed=True, error=error)
    return ImportOutcome(
        {
            "status": "error",
            "http_status": http_status,
            "sync_log_id": str(log_id),
            "error": error,
            "consecutive_failures": failures,
            "next_sync_at": next_sync_at.isoformat(),
            "health_notices": notices,
        }
    )


# -- feed health -----------------------------------------------------------------------------

# One notice per mapping and episode: the key carries the last success (or the mapping's
# creation when it never succeeded), so a feed that recovers and fails again is reported
# again, while every sweep of one episode finds the notice already queued.
FEED_HEALTH_NOTICES = text(
    """
    INSERT INTO comms.messages
        (channel, recipient, subject, body, related_type, related_id, dedupe_key)
    SELECT :ops_channel, :ops_recipient,
           format('Channel feed unhealthy: %s on %s', p.property_code, c.name),
           format('No successful sync of the %s feed of %s (%s) since %s.%s Check the listing'
                  ' and its feed URL at the channel (mapping %s).',
                  c.name, p.property_code, p.name,
                  CASE WHEN m.last_synced_at IS NULL THEN 'it was set up'
                       ELSE to_char(m.last_synced_at AT TIME ZONE 'UTC',
                                    'YYYY-MM-DD HH24:MI "UTC"') END,
                  CASE WHEN m.consecutive_failures > 0
                       THEN format(' %s failures in a row, the last: %s.',
                                   m.consecutive_failures, m.last_error)
                       ELSE ' It has not been synced (is the worker or beat running?).' END,
                  m.id),
           'channel_mapping', m.id,
           'channel:feed_health:' || m.id::text || ':'
               || to_char(coalesce(m.last_synced_at, m.created_at) AT TIME ZONE 'UTC',
                          'YYYYMMDD"T"HH24MISS.US')
    FROM channel.channel_mappings m
    JOIN channel.channel_connections c ON c.id = m.connection_id
    JOIN property.properties p ON p.id = m.property_id
    WHERE m.is_active AND m.import_url IS NOT NULL AND c.status <> 'paused'
      AND coalesce(m.last_synced_at, m.created_at) < :stale_before
      AND (CAST(:mapping_id AS uuid) IS NULL OR m.id = :mapping_id)
    ON CONFLICT (dedupe_key) DO NOTHING
    RETURNING id
    """
)


def queue_feed_health_notices(
    session: Session, *, as_of: dt.datetime, mapping_id: uuid.UUID | None = None
) -> int:
    """Queue one ops notice per mapping with no successful sync for HEALTH_AFTER, whatever
    the reason (failing, or not run at all); paused connections and inactive mappings are
    someone's decision and are left alone."""
    rows = session.execute(
        FEED_HEALTH_NOTICES,
        {
            "ops_channel": OPS_CHANNEL,
            "ops_recipient": OPS_RECIPIENT,
            "stale_before": as_of - HEALTH_AFTER,
            "mapping_id": mapping_id,
        },
    ).all()
    return len(rows)


# -- the fan-out -----------------------------------------------------------------------------

# Claims the due connections by moving their round one interval ahead (a conditional UPDATE:
# two sweeps cannot both claim one round), then lists their active mappings that are not
# backing off on their own.
CLAIM_DUE = text(
    """
    WITH claimed AS (
        UPDATE channel.channel_connections c
        SET next_sync_at = :as_of + make_interval(mins => c.sync_interval_minutes)
        WHERE c.status = 'active'
          AND (CAST(:connection_id AS uuid) IS NULL
               AND (c.next_sync_at IS NULL OR c.next_sync_at <= :as_of)
               OR c.id = :connection_id)
        RETURNING c.id
    )
    SELECT m.id, m.connection_id
    FROM channel.channel_mappings m
    JOIN claimed ON claimed.id = m.connection_id
    WHERE m.is_active AND m.import_url IS NOT NULL
      AND (CAST(:connection_id AS uuid) IS NOT NULL
           OR m.next_sync_at IS NULL OR m.next_sync_at <= :as_of)
    ORDER BY m.id
    """
)


def plan_sync(
    session: Session, *, as_of: dt.datetime, connection_id: uuid.UUID | None = None
) -> tuple[dict[str, Any], list[uuid.UUID]]:
    """channel.sync: claim the due connections, list the mappings to import, sweep health.

    With `connection_id` (by hand) that connection's active mappings are all listed now,
    whether due or backing off; a paused connection still lists nothing.
    """
    if connection_id is not None:
        found = session.execute(
            text("SELECT 1 FROM channel.channel_connections WHERE id = :id"), {"id": connection_id}
        ).first()
        if found is None:
            raise UnknownConnection(f"unknown connection_id {connection_id}")
    rows = session.execute(CLAIM_DUE, {"as_of": as_of, "connection_id": connection_id}).all()
    notices = queue_feed_health_notices(session, as_of=as_of)
    result = {
        "connections": len({r.connection_id for r in rows}),
        "mappings_enqueued": len(rows),
        "health_notices": notices,
    }
    return result, [r.id for r in rows]
