"""Recurring ticket rules (SPEC 6.1): the task adapters `recurring.generate` and
`recurring.sync_reservation`.

Both are thin adapters over plain functions that take a Session:

- calendar_rules.generate_tickets: RRULE occurrences within lead time become tickets (beat,
  every 15 minutes; a singleton). It does not enqueue `sla.apply` for what it creates (tens
  of thousands of tickets a run at volume): `sla.check_breaches` gives deadlines to open
  tickets that have none, through ix_tickets_no_deadlines;
- reservation_rules.sync_reservation: one stay's reservation-rule tickets are created, moved,
  cancelled or marked as a turnover (enqueued by other services and by channel sync whenever a
  stay is created, changed or cancelled; not a singleton, idempotent by its keys); the adapter
  enqueues `sla.apply`, after the commit, for the tickets it creates, cancels, reopens or
  re-prioritises;
- rrules: the time-zone arithmetic both use (pure, property-tested against python-dateutil);
- common: the statuses and marks both go by; queries: the SQL of both.
"""

from __future__ import annotations

import uuid

from tasks.recurring.calendar_rules import generate_tickets
from tasks.recurring.reservation_rules import sync_reservation
from workers.base import JobContext, PeriodicPayload, job


class GeneratePayload(PeriodicPayload):
    # Only this calendar rule / only this property's tickets (re-running one by hand).
    rule_id: uuid.UUID | None = None
    property_id: uuid.UUID | None = None


class SyncReservationPayload(PeriodicPayload):
    """`as_of` (optional) decides which occurrences count as missed, as for the periodic job."""

    reservation_id: uuid.UUID


@job("recurring.generate", payload=GeneratePayload, singleton=True)
def recurring_generate(ctx: JobContext, payload: GeneratePayload) -> dict:
    """Create the tickets of calendar rules whose occurrences are within lead time."""
    return generate_tickets(
        ctx.session, as_of=ctx.as_of, rule_id=payload.rule_id, property_id=payload.property_id
    )


@job("recurring.sync_reservation", payload=SyncReservationPayload)
def recurring_sync_reservation(ctx: JobContext, payload: SyncReservationPayload) -> dict:
    """Create, move or cancel the reservation-rule tickets of one stay."""
    outcome = sync_reservation(ctx.session, reservation_id=payload.reservation_id, as_of=ctx.as_of)
    # SPEC 5: sla.apply follows a ticket's creation and its priority or status changes.
    for ticket_id in outcome.sla_ticket_ids:
        ctx.enqueue_after_commit("sla.apply", ticket_id=str(ticket_id))
    return outcome.summary


__all__ = ["recurring_generate", "recurring_sync_reservation"]
