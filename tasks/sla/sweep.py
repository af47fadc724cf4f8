"""sla.check_breaches: the every-minute sweep (SPEC 6.2).

In one transaction, as of `as_of`:

1. **Deadlines for tickets that have none**: open tickets inserted by a service that did not
   enqueue `sla.apply` (found through `ix_tickets_no_deadlines`, oldest first), so nothing
   depends on someone remembering to enqueue it:
   - tickets whose policy has a business calendar need the Python business-time module:
     up to `CALENDAR_BATCH` (500) of them per sweep are read (oldest first, through the
     index), computed, and written back by one UPDATE taking its values from arrays; 500
     keeps such a sweep to a few hundred milliseconds even on a busy machine
     (docs/PERFORMANCE.md), and a backlog drains at 30,000 an hour;
   - all the others (24x7 policies, and the priority defaults) get theirs from one set-based
     UPDATE over up to `FILL_BATCH` (5,000) locked candidates, with the deadlines computed in
     SQL exactly as the Python module would (plain interval arithmetic).
   A ticket inserted already waiting (pending_guest, ...) is taken as paused since it was
   created. The tickets given deadlines are then judged at once (a first response recorded
   after the new deadline is a breach the pending index would never show).
1b. **Pause clocks that disagree with the status** (through `ix_tickets_pause_clock_stale`,
   normally empty): a ticket resumed or finished by a service that did not enqueue
   `sla.apply` would otherwise keep a stopped clock and no resolution deadline, and never be
   breached; one put on hold that way would keep a running clock. Up to `RECONCILE_BATCH` a
   sweep go through `sla.apply`'s own function, as of the status change: the ticket's
   `updated_at` (the trigger sets it on every update, so it is the change or a little after).
2. **Breaches**: response, then resolution, through the partial indexes on the open,
   unbreached deadlines (tasks.sla.breaches), in batches of `BREACH_BATCH`, at most
   `MAX_BATCHES` per kind per sweep, so a backlog after downtime is worked off over a few
   sweeps instead of one endless transaction.
3. **Warnings**: the same for `resolution_warn_due_at`.

No step reads a ticket that has nothing due: every statement starts from a partial index range
that ends at `as_of`, and a first statement probes the four indexes so that a step with nothing
to do is skipped.
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from sqlalchemy import text
from sqlalchemy.orm import Session

from db.models.service import (
    NO_DEADLINES_SQL,
    PAUSE_CLOCK_STALE_SQL,
    PAUSED_SQL,
    RESOLUTION_PENDING_SQL,
    RESPONSE_PENDING_SQL,
    WARNING_PENDING_SQL,
)
from tasks.sla.apply import apply_sla
from tasks.sla.breaches import (
    KINDS,
    Counts,
    record_breaches_of,
    record_due_breaches,
    record_due_warnings,
)
from tasks.sla.policy import (
    DEFAULT_WARN_AT_PCT,
    POLICY_MATCH_SQL,
    compute_deadlines,
    load_calendars,
    terms_from_row,
)

CALENDAR_BATCH = 500
RECONCILE_BATCH = 500
FILL_BATCH = 5000
BREACH_BATCH = 5000
MAX_BATCHES = 4

# Open tickets without deadlines whose matched policy counts business hours.
_CALENDAR_CANDIDATES = text(
    f"""
    SELECT t.id, t.created_at, t.sla_paused_minutes, t.sla_paused_since,
           ({PAUSED_SQL}) AS paused,
           pol.id AS policy_id, pol.response_minutes, pol.resolution_minutes, pol.calendar_id,
           pol.warn_at_pct
    FROM service.tickets t
    CROSS JOIN LATERAL ({POLICY_MATCH_SQL}) pol
    WHERE {NO_DEADLINES_SQL} AND pol.calendar_id IS NOT NULL
    ORDER BY t.created_at
    LIMIT :limit
    FOR UPDATE OF t SKIP LOCKED
    """
)
# Written back without a join (see tasks.sla.breaches on why): each row finds its values by
# its position in the id array; 500 x 500 uuid comparisons at most, well under a millisecond.
_CALENDAR_UPDATE = text(
    """
    UPDATE service.tickets t
    SET (sla_policy_id, response_due_at, resolution_due_at, resolution_warn_due_at,
         sla_paused_since) = (
        SELECT (CAST(:policy_ids AS uuid[]))[i], (CAST(:response AS timestamptz[]))[i],
               (CAST(:resolution AS timestamptz[]))[i], (CAST(:warn AS timestamptz[]))[i],
               (CAST(:paused_since AS timestamptz[]))[i]
        FROM (SELECT array_position(CAST(:ids AS uuid[]), t.id) AS i) position)
    WHERE t.id = ANY(CAST(:ids AS uuid[])) AND t.response_due_at IS NULL
    RETURNING t.id
    """
)
# Everything else, set-based: the same arithmetic as policy.compute_deadlines with no calendar,
# the policy matched again per row in the SET (the candidates are locked; a join back to them
# is what the breach statements avoid, see tasks.sla.breaches).
_FILL_24X7 = text(
    f"""
    WITH cand AS (
        SELECT t.id
        FROM service.tickets t
        LEFT JOIN LATERAL ({POLICY_MATCH_SQL}) pol ON true
        WHERE {NO_DEADLINES_SQL} AND pol.calendar_id IS NULL
        ORDER BY t.created_at
        LIMIT :limit
        FOR UPDATE OF t SKIP LOCKED
    )
    UPDATE service.tickets t
    SET (sla_policy_id, response_due_at, resolution_due_at, resolution_warn_due_at,
         sla_paused_since) = (
        SELECT pol.id,
               t.created_at + make_interval(mins => c.response_minutes),
               CASE WHEN NOT c.paused THEN t.created_at
                   + make_interval(mins => c.resolution_minutes + t.sla_paused_minutes) END,
               CASE WHEN NOT c.paused THEN t.created_at
                   + interval '1 second' * round(c.resolution_minutes * 60 * c.warn_at_pct / 100)
                   + make_interval(mins => t.sla_paused_minutes) END,
               CASE WHEN c.paused THEN coalesce(t.sla_paused_since,
                                                least(t.created_at, CAST(:as_of AS timestamptz)))
                    ELSE t.sla_paused_since END
        FROM ref.ticket_priority_key k
        LEFT JOIN LATERAL ({POLICY_MATCH_SQL}) pol ON true
        CROSS JOIN LATERAL (
            SELECT coalesce(pol.response_minutes, k.response_minutes) AS response_minutes,
                   coalesce(pol.resolution_minutes, k.resolution_minutes) AS resolution_minutes,
                   coalesce(pol.warn_at_pct, {DEFAULT_WARN_AT_PCT}) AS warn_at_pct,
                   t.{PAUSED_SQL} AS paused
        ) c
        WHERE k.code = t.priority)
    WHERE t.id = ANY(ARRAY(SELECT id FROM cand)) AND t.response_due_at IS NULL
    RETURNING t.id
    """
)


# Tickets whose pause clock disagrees with their status, with the instant of the change.
_STALE_CLOCKS = text(
    f"""
    SELECT id, least(greatest(updated_at, coalesce(sla_paused_since, updated_at)),
                     CAST(:as_of AS timestamptz)) AS changed_at
    FROM service.tickets
    WHERE ({PAUSE_CLOCK_STALE_SQL}) AND updated_at <= :as_of
    ORDER BY updated_at
    LIMIT :limit
    FOR UPDATE SKIP LOCKED
    """
)

# Is anything due at all? Each EXISTS is one probe of its partial index.
_PROBE = text(
    f"""
    SELECT EXISTS (SELECT FROM service.tickets WHERE {NO_DEADLINES_SQL}) AS no_deadlines,
           EXISTS (SELECT FROM service.tickets
                   WHERE ({PAUSE_CLOCK_STALE_SQL}) AND updated_at <= :as_of) AS stale_clocks,
           EXISTS (SELECT FROM service.tickets
                   WHERE {RESPONSE_PENDING_SQL} AND response_due_at < :as_of) AS response,
           EXISTS (SELECT FROM service.tickets
                   WHERE {RESOLUTION_PENDING_SQL} AND resolution_due_at < :as_of) AS resolution,
           EXISTS (SELECT FROM service.tickets
                   WHERE {WARNING_PENDING_SQL} AND resolution_warn_due_at < :as_of) AS warning
    """
)


def fill_missing_deadlines(
    session: Session,
    *,
    as_of: dt.datetime,
    calendar_batch: int = CALENDAR_BATCH,
    batch: int = FILL_BATCH,
) -> tuple[list[uuid.UUID], int]:
    """Give deadlines to open tickets that have none; returns (their ids, how many of them
    needed business hours)."""
    rows = session.execute(_CALENDAR_CANDIDATES, {"limit": calendar_batch}).all()
    filled: list[uuid.UUID] = []
    if rows:
        calendars = load_calendars(session, [r.calendar_id for r in rows])
        values: dict[str, list[Any]] = {
            k: [] for k in ("ids", "policy_ids", "response", "resolution", "warn", "paused_since")
        }
        for r in rows:
            d = compute_deadlines(
                terms_from_row(r),
                calendars[r.calendar_id],
                r.created_at,
                paused_minutes=r.sla_paused_minutes,
                paused=r.paused,
            )
            paused_since = r.sla_paused_since
            if r.paused and paused_since is None:
                paused_since = min(r.created_at, as_of)
            values["ids"].append(r.id)
            values["policy_ids"].append(r.policy_id)
            values["response"].append(d.response_due_at)
            values["resolution"].append(d.resolution_due_at)
            values["warn"].append(d.resolution_warn_due_at)
            values["paused_since"].append(paused_since)
        filled += session.execute(_CALENDAR_UPDATE, values).scalars().all()
    with_calendar = len(filled)
    filled += session.execute(_FILL_24X7, {"limit": batch, "as_of": as_of}).scalars().all()
    return filled, with_calendar


def reconcile_pause_clocks(
    session: Session, *, as_of: dt.datetime, limit: int = RECONCILE_BATCH
) -> int:
    """Start or stop the pause clock of tickets whose status changed without sla.apply;
    returns how many were put right."""
    rows = session.execute(_STALE_CLOCKS, {"as_of": as_of, "limit": limit}).all()
    for row in rows:
        apply_sla(session, row.id, as_of=row.changed_at)
    return len(rows)


def check_breaches(
    session: Session,
    *,
    as_of: dt.datetime,
    batch: int = BREACH_BATCH,
    max_batches: int = MAX_BATCHES,
) -> dict[str, int]:
    """One sweep as of `as_of`; returns counts of what it recorded."""
    # Most minutes nothing is due: four index probes in one round trip, and the statements
    # with nothing to do are not even planned (planning the breach statements costs more than
    # running them empty).
    due = session.execute(_PROBE, {"as_of": as_of}).one()
    filled, with_calendar = (
        fill_missing_deadlines(session, as_of=as_of) if due.no_deadlines else ([], 0)
    )
    counts = Counts()
    record_breaches_of(session, filled, as_of=as_of, counts=counts)
    reconciled = reconcile_pause_clocks(session, as_of=as_of) if due.stale_clocks else 0
    if reconciled:  # a resumed ticket's new deadline may already have passed
        due = session.execute(_PROBE, {"as_of": as_of}).one()
    for kind in KINDS:
        if not getattr(due, kind):
            continue
        for _ in range(max_batches):
            if record_due_breaches(session, kind, as_of=as_of, limit=batch, counts=counts) < batch:
                break
    if due.warning:
        for _ in range(max_batches):
            if record_due_warnings(session, as_of=as_of, limit=batch, counts=counts) < batch:
                break
    return {
        "deadlines_set": len(filled),
        "deadlines_set_business_hours": with_calendar,
        "pause_clocks_reconciled": reconciled,
        **counts.as_dict(),
    }
