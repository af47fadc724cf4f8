"""Guest journeys and door codes (SPEC 7.6): the task adapters.

- `journeys.plan_stay` (enqueued wherever `recurring.sync_reservation` is: on a stay's
  creation, change or cancellation): creates, moves or cancels the stay's scheduled messages
  and its door code (planning.plan_stay);
- `journeys.release_due` (beat, every minute; a singleton): door codes open and expire, due
  messages are rendered and queued, honouring quiet hours (release.release_due);
- `journeys.plan_stays` (by hand): the same planner over every stay arriving in a date range,
  set-based, e.g. after adding a rule, for the stays already booked (planning.plan_arrivals).

The work is in plain functions that take a Session; the SQL is in queries.py.
"""

from __future__ import annotations

import datetime as dt
import uuid

from pydantic import model_validator

from tasks.journeys.planning import plan_arrivals, plan_stay
from tasks.journeys.release import release_due
from workers.base import JobContext, PeriodicPayload, job

# The bulk path's widest range: a year of arrivals (about a million stays at scale 10).
MAX_PLAN_DAYS = 366


class PlanStayPayload(PeriodicPayload):
    """`as_of` (optional) decides which messages are already late, as for a periodic job."""

    reservation_id: uuid.UUID


class PlanStaysPayload(PeriodicPayload):
    check_in_from: dt.date
    # Exclusive.
    check_in_to: dt.date
    property_id: uuid.UUID | None = None

    @model_validator(mode="after")
    def _bounded(self) -> PlanStaysPayload:
        days = (self.check_in_to - self.check_in_from).days
        if not 0 < days <= MAX_PLAN_DAYS:
            raise ValueError(f"check_in_to must be 1 to {MAX_PLAN_DAYS} days after check_in_from")
        return self


@job("journeys.plan_stay", payload=PlanStayPayload)
def journeys_plan_stay(ctx: JobContext, payload: PlanStayPayload) -> dict:
    """Create, move or cancel one stay's scheduled messages and door code."""
    return plan_stay(ctx.session, reservation_id=payload.reservation_id, as_of=ctx.as_of)


@job("journeys.release_due", payload=PeriodicPayload, singleton=True)
def journeys_release_due(ctx: JobContext, payload: PeriodicPayload) -> dict:
    """Open and expire door codes; render and queue the messages that are due."""
    return release_due(ctx.session, as_of=ctx.as_of)


@job("journeys.plan_stays", payload=PlanStaysPayload)
def journeys_plan_stays(ctx: JobContext, payload: PlanStaysPayload) -> dict:
    """Plan every stay arriving in [check_in_from, check_in_to) (optionally one property)."""
    return plan_arrivals(
        ctx.session,
        check_in_from=payload.check_in_from,
        check_in_to=payload.check_in_to,
        property_id=payload.property_id,
        as_of=ctx.as_of,
    )


__all__ = ["journeys_plan_stay", "journeys_plan_stays", "journeys_release_due"]
