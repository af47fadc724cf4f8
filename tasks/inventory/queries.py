"""Every SQL statement of inventory.reorder_stock (SPEC 6.3), one named constant each: the one
set-based statement that creates the purchase orders (tasks.inventory.reorder explains what it
computes)."""

from __future__ import annotations

from sqlalchemy import text

from db.fragments import sql_list
from db.models.inventory import INVENTORY_PURCHASE_OPEN_STATUSES

# The statuses of an open purchase, as an SQL list (the predicate of the partial index
# uq_inventory_purchases_open_per_item_location).
OPEN_PURCHASES = sql_list(INVENTORY_PURCHASE_OPEN_STATUSES)

# One statement: the purchases due, inserted, and the summary of what was found and skipped.
# Parameters: as_of (timestamptz).
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
               AND p.status IN {OPEN_PURCHASES}) AS open_purchase_id
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
    ON CONFLICT (item_id, destination_location_id) WHERE status IN {OPEN_PURCHASES}
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
