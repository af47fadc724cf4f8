"""Linen (SPEC 6.3): the task adapter.

- `linen.reorder` (beat, daily; a singleton; payload `property_id?`, `as_of?`): par levels,
  counts, deliveries, issues and open orders become linen orders, and a shortage at a property
  with no linen supplier opens a ticket (reorder.reorder_linen); `sla.apply` is enqueued for
  each ticket opened, after the commit.

The work is a plain function that takes a Session; the SQL is in queries.py.
"""

from __future__ import annotations

import uuid

from tasks.linen.reorder import reorder_linen
from workers.base import JobContext, PeriodicPayload, job


class ReorderPayload(PeriodicPayload):
    property_id: uuid.UUID | None = None


@job("linen.reorder", payload=ReorderPayload, singleton=True)
def linen_reorder(ctx: JobContext, payload: ReorderPayload) -> dict:
    """Place the linen orders due (and open the no-supplier tickets)."""
    outcome = reorder_linen(ctx.session, as_of=ctx.as_of, property_id=payload.property_id)
    # SPEC 5: sla.apply is enqueued on ticket create (after the commit, never before it).
    for ticket_id in outcome.ticket_ids:
        ctx.enqueue_after_commit("sla.apply", ticket_id=str(ticket_id))
    return outcome.summary


__all__ = ["linen_reorder"]
