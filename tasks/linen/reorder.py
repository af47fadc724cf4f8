"""linen.reorder: turn par levels, counts, deliveries, issues and open orders into linen orders.

SPEC 6.3. For every property and active linen type with an active par, one set-based statement
(tasks.linen.queries.REORDER_SQL) computes

- the requirement: the property-level par row (room_id NULL) if there is one, else the sum of
  the room-level rows; reorder point = min_quantity (else par_quantity), order-up-to level =
  max_quantity (else par_quantity);
- on hand: the last count of that type (linen_counts.counts[type_code].counted) on or before
  the property's local date, plus completed deliveries dated after the count
  (items_delivered - items_picked_up, keyed by type_code), minus missing/damage issues dated
  after the count;
- on order: open linen_orders (pending, ordered, shipped, partial) less what was received;
- the supplier: the property's own active `linen` vendor assignment before a company-wide one,
  then the lowest priority;

and, where on hand + on order < reorder point, inserts one `pending` order for
order-up-to - (on hand + on order) at the type's standard_cost, with a note showing the
arithmetic. "One open order per property and type" is the partial unique index
uq_linen_orders_open_per_property_type; the insert names it in ON CONFLICT DO NOTHING, so two
runs at once (or a run racing an order placed by hand) still leave one order.

A shortage at a property with no linen supplier opens one PC ticket (dedupe_key
`linen:no_supplier:<property id>`, unique among open tickets by uq_tickets_dedupe_key_open), so
a daily job raises it once, not once a day; the job result lists the properties skipped and why.

Decisions where SPEC is silent (also in the module's tests):
- only properties with status `active` or `onboarding` are considered (an onboarding property
  is being stocked for its first guests; an inactive or offboarded one gets no new linen);
- a property and type never counted is skipped and reported as `no_count`: ordering a full par
  for stock nobody has looked at would buy linen the property may already have;
- counts `in_progress` are ignored (not finished); a count, delivery or issue dated after the
  property's local date at as_of is ignored (not yet happened, as of then); deliveries and
  issues dated on the count's own date are taken to be in the count;
- missing/damage issues remove stock whatever their status: resolving or writing off an issue
  closes the investigation, it does not bring the linen back;
- a receipt against an order is on hand through its linen_deliveries row (delivery_type
  `purchase`), and leaves "on order" through the order's quantity_received: counted once;
- when an open order exists and the property is still short, no second order is placed (the
  database forbids it, and the open order may already be with the supplier): the pair is
  reported as `short_with_open_order`;
- an order-up-to level below the reorder point (misconfigured par) orders up to the reorder
  point instead, so a shortage is never ignored;
- a shortage of a type without a standard_cost is skipped and reported (`no_standard_cost`):
  an order at a guessed price is worse than none;
- the no-supplier ticket (PC, category `linen`, priority `high`, source `system`) is created,
  with its `created` event, as of as_of, and `sla.apply` is enqueued for it after the commit;
  a ticket closed while the property still has no supplier is raised again by the next run.
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.orm import Session

from db.session import local_settings
from tasks.linen import queries as q
from workers.base import NotFound

# At most this many property codes per skip reason in the job result (it is stored in
# ops.job_runs and shown by `cmw runs`); the counts are always complete.
RESULT_LIST_LIMIT = 50


@dataclass
class ReorderOutcome:
    """What one reorder run did: the job's summary, and the tickets it opened (for sla.apply)."""

    summary: dict[str, Any]
    ticket_ids: list[uuid.UUID] = field(default_factory=list)


def _capped(codes: list[str]) -> list[str]:
    return sorted(codes)[:RESULT_LIST_LIMIT]


def reorder_linen(
    session: Session, *, as_of: dt.datetime, property_id: uuid.UUID | None = None
) -> ReorderOutcome:
    """Create the linen orders (and no-supplier tickets) due as of `as_of`; one statement.
    With `property_id`, only that property's (NotFound when no property has that id)."""
    if property_id is not None:
        if session.execute(q.PROPERTY_EXISTS, {"id": property_id}).first() is None:
            raise NotFound(f"unknown property_id {property_id}")
    with local_settings(session, **q.REORDER_SETTINGS):
        row = (
            session.execute(
                q.REORDER_SQL,
                {"as_of": as_of, "property_id": str(property_id) if property_id else None},
            )
            .mappings()
            .one()
        )
    ticket_ids = list(row["ticket_ids"])
    skipped: dict[str, Any] = {}
    if row["no_supplier_count"]:
        skipped["no_supplier"] = {
            "properties": row["no_supplier_count"],
            "property_codes": _capped(row["no_supplier_codes"]),
            "tickets_opened": len(ticket_ids),
        }
    if row["no_count_count"]:
        skipped["no_count"] = {
            "properties": row["no_count_count"],
            "property_codes": _capped(row["no_count_codes"]),
        }
    if row["no_cost_count"]:
        skipped["no_standard_cost"] = {
            "pairs": row["no_cost_count"],
            "type_codes": sorted(row["no_cost_types"]),
        }
    summary = {
        "pairs_checked": row["pairs_checked"],
        "short": row["short"],
        "orders_created": row["orders_created"],
        "units_ordered": int(row["units_ordered"]),
        "short_with_open_order": row["short_with_open_order"],
        "tickets_created": len(ticket_ids),
        "skipped": skipped,
    }
    return ReorderOutcome(summary=summary, ticket_ids=ticket_ids)
