"""Warehouse stock (SPEC 6.3): the task adapter.

- `inventory.reorder_stock` (beat, daily; a singleton; payload `as_of?`): a purchase order for
  each catalogue item and storage location at or below its reorder point
  (reorder.reorder_stock_items).

The work is a plain function that takes a Session; the SQL is in queries.py.
"""

from __future__ import annotations

from tasks.inventory.reorder import reorder_stock_items
from workers.base import JobContext, PeriodicPayload, job


@job("inventory.reorder_stock", payload=PeriodicPayload, singleton=True)
def inventory_reorder_stock(ctx: JobContext, payload: PeriodicPayload) -> dict:
    """Create the purchase orders due."""
    return reorder_stock_items(ctx.session, as_of=ctx.as_of)


__all__ = ["inventory_reorder_stock"]
