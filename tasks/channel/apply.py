"""Applying one parsed feed to the database, set-based (SPEC 6.4, 7.1): bookings by UID, their
reservations, and the cancellation of events gone from the feed -- or, when a feed suddenly
empties or shrinks, the holding of those cancellations.

Writes, in the apply transaction of one import:

1. upsert channel_bookings by UID; a new event's reservation is created (or, when the channel
   gateway already recorded it under the same code, adopted) in the same statement;
2. the reservations of changed bookings follow their events (dates, stay vs block, code; a
   cancelled one comes back when its event is in the feed again);
3. the live bookings gone from the feed while their stay has not ended (check-out after the
   property's today) are cancelled with their reservations -- unless the feed looks like a
   glitch (`decide_cancellations`): then they are held (`held_since`), and only cancelled
   when they are still missing after the connection's `hold_hours` (default 6), or when ops
   release them (`release_held`).

The stays created, changed or cancelled are returned for `recurring.sync_reservation`.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import text
from sqlalchemy.engine import Row
from sqlalchemy.orm import Session

from tasks.channel.ical import SOURCES, FeedEvent, ParsedFeed

# Unchanged bookings are not rewritten; their last_seen_at is refreshed at most this often.
LAST_SEEN_REFRESH = dt.timedelta(hours=1)
# A feed that would cancel at least this many live future bookings, and more than half of
# them, has its cancellations held (so does an empty calendar while 2 or more are live).
HOLD_MIN_CANCELLATIONS = 3
HOLD_MIN_LIVE_FOR_EMPTY = 2
DEFAULT_HOLD_HOURS = 6.0
MAX_HOLD_HOURS = 24.0 * 14


def hold_hours(settings: Mapping[str, Any] | None) -> float:
    """The connection's `hold_hours` (a positive number, at most two weeks), else 6."""
    value = (settings or {}).get("hold_hours")
    if isinstance(value, int | float) and not isinstance(value, bool) and value > 0:
        return float(min(value, MAX_HOLD_HOURS))
    return DEFAULT_HOLD_HOURS


def source_for(flavor: str, channel: str) -> str:
    """reservations.source: the channel the feed turned out to be, else the connection's."""
    if flavor != "generic":
        return SOURCES[flavor]
    return channel if channel in ("airbnb", "vrbo", "booking_com") else "ical"


@dataclass
class Applied:
    created: int = 0
    updated: int = 0
    cancelled: int = 0
    held: int = 0
    live: int = 0
    kept_checked_in: int = 0
    reservations_created: int = 0
    reservations_adopted: int = 0
    reservations_updated: int = 0
    reservations_cancelled: int = 0
    # The hold episode's start after this run (None: nothing held), and whether it began now.
    hold_started_at: dt.datetime | None = None
    hold_began: bool = False
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
        held_since = NULL,
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
# live reservation of this property that another service (the channel gateway) already
# recorded under the same channel and confirmation code is adopted rather than duplicated (a
# duplicate would be a ghost double booking); otherwise a new one. Ids are made here so the
# link is written in the same statement.
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
# Every live booking whose stay has not ended, and whether the feed still lists it.
LIVE_BOOKINGS = text(
    """
    SELECT id, held_since, external_uid <> ALL(CAST(:present AS text[])) AS gone
    FROM channel.channel_bookings
    WHERE mapping_id = :mapping_id AND status = 'active' AND end_date > :today
    """
)
# Held bookings the feed lists again, or whose stay has ended meanwhile, are held no more.
UNHOLD = text(
    """
    UPDATE channel.channel_bookings SET held_since = NULL
    WHERE mapping_id = :mapping_id AND held_since IS NOT NULL
      AND (external_uid = ANY(CAST(:present AS text[])) OR end_date <= :today
           OR status <> 'active')
    """
)
HOLD = text(
    """
    UPDATE channel.channel_bookings SET held_since = :as_of
    WHERE id = ANY(CAST(:ids AS uuid[])) AND held_since IS NULL
    """
)
# Bookings cancelled with their reservations -- unless the guest is already checked in or
# out, which a person must sort out (the booking is still marked cancelled, and the result
# counts it).
CANCEL_BOOKINGS = text(
    """
    WITH gone AS (
        UPDATE channel.channel_bookings b
        SET status = 'cancelled', cancelled_at = :as_of, held_since = NULL
        WHERE b.id = ANY(CAST(:ids AS uuid[])) AND b.status = 'active'
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
# The bookings still held for a mapping (live, not ended), and those whose hold has run out.
HELD_BOOKINGS = text(
    """
    SELECT id, held_since <= :expire_before AS expired
    FROM channel.channel_bookings
    WHERE mapping_id = :mapping_id AND held_since IS NOT NULL AND status = 'active'
      AND end_date > :today
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
    session: Session,
    mapping: Row,
    feed: ParsedFeed,
    *,
    as_of: dt.datetime,
    today: dt.date,
) -> Applied:
    """Write one parsed feed: bookings by UID, their reservations, cancellations or holds."""
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
    present = sorted(feed.present_uids)
    if mapping.hold_started_at is not None:
        session.execute(UNHOLD, {"mapping_id": mapping.id, "present": present, "today": today})
    live = session.execute(
        LIVE_BOOKINGS, {"mapping_id": mapping.id, "present": present, "today": today}
    ).all()
    cancel, hold = decide_cancellations(
        live,
        empty_feed=feed.events_seen == 0,
        as_of=as_of,
        hold=dt.timedelta(hours=hold_hours(mapping.settings)),
    )
    if hold:
        session.execute(HOLD, {"ids": hold, "as_of": as_of})
    _cancel(session, applied, cancel, as_of, sync)
    applied.held, applied.live = len(hold), len(live)
    _episode(applied, mapping, as_of)
    applied.reservations_to_sync = list(dict.fromkeys(sync))
    return applied


def decide_cancellations(
    live: Sequence[Row], *, empty_feed: bool, as_of: dt.datetime, hold: dt.timedelta
) -> tuple[list[uuid.UUID], list[uuid.UUID]]:
    """(bookings to cancel now, bookings to hold) among the live ones the feed lost.

    A feed that loses at least 3 live bookings and more than half of them, or an empty
    calendar while 2 or more are live, is taken for a glitch: its losses are held, except
    those already missing for `hold` (they are cancelled now). Anything smaller is an ordinary
    cancellation and goes ahead at once, held ones included.
    """
    gone = [r for r in live if r.gone]
    suspicious = (len(gone) >= HOLD_MIN_CANCELLATIONS and 2 * len(gone) > len(live)) or (
        empty_feed and len(live) >= HOLD_MIN_LIVE_FOR_EMPTY
    )
    if not suspicious:
        return [r.id for r in gone], []
    expired = [r.id for r in gone if r.held_since is not None and r.held_since <= as_of - hold]
    held = [r.id for r in gone if r.held_since is None or r.held_since > as_of - hold]
    return expired, held


def _cancel(
    session: Session,
    applied: Applied,
    ids: list[uuid.UUID],
    as_of: dt.datetime,
    sync: list[uuid.UUID],
) -> None:
    if not ids:
        return
    gone = session.execute(CANCEL_BOOKINGS, {"ids": ids, "as_of": as_of}).one()
    applied.cancelled += gone.bookings
    applied.reservations_cancelled += gone.reservations
    applied.kept_checked_in += gone.kept
    sync.extend(gone.stays)


def _episode(applied: Applied, mapping: Row, as_of: dt.datetime) -> None:
    """The hold episode after this run: it starts with the first held booking and ends when
    nothing is held any more."""
    if applied.held:
        applied.hold_started_at = mapping.hold_started_at or as_of
        applied.hold_began = mapping.hold_started_at is None
    else:
        applied.hold_started_at = None


def settle_holds(session: Session, mapping: Row, *, as_of: dt.datetime, today: dt.date) -> Applied:
    """For a run whose feed did not change (a 304, the same body) during a hold episode: the
    held bookings still missing for the connection's hold_hours are cancelled now; the rest
    stay held."""
    applied = Applied()
    if mapping.hold_started_at is None:
        return applied
    session.execute(UNHOLD, {"mapping_id": mapping.id, "present": [], "today": today})
    expire_before = as_of - dt.timedelta(hours=hold_hours(mapping.settings))
    rows = session.execute(
        HELD_BOOKINGS, {"mapping_id": mapping.id, "expire_before": expire_before, "today": today}
    ).all()
    sync: list[uuid.UUID] = []
    _cancel(session, applied, [r.id for r in rows if r.expired], as_of, sync)
    applied.held = sum(1 for r in rows if not r.expired)
    _episode(applied, mapping, as_of)
    applied.reservations_to_sync = list(dict.fromkeys(sync))
    return applied


def release_held(session: Session, mapping: Row, *, as_of: dt.datetime, today: dt.date) -> Applied:
    """Ops say the held bookings really are gone: cancel them all now, ending the episode."""
    applied = Applied()
    rows = session.execute(
        HELD_BOOKINGS, {"mapping_id": mapping.id, "expire_before": as_of, "today": today}
    ).all()
    sync: list[uuid.UUID] = []
    _cancel(session, applied, [r.id for r in rows], as_of, sync)
    session.execute(
        text("UPDATE channel.channel_mappings SET hold_started_at = NULL WHERE id = :id"),
        {"id": mapping.id},
    )
    applied.reservations_to_sync = list(dict.fromkeys(sync))
    return applied
