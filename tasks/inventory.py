"""inventory.reorder_stock: purchase orders for warehouse stock at or below its reorder point.

SPEC 6.3, last point. One set-based statement (REORDER_STOCK_SQL):

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

from sqlalchemy import text
from sqlalchemy.orm import Session

from db.models.inventory import INVENTORY_PURCHASE_OPEN_STATUSES
from workers.base import JobContext, PeriodicPayload, job

# At most this many item codes per skip reason in the job result; the counts are complete.
RESULT_LIST_LIMIT = 50

OPEN_PURCHASES = ", ".join(f"'{s}'" for s in INVENTORY_PURCHASE_OPEN_STATUSES)

REORDER_STOCK_SQL = text(f"""
WITH stock AS (
    SELECT si.item_id, si.location_id,
           sum(si.quantity_available) AS available,
           count(*) AS lots,
           max(si.reorder_point) AS location_point,
           max(si.reorder_quantity) AS location_quantity
    FROM inventory.storage_inventory si
    GROUP BY si.item_id, si.location_id
),
low AS (
    SELECT s.item_id, s.location_id, s.available, s.lots,
           i.item_id AS item_code, i.supplier_company_id, i.standard_cost,
           l.location_code,
           COALESCE(s.location_point, i.reorder_point) AS reorder_point,
           CASE WHEN s.location_point IS NOT NULL THEN 'location' ELSE 'catalogue' END
               AS point_from,
           COALESCE(s.location_quantity, i.reorder_quantity) AS reorder_quantity,
           CASE WHEN s.location_quantity IS NOT NULL THEN 'location' ELSE 'catalogue' END
               AS quantity_from,
           (SELECT p.purchase_id FROM inventory.inventory_purchases p
             WHERE p.item_id = s.item_id AND p.destination_location_id = s.location_id
               AND p.status IN ({OPEN_PURCHASES})) AS open_purchase_id
    FROM stock s
    JOIN inventory.inventory_items i ON i.id = s.item_id
    JOIN inventory.storage_locations l ON l.id = s.location_id
    WHERE COALESCE(i.status, 'active') = 'active' AND i.is_discontinued IS NOT TRUE
      AND l.is_active IS NOT FALSE
      AND s.available <= COALESCE(s.location_point, i.reorder_point)
),
new_purchases AS (
    INSERT INTO inventory.inventory_purchases
        (item_id, supplier_company_id, destination_location_id, order_date, quantity_ordered,
         unit_cost, status, notes)
    SELECT lw.item_id, lw.supplier_company_id, lw.location_id,
           (CAST(:as_of AS timestamptz) AT TIME ZONE 'UTC')::date, lw.reorder_quantity,
           lw.standard_cost, 'pending',
           format('inventory.reorder_stock as of %s: %s at %s: available %s (%s lot(s)) <= '
                  || 'reorder point %s (%s); ordered the %s reorder quantity %s at %s.',
                  date_trunc('second', CAST(:as_of AS timestamptz)), lw.item_code,
                  lw.location_code, lw.available,
                  lw.lots, lw.reorder_point, lw.point_from, lw.quantity_from,
                  lw.reorder_quantity, lw.standard_cost)
    FROM low lw
    WHERE lw.open_purchase_id IS NULL AND lw.supplier_company_id IS NOT NULL
      AND lw.standard_cost IS NOT NULL AND lw.reorder_quantity > 0
    ORDER BY lw.item_code, lw.location_code
    ON CONFLICT (item_id, destination_location_id) WHERE status IN ({OPEN_PURCHASES})
    DO NOTHING
    RETURNING id, quantity_ordered
)
SELECT
    (SELECT count(*) FROM low) AS at_or_below_reorder_point,
    (SELECT count(*) FROM new_purchases) AS purchases_created,
    (SELECT COALESCE(sum(quantity_ordered), 0) FROM new_purchases) AS units_ordered,
    (SELECT count(*) FROM low WHERE open_purchase_id IS NOT NULL) AS already_on_order,
    (SELECT COALESCE(array_agg(DISTINCT item_code), '{{}}') FROM low
      WHERE open_purchase_id IS NULL AND supplier_company_id IS NULL) AS no_supplier,
    (SELECT COALESCE(array_agg(DISTINCT item_code), '{{}}') FROM low
      WHERE open_purchase_id IS NULL AND supplier_company_id IS NOT NULL
        AND standard_cost IS NULL) AS no_standard_cost,
    (SELECT COALESCE(array_agg(DISTINCT item_code), '{{}}') FROM low
      WHERE open_purchase_id IS NULL AND supplier_company_id IS NOT NULL
        AND standard_cost IS NOT NULL AND COALESCE(reorder_quantity, 0) <= 0)
       AS no_reorder_quantity
""")


def reorder_stock_items(session: Session, *, as_of: dt.datetime) -> dict[str, Any]:
    """Create the purchases due as of `as_of`; returns the job's summary."""
    row = session.execute(REORDER_STOCK_SQL, {"as_of": as_of}).mappings().one()
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


@job("inventory.reorder_stock", payload=PeriodicPayload, singleton=True)
def reorder_stock(ctx: JobContext, payload: PeriodicPayload) -> dict:
    return reorder_stock_items(ctx.session, as_of=ctx.as_of)
