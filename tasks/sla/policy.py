"""Which SLA terms a ticket gets, and the deadlines they give (SPEC 6.2).

The most specific active `service.sla_policies` row for the ticket's priority wins: type and
category, then type only, then category only, then neither; among equals the strictest
(smallest resolution_minutes, then smallest response_minutes, then the lowest id, so the
choice is deterministic). With none, the priority's defaults in `ref.ticket_priority_key`
apply, 24x7, warning at 80%. The matching is one SQL fragment (queries.POLICY_MATCH_SQL), used both
by `sla.apply` for one ticket and by the sweep's set-based fill, so the two can never disagree.

Deadlines count from the ticket's `created_at`:
- response: `response_minutes` business minutes;
- resolution: `resolution_minutes` plus the business minutes spent paused so far;
- warning: `warn_at_pct`% of `resolution_minutes` (to the second) plus the paused minutes.
While the ticket is paused its resolution deadline and warning instant are NULL: the clock is
stopped, so there is no instant yet at which it runs out (and the sweep's partial indexes,
keyed on those columns, never visit a paused ticket).
"""

from __future__ import annotations

import datetime as dt
import logging
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

from sqlalchemy.orm import Session

from tasks.sla import queries as q
from tasks.sla.business_time import BusinessCalendar, CalendarError, add_business_time

log = logging.getLogger("cmw.sla")


@dataclass(frozen=True)
class SlaTerms:
    """What the deadlines are computed from: a policy's numbers, or the priority's defaults."""

    policy_id: uuid.UUID | None
    response_minutes: int
    resolution_minutes: int
    calendar_id: uuid.UUID | None
    warn_at_pct: Decimal

    @property
    def warn_offset(self) -> dt.timedelta:
        """warn_at_pct of the resolution time, to the second (half a second up), exactly as the
        set-based fill computes it in SQL: round(resolution_minutes * 60 * pct / 100)."""
        seconds = (Decimal(self.resolution_minutes) * 60 * self.warn_at_pct / 100).quantize(
            Decimal(1), rounding=ROUND_HALF_UP
        )
        return dt.timedelta(seconds=int(seconds))


@dataclass(frozen=True)
class Deadlines:
    response_due_at: dt.datetime
    resolution_due_at: dt.datetime | None
    resolution_warn_due_at: dt.datetime | None


def compute_deadlines(
    terms: SlaTerms,
    calendar: BusinessCalendar | None,
    created_at: dt.datetime,
    *,
    paused_minutes: int,
    paused: bool,
) -> Deadlines:
    """The deadlines of a ticket created at `created_at` (pure)."""
    response = add_business_time(created_at, dt.timedelta(minutes=terms.response_minutes), calendar)
    if paused:
        return Deadlines(response, None, None)
    moved = dt.timedelta(minutes=paused_minutes)
    resolution = add_business_time(
        created_at, dt.timedelta(minutes=terms.resolution_minutes) + moved, calendar
    )
    warn = add_business_time(created_at, terms.warn_offset + moved, calendar)
    return Deadlines(response, resolution, warn)


def terms_from_row(row) -> SlaTerms:
    return SlaTerms(
        policy_id=row.policy_id,
        response_minutes=row.response_minutes,
        resolution_minutes=row.resolution_minutes,
        calendar_id=row.calendar_id,
        warn_at_pct=Decimal(row.warn_at_pct),
    )


def match_terms(session: Session, ticket_id: uuid.UUID) -> SlaTerms:
    """The terms the ticket's current type, category and priority select."""
    return terms_from_row(session.execute(q.MATCH_TERMS, {"ticket_id": ticket_id}).one())


def default_terms(session: Session, ticket_id: uuid.UUID) -> SlaTerms:
    """The defaults of the ticket's priority (24x7, warning at 80%), whatever policies exist."""
    return terms_from_row(session.execute(q.DEFAULT_TERMS, {"ticket_id": ticket_id}).one())


def policy_terms(session: Session, policy_id: uuid.UUID) -> SlaTerms | None:
    """One policy's terms, active or not (a ticket keeps the policy it was breached under)."""
    row = session.execute(q.POLICY_TERMS, {"policy_id": policy_id}).one_or_none()
    return None if row is None else terms_from_row(row)


def load_calendars(
    session: Session, calendar_ids: Iterable[uuid.UUID]
) -> dict[uuid.UUID, BusinessCalendar | None]:
    """The calendars by id, with their holidays.

    A calendar that cannot be used (no hours, a malformed span, an unknown zone; written by
    another service, so possible) maps to None, i.e. 24x7, with an error in the log: a broken
    calendar must not stop the breach checks of every other ticket, and 24x7 gives earlier
    deadlines, never later ones, so no breach goes unnoticed.
    """
    ids = sorted(set(calendar_ids), key=str)
    if not ids:
        return {}
    rows = session.execute(
        q.CALENDARS,
        {"ids": ids},
    ).all()
    calendars: dict[uuid.UUID, BusinessCalendar | None] = dict.fromkeys(ids)
    for row in rows:
        try:
            calendars[row.id] = BusinessCalendar.from_config(
                row.timezone, row.weekly_hours, row.holidays
            )
        except CalendarError as exc:
            log.error("business calendar %s is unusable, counting 24x7: %s", row.id, exc)
    return calendars
