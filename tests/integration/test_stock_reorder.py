"""inventory.reorder_stock (SPEC 6.3) on a real database: which stock is reordered, how much,
from whom, and that each item and location has at most one open purchase."""

from __future__ import annotations

import datetime as dt
import threading
import time
from decimal import Decimal

import pytest
import sqlalchemy.exc
from sqlalchemy import text

from tests.support import factories as f
from tests.support.cli import cmw_run_at_once

TASK = "inventory.reorder_stock"
AS_OF = dt.datetime(2026, 6, 30, 23, 30, tzinfo=dt.UTC)


def location(session, code: str, *, active: bool = True):
    return f.insert(
        session,
        "inventory.storage_locations",
        location_code=code,
        location_name=f"Warehouse {code}",
        location_type="warehouse",
        is_active=active,
    ).id


def item(
    session,
    name: str,
    *,
    supplier=None,
    cost: str | None = "10.00",
    point: int | None = 5,
    quantity: int | None = 20,
    type_code: str = "SMOK",
    **extra,
):
    return f.insert(
        session,
        "inventory.inventory_items",
        type_code=type_code,
        item_name=name,
        supplier_company_id=supplier,
        standard_cost=Decimal(cost) if cost is not None else None,
        reorder_point=point,
        reorder_quantity=quantity,
        **extra,
    )


def stock(
    session, item_id, location_id, on_hand, *, reserved=0, point=None, quantity=None, lot=None
):
    return f.insert(
        session,
        "inventory.storage_inventory",
        item_id=item_id,
        location_id=location_id,
        quantity_on_hand=on_hand,
        quantity_reserved=reserved,
        reorder_point=point,
        reorder_quantity=quantity,
        lot_number=lot,
        unit_cost=Decimal("9.00"),
    ).id


def purchase(session, item_id, location_id, supplier, *, status="pending", quantity=10):
    return f.insert(
        session,
        "inventory.inventory_purchases",
        item_id=item_id,
        supplier_company_id=supplier,
        destination_location_id=location_id,
        order_date=dt.date(2026, 6, 1),
        quantity_ordered=quantity,
        unit_cost=Decimal("1.00"),
        status=status,
    ).purchase_id


def new_purchases(session):
    rows = session.execute(
        text(
            "SELECT p.purchase_id, p.item_id, p.destination_location_id AS location_id,"
            " p.destination_property_id, p.supplier_company_id, p.quantity_ordered, p.unit_cost,"
            " p.total_cost, p.order_date, p.status, p.notes"
            " FROM inventory.inventory_purchases p WHERE p.order_date = :day"
            " ORDER BY p.purchase_id"
        ),
        {"day": AS_OF.date()},
    ).all()
    return {(r.item_id, r.location_id): r for r in rows}


def run(celery_app, **payload):
    payload.setdefault("as_of", AS_OF.isoformat())
    result = celery_app.tasks[TASK].apply(kwargs=payload)
    assert result.successful(), result.result
    return result.result


@pytest.fixture
def supplier(session):
    return f.company(session, name="Safety Supply", company_type="supplier")


def test_stock_at_or_below_its_reorder_point_is_reordered(celery_app, session, supplier):
    wh1, wh2 = location(session, "WH1"), location(session, "WH2")
    smoke = item(session, "Smoke detector", supplier=supplier, cost="18.40", point=5, quantity=20)
    extinguisher = item(session, "Extinguisher", supplier=supplier, cost="42.00", point=3)
    # WH1 smoke detectors: catalogue point 5 and quantity 20; 8 on hand, 3 reserved: 5 <= 5.
    stock(session, smoke.id, wh1, 8, reserved=3)
    # WH2 smoke detectors: the location's own point 10 and quantity 12: 9 <= 10.
    stock(session, smoke.id, wh2, 9, point=10, quantity=12)
    # WH1 extinguishers: 4 available > 3: fine.
    stock(session, extinguisher.id, wh1, 4)
    # WH2 extinguishers: the location's point 2 overrides the catalogue's 3: 3 > 2: fine.
    stock(session, extinguisher.id, wh2, 3, point=2)
    session.commit()

    result = run(celery_app)

    got = new_purchases(session)
    assert set(got) == {(smoke.id, wh1), (smoke.id, wh2)}
    p1, p2 = got[(smoke.id, wh1)], got[(smoke.id, wh2)]
    assert (p1.quantity_ordered, p2.quantity_ordered) == (20, 12)
    for p in (p1, p2):
        assert p.supplier_company_id == supplier and p.unit_cost == Decimal("18.40")
        assert p.status == "pending" and p.order_date == dt.date(2026, 6, 30)
        assert p.destination_property_id is None
        assert p.purchase_id.startswith("INVPO-0")
    assert p1.total_cost == Decimal("368.00")
    assert (
        f"{smoke.item_id} at WH1: available 5 (1 lot(s)) <= reorder point 5 (catalogue);"
        " ordered the catalogue reorder quantity 20 at 18.40." in p1.notes
    )
    assert "reorder point 10 (location); ordered the location reorder quantity 12" in p2.notes
    assert result == {
        "at_or_below_reorder_point": 2,
        "purchases_created": 2,
        "units_ordered": 32,
        "already_on_order": 0,
        "skipped": {},
    }


def test_the_lots_of_an_item_at_a_location_are_added_up(celery_app, session, supplier):
    wh = location(session, "WH1")
    gloves = item(session, "Gloves", supplier=supplier, point=10, quantity=50)
    # 4 + 5 = 9 <= 10: one purchase for the pair, not one per lot.
    stock(session, gloves.id, wh, 4, lot="L1")
    stock(session, gloves.id, wh, 5, lot="L2")
    # 6 + 6 = 12 > 10 although each lot is below: no purchase.
    wh2 = location(session, "WH2")
    stock(session, gloves.id, wh2, 6, lot="L1")
    stock(session, gloves.id, wh2, 6, lot="L2")
    session.commit()
    result = run(celery_app)
    got = new_purchases(session)
    assert set(got) == {(gloves.id, wh)}
    assert got[(gloves.id, wh)].quantity_ordered == 50
    assert "available 9 (2 lot(s))" in got[(gloves.id, wh)].notes
    assert result["at_or_below_reorder_point"] == 1


def test_an_open_purchase_means_no_new_one_and_a_finished_one_does_not(
    celery_app, session, supplier
):
    wh = location(session, "WH1")
    a = item(session, "A", supplier=supplier)
    b = item(session, "B", supplier=supplier)
    stock(session, a.id, wh, 0)
    stock(session, b.id, wh, 0)
    open_id = purchase(session, a.id, wh, supplier, status="shipped")
    purchase(session, b.id, wh, supplier, status="delivered")
    purchase(session, b.id, wh, supplier, status="cancelled")
    session.commit()
    result = run(celery_app)
    got = new_purchases(session)
    assert set(got) == {(b.id, wh)}
    assert result["already_on_order"] == 1
    open_a = session.execute(
        text(
            "SELECT purchase_id FROM inventory.inventory_purchases WHERE item_id = :i"
            " AND status IN ('pending', 'ordered', 'shipped', 'partial')"
        ),
        {"i": a.id},
    ).scalars()
    assert list(open_a) == [open_id]


def test_the_database_refuses_a_second_open_purchase_for_an_item_and_location(session, supplier):
    wh = location(session, "WH1")
    a = item(session, "A", supplier=supplier)
    purchase(session, a.id, wh, supplier)
    session.commit()
    with pytest.raises(sqlalchemy.exc.IntegrityError, match="uq_inventory_purchases_open"):
        purchase(session, a.id, wh, supplier, status="partial")
    session.rollback()


def test_items_without_supplier_cost_or_quantity_are_skipped_and_reported(
    celery_app, session, supplier
):
    wh = location(session, "WH1")
    no_supplier = item(session, "No supplier", supplier=None)
    no_cost = item(session, "No cost", supplier=supplier, cost=None)
    no_quantity = item(session, "No quantity", supplier=supplier, quantity=None)
    for it in (no_supplier, no_cost, no_quantity):
        stock(session, it.id, wh, 0)
    # A location quantity makes up for the catalogue's missing one.
    fixed = item(session, "Fixed", supplier=supplier, quantity=None)
    stock(session, fixed.id, wh, 0, quantity=7)
    session.commit()
    result = run(celery_app)
    got = new_purchases(session)
    assert set(got) == {(fixed.id, wh)} and got[(fixed.id, wh)].quantity_ordered == 7
    assert result["skipped"] == {
        "no_supplier": {"items": 1, "item_codes": [no_supplier.item_id]},
        "no_standard_cost": {"items": 1, "item_codes": [no_cost.item_id]},
        "no_reorder_quantity": {"items": 1, "item_codes": [no_quantity.item_id]},
    }


def test_inactive_items_and_locations_and_unmanaged_stock_are_ignored(
    celery_app, session, supplier
):
    wh, closed = location(session, "WH1"), location(session, "OLD", active=False)
    live = item(session, "Live", supplier=supplier)
    inactive = item(session, "Inactive", supplier=supplier, status="inactive")
    discontinued = item(session, "Gone", supplier=supplier, is_discontinued=True)
    unmanaged = item(session, "No point", supplier=supplier, point=None)
    for it in (inactive, discontinued, unmanaged):
        stock(session, it.id, wh, 0)
    stock(session, live.id, closed, 0)
    stock(session, live.id, wh, 0)
    session.commit()
    result = run(celery_app)
    assert set(new_purchases(session)) == {(live.id, wh)}
    assert result["at_or_below_reorder_point"] == 1


def _low_stock(session, supplier, n_items: int = 6) -> int:
    locations = [location(session, f"WH{k}") for k in range(3)]
    for n in range(n_items):
        it = item(session, f"Item {n}", supplier=supplier, point=5)
        for k, loc in enumerate(locations):
            stock(session, it.id, loc, 5 if (n + k) % 2 == 0 else 6)
    session.commit()
    return sum(1 for n in range(n_items) for k in range(3) if (n + k) % 2 == 0)


def _count(session) -> int:
    return session.execute(text("SELECT count(*) FROM inventory.inventory_purchases")).scalar()


def test_running_twice_orders_once(celery_app, session, supplier):
    expected = _low_stock(session, supplier)
    first, second = run(celery_app), run(celery_app)
    assert first["purchases_created"] == expected and second["purchases_created"] == 0
    assert second["already_on_order"] == expected
    assert _count(session) == expected


def test_running_twice_at_once_from_two_processes_orders_once(engine, session, supplier):
    expected = _low_stock(session, supplier)
    results = cmw_run_at_once(TASK, {"as_of": AS_OF.isoformat()}, timeout=120)
    created = sum(r.get("purchases_created", 0) for r in results)
    assert created == expected
    assert _count(session) == expected


def test_two_racing_runs_without_the_job_lock_still_order_once(engine, session, supplier):
    from db.session import session_scope
    from tasks.inventory.reorder import reorder_stock_items

    expected = _low_stock(session, supplier)
    results = {}
    with session_scope() as first:
        results["first"] = reorder_stock_items(first, as_of=AS_OF)

        def second_run() -> None:
            with session_scope() as second:
                results["second"] = reorder_stock_items(second, as_of=AS_OF)

        racer = threading.Thread(target=second_run)
        racer.start()
        time.sleep(1.0)  # blocked on the first's uncommitted purchases
        assert racer.is_alive()
    racer.join(30)
    assert not racer.is_alive()
    assert results["first"]["purchases_created"] == expected
    assert results["second"]["purchases_created"] == 0
    assert _count(session) == expected


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        ({"as_of": "tomorrow"}, "as_of"),
        ({"location_id": "x"}, "Extra inputs are not permitted"),
    ],
)
def test_a_bad_payload_fails_once_and_is_dead_lettered(celery_app, session, payload, message):
    result = celery_app.tasks[TASK].apply(kwargs=payload)
    assert result.failed() and message in str(result.result)
    [dead] = session.execute(
        text("SELECT task_name, payload, error, error_kind, retries FROM ops.dead_letters")
    ).all()
    assert (dead.task_name, dead.payload, dead.error_kind, dead.retries) == (
        TASK,
        payload,
        "validation",
        0,
    )
