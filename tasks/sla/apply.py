"""sla.apply: (re)compute one ticket's SLA policy and deadlines, start or stop its pause clock.

Enqueued by other services when a ticket is created and when its priority, type or status
changes. The work (`apply_sla`) runs under a row lock on the ticket, so two copies at once
serialize, and it is idempotent: a second run finds nothing to change.

What it does, in order:
1. picks the terms: the most specific active policy (tasks.sla.policy), or the priority's
   defaults. Once a breach has been recorded, the ticket keeps the terms it has (its policy,
   or the defaults): the breach's escalation raised the priority, and SPEC 6.2 says
   escalation does not recompute the deadlines (so a later status change must not either).
   A finished ticket keeps its terms too, so a policy edited later never rewrites history;
2. the pause clock: entering pending_guest / pending_vendor / on_hold starts it at `as_of`
   (the change is enqueued as it happens; a caller can pass the exact instant as `as_of`);
   leaving those statuses adds the business minutes paused to `sla_paused_minutes` and stops
   it (on a resolved ticket, at `resolved_at` when that is earlier);
3. the deadlines (policy.compute_deadlines), leaving a deadline already breached as it was;
4. judges the ticket, before (with the deadlines as they stood until the change) and after
   (with the new ones): a first response or resolution recorded after its deadline has left
   the sweep's pending indexes, and a ticket paused after its deadline passed would otherwise
   escape, so this is where such a breach is recorded (at the deadline), with its miss, event,
   escalation and message.
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from sqlalchemy.orm import Session

from db.models.service import CLOSED_TICKET_STATUSES, PAUSED_TICKET_STATUSES
from tasks.sla import queries as q
from tasks.sla.breaches import Counts, record_breaches_of
from tasks.sla.business_time import business_minutes_between
from tasks.sla.policy import (
    compute_deadlines,
    default_terms,
    load_calendars,
    match_terms,
    policy_terms,
)
from workers.base import NotFound

_SLA_FIELDS = (
    "sla_policy_id",
    "response_due_at",
    "resolution_due_at",
    "resolution_warn_due_at",
    "sla_paused_since",
    "sla_paused_minutes",
)


def apply_sla(session: Session, ticket_id: uuid.UUID, *, as_of: dt.datetime) -> dict[str, Any]:
    """Bring one ticket's SLA columns up to date as of `as_of`; record a late breach. A ticket
    that does not exist is NotFound."""
    if session.execute(q.LOCK_TICKET, {"ticket_id": ticket_id}).one_or_none() is None:
        raise NotFound(f"unknown ticket_id {ticket_id}")
    # First judge the deadlines as they stood until this change: a ticket paused, or given a
    # lower priority, after its deadline passed (before a sweep noticed) has still missed it.
    counts = Counts()
    record_breaches_of(session, [ticket_id], as_of=as_of, counts=counts)
    ticket = session.execute(q.READ_TICKET, {"ticket_id": ticket_id}).one()

    breached = ticket.response_breached_at is not None or ticket.resolution_breached_at is not None
    finished = ticket.status in CLOSED_TICKET_STATUSES and ticket.response_due_at is not None
    terms = None
    if breached or finished:
        # The terms the deadlines were set with stay: after a breach (its escalation changed
        # the priority), and on a finished ticket (a policy edited since must not rewrite its
        # history). Without a policy those are the priority's defaults.
        if ticket.sla_policy_id is not None:
            terms = policy_terms(session, ticket.sla_policy_id)
        if terms is None:
            terms = default_terms(session, ticket_id)
    if terms is None:
        terms = match_terms(session, ticket_id)
    calendar = (
        load_calendars(session, [terms.calendar_id])[terms.calendar_id]
        if terms.calendar_id
        else None
    )

    # The pause clock.
    paused = ticket.status in PAUSED_TICKET_STATUSES
    paused_since, paused_minutes = ticket.sla_paused_since, ticket.sla_paused_minutes
    if paused and paused_since is None:
        paused_since = as_of
    elif not paused and paused_since is not None:
        resumed = as_of
        if ticket.status in CLOSED_TICKET_STATUSES and ticket.resolved_at is not None:
            resumed = min(resumed, ticket.resolved_at)
        paused_minutes += business_minutes_between(paused_since, resumed, calendar)
        paused_since = None

    deadlines = compute_deadlines(
        terms, calendar, ticket.created_at, paused_minutes=paused_minutes, paused=paused
    )
    new = {
        "sla_policy_id": terms.policy_id,
        "response_due_at": ticket.response_due_at
        if ticket.response_breached_at is not None
        else deadlines.response_due_at,
        "resolution_due_at": deadlines.resolution_due_at,
        "resolution_warn_due_at": deadlines.resolution_warn_due_at,
        "sla_paused_since": paused_since,
        "sla_paused_minutes": paused_minutes,
    }
    if ticket.resolution_breached_at is not None:
        # A missed deadline stays the deadline that was missed, paused or not.
        new["resolution_due_at"] = ticket.resolution_due_at
        new["resolution_warn_due_at"] = ticket.resolution_warn_due_at
    changed = any(getattr(ticket, name) != new[name] for name in _SLA_FIELDS)
    if changed:  # an unchanged row is not rewritten (updated_at means something to people)
        session.execute(q.UPDATE_TICKET_SLA, {"id": ticket_id, **new})

    # Then against the new deadlines (a first response or resolution after them, a priority
    # raised so that they have already passed).
    record_breaches_of(session, [ticket_id], as_of=as_of, counts=counts)
    return {
        "ticket_id": str(ticket_id),
        "sla_policy_id": None if terms.policy_id is None else str(terms.policy_id),
        "business_hours": calendar is not None,
        "changed": changed,
        "paused": paused,
        "response_due_at": _iso(new["response_due_at"]),
        "resolution_due_at": _iso(new["resolution_due_at"]),
        "response_breaches": counts.response_breaches,
        "resolution_breaches": counts.resolution_breaches,
        "escalations": counts.escalations,
    }


def _iso(value: dt.datetime | None) -> str | None:
    return None if value is None else value.astimezone(dt.UTC).isoformat()
