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

from sqlalchemy.orm import Session

from tasks.sla import queries as q
from tasks.sla.apply import apply_sla
from tasks.sla.breaches import Counts, record_breaches_of, record_due_breaches, record_due_warnings
from tasks.sla.policy import compute_deadlines, load_calendars, terms_from_row

CALENDAR_BATCH = 500
RECONCILE_BATCH = 500
FILL_BATCH = 5000
BREACH_BATCH = 5000
MAX_BATCHES = 4


def fill_missing_deadlines(
    session: Session,
    *,
    as_of: dt.datetime,
    calendar_batch: int = CALENDAR_BATCH,
    batch: int = FILL_BATCH,
) -> tuple[list[uuid.UUID], int]:
    """Give deadlines to open tickets that have none; returns (their ids, how many of them
    needed business hours)."""
    rows = session.execute(q.CALENDAR_CANDIDATES, {"limit": calendar_batch}).all()
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
        filled += session.execute(q.CALENDAR_UPDATE, values).scalars().all()
    with_calendar = len(filled)
    filled += session.execute(q.FILL_24X7, {"limit": batch, "as_of": as_of}).scalars().all()
    return filled, with_calendar


def reconcile_pause_clocks(
    session: Session, *, as_of: dt.datetime, limit: int = RECONCILE_BATCH
) -> int:
    """Start or stop the pause clock of tickets whose status changed without sla.apply;
    returns how many were put right."""
    rows = session.execute(q.STALE_CLOCKS, {"as_of": as_of, "limit": limit}).all()
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
    due = session.execute(q.PROBE, {"as_of": as_of}).one()
    filled, with_calendar = (
        fill_missing_deadlines(session, as_of=as_of) if due.no_deadlines else ([], 0)
    )
    counts = Counts()
    record_breaches_of(session, filled, as_of=as_of, counts=counts)
    reconciled = reconcile_pause_clocks(session, as_of=as_of) if due.stale_clocks else 0
    if reconciled:  # a resumed ticket's new deadline may already have passed
        due = session.execute(q.PROBE, {"as_of": as_of}).one()
    for kind in q.KINDS:
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
