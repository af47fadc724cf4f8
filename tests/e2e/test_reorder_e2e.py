"""linen.reorder and inventory.reorder_stock end to end: sent by name, as another service or beat
would, run by a real worker on the `inventory` queue, effects in the database once."""

from __future__ import annotations

import datetime as dt
import time
from decimal import Decimal

import pytest
from sqlalchemy import text

from tests.support import factories as f
from tests.support.runs import run_on_worker

pytestmark = pytest.mark.e2e

AS_OF = "2026-06-30T12:00:00+00:00"


def test_linen_reorder_on_a_worker_orders_once_and_raises_one_ticket(
    worker, celery_app, engine, session
):
    supplier = f.company(session, company_type="linen_service")
    towel = f.insert(
        session,
        "inventory.linen_types",
        type_code="BATH_TOWEL",
        type_name="Bath towel",
        category="towels",
        standard_cost=Decimal("12.50"),
    ).id
    served, unserved = f.property_(session, code="SERVED"), f.property_(session, code="ALONE")
    f.insert(
        session,
        "directory.vendor_assignments",
        company_id=supplier,
        property_id=served,
        service_category="linen",
    )
    counted_by = f.team_member(session)
    for prop in (served, unserved):
        f.insert(
            session,
            "inventory.linen_pars",
            property_id=prop,
            linen_type_id=towel,
            par_quantity=20,
            min_quantity=12,
            max_quantity=30,
        )
        f.insert(
            session,
            "inventory.linen_counts",
            property_id=prop,
            counted_by_id=counted_by,
            count_date=dt.date(2026, 6, 20),
            counts={"BATH_TOWEL": {"counted": 7, "expected": 20, "variance": -13}},
        )
    session.commit()

    first = run_on_worker(celery_app, engine, "linen.reorder", as_of=AS_OF)
    second = run_on_worker(celery_app, engine, "linen.reorder", as_of=AS_OF)

    assert (first["orders_created"], first["units_ordered"], first["tickets_created"]) == (1, 23, 1)
    assert (second["orders_created"], second["tickets_created"]) == (0, 0)
    assert second["skipped"]["no_supplier"]["property_codes"] == ["ALONE"]
    order = session.execute(
        text(
            "SELECT destination_property_id, supplier_company_id, quantity_ordered, unit_cost,"
            " order_date, status FROM inventory.linen_orders"
        )
    ).one()
    assert tuple(order) == (served, supplier, 23, Decimal("12.50"), dt.date(2026, 6, 30), "pending")
    ticket = session.execute(text("SELECT property_id, dedupe_key FROM service.tickets")).one()
    assert tuple(ticket) == (unserved, f"linen:no_supplier:{unserved}")


def test_reorder_stock_on_a_worker_orders_once(worker, celery_app, engine, session):
    supplier = f.company(session, company_type="supplier")
    location = f.insert(
        session,
        "inventory.storage_locations",
        location_code="WH1",
        location_name="Main warehouse",
        location_type="warehouse",
    ).id
    item = f.insert(
        session,
        "inventory.inventory_items",
        type_code="SMOK",
        item_name="Smoke detector",
        supplier_company_id=supplier,
        standard_cost=Decimal("18.40"),
        reorder_point=5,
        reorder_quantity=20,
    ).id
    f.insert(
        session,
        "inventory.storage_inventory",
        item_id=item,
        location_id=location,
        quantity_on_hand=2,
    )
    session.commit()

    first = run_on_worker(celery_app, engine, "inventory.reorder_stock", as_of=AS_OF)
    second = run_on_worker(celery_app, engine, "inventory.reorder_stock", as_of=AS_OF)

    assert (first["purchases_created"], first["units_ordered"]) == (1, 20)
    assert (second["purchases_created"], second["already_on_order"]) == (0, 1)
    purchase = session.execute(
        text(
            "SELECT item_id, destination_location_id, supplier_company_id, quantity_ordered,"
            " unit_cost, status FROM inventory.inventory_purchases"
        )
    ).one()
    assert tuple(purchase) == (item, location, supplier, 20, Decimal("18.40"), "pending")


def test_an_unknown_property_fails_once_on_the_worker_and_is_dead_lettered(
    worker, celery_app, engine
):
    missing = "00000000-0000-7000-8000-000000000001"
    result = celery_app.send_task("linen.reorder", kwargs={"property_id": missing})
    with pytest.raises(Exception, match="unknown property_id"):
        result.get(timeout=90)
    time.sleep(2)  # room for a retry, which must not come
    with engine.connect() as conn:
        [dead] = conn.execute(
            text("SELECT payload, error_kind, retries FROM ops.dead_letters WHERE task_id = :t"),
            {"t": result.id},
        ).all()
        runs = conn.execute(
            text("SELECT count(*) FROM ops.job_runs WHERE task_id = :t"), {"t": result.id}
        ).scalar_one()
    assert (dead.payload, dead.error_kind, dead.retries) == (
        {"property_id": missing},
        "validation",
        0,
    )
    assert runs == 1
