"""inventory.reorder_stock: purchase orders for warehouse stock at or below its reorder point.

SPEC 6.3, last point. One set-based statement (tasks.inventory.queries.REORDER_STOCK_SQL):

- stock is taken per catalogue item and storage location: the lots of an item at a location
  (storage_inventory is unique per item, location and lot) are added up, because the purchase
  is per item and location;
- the reorder point is the location's own (storage_inventory.reorder_point; the largest when
  lots disagree), else the catalogue item's; at or below it (quantity_available, i.e. on hand
  less reserved), one `pending` inventory_purchases row is created for the location's
  reorder_quantity, else the catalogue item's, from the item's supplier_company_id at its
  standard_cost, delivered to that location (destination_location_id);
- "one open purchase per item and location" is the partial unique index
  uq_inventory_purchases_open_per_item_location, named by the insert's ON CONFLICT DO NOTHING:
  two runs at once, or a purchase entered by hand meanwhile, still leave one.

Decisions where SPEC is silent:
- only active catalogue items (status `active`, not discontinued) at active storage locations
  are reordered; an item with neither a location nor a catalogue reorder point is not managed
  by reorder point and is left alone;
- an open purchase already there means no new one even when stock is still low (the index
  forbids a second; the open one is reported as `already_on_order`);
- an item with no supplier, no standard_cost or no positive reorder quantity is skipped and
  reported by item code: a purchase order nobody can send, or at a guessed price or quantity,
  is worse than none;
- order_date is the UTC date of as_of (a storage location has no time zone of its own).

The statement reads storage_inventory whole (a hash aggregate): the table holds one row per item,
location and lot, bounded by the catalogue rather than growing with properties or time, so a
scan is cheaper than index lookups per lot.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy.orm import Session

from tasks.inventory import queries as q

# At most this many item codes per skip reason in the job result; the counts are complete.
RESULT_LIST_LIMIT = 50


def reorder_stock_items(session: Session, *, as_of: dt.datetime) -> dict[str, Any]:
    """Create the purchases due as of `as_of`; returns the job's summary."""
    row = session.execute(q.REORDER_STOCK_SQL, {"as_of": as_of}).mappings().one()
    skipped = {
        reason: {"items": len(row[reason]), "item_codes": sorted(row[reason])[:RESULT_LIST_LIMIT]}
        for reason in ("no_supplier", "no_standard_cost", "no_reorder_quantity")
        if row[reason]
    }
    return {
        "at_or_below_reorder_point": row["at_or_below_reorder_point"],
        "purchases_created": row["purchases_created"],
        "units_ordered": int(row["units_ordered"]),
        "already_on_order": row["already_on_order"],
        "skipped": skipped,
    }
