"""statements.generate on a real database: draft owner statements, set-based.

The SQL of tasks.statements.build must equal the Python reference (tasks.statements.money) on
random data; the cases operators get wrong are pinned by name: proration across month ends,
both recognition methods, both commission bases, owner splits, reserves, rebuilds that change
nothing, final statements never touched.
"""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import text

from tasks.statements import money
from tests.support import db as dbsupport
from tests.support import factories as f
from tests.support.cli import cmw_run_at_once

D = Decimal
JAN, FEB, MAR = dt.date(2026, 1, 1), dt.date(2026, 2, 1), dt.date(2026, 3, 1)


# -- helpers (also used by the finalize and render tests) --------------------------------------


def owned_property(
    session,
    shares: tuple[str, ...] = ("100.00",),
    *,
    start_date: dt.date = dt.date(2020, 1, 1),
    end_date: dt.date | None = None,
    property_id: uuid.UUID | None = None,
    **terms: Any,
) -> tuple[uuid.UUID, list[uuid.UUID]]:
    """A property and its owners (one homeowner per share); returns (property, homeowners)."""
    pid = property_id or f.property_(session)
    owners = []
    for share in shares:
        hid = f.homeowner(session)
        f.ownership(
            session, hid, pid, ownership_pct=share, start_date=start_date, end_date=end_date,
            **terms,
        )  # fmt: skip
        owners.append(hid)
    return pid, owners


def run_task(celery_app, name: str, **payload: Any) -> dict:
    result = celery_app.tasks[name].apply(kwargs=payload)
    assert result.successful(), result.result
    return result.result


def generate(celery_app, period: str, **payload: Any) -> dict:
    return run_task(celery_app, "statements.generate", period=period, **payload)


def finalize(celery_app, statement_id: uuid.UUID) -> dict:
    return run_task(celery_app, "statements.finalize", statement_id=str(statement_id))


def statement(engine, homeowner_id, property_id, period_start: dt.date, version: int | None = None):
    """The statement row (the latest version unless one is named)."""
    with engine.connect() as conn:
        row = (
            conn.execute(
                text(
                    "SELECT * FROM finance.owner_statements WHERE homeowner_id = :h"
                    " AND property_id = :p AND period_start = :ps"
                    " AND (CAST(:v AS int) IS NULL OR version = :v)"
                    " ORDER BY version DESC LIMIT 1"
                ),
                {"h": homeowner_id, "p": property_id, "ps": period_start, "v": version},
            )
            .mappings()
            .one_or_none()
        )
    return None if row is None else dict(row)


def lines_of(engine, statement_id) -> list[dict]:
    with engine.connect() as conn:
        return [
            dict(r)
            for r in conn.execute(
                text(
                    "SELECT * FROM finance.owner_statement_lines WHERE statement_id = :s"
                    " ORDER BY sort_order"
                ),
                {"s": statement_id},
            ).mappings()
        ]


def amounts(lines: list[dict], line_type: str) -> list[Decimal]:
    return [ln["amount"] for ln in lines if ln["line_type"] == line_type]


def all_statements_total_their_lines(engine) -> None:
    """Every statement's totals are the sums of its lines, and its balance adds up. SPEC 7.5:
    gross revenue is rent and the owner's fees; expenses are costs and recurring charges; the
    rent lines' stay shares are never income; no line of a type the totals do not know."""
    with engine.connect() as conn:
        bad = conn.execute(
            text(
                """
SELECT s.statement_number FROM finance.owner_statements s
LEFT JOIN LATERAL (
    SELECT coalesce(sum(amount) FILTER (WHERE line_type IN ('rent', 'cleaning_fee',
                                                            'other_fee')), 0) AS rent,
           coalesce(sum(amount) FILTER (WHERE line_type = 'channel_fee'), 0) AS chan,
           coalesce(sum(amount) FILTER (WHERE line_type = 'management_fee'), 0) AS mgmt,
           coalesce(sum(amount) FILTER (WHERE line_type IN ('expense', 'recurring_charge')), 0)
               AS exp,
           coalesce(sum(amount) FILTER (WHERE line_type = 'adjustment'), 0) AS adj,
           coalesce(sum(amount) FILTER (WHERE line_type = 'reserve'), 0) AS res,
           coalesce(sum(amount) FILTER (WHERE line_type = 'payout'), 0) AS pay,
           count(*) FILTER (WHERE line_type NOT IN ('rent', 'cleaning_fee', 'other_fee',
               'channel_fee', 'management_fee', 'expense', 'recurring_charge', 'adjustment',
               'reserve', 'payout')) AS unknown
    FROM finance.owner_statement_lines WHERE statement_id = s.id) l ON true
WHERE s.gross_revenue <> l.rent OR s.channel_fees <> l.chan OR s.management_fees <> l.mgmt
   OR s.expenses <> l.exp OR s.adjustments <> l.adj OR s.reserve_held <> l.res
   OR s.payout_amount <> l.pay
   OR s.net_income <> l.rent + l.chan + l.mgmt + l.exp + l.adj
   OR s.closing_balance <> s.opening_balance + s.net_income - s.payout_amount
   OR s.payout_amount < 0 OR l.unknown > 0
"""
            )
        ).scalars()
        assert list(bad) == []


# -- proration and splits --------------------------------------------------------------------


def test_a_stay_across_a_month_end_is_split_by_night_among_three_owners(
    engine, session, celery_app
):
    pid, owners = owned_property(session, ("33.33", "33.33", "33.34"), commission_pct="20")
    stay = f.reservation(session, pid, dt.date(2026, 1, 30), dt.date(2026, 2, 2),
                         gross_rent="100.00", channel_commission="3.00")  # fmt: skip
    session.commit()

    generate(celery_app, "2026-01")
    generate(celery_app, "2026-02")

    per_month = {}
    for month in (JAN, FEB):
        rents = []
        for hid in owners:
            s = statement(engine, hid, pid, month)
            lines = lines_of(engine, s["id"])
            (rent,) = [ln for ln in lines if ln["line_type"] == "rent"]
            assert rent["reservation_id"] == stay
            assert rent["nights"] == (2 if month == JAN else 1)
            rents.append(rent["amount"])
        per_month[month] = rents
    # 100.00 over 3 nights: January 66.67, February 33.33, each split three ways exactly.
    assert sum(per_month[JAN]) == D("66.67")
    assert sum(per_month[FEB]) == D("33.33")
    assert sorted(per_month[FEB]) == [D("11.11"), D("11.11"), D("11.11")]
    all_statements_total_their_lines(engine)


def test_by_checkout_recognises_the_stay_in_its_check_out_month(engine, session, celery_app):
    pid, (hid,) = owned_property(session, revenue_recognition="by_checkout")
    f.reservation(session, pid, dt.date(2026, 1, 28), dt.date(2026, 2, 3), gross_rent="600.00")
    session.commit()

    generate(celery_app, "2026-01")
    generate(celery_app, "2026-02")

    assert amounts(lines_of(engine, statement(engine, hid, pid, JAN)["id"]), "rent") == []
    feb = lines_of(engine, statement(engine, hid, pid, FEB)["id"])
    (rent,) = [ln for ln in feb if ln["line_type"] == "rent"]
    assert (rent["amount"], rent["nights"]) == (D("600.00"), 6)


@pytest.mark.parametrize(
    ("base", "fee"),
    [("gross_rent", D("-200.00")), ("net_rent", D("-170.00"))],
)
def test_management_commission_on_gross_or_net_rent(engine, session, celery_app, base, fee):
    pid, (hid,) = owned_property(session, commission_pct="20", commission_base=base)
    f.reservation(session, pid, dt.date(2026, 3, 3), dt.date(2026, 3, 7), gross_rent="1000.00",
                  channel_commission="150.00", source="booking_com")  # fmt: skip
    session.commit()

    generate(celery_app, "2026-03")

    s = statement(engine, hid, pid, MAR)
    lines = lines_of(engine, s["id"])
    assert amounts(lines, "rent") == [D("1000.00")]
    assert amounts(lines, "channel_fee") == [D("-150.00")]
    assert amounts(lines, "management_fee") == [fee]
    assert s["net_income"] == D("850.00") + fee
    assert s["payout_amount"] == s["net_income"]
    assert s["closing_balance"] == 0


def test_only_live_guest_stays_earn_rent(engine, session, celery_app):
    pid, (hid,) = owned_property(session)
    f.reservation(session, pid, dt.date(2026, 3, 1), dt.date(2026, 3, 3), gross_rent="100")
    f.reservation(session, pid, dt.date(2026, 3, 4), dt.date(2026, 3, 6), gross_rent="100",
                  status="cancelled")  # fmt: skip
    f.reservation(session, pid, dt.date(2026, 3, 8), dt.date(2026, 3, 9), gross_rent="0",
                  reservation_type="owner_stay", source="owner")  # fmt: skip
    f.reservation(session, pid, dt.date(2026, 3, 10), dt.date(2026, 3, 12), gross_rent="100",
                  status="inquiry")  # fmt: skip
    session.commit()

    generate(celery_app, "2026-03")

    assert amounts(lines_of(engine, statement(engine, hid, pid, MAR)["id"]), "rent") == [
        D("100.00")
    ]


def test_a_sale_mid_month_splits_the_month_between_seller_and_buyer(engine, session, celery_app):
    sold = dt.date(2026, 3, 16)
    pid, (seller,) = owned_property(session, end_date=sold)
    _, (buyer,) = owned_property(session, property_id=pid, start_date=sold)
    f.reservation(session, pid, dt.date(2026, 3, 14), dt.date(2026, 3, 18), gross_rent="400.00")
    cost = f.insert(session, "service.ticket_costs", property_id=pid, billable_to="owner",
                    cost_date=dt.date(2026, 3, 20), amount=D("80.00")).id  # fmt: skip
    session.commit()

    result = generate(celery_app, "2026-03")

    assert result["drafts"] == 2 and result["ownership_mismatches"] == 0
    seller_lines = lines_of(engine, statement(engine, seller, pid, MAR)["id"])
    buyer_lines = lines_of(engine, statement(engine, buyer, pid, MAR)["id"])
    assert [(ln["amount"], ln["nights"]) for ln in seller_lines if ln["line_type"] == "rent"] == [
        (D("200.00"), 2)
    ]
    assert [(ln["amount"], ln["nights"]) for ln in buyer_lines if ln["line_type"] == "rent"] == [
        (D("200.00"), 2)
    ]
    # The cost is the buyer's, who owned the property on its date.
    assert [ln["ticket_cost_id"] for ln in buyer_lines if ln["line_type"] == "expense"] == [cost]
    assert amounts(seller_lines, "expense") == []


def test_owners_not_holding_100_percent_are_reported_and_never_overpaid(
    engine, session, celery_app
):
    pid, (a, b) = owned_property(session, ("40.00", "40.00"))
    f.reservation(session, pid, dt.date(2026, 3, 1), dt.date(2026, 3, 2), gross_rent="100.00")
    session.commit()

    result = generate(celery_app, "2026-03")

    assert result["ownership_mismatches"] == 1
    for hid in (a, b):
        assert amounts(lines_of(engine, statement(engine, hid, pid, MAR)["id"]), "rent") == [
            D("40.00")
        ]


# -- costs, adjustments, reserve ---------------------------------------------------------------


def test_costs_with_markup_adjustments_and_the_reserve(engine, session, celery_app):
    pid, (hid,) = owned_property(session, commission_pct="10", reserve_amount="500.00")
    f.reservation(session, pid, dt.date(2026, 3, 5), dt.date(2026, 3, 9), gross_rent="1200.00")
    ticket = f.ticket(session, property_id=pid, title="AC repair")
    cost = f.insert(session, "service.ticket_costs", ticket_id=ticket, property_id=pid,
                    cost_date=dt.date(2026, 3, 10), description="AC capacitor",
                    amount=D("185.00"), markup_pct=D("10.00"), billable_to="owner").id  # fmt: skip
    f.insert(session, "service.ticket_costs", property_id=pid, cost_date=dt.date(2026, 3, 11),
             amount=D("99.00"), billable_to="company")  # fmt: skip
    f.insert(session, "service.ticket_costs", property_id=pid, cost_date=dt.date(2026, 4, 1),
             amount=D("50.00"), billable_to="owner")  # fmt: skip
    adj = f.insert(session, "finance.owner_adjustments", homeowner_id=hid, property_id=pid,
                   adjustment_date=dt.date(2026, 3, 31), amount=D("25.00"),
                   description="Goodwill credit").id  # fmt: skip
    session.commit()

    generate(celery_app, "2026-03")

    s = statement(engine, hid, pid, MAR)
    lines = lines_of(engine, s["id"])
    (expense,) = [ln for ln in lines if ln["line_type"] == "expense"]
    assert (expense["ticket_cost_id"], expense["amount"]) == (cost, D("-203.50"))
    assert "AC capacitor" in expense["description"] and "10.00% markup" in expense["description"]
    (adjustment,) = [ln for ln in lines if ln["line_type"] == "adjustment"]
    assert (adjustment["adjustment_id"], adjustment["amount"]) == (adj, D("25.00"))
    # 1200 - 120 commission - 203.50 + 25 = 901.50; 500 held back, 401.50 paid.
    assert s["net_income"] == D("901.50")
    assert (s["reserve_held"], s["payout_amount"], s["closing_balance"]) == (
        D("500.00"),
        D("401.50"),
        D("500.00"),
    )
    assert amounts(lines, "reserve") == [D("500.00")]
    assert amounts(lines, "payout") == [D("401.50")]
    assert [ln["line_type"] for ln in lines] == [
        "rent", "management_fee", "expense", "adjustment", "reserve", "payout",
    ]  # fmt: skip
    all_statements_total_their_lines(engine)


def test_a_statement_with_nothing_this_month_still_shows_the_balance(engine, session, celery_app):
    pid, (hid,) = owned_property(session)
    session.commit()

    assert generate(celery_app, "2026-03")["drafts"] == 1

    s = statement(engine, hid, pid, MAR)
    assert (s["status"], s["net_income"], s["payout_amount"]) == ("draft", 0, 0)
    assert lines_of(engine, s["id"]) == []


# -- rebuilds, finals, scope -----------------------------------------------------------------


def test_rerunning_rebuilds_drafts_in_place_and_changes_nothing_else(engine, session, celery_app):
    pid, (hid,) = owned_property(session, commission_pct="15")
    stay = f.reservation(session, pid, dt.date(2026, 3, 5), dt.date(2026, 3, 9), gross_rent="800")
    session.commit()

    first = generate(celery_app, "2026-03")
    before = statement(engine, hid, pid, MAR)
    lines_before = lines_of(engine, before["id"])
    again = generate(celery_app, "2026-03")

    assert (first["created"], again["created"], again["rebuilt"]) == (1, 0, 1)
    assert (again["lines_written"], again["lines_removed"]) == (0, 0)
    after = statement(engine, hid, pid, MAR)
    assert (after["id"], after["statement_number"]) == (before["id"], before["statement_number"])
    assert lines_of(engine, after["id"]) == lines_before

    # A changed stay rebuilds the draft: same statement, new figures.
    session.execute(
        text("UPDATE reservations.reservations SET gross_rent = 1000 WHERE id = :id"), {"id": stay}
    )
    session.commit()
    changed = generate(celery_app, "2026-03")
    assert changed["lines_written"] == 3  # rent, commission and payout, each replaced
    s = statement(engine, hid, pid, MAR)
    assert (s["id"], s["gross_revenue"], s["management_fees"]) == (
        before["id"],
        D("1000.00"),
        D("-150.00"),
    )
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM finance.owner_statements")).scalar() == 1


def test_a_draft_whose_owner_is_gone_is_deleted(engine, session, celery_app):
    pid, (hid,) = owned_property(session)
    session.commit()
    generate(celery_app, "2026-03")
    session.execute(
        text(
            "UPDATE directory.homeowner_property_relationship SET end_date = '2026-03-01'"
            " WHERE homeowner_id = :h"
        ),
        {"h": hid},
    )
    session.commit()

    assert generate(celery_app, "2026-03")["deleted"] == 1
    assert statement(engine, hid, pid, MAR) is None


def test_a_final_statement_is_never_touched_by_generate(engine, session, celery_app):
    pid, (hid,) = owned_property(session)
    stay = f.reservation(session, pid, dt.date(2026, 3, 5), dt.date(2026, 3, 9), gross_rent="800")
    session.commit()
    generate(celery_app, "2026-03")
    final = statement(engine, hid, pid, MAR)
    finalize(celery_app, final["id"])
    session.execute(
        text("UPDATE reservations.reservations SET gross_rent = 999 WHERE id = :id"), {"id": stay}
    )
    session.commit()

    result = generate(celery_app, "2026-03")

    assert (result["drafts"], result["final_untouched"]) == (0, 1)
    s = statement(engine, hid, pid, MAR)
    assert (s["id"], s["version"], s["status"], s["gross_revenue"]) == (
        final["id"],
        1,
        "final",
        D("800.00"),
    )


def test_generate_for_one_homeowner_or_property_only(engine, session, celery_app):
    p1, (h1,) = owned_property(session)
    p2, (h2,) = owned_property(session)
    session.commit()

    assert generate(celery_app, "2026-03", homeowner_id=str(h1))["drafts"] == 1
    assert statement(engine, h2, p2, MAR) is None
    assert generate(celery_app, "2026-03", property_id=str(p2))["drafts"] == 1
    assert statement(engine, h2, p2, MAR) is not None


def test_the_beat_payload_builds_the_previous_month(engine, session, celery_app):
    pid, (hid,) = owned_property(session)
    session.commit()

    result = run_task(celery_app, "statements.generate", as_of="2026-04-01T06:00:00+00:00")

    assert result["period"] == "2026-03"
    s = statement(engine, hid, pid, MAR)
    assert s["period_end"] == dt.date(2026, 4, 1)
    assert s["generated_at"] == dt.datetime(2026, 4, 1, 6, tzinfo=dt.UTC)


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        ({"period": "2026-13"}, "period must be"),
        ({"period": "26-03"}, "period must be"),
        ({"period": 202603}, "period"),
        ({"period": "2026-03", "homeowner_id": str(uuid.uuid4())}, "unknown homeowner_id"),
        ({"period": "2026-03", "property_id": str(uuid.uuid4())}, "unknown property_id"),
        ({"period": "2026-03", "revise": "yes"}, "revise"),
        ({"period": "2026-03", "month": "2026-03"}, "month"),
    ],
)
def test_a_bad_payload_fails_at_once_and_is_dead_lettered(engine, celery_app, payload, message):
    result = celery_app.tasks["statements.generate"].apply(kwargs=payload)

    assert result.failed()
    assert message in str(result.result)
    with engine.connect() as conn:
        dead = conn.execute(
            text(
                "SELECT payload, error_kind, error FROM ops.dead_letters"
                " WHERE task_name = 'statements.generate'"
            )  # fmt: skip
        ).one()
        runs = conn.execute(
            text("SELECT status FROM ops.job_runs WHERE task_name = 'statements.generate'")
        ).scalars()
        assert list(runs) == ["failed"]
        assert conn.execute(text("SELECT count(*) FROM finance.owner_statements")).scalar() == 0
    assert dead.payload == payload and dead.error_kind == "validation"
    assert message in dead.error


def _snapshot(engine) -> list[tuple]:
    with engine.connect() as conn:
        return [
            tuple(r)
            for r in conn.execute(
                text(
                    "SELECT s.statement_number, s.homeowner_id, s.version, s.status,"
                    " s.net_income, s.closing_balance, l.line_type, l.reservation_id,"
                    " l.amount, l.sort_order"
                    " FROM finance.owner_statements s"
                    " LEFT JOIN finance.owner_statement_lines l ON l.statement_id = s.id"
                    " ORDER BY 1, l.sort_order"
                )
            )
        ]


def test_two_runs_at_once_from_two_processes_leave_the_rows_of_one(engine, session, celery_app):
    for _ in range(15):
        pid, owners = owned_property(session, ("50.00", "50.00"), commission_pct="20")
        for day in (1, 6, 12, 20, 27):
            check_in = dt.date(2026, 2, day)
            f.reservation(session, pid, check_in, check_in + dt.timedelta(days=3),
                          gross_rent="333.33", channel_commission="10.01")  # fmt: skip
    session.commit()
    results = cmw_run_at_once("statements.generate", {"period": "2026-02"}, timeout=180)
    together = _snapshot(engine)

    # The same rows as one run: a second copy is skipped (singleton) or rebuilds nothing new.
    assert sum(r.get("created", 0) for r in results) == 30
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM finance.owner_statements")).scalar() == 30
    generate(celery_app, "2026-02")
    assert _snapshot(engine) == together
    all_statements_total_their_lines(engine)


# -- the SQL equals the Python reference on random data ---------------------------------------

SPLITS = (("100.00",), ("50.00", "50.00"), ("33.33", "33.33", "33.34"), ("60.00", "40.00"))
TERMS = st.fixed_dictionaries(
    {
        "commission_pct": st.sampled_from((D("0"), D("15.00"), D("22.50"), D("33.33"))),
        "commission_base": st.sampled_from(("gross_rent", "net_rent")),
        "revenue_recognition": st.sampled_from(("by_night", "by_checkout")),
        "reserve_amount": st.sampled_from((D("0"), D("500.00"))),
        # SPEC 7.5
        "cleaning_fee_to_owner": st.booleans(),
        "other_fees_to_owner": st.booleans(),
        "commission_flat_per_stay": st.sampled_from((D("0"), D("25.00"), D("33.33"))),
        "minimum_monthly_fee": st.sampled_from((D("0"), D("150.00"))),
    }
)


@st.composite
def portfolio(draw) -> dict:
    """A few properties, each owned by a split (sometimes sold to new owners during the
    months covered), with random stays (with fees and taxes) spanning month and year ends,
    random costs and recurring owner charges."""
    rels: list[money.Relationship] = []
    stays: list[money.Stay] = []
    costs: list[money.Cost] = []
    charges: list[money.RecurringCharge] = []
    for _ in range(draw(st.integers(min_value=1, max_value=3))):
        pid = uuid.uuid4()

        def owners(split, start, end, pid=pid):
            terms = draw(TERMS)
            return [
                money.Relationship(
                    uuid.uuid4(), uuid.uuid4(), pid, D(p), start_date=start, end_date=end, **terms
                )  # fmt: skip
                for p in split
            ]

        if draw(st.booleans()):
            rels += owners(draw(st.sampled_from(SPLITS)), dt.date(2020, 1, 1), None)
        else:
            sold = draw(st.dates(min_value=dt.date(2025, 12, 2), max_value=dt.date(2026, 2, 27)))
            rels += owners(draw(st.sampled_from(SPLITS)), dt.date(2020, 1, 1), sold)
            rels += owners(draw(st.sampled_from(SPLITS)), sold, None)
        for _ in range(draw(st.integers(min_value=0, max_value=5))):
            check_in = draw(
                st.dates(min_value=dt.date(2025, 11, 20), max_value=dt.date(2026, 3, 5))
            )
            nights = draw(st.integers(min_value=1, max_value=45))
            gross = D(draw(st.integers(min_value=0, max_value=2_000_000))) / 100
            channel = D(draw(st.integers(min_value=0, max_value=int(gross * 100)))) / 100
            stays.append(
                money.Stay(
                    uuid.uuid4(),
                    pid,
                    check_in,
                    check_in + dt.timedelta(days=nights),
                    gross,
                    channel,
                    draw(st.sampled_from(("direct", "airbnb", "vrbo"))),
                    cleaning_fee=D(draw(st.sampled_from((0, 9500, 15001)))) / 100,
                    other_fees=D(draw(st.sampled_from((0, 0, 3333)))) / 100,
                    taxes=D(draw(st.integers(min_value=0, max_value=30_000))) / 100,
                )
            )
        for _ in range(draw(st.integers(min_value=0, max_value=3))):
            costs.append(
                money.Cost(
                    uuid.uuid4(),
                    pid,
                    draw(st.dates(min_value=dt.date(2025, 12, 1), max_value=dt.date(2026, 3, 31))),
                    D(draw(st.integers(min_value=1, max_value=100_000))) / 100,
                    draw(st.sampled_from((D("0"), D("10.00"), D("12.50"), D("33.33")))),
                )  # fmt: skip
            )
        for _ in range(draw(st.integers(min_value=0, max_value=2))):
            owner = draw(st.sampled_from([r for r in rels if r.property_id == pid]))
            start = draw(st.sampled_from((dt.date(2025, 11, 1), dt.date(2026, 1, 1))))
            charges.append(
                money.RecurringCharge(
                    uuid.uuid4(),
                    owner.homeowner_id,
                    pid,
                    D(draw(st.sampled_from(("15.00", "49.99", "120.00")))),
                    start,
                    draw(st.sampled_from((None, dt.date(2026, 2, 1)))),
                )
            )
    return {"rels": rels, "stays": stays, "costs": costs, "charges": charges}


def load(session, data: dict) -> None:
    for pid in {r.property_id for r in data["rels"]}:
        f.insert(session, "property.properties", id=pid, property_code=f"R{pid.hex[:10]}",
                 name="Random", timezone="America/Denver")  # fmt: skip
    for r in data["rels"]:
        contact = f.contact(session)
        f.insert(session, "directory.homeowners", id=r.homeowner_id, contact_id=contact)
        f.insert(
            session, "directory.homeowner_property_relationship", id=r.id,
            homeowner_id=r.homeowner_id, property_id=r.property_id,
            ownership_pct=r.ownership_pct, commission_pct=r.commission_pct,
            commission_base=r.commission_base, revenue_recognition=r.revenue_recognition,
            reserve_amount=r.reserve_amount, start_date=r.start_date, end_date=r.end_date,
            cleaning_fee_to_owner=r.cleaning_fee_to_owner,
            other_fees_to_owner=r.other_fees_to_owner,
            commission_flat_per_stay=r.commission_flat_per_stay,
            minimum_monthly_fee=r.minimum_monthly_fee,
        )  # fmt: skip
    for s in data["stays"]:
        f.reservation(session, s.property_id, s.check_in, s.check_out, gross_rent=s.gross_rent,
                      channel_commission=s.channel_commission, source=s.source,
                      cleaning_fee=s.cleaning_fee, other_fees=s.other_fees, taxes=s.taxes,
                      id=s.id)  # fmt: skip
    for c in data["costs"]:
        f.insert(session, "service.ticket_costs", id=c.id, property_id=c.property_id,
                 cost_date=c.cost_date, amount=c.amount, markup_pct=c.markup_pct,
                 billable_to="owner")  # fmt: skip
    for c in data.get("charges", ()):
        f.insert(session, "finance.owner_recurring_charges", id=c.id,
                 homeowner_id=c.homeowner_id, property_id=c.property_id,
                 description=c.description, amount=c.amount, start_month=c.start_month,
                 end_month=c.end_month)  # fmt: skip


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=portfolio())
def test_sql_statements_equal_the_python_reference(engine, data):
    from db.session import session_scope
    from tasks.statements.build import generate_statements

    dbsupport.clean(engine)
    with session_scope() as session:
        load(session, data)
    months = [dt.date(2025, 12, 1), JAN, FEB, MAR]
    with session_scope() as session:
        for month in months:
            generate_statements(session, period_start=month, as_of=dt.datetime.now(dt.UTC))

    rent_total = D(0)
    for month in months:
        expected = money.reference_lines(
            month, data["rels"], data["stays"], data["costs"], data["charges"]
        )
        with engine.connect() as conn:
            rows = conn.execute(
                text(
                    "SELECT s.homeowner_id, s.property_id, l.line_type,"
                    " coalesce(l.reservation_id, l.ticket_cost_id, l.recurring_charge_id) AS ref,"
                    " l.nights, l.amount, l.stay_channel_commission, l.stay_cleaning_fee,"
                    " l.stay_other_fees, l.stay_taxes"
                    " FROM finance.owner_statements s"
                    " JOIN finance.owner_statement_lines l ON l.statement_id = s.id"
                    " WHERE s.period_start = :ps AND l.line_type NOT IN ('reserve', 'payout')"
                ),
                {"ps": month},
            ).all()
            keys = set(
                conn.execute(
                    text(
                        "SELECT homeowner_id, property_id FROM finance.owner_statements"
                        " WHERE period_start = :ps"
                    ),
                    {"ps": month},
                ).all()
            )
        assert keys == set(expected)
        got = sorted(tuple(map(str, (h, p, t, ref, *rest))) for h, p, t, ref, *rest in rows)
        want = sorted(
            tuple(
                map(
                    str,
                    (
                        h,
                        p,
                        ln.line_type,
                        ln.ref,
                        ln.nights,
                        ln.amount,
                        ln.stay_channel,
                        ln.stay_cleaning,
                        ln.stay_other,
                        ln.stay_taxes,
                    ),
                )  # fmt: skip
            )
            for (h, p), lines in expected.items()
            for ln in lines
        )
        assert got == want
        rent_total += sum(row.amount for row in rows if row.line_type == "rent")
    all_statements_total_their_lines(engine)
    # Every stay wholly inside the months covered is recognised exactly once, to the cent.
    inside = [
        s for s in data["stays"] if s.check_in >= months[0] and s.check_out < dt.date(2026, 4, 1)
    ]
    if len(inside) == len(data["stays"]):
        assert rent_total == sum((s.gross_rent for s in data["stays"]), D(0))
