"""Recording SLA breaches and warnings: one statement each, exactly once by construction.

A breach is recorded by one SQL statement per kind (response, resolution; the statements are
tasks.sla.queries.SWEEP_BREACH and TARGETED_BREACH) whose data-modifying CTEs do everything in
one go:

1. `due`: the tickets to judge, locked (`FOR UPDATE`; the sweep adds `SKIP LOCKED` so it never
   waits behind an agent's open transaction and simply catches that ticket a minute later),
   with their values from before the breach;
2. `plan`: the escalation each will get (the policy's team, and its priority when that is
   higher: a lower `sort_order` is more urgent; never lowered);
3. `marked`: the conditional `UPDATE ... SET <kind>_breached_at = <kind>_due_at ... WHERE
   <kind>_breached_at IS NULL`, which applies the same escalation;
4. the `ticket_misses` row (ON CONFLICT (ticket_id, sla_kind) DO NOTHING), the `sla_breached`
   event and the `comms.messages` notification (ON CONFLICT (dedupe_key) DO NOTHING), from
   `plan`, which has both the values from before (for the miss) and after (for the message).

Exactly once: a row is in `due` only if this transaction holds its lock and its
`<kind>_breached_at` is NULL in its latest version (a concurrent sweep's rows are skipped, or
waited for and re-checked), so every row of `due` is marked by this statement's UPDATE and by
no one else's; Python checks that `marked` and `due` have the same count and fails the
transaction otherwise. The unique keys are the second line of defence.

Plans that do not depend on estimates: no statement joins `due` to `service.tickets`. The
UPDATE finds its rows by primary key from the array of `due`'s ids, and the escalation and the
recipient are correlated lookups by primary key in the small policy, priority and team tables.
(A join lets the planner pick a hash join over a sequential scan of every ticket when it
expects many due rows or, on a table not yet analyzed, a nested loop that rescans an index
for every due row: both were measured, the second took minutes for 10,000 breaches.)

Times: `<kind>_breached_at`, the miss's `due_at` and `breached_at`, and the event's
`occurred_at` are all the deadline, not the moment the sweep noticed; that moment is the
event's `data.detected_at`. A warning's event and `sla_warned_at` are the warning instant.

Escalation is applied only to tickets still open: a late response or resolution found on a
finished ticket is recorded (miss, event, message) but reassigning a closed ticket would only
be noise.
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass

from sqlalchemy.orm import Session

from db.settings import get_settings
from tasks.sla import queries as q


class ExactlyOnceViolation(RuntimeError):
    """A locked, due row was not marked: never expected; the whole sweep is rolled back."""


def _check(kind: str, row) -> None:
    marked = row.breaches if kind in q.KINDS else row.warnings
    if marked != row.due:
        raise ExactlyOnceViolation(f"{kind}: {row.due} rows locked as due, {marked} marked")


@dataclass
class Counts:
    """What the breach and warning statements did; added up across batches and kinds."""

    response_breaches: int = 0
    resolution_breaches: int = 0
    escalations: int = 0
    misses: int = 0
    warnings: int = 0
    events: int = 0
    messages: int = 0

    def add_breaches(self, kind: str, row) -> int:
        _check(kind, row)
        if kind == "response":
            self.response_breaches += row.breaches
        else:
            self.resolution_breaches += row.breaches
        self.escalations += row.escalations
        self.misses += row.misses
        self.events += row.events
        self.messages += row.messages
        return row.breaches

    def as_dict(self) -> dict[str, int]:
        return dict(self.__dict__)


def record_breaches_of(
    session: Session, ticket_ids: list[uuid.UUID], *, as_of: dt.datetime, counts: Counts
) -> None:
    """Judge these tickets (both kinds) and record what they missed; they should already be
    locked by the caller's transaction."""
    if not ticket_ids:
        return
    for kind in q.KINDS:
        row = session.execute(
            q.TARGETED_BREACH[kind],
            {"ids": ticket_ids, "as_of": as_of, "ops_recipient": get_settings().cmw_ops_email},
        ).one()
        counts.add_breaches(kind, row)


def record_due_breaches(
    session: Session, kind: str, *, as_of: dt.datetime, limit: int, counts: Counts
) -> int:
    """One batch of up to `limit` pending tickets past their `kind` deadline; returns how many."""
    row = session.execute(
        q.SWEEP_BREACH[kind],
        {"as_of": as_of, "limit": limit, "ops_recipient": get_settings().cmw_ops_email},
    ).one()
    return counts.add_breaches(kind, row)


def record_due_warnings(session: Session, *, as_of: dt.datetime, limit: int, counts: Counts) -> int:
    row = session.execute(
        q.SWEEP_WARNING,
        {"as_of": as_of, "limit": limit, "ops_recipient": get_settings().cmw_ops_email},
    ).one()
    _check("warning", row)
    counts.warnings += row.warnings
    counts.events += row.events
    counts.messages += row.messages
    return row.warnings
