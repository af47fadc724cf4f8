"""linen.reorder (SPEC 6.3) on a real database: the quantities it orders, from whom, and when not.

Jobs run in-process through the real task base (`task.apply`, the path `cmw run` takes) or, for
the database race, through the plain function on two sessions at once.
"""

from __future__ import annotations

import datetime as dt
import threading
import time
import uuid
from decimal import Decimal

import pytest
import sqlalchemy.exc
from sqlalchemy import text

from tests.support import factories as f
from tests.support.cli import cmw_run_at_once

TASK = "linen.reorder"
# 12:00 UTC is 08:00 in New York, so the local date is 2026-06-30.
AS_OF = dt.datetime(2026, 6, 30, 12, 0, tzinfo=dt.UTC)
LOCAL = dt.date(2026, 6, 30)


# -- builders ----------------------------------------------------------------------------------


def linen_type(session, code: str, *, cost: str | None = "10.00", active: bool = True, sort=1):
    return f.insert(
        session,
        "inventory.linen_types",
        type_code=code,
        type_name=code.replace("_", " ").title(),
        category="towels",
        standard_cost=Decimal(cost) if cost is not None else None,
        is_active=active,
        sort_order=sort,
    ).id


def par(
    session, property_id, type_id, par_quantity, mn=None, mx=None, *, room_id=None, active=True
):
    return f.insert(
        session,
        "inventory.linen_pars",
        property_id=property_id,
        room_id=room_id,
        linen_type_id=type_id,
        par_quantity=par_quantity,
        min_quantity=mn,
        max_quantity=mx,
        is_active=active,
    ).id


def counter(session) -> uuid.UUID:
    """A housekeeper to sign the counts (counted_by_id is NOT NULL)."""
    return f.team_member(session)


def count(session, property_id, day: dt.date, counts: dict[str, int], *, status="completed"):
    body = {code: {"counted": n, "expected": n, "variance": 0} for code, n in counts.items()}
    return f.insert(
        session,
        "inventory.linen_counts",
        property_id=property_id,
        counted_by_id=counter(session),
        count_date=day,
        counts=body,
        status=status,
    ).count_id


def delivery(session, property_id, day, delivered, picked_up=None, *, status="completed"):
    return f.insert(
        session,
        "inventory.linen_deliveries",
        property_id=property_id,
        linen_service_company_id=f.company(session, company_type="linen_service"),
        delivery_date=day,
        items_delivered=delivered,
        items_picked_up=picked_up,
        status=status,
    ).id


def issue(session, property_id, type_id, day, quantity, *, issue_type="missing", status="open"):
    return f.insert(
        session,
        "inventory.linen_issues",
        property_id=property_id,
        linen_type_id=type_id,
        issue_type=issue_type,
        issue_date=day,
        quantity=quantity,
        status=status,
    ).id


def vendor(session, company_id, property_id=None, *, priority=100, active=True, category="linen"):
    return f.insert(
        session,
        "directory.vendor_assignments",
        company_id=company_id,
        property_id=property_id,
        service_category=category,
        priority=priority,
        is_active=active,
    ).id


def order(session, property_id, type_id, supplier, quantity, *, status="pending", received=None):
    return f.insert(
        session,
        "inventory.linen_orders",
        linen_type_id=type_id,
        supplier_company_id=supplier,
        destination_property_id=property_id,
        order_date=LOCAL - dt.timedelta(days=5),
        quantity_ordered=quantity,
        quantity_received=received,
        unit_cost=Decimal("10.00"),
        status=status,
    ).order_id


def orders(session, property_id=None):
    """Open orders, as (property, type_code, quantity, supplier, unit cost, date, notes)."""
    return session.execute(
        text(
            "SELECT o.order_id, o.destination_property_id AS property_id, t.type_code,"
            " o.quantity_ordered, o.supplier_company_id, o.unit_cost, o.total_cost,"
            " o.order_date, o.status, o.notes"
            " FROM inventory.linen_orders o JOIN inventory.linen_types t ON t.id = o.linen_type_id"
            " WHERE o.status = 'pending' AND o.order_date = :day"
            " AND (CAST(:p AS uuid) IS NULL OR o.destination_property_id = CAST(:p AS uuid))"
            " ORDER BY o.order_id"
        ),
        {"p": str(property_id) if property_id else None, "day": LOCAL},
    ).all()


def new_orders(session):
    return {(o.property_id, o.type_code): o for o in orders(session)}


def run(celery_app, **payload):
    payload.setdefault("as_of", AS_OF.isoformat())
    result = celery_app.tasks[TASK].apply(kwargs=payload)
    assert result.successful(), result.result
    return result.result


@pytest.fixture
def world(session):
    """One New York property with a linen supplier and a towel type; tests add the rest."""
    prop = f.property_(session, code="NY-1")
    supplier = f.company(session, name="Linen Co", company_type="linen_service")
    vendor(session, supplier, prop, priority=10)
    towel = linen_type(session, "BATH_TOWEL", cost="12.50")
    return {"prop": prop, "supplier": supplier, "towel": towel}


# -- requirement ---------------------------------------------------------------------------------


def test_property_level_par_wins_over_room_rows_and_rooms_add_up_otherwise(celery_app, session):
    supplier = f.company(session, company_type="linen_service")
    vendor(session, supplier, None, priority=5)  # company-wide: serves both properties
    towel = linen_type(session, "BATH_TOWEL", cost="12.50")
    # A: property-level par 20 (reorder at 12, up to 30) and room rows that must be ignored.
    a = f.property_(session, code="A")
    a_room = f.room(session, a)
    par(session, a, towel, 20, 12, 30)
    par(session, a, towel, 100, 100, 100, room_id=a_room)
    count(session, a, dt.date(2026, 6, 20), {"BATH_TOWEL": 10})
    # B: two rooms, 10 (6..14) and 8 (no min/max: 8..8): reorder point 14, up to 22.
    b = f.property_(session, code="B")
    par(session, b, towel, 10, 6, 14, room_id=f.room(session, b, name="Bedroom 1"))
    par(session, b, towel, 8, room_id=f.room(session, b, name="Bedroom 2"))
    count(session, b, dt.date(2026, 6, 20), {"BATH_TOWEL": 12})
    session.commit()

    result = run(celery_app)

    got = new_orders(session)
    assert set(got) == {(a, "BATH_TOWEL"), (b, "BATH_TOWEL")}
    oa, ob = got[(a, "BATH_TOWEL")], got[(b, "BATH_TOWEL")]
    assert oa.quantity_ordered == 20  # 30 - (10 + 0)
    assert ob.quantity_ordered == 10  # 22 - (12 + 0)
    for o in (oa, ob):
        assert o.supplier_company_id == supplier
        assert o.unit_cost == Decimal("12.50")
        assert o.order_date == LOCAL and o.status == "pending"
    assert oa.total_cost == Decimal("250.00")
    assert oa.order_id.startswith("LNPO-0")
    assert "reorder point 12, order-up-to 30 (property-level par)" in oa.notes
    assert "ordered 30 - (10 + 0) = 20 at 12.50" in oa.notes
    assert "reorder point 14, order-up-to 22 (sum of 2 room pars)" in ob.notes
    assert result["orders_created"] == 2 and result["units_ordered"] == 30
    assert result["pairs_checked"] == 2 and result["short"] == 2


def test_at_the_reorder_point_nothing_is_ordered(celery_app, session, world):
    par(session, world["prop"], world["towel"], 20, 12, 30)
    count(session, world["prop"], dt.date(2026, 6, 20), {"BATH_TOWEL": 12})
    session.commit()
    result = run(celery_app)
    assert orders(session) == []
    assert result["short"] == 0 and result["orders_created"] == 0


def test_an_order_up_to_level_below_the_reorder_point_orders_up_to_the_reorder_point(
    celery_app, session, world
):
    par(session, world["prop"], world["towel"], 20, 15, 10)  # misconfigured: max < min
    count(session, world["prop"], dt.date(2026, 6, 20), {"BATH_TOWEL": 11})
    session.commit()
    run(celery_app)
    [o] = orders(session)
    assert o.quantity_ordered == 4  # 15 - 11


# -- on hand -------------------------------------------------------------------------------------


def test_on_hand_is_the_last_count_plus_later_deliveries_minus_later_losses(
    celery_app, session, world
):
    prop, towel = world["prop"], world["towel"]
    hand = linen_type(session, "HAND_TOWEL", cost="6.75", sort=2)
    par(session, prop, towel, 40, 30, 50)
    par(session, prop, hand, 10, 8, 12)
    # An older count, superseded; an unfinished count, ignored; a count after the local date
    # (tomorrow), ignored. The one that counts: 2026-06-10, 20 bath towels (and hand towels).
    count(session, prop, dt.date(2026, 6, 1), {"BATH_TOWEL": 90, "HAND_TOWEL": 90})
    count(session, prop, dt.date(2026, 6, 10), {"BATH_TOWEL": 20, "HAND_TOWEL": 11})
    count(session, prop, dt.date(2026, 6, 25), {"BATH_TOWEL": 99}, status="in_progress")
    count(session, prop, dt.date(2026, 7, 1), {"BATH_TOWEL": 99})
    # A spot check of hand towels only, later: bath towels still come from the 06-10 count.
    count(session, prop, dt.date(2026, 6, 12), {"HAND_TOWEL": 3})
    # Deliveries: on the count date (already in the count), two after it, one cancelled, one
    # tomorrow; only the two after the count and on or before today move stock: +10-4 +5-0.
    delivery(session, prop, dt.date(2026, 6, 10), {"BATH_TOWEL": 50})
    delivery(session, prop, dt.date(2026, 6, 15), {"BATH_TOWEL": 10}, {"BATH_TOWEL": 4})
    delivery(session, prop, dt.date(2026, 6, 30), {"BATH_TOWEL": 5, "HAND_TOWEL": 1})
    delivery(session, prop, dt.date(2026, 6, 20), {"BATH_TOWEL": 70}, status="cancelled")
    delivery(session, prop, dt.date(2026, 7, 1), {"BATH_TOWEL": 70})
    # Issues after the count: missing 3 (resolved: still gone), damage 2 (written off);
    # a stain (not a loss), one before the count, one tomorrow, another type: all ignored.
    issue(session, prop, towel, dt.date(2026, 6, 18), 3, status="resolved")
    issue(session, prop, towel, dt.date(2026, 6, 19), 2, issue_type="damage", status="written_off")
    issue(session, prop, towel, dt.date(2026, 6, 19), 5, issue_type="stain")
    issue(session, prop, towel, dt.date(2026, 6, 5), 7)
    issue(session, prop, towel, dt.date(2026, 7, 1), 7)
    issue(session, prop, hand, dt.date(2026, 6, 20), 1, issue_type="damage")
    session.commit()

    run(celery_app)

    got = new_orders(session)
    # Bath towels: 20 + (10 - 4) + 5 - (3 + 2) = 26 on hand < 30: order 50 - 26 = 24.
    bath = got[(prop, "BATH_TOWEL")]
    assert bath.quantity_ordered == 24
    assert (
        "on hand 26 = counted 20 on 2026-06-10 (LNC-010002) + delivered 15 - picked up 4"
        " - missing/damaged 5 since; on order 0; ordered 50 - (26 + 0) = 24" in bath.notes
    )
    # Hand towels: the 06-12 spot check (3) + 1 delivered - 1 damaged = 3 < 8: order 12 - 3 = 9.
    assert got[(prop, "HAND_TOWEL")].quantity_ordered == 9


def test_the_local_date_decides_what_has_happened_and_is_the_order_date(celery_app, session):
    """02:00 UTC on 06-30 is still 06-29 in Los Angeles: a 06-30 delivery has not happened."""
    prop = f.property_(session, code="LA", timezone="America/Los_Angeles")
    vendor(session, f.company(session), prop)
    towel = linen_type(session, "BATH_TOWEL")
    par(session, prop, towel, 20, 10, 20)
    count(session, prop, dt.date(2026, 6, 20), {"BATH_TOWEL": 5})
    delivery(session, prop, dt.date(2026, 6, 30), {"BATH_TOWEL": 15})
    session.commit()

    run(celery_app, as_of="2026-06-30T02:00:00+00:00")

    [(order_date, quantity)] = session.execute(
        text("SELECT order_date, quantity_ordered FROM inventory.linen_orders")
    ).all()
    assert order_date == dt.date(2026, 6, 29)
    assert quantity == 15  # 20 - 5: the delivery of the 30th is not counted yet


def test_a_property_and_type_never_counted_is_skipped_and_reported(celery_app, session, world):
    par(session, world["prop"], world["towel"], 20, 12, 30)
    delivery(session, world["prop"], dt.date(2026, 6, 15), {"BATH_TOWEL": 2})
    session.commit()
    result = run(celery_app)
    assert orders(session) == []
    assert result["skipped"]["no_count"] == {"properties": 1, "property_codes": ["NY-1"]}
    assert result["short"] == 0


# -- on order ------------------------------------------------------------------------------------


def test_open_orders_less_receipts_are_on_order(celery_app, session, world):
    prop, supplier, towel = world["prop"], world["supplier"], world["towel"]
    sheet = linen_type(session, "SHEET_SET_KING", cost="64.00", sort=2)
    pillow = linen_type(session, "PILLOW_CASE", cost="7.25", sort=3)
    for t in (towel, sheet, pillow):
        par(session, prop, t, 20, 20, 40)
    count(session, prop, dt.date(2026, 6, 20), {"BATH_TOWEL": 5, "SHEET_SET_KING": 5,
                                                 "PILLOW_CASE": 5})  # fmt: skip
    # Bath towels: a partial receipt, 30 ordered, 10 received: 20 on order, 5 + 20 >= 20.
    order(session, prop, towel, supplier, 30, status="partial", received=10)
    # Sheets: a shipped order of 10: 5 + 10 < 20, still short, but never a second open order.
    shipped = order(session, prop, sheet, supplier, 10, status="shipped")
    # Pillow cases: only finished orders (received, cancelled): nothing on order, so order.
    order(session, prop, pillow, supplier, 100, status="received", received=100)
    order(session, prop, pillow, supplier, 100, status="cancelled")
    session.commit()

    result = run(celery_app)

    got = new_orders(session)
    assert set(got) == {(prop, "PILLOW_CASE")}
    assert got[(prop, "PILLOW_CASE")].quantity_ordered == 35  # 40 - (5 + 0)
    assert result["short"] == 2 and result["short_with_open_order"] == 1
    open_sheets = session.execute(
        text(
            "SELECT order_id FROM inventory.linen_orders WHERE linen_type_id = :t"
            " AND status IN ('pending', 'ordered', 'shipped', 'partial')"
        ),
        {"t": sheet},
    ).scalars()
    assert list(open_sheets) == [shipped]


def test_an_open_order_that_covers_the_shortage_means_no_new_order(celery_app, session, world):
    prop, supplier, towel = world["prop"], world["supplier"], world["towel"]
    par(session, prop, towel, 20, 20, 30)
    count(session, prop, dt.date(2026, 6, 20), {"BATH_TOWEL": 5})
    order(session, prop, towel, supplier, 25, status="ordered")
    session.commit()
    result = run(celery_app)
    assert orders(session) == []
    assert result["short"] == 0 and result["short_with_open_order"] == 0


def test_the_database_refuses_a_second_open_order_for_a_property_and_type(session, world):
    order(session, world["prop"], world["towel"], world["supplier"], 5)
    session.commit()
    with pytest.raises(sqlalchemy.exc.IntegrityError, match="uq_linen_orders_open_per_property"):
        order(session, world["prop"], world["towel"], world["supplier"], 5, status="ordered")
    session.rollback()
    # A finished order is history, not a second open one.
    order(session, world["prop"], world["towel"], world["supplier"], 5, status="received")
    session.commit()


# -- supplier ------------------------------------------------------------------------------------


def test_the_supplier_is_the_propertys_own_assignment_first_then_company_wide_by_priority(
    celery_app, session
):
    towel = linen_type(session, "BATH_TOWEL")
    own_best, own_other, inactive, wide_best, wide_other, cleaner = (
        f.company(session, name=n)
        for n in ("own best", "own other", "inactive", "wide best", "wide other", "cleaner")
    )
    a = f.property_(session, code="A")  # has its own assignments
    b = f.property_(session, code="B")  # only company-wide ones apply
    vendor(session, own_other, a, priority=20)
    vendor(session, own_best, a, priority=10)
    vendor(session, inactive, a, priority=0, active=False)
    vendor(session, cleaner, a, priority=0, category="cleaning")
    vendor(session, wide_other, None, priority=5)
    vendor(session, wide_best, None, priority=1)  # beats nothing of A's own, but B's
    for p in (a, b):
        par(session, p, towel, 10, 10, 10)
        count(session, p, dt.date(2026, 6, 20), {"BATH_TOWEL": 0})
    session.commit()

    run(celery_app)

    got = new_orders(session)
    assert got[(a, "BATH_TOWEL")].supplier_company_id == own_best
    assert got[(b, "BATH_TOWEL")].supplier_company_id == wide_best


def test_no_supplier_raises_one_ticket_across_runs_and_reports_the_property(celery_app, session):
    prop = f.property_(session, code="NOSUP", name="Kapalua Villa")
    towel = linen_type(session, "BATH_TOWEL", sort=1)
    sheet = linen_type(session, "SHEET_SET_KING", sort=2)
    vendor(session, f.company(session), prop, category="cleaning")  # not a linen supplier
    vendor(session, f.company(session), None, category="linen", active=False)
    par(session, prop, towel, 20, 12, 30)
    par(session, prop, sheet, 4, 2, 6)
    count(session, prop, dt.date(2026, 6, 20), {"BATH_TOWEL": 3, "SHEET_SET_KING": 1})
    session.commit()

    results = [run(celery_app, as_of=(AS_OF + dt.timedelta(days=d)).isoformat()) for d in (0, 1, 2)]

    assert session.execute(text("SELECT count(*) FROM inventory.linen_orders")).scalar() == 0
    [ticket] = session.execute(text("SELECT * FROM service.tickets")).all()
    assert (ticket.ticket_type, ticket.category, ticket.priority, ticket.source) == (
        "PC",
        "linen",
        "high",
        "system",
    )
    assert ticket.status == "open" and ticket.property_id == prop
    assert ticket.dedupe_key == f"linen:no_supplier:{prop}"
    assert ticket.title == (
        "No linen supplier: Kapalua Villa (NOSUP) is short of BATH_TOWEL, SHEET_SET_KING"
    )
    assert "BATH_TOWEL: on hand 3 + on order 0 < reorder point 12; 27 needed" in ticket.description
    assert ticket.created_at == AS_OF
    [event] = session.execute(text("SELECT * FROM service.ticket_events")).all()
    assert (event.ticket_id, event.event_type, event.actor) == (ticket.id, "created", "system")
    assert event.data["reason"] == "no_linen_supplier"
    assert [s["quantity_needed"] for s in event.data["shortages"]] == [27, 5]
    for n, result in enumerate(results):
        assert result["skipped"]["no_supplier"] == {
            "properties": 1,
            "property_codes": ["NOSUP"],
            "tickets_opened": 1 if n == 0 else 0,
        }
        assert result["orders_created"] == 0
    assert [r["tickets_created"] for r in results] == [1, 0, 0]

    # Closed without a supplier: the shortage is raised again, once.
    session.execute(text("UPDATE service.tickets SET status = 'closed'"))
    session.commit()
    run(celery_app)
    run(celery_app)
    assert session.execute(text("SELECT count(*) FROM service.tickets")).scalar() == 2

    # A supplier at last: the next run orders.
    vendor(session, f.company(session), prop)
    session.commit()
    assert run(celery_app)["orders_created"] == 2


# -- what is ignored -----------------------------------------------------------------------------


def test_inactive_pars_and_types_are_ignored(celery_app, session, world):
    prop, towel = world["prop"], world["towel"]
    retired = linen_type(session, "FLANNEL_SHEET", active=False)
    hand = linen_type(session, "HAND_TOWEL", sort=2)
    sheet = linen_type(session, "SHEET_SET_QUEEN", sort=3)
    # An inactive type: never ordered, however short.
    par(session, prop, retired, 50, 50, 50)
    # An inactive property-level par: the active room rows apply instead (8 + 6 = 14; the
    # inactive room row of 100 is not added).
    par(session, prop, hand, 40, 40, 40, active=False)
    par(session, prop, hand, 8, room_id=f.room(session, prop, name="R1"))
    par(session, prop, hand, 6, room_id=f.room(session, prop, name="R2"))
    par(session, prop, hand, 100, room_id=f.room(session, prop, name="R3"), active=False)
    # An inactive par and nothing else: no requirement.
    par(session, prop, sheet, 10, 10, 10, active=False)
    # Bath towels are fine (the one active par, at par).
    par(session, prop, towel, 10, 10, 10)
    counted = {"FLANNEL_SHEET": 0, "HAND_TOWEL": 4, "SHEET_SET_QUEEN": 0, "BATH_TOWEL": 10}
    count(session, prop, dt.date(2026, 6, 20), counted)
    session.commit()

    result = run(celery_app)

    got = new_orders(session)
    assert set(got) == {(prop, "HAND_TOWEL")}
    assert got[(prop, "HAND_TOWEL")].quantity_ordered == 10  # 14 - 4
    assert result["pairs_checked"] == 2  # bath towels and hand towels


def test_inactive_and_offboarded_properties_are_ignored(celery_app, session, world):
    for status in ("inactive", "offboarded"):
        prop = f.property_(session, status=status)
        vendor(session, world["supplier"], prop)
        par(session, prop, world["towel"], 10, 10, 10)
        count(session, prop, dt.date(2026, 6, 20), {"BATH_TOWEL": 0})
    onboarding = f.property_(session, status="onboarding")
    vendor(session, world["supplier"], onboarding)
    par(session, onboarding, world["towel"], 10, 10, 10)
    count(session, onboarding, dt.date(2026, 6, 20), {"BATH_TOWEL": 0})
    session.commit()
    run(celery_app)
    assert set(new_orders(session)) == {(onboarding, "BATH_TOWEL")}


def test_a_type_without_a_standard_cost_is_skipped_and_reported(celery_app, session, world):
    priceless = linen_type(session, "BEACH_TOWEL", cost=None, sort=2)
    par(session, world["prop"], priceless, 10, 10, 10)
    count(session, world["prop"], dt.date(2026, 6, 20), {"BEACH_TOWEL": 0})
    session.commit()
    result = run(celery_app)
    assert orders(session) == []
    assert result["skipped"]["no_standard_cost"] == {"pairs": 1, "type_codes": ["BEACH_TOWEL"]}


def test_property_id_limits_the_run_to_one_property(celery_app, session, world):
    other = f.property_(session, code="OTHER")
    vendor(session, world["supplier"], other)
    for p in (world["prop"], other):
        par(session, p, world["towel"], 10, 10, 10)
        count(session, p, dt.date(2026, 6, 20), {"BATH_TOWEL": 0})
    session.commit()
    result = run(celery_app, property_id=str(other))
    assert set(new_orders(session)) == {(other, "BATH_TOWEL")}
    assert result["pairs_checked"] == 1


# -- idempotency ---------------------------------------------------------------------------------


def _shortages(session, world, n_properties: int = 5):
    """n properties short of bath towels, half of them also of hand towels, one with no
    supplier; returns how many orders a run must create."""
    hand = linen_type(session, "HAND_TOWEL", sort=2)
    expected = 0
    for i in range(n_properties):
        prop = world["prop"] if i == 0 else f.property_(session, code=f"P-{i}")
        if i < n_properties - 1 and i:
            vendor(session, world["supplier"], prop)
        par(session, prop, world["towel"], 10, 10, 10)
        par(session, prop, hand, 6, 4, 6)
        count(session, prop, dt.date(2026, 6, 20), {"BATH_TOWEL": i, "HAND_TOWEL": 4 - i % 2})
        if i < n_properties - 1:
            expected += 1 + i % 2
    session.commit()
    return expected


def _state(session):
    return session.execute(
        text(
            "SELECT (SELECT count(*) FROM inventory.linen_orders),"
            " (SELECT count(*) FROM service.tickets),"
            " (SELECT count(*) FROM service.ticket_events)"
        )
    ).one()


def test_running_twice_orders_once(celery_app, session, world):
    expected = _shortages(session, world)
    first = run(celery_app)
    second = run(celery_app)
    assert first["orders_created"] == expected and second["orders_created"] == 0
    assert second["short"] == 1  # the no-supplier property's bath towels
    assert tuple(_state(session)) == (expected, 1, 1)


def test_running_twice_at_once_from_two_processes_orders_once(engine, session, world):
    expected = _shortages(session, world)
    results = cmw_run_at_once(TASK, {"as_of": AS_OF.isoformat()}, timeout=120)
    assert sum(r.get("orders_created", 0) for r in results) == expected
    assert tuple(_state(session)) == (expected, 1, 1)
    statuses = session.execute(
        text("SELECT status FROM ops.job_runs WHERE task_name = :t ORDER BY status"), {"t": TASK}
    ).scalars()
    assert list(statuses) in (["skipped", "succeeded"], ["succeeded", "succeeded"])


def test_two_racing_runs_without_the_job_lock_still_order_once(engine, session, world):
    """The database, not the singleton lock, guarantees one open order (and one ticket): two
    transactions compute the same shortages; the second blocks on the unique indexes until the
    first commits, then its ON CONFLICT does nothing."""
    from db.session import session_scope
    from tasks.linen.reorder import reorder_linen

    expected = _shortages(session, world)
    outcomes = {}
    with session_scope() as first:
        outcomes["first"] = reorder_linen(first, as_of=AS_OF)

        def second_run() -> None:
            with session_scope() as second:
                outcomes["second"] = reorder_linen(second, as_of=AS_OF)

        racer = threading.Thread(target=second_run)
        racer.start()
        time.sleep(1.0)  # the second is now waiting on the first's uncommitted rows
        assert racer.is_alive()
    racer.join(30)
    assert not racer.is_alive()
    assert outcomes["first"].summary["orders_created"] == expected
    assert outcomes["second"].summary["orders_created"] == 0
    assert outcomes["second"].summary["tickets_created"] == 0
    assert tuple(_state(session)) == (expected, 1, 1)


# -- bad input -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        ({"property_id": "not-a-uuid"}, "property_id"),
        ({"property_id": str(uuid.UUID(int=7))}, "unknown property_id"),
        ({"propertyid": str(uuid.UUID(int=7))}, "Extra inputs are not permitted"),
        ({"as_of": "2026-06-30T12:00:00"}, "timezone"),
    ],
)
def test_a_bad_payload_fails_once_and_is_dead_lettered(celery_app, session, payload, message):
    result = celery_app.tasks[TASK].apply(kwargs=payload)
    assert result.failed()
    assert message in str(result.result)
    [dead] = session.execute(
        text("SELECT task_name, payload, error, error_kind, retries FROM ops.dead_letters")
    ).all()
    assert (dead.task_name, dead.payload, dead.error_kind, dead.retries) == (
        TASK,
        payload,
        "validation",
        0,
    )
    assert message in dead.error
