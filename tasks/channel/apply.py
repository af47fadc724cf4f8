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

from sqlalchemy.engine import Row
from sqlalchemy.orm import Session

from tasks.channel import queries as q
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
        for r in session.execute(q.EXISTING_BOOKINGS, {"mapping_id": mapping.id, "uids": uids})
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
            q.INSERT_NEW,
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
            q.UPSERT_BOOKINGS,
            {**_booking_arrays(changed), "mapping_id": mapping.id, "as_of": as_of},
        )
        repairs = [e for e in changed if existing[e.uid].reservation_id is None]
        if repairs:
            for link in session.execute(
                q.LINK_RESERVATIONS,
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
        for updated in session.execute(q.UPDATE_RESERVATIONS, params):
            applied.reservations_updated += 1
            old = existing.get(updated.external_uid)
            was_stay = old is not None and old.kind == "reservation"
            if updated.reservation_type != "block" or was_stay:
                sync.append(updated.id)
    if unchanged:
        session.execute(
            q.REFRESH_LAST_SEEN,
            {
                "mapping_id": mapping.id,
                "uids": unchanged,
                "as_of": as_of,
                "stale_before": as_of - LAST_SEEN_REFRESH,
            },
        )
    present = sorted(feed.present_uids)
    if mapping.hold_started_at is not None:
        session.execute(q.UNHOLD, {"mapping_id": mapping.id, "present": present, "today": today})
    live = session.execute(
        q.LIVE_BOOKINGS, {"mapping_id": mapping.id, "present": present, "today": today}
    ).all()
    cancel, hold = decide_cancellations(
        live,
        empty_feed=feed.events_seen == 0,
        as_of=as_of,
        hold=dt.timedelta(hours=hold_hours(mapping.settings)),
    )
    if hold:
        session.execute(q.HOLD, {"ids": hold, "as_of": as_of})
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
    gone = session.execute(q.CANCEL_BOOKINGS, {"ids": ids, "as_of": as_of}).one()
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
    session.execute(q.UNHOLD, {"mapping_id": mapping.id, "present": [], "today": today})
    expire_before = as_of - dt.timedelta(hours=hold_hours(mapping.settings))
    rows = session.execute(
        q.HELD_BOOKINGS, {"mapping_id": mapping.id, "expire_before": expire_before, "today": today}
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
        q.HELD_BOOKINGS, {"mapping_id": mapping.id, "expire_before": as_of, "today": today}
    ).all()
    sync: list[uuid.UUID] = []
    _cancel(session, applied, [r.id for r in rows], as_of, sync)
    session.execute(q.END_HOLD_EPISODE, {"mapping_id": mapping.id})
    applied.reservations_to_sync = list(dict.fromkeys(sync))
    return applied
