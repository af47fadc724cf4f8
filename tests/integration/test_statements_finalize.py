"""statements.finalize and revisions on a real database: the ledger, payouts, billed costs.

Every ledger transaction balances and the trial balance of the whole ledger is zero; a cost is
billed once across regenerations and finalizations; a closed month is corrected by a new
version carrying only the difference; finalized statements and posted lines never change.
"""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal

import pytest
import sqlalchemy.exc
from hypothesis import HealthCheck, given, settings
from sqlalchemy import text

from tests.integration.test_statements_generate import (
    all_statements_total_their_lines,
    amounts,
    finalize,
    generate,
    lines_of,
    load,
    owned_property,
    portfolio,
    statement,
)
from tests.support import db as dbsupport
from tests.support import factories as f
from tests.support.cli import cmw_run_at_once

D = Decimal
MAR, APR, MAY = dt.date(2026, 3, 1), dt.date(2026, 4, 1), dt.date(2026, 5, 1)


def scalar(engine, sql: str, **params):
    with engine.connect() as conn:
        return conn.execute(text(sql), params).scalar()


def ledger_of(engine, transaction_id) -> dict[str, tuple[Decimal, Decimal]]:
    """{account code: (debits, credits)} of one transaction."""
    with engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT a.code, sum(l.debit), sum(l.credit) FROM finance.transaction_lines l"
                " JOIN finance.accounts a ON a.id = l.account_id"
                " WHERE l.transaction_id = :t GROUP BY a.code"
            ),
            {"t": transaction_id},
        ).all()
    return {code: (debit, credit) for code, debit, credit in rows}


def assert_ledger_balances(engine) -> None:
    """Every transaction balances, so the trial balance of the whole ledger is zero."""
    with engine.connect() as conn:
        unbalanced = conn.execute(
            text(
                "SELECT transaction_id FROM finance.transaction_lines GROUP BY transaction_id"
                " HAVING sum(debit) <> sum(credit)"
            )
        ).all()
        debit, credit = conn.execute(
            text(
                "SELECT coalesce(sum(debit), 0), coalesce(sum(credit), 0)"
                " FROM finance.transaction_lines"
            )
        ).one()
        one_sided = conn.execute(
            text(
                "SELECT count(*) FROM finance.transaction_lines"
                " WHERE (debit > 0) = (credit > 0) OR debit < 0 OR credit < 0"
            )
        ).scalar()
    assert unbalanced == [] and one_sided == 0
    assert debit == credit


def add_cost(session, pid, day: dt.date, amount: str, markup: str = "0") -> uuid.UUID:
    return f.insert(
        session, "service.ticket_costs", property_id=pid, cost_date=day, amount=D(amount),
        markup_pct=D(markup), billable_to="owner", description="Repair",
    ).id  # fmt: skip


# -- finalize ----------------------------------------------------------------------------------


def test_finalize_posts_one_balanced_transaction_and_schedules_the_payout(
    engine, session, celery_app
):
    pid, (hid,) = owned_property(session, commission_pct="20", reserve_amount="100.00")
    stay = f.reservation(session, pid, dt.date(2026, 3, 2), dt.date(2026, 3, 6),
                         gross_rent="1000.00", channel_commission="30.00",
                         source="airbnb")  # fmt: skip
    cost = add_cost(session, pid, dt.date(2026, 3, 10), "100.00", "10")
    adj = f.insert(session, "finance.owner_adjustments", homeowner_id=hid, property_id=pid,
                   adjustment_date=dt.date(2026, 3, 20), amount=D("25.00"),
                   description="Goodwill").id  # fmt: skip
    session.commit()
    generate(celery_app, "2026-03")
    draft = statement(engine, hid, pid, MAR)

    result = finalize(celery_app, draft["id"])

    s = statement(engine, hid, pid, MAR)
    assert (result["finalized"], s["status"]) == (1, "final")
    assert s["finalized_at"] is not None and s["transaction_id"] is not None
    # 1000 - 30 - 200 - 110 + 25 = 685; 100 held back, 585 paid.
    assert (s["net_income"], s["payout_amount"], s["closing_balance"]) == (
        D("685.00"),
        D("585.00"),
        D("100.00"),
    )
    # SPEC 7.5 (docs/MONEY.md): the stay's guest money leaves the clearing account (rent less
    # the 30.00 the channel kept); the owner's net income is owner payable; the manager's part
    # (200 + 110 - 25 = 285) is due to operating on the trust side, due from trust against
    # revenue on the operating side.
    assert ledger_of(engine, s["transaction_id"]) == {
        "2100": (D("970.00"), D("0")),
        "2000": (D("0"), D("685.00")),
        "2300": (D("0"), D("285.00")),
        "1300": (D("285.00"), D("0")),
        "4000": (D("0"), D("200.00")),
        "4010": (D("25.00"), D("110.00")),
    }
    with engine.connect() as conn:
        txn = (
            conn.execute(
                text("SELECT * FROM finance.transactions WHERE id = :t"), {"t": s["transaction_id"]}
            )
            .mappings()
            .one()
        )
        parties = conn.execute(
            text(
                "SELECT DISTINCT homeowner_id, property_id FROM finance.transaction_lines"
                " WHERE transaction_id = :t"
            ),
            {"t": s["transaction_id"]},
        ).all()
        rent_line = conn.execute(
            text(
                "SELECT l.reservation_id FROM finance.transaction_lines l"
                " JOIN finance.accounts a ON a.id = l.account_id"
                " WHERE l.transaction_id = :t AND a.code = '2100'"
            ),
            {"t": s["transaction_id"]},
        ).scalar_one()
        payout = (
            conn.execute(
                text("SELECT * FROM finance.owner_payouts WHERE statement_id = :s"), {"s": s["id"]}
            )
            .mappings()
            .one()
        )
        cost_line = conn.execute(
            text("SELECT statement_line_id FROM service.ticket_costs WHERE id = :c"), {"c": cost}
        ).scalar_one()
        adj_line = conn.execute(
            text("SELECT statement_line_id FROM finance.owner_adjustments WHERE id = :a"),
            {"a": adj},
        ).scalar_one()
    assert (txn["reference_type"], txn["reference_id"]) == ("owner_statement", s["id"])
    assert txn["txn_date"] == dt.date(2026, 3, 31) and txn["posted_at"] is not None
    assert parties == [(hid, pid)]
    assert rent_line == stay
    today = dt.datetime.now(dt.UTC).date()
    assert payout["amount"] == D("585.00") and payout["status"] == "pending"
    assert payout["homeowner_id"] == hid
    assert payout["scheduled_for"] == max(dt.date(2026, 4, 10), today)
    lines = {ln["line_type"]: ln["id"] for ln in lines_of(engine, s["id"])}
    assert (cost_line, adj_line) == (lines["expense"], lines["adjustment"])
    assert_ledger_balances(engine)


def test_finalizing_twice_changes_nothing(engine, session, celery_app):
    pid, (hid,) = owned_property(session)
    f.reservation(session, pid, dt.date(2026, 3, 2), dt.date(2026, 3, 6), gross_rent="500")
    session.commit()
    generate(celery_app, "2026-03")
    sid = statement(engine, hid, pid, MAR)["id"]
    finalize(celery_app, sid)
    before = statement(engine, hid, pid, MAR)

    again = finalize(celery_app, sid)

    assert (again["finalized"], again["already_final"]) == (0, 1)
    assert statement(engine, hid, pid, MAR) == before
    assert scalar(engine, "SELECT count(*) FROM finance.transactions") == 1
    assert scalar(engine, "SELECT count(*) FROM finance.owner_payouts") == 1


def test_two_finalizations_at_once_from_two_processes_post_once(engine, session, celery_app):
    pid, (hid,) = owned_property(session)
    f.reservation(session, pid, dt.date(2026, 3, 2), dt.date(2026, 3, 6), gross_rent="500")
    session.commit()
    generate(celery_app, "2026-03")
    sid = statement(engine, hid, pid, MAR)["id"]
    outcomes = cmw_run_at_once("statements.finalize", {"statement_id": str(sid)}, timeout=120)

    results = sorted(r["finalized"] for r in outcomes)
    assert results == [0, 1]
    assert scalar(engine, "SELECT count(*) FROM finance.transactions") == 1
    assert scalar(engine, "SELECT count(*) FROM finance.owner_payouts") == 1
    assert_ledger_balances(engine)


def test_an_unknown_or_void_statement_is_refused_and_dead_lettered(engine, session, celery_app):
    pid, (hid,) = owned_property(session)
    void = f.insert(session, "finance.owner_statements", homeowner_id=hid, property_id=pid,
                    period_start=MAR, period_end=APR, status="void").id  # fmt: skip
    session.commit()

    for statement_id, message in (
        (uuid.uuid4(), "unknown statement_id"),
        (void, "is void"),
        ("not-a-uuid", "statement_id"),
    ):
        result = celery_app.tasks["statements.finalize"].apply(
            kwargs={"statement_id": str(statement_id)}
        )
        assert result.failed() and message in str(result.result)
    with engine.connect() as conn:
        kinds = conn.execute(
            text("SELECT error_kind FROM ops.dead_letters WHERE task_name = 'statements.finalize'")
        ).scalars()
        assert list(kinds) == ["validation"] * 3
    assert scalar(engine, "SELECT count(*) FROM finance.transactions") == 0


# -- billed once, revisions, balances carried ------------------------------------------------


def test_a_cost_is_billed_once_across_regenerations_and_finalizations(engine, session, celery_app):
    pid, (a, b) = owned_property(session, ("50.00", "50.00"))
    cost = add_cost(session, pid, dt.date(2026, 3, 10), "100.01")
    session.commit()
    generate(celery_app, "2026-03")
    generate(celery_app, "2026-03")  # a rebuild bills nothing twice
    shares = [amounts(lines_of(engine, statement(engine, h, pid, MAR)["id"]), "expense")
              for h in (a, b)]  # fmt: skip
    assert sorted(s[0] for s in shares) == [D("-50.01"), D("-50.00")]

    finalize(celery_app, statement(engine, a, pid, MAR)["id"])
    # Half billed: the cost is not marked until every owner's share is on a final statement.
    assert scalar(engine, "SELECT statement_line_id FROM service.ticket_costs") is None
    generate(celery_app, "2026-04")
    generate(celery_app, "2026-03")  # B's March draft still bills B's share, A's is final
    assert len(amounts(lines_of(engine, statement(engine, b, pid, MAR)["id"]), "expense")) == 1
    finalize(celery_app, statement(engine, b, pid, MAR)["id"])
    line = scalar(
        engine, "SELECT statement_line_id FROM service.ticket_costs WHERE id = :c", c=cost
    )
    assert line in {ln["id"] for ln in lines_of(engine, statement(engine, b, pid, MAR)["id"])}

    generate(celery_app, "2026-04")
    generate(celery_app, "2026-03", revise=True)  # nothing changed: no revision
    generate(celery_app, "2026-03")
    for h in (a, b):
        assert amounts(lines_of(engine, statement(engine, h, pid, APR)["id"]), "expense") == []
        assert statement(engine, h, pid, MAR)["version"] == 1
    with engine.connect() as conn:
        billed = conn.execute(
            text(
                "SELECT sum(l.amount) FROM finance.owner_statement_lines l"
                " JOIN finance.owner_statements s ON s.id = l.statement_id"
                " WHERE l.ticket_cost_id = :c AND s.status = 'final'"
            ),
            {"c": cost},
        ).scalar()
    assert billed == D("-100.01")


def test_revise_after_a_late_cost_creates_a_version_with_only_the_difference(
    engine, session, celery_app
):
    pid, (hid,) = owned_property(session, commission_pct="20")
    f.reservation(session, pid, dt.date(2026, 3, 2), dt.date(2026, 3, 6), gross_rent="1000")
    session.commit()
    generate(celery_app, "2026-03")
    v1_id = statement(engine, hid, pid, MAR)["id"]
    finalize(celery_app, v1_id)
    v1 = statement(engine, hid, pid, MAR)
    late = add_cost(session, pid, dt.date(2026, 3, 25), "300.00", "10")
    session.commit()

    assert generate(celery_app, "2026-03")["drafts"] == 0  # a closed month: nothing unasked
    result = generate(celery_app, "2026-03", revise=True)

    assert (result["revisions"], result["created"]) == (1, 1)
    v2 = statement(engine, hid, pid, MAR)
    assert (v2["version"], v2["status"], v2["supersedes_id"]) == (2, "draft", v1_id)
    v2_lines = lines_of(engine, v2["id"])
    assert [(ln["line_type"], ln["ticket_cost_id"], ln["amount"]) for ln in v2_lines] == [
        ("expense", late, D("-330.00"))
    ]
    assert v2_lines[0]["description"].startswith("Revision, added: Repair")
    assert (v2["opening_balance"], v2["net_income"], v2["payout_amount"]) == (
        v1["closing_balance"],
        D("-330.00"),
        D("0.00"),
    )
    # The April draft built now opens at v1's closing balance...
    generate(celery_app, "2026-04")
    april = statement(engine, hid, pid, APR)
    assert april["opening_balance"] == v1["closing_balance"]

    finalize(celery_app, v2["id"])

    # The owner's money pays the cost back to the manager: owner payable to due-to-operating
    # on the trust side, due-from-trust to expense recoveries on the operating side.
    assert ledger_of(engine, statement(engine, hid, pid, MAR)["transaction_id"]) == {
        "2000": (D("330.00"), D("0")),
        "2300": (D("0"), D("330.00")),
        "1300": (D("330.00"), D("0")),
        "4010": (D("0"), D("330.00")),
    }
    assert statement(engine, hid, pid, MAR, version=1) == v1  # the old version is untouched
    line = scalar(
        engine, "SELECT statement_line_id FROM service.ticket_costs WHERE id = :c", c=late
    )
    assert line == v2_lines[0]["id"]
    # ... so it is stale once v2 is final: finalizing it is refused, rebuilding it fixes it.
    stale = celery_app.tasks["statements.finalize"].apply(kwargs={"statement_id": str(april["id"])})
    assert stale.failed() and "is stale" in str(stale.result)
    generate(celery_app, "2026-04")
    april = statement(engine, hid, pid, APR)
    assert april["opening_balance"] == D("-330.00")
    assert amounts(lines_of(engine, april["id"]), "expense") == []  # billed by v2, not again
    finalize(celery_app, april["id"])
    all_statements_total_their_lines(engine)
    assert_ledger_balances(engine)


def test_a_late_cost_of_a_closed_month_is_carried_into_the_next_draft(engine, session, celery_app):
    pid, (hid,) = owned_property(session)
    session.commit()
    generate(celery_app, "2026-03")
    finalize(celery_app, statement(engine, hid, pid, MAR)["id"])
    late = add_cost(session, pid, dt.date(2026, 3, 30), "80.00")
    never_stated = add_cost(session, pid, dt.date(2025, 6, 1), "10.00")  # no statement then
    session.commit()

    generate(celery_app, "2026-04")

    april = lines_of(engine, statement(engine, hid, pid, APR)["id"])
    assert [
        (ln["ticket_cost_id"], ln["amount"]) for ln in april if ln["line_type"] == "expense"
    ] == [(late, D("-80.00"))]
    finalize(celery_app, statement(engine, hid, pid, APR)["id"])
    generate(celery_app, "2026-05")
    assert amounts(lines_of(engine, statement(engine, hid, pid, MAY)["id"]), "expense") == []
    assert (
        scalar(
            engine,
            "SELECT statement_line_id FROM service.ticket_costs WHERE id = :c",
            c=never_stated,
        )  # fmt: skip
        is None
    )


def test_a_negative_balance_is_carried_forward_and_recovered(engine, session, celery_app):
    pid, (hid,) = owned_property(session, commission_pct="10", reserve_amount="200.00")
    f.reservation(session, pid, dt.date(2026, 3, 2), dt.date(2026, 3, 4), gross_rent="300")
    add_cost(session, pid, dt.date(2026, 3, 10), "700.00")
    f.reservation(session, pid, dt.date(2026, 4, 2), dt.date(2026, 4, 12), gross_rent="2000")
    session.commit()
    generate(celery_app, "2026-03")
    finalize(celery_app, statement(engine, hid, pid, MAR)["id"])
    march = statement(engine, hid, pid, MAR)
    # 300 - 30 - 700 = -430: nothing paid, nothing held, the debt carried.
    assert (march["net_income"], march["payout_amount"], march["reserve_held"]) == (
        D("-430.00"),
        D("0.00"),
        D("0.00"),
    )
    assert march["closing_balance"] == D("-430.00")
    assert amounts(lines_of(engine, march["id"]), "reserve") == [D("0.00")]

    generate(celery_app, "2026-04")
    finalize(celery_app, statement(engine, hid, pid, APR)["id"])

    april = statement(engine, hid, pid, APR)
    # -430 + (2000 - 200) = 1370; 200 held back; 1170 paid.
    assert april["opening_balance"] == D("-430.00")
    assert (april["payout_amount"], april["reserve_held"], april["closing_balance"]) == (
        D("1170.00"),
        D("200.00"),
        D("200.00"),
    )
    with engine.connect() as conn:
        payable = conn.execute(
            text(
                "SELECT sum(l.credit) - sum(l.debit) FROM finance.transaction_lines l"
                " JOIN finance.accounts a ON a.id = l.account_id"
                " WHERE a.code = '2000' AND l.homeowner_id = :h AND l.property_id = :p"
            ),
            {"h": hid, "p": pid},
        ).scalar()
        paid = conn.execute(text("SELECT sum(amount) FROM finance.owner_payouts")).scalar()
    # Owner payable on the ledger = what was paid out + what is still held.
    assert payable == paid + april["closing_balance"]


# -- what the database refuses -----------------------------------------------------------------


def _final_statement(engine, session, celery_app):
    pid, (hid,) = owned_property(session)
    f.reservation(session, pid, dt.date(2026, 3, 2), dt.date(2026, 3, 6), gross_rent="500")
    session.commit()
    generate(celery_app, "2026-03")
    finalize(celery_app, statement(engine, hid, pid, MAR)["id"])
    return statement(engine, hid, pid, MAR)


@pytest.mark.parametrize(
    "sql",
    [
        "UPDATE finance.transaction_lines SET debit = debit + 1 WHERE debit > 0",
        "UPDATE finance.transaction_lines SET memo = 'edited'",
        "DELETE FROM finance.transaction_lines",
        "UPDATE finance.transactions SET description = 'edited'",
        "DELETE FROM finance.transactions",
    ],
)
def test_the_database_refuses_to_change_a_posted_ledger_line(engine, session, celery_app, sql):
    _final_statement(engine, session, celery_app)
    before = scalar(engine, "SELECT sum(debit) FROM finance.transaction_lines")
    from sqlalchemy.orm import Session

    with Session(engine) as s:
        with pytest.raises(sqlalchemy.exc.DBAPIError, match="post a reversing transaction"):
            s.execute(text(sql))
        s.rollback()
    # 2100, 2000, 2300, 1300, 4000: see test_finalize_posts_one_balanced_transaction...
    assert scalar(engine, "SELECT count(*) FROM finance.transaction_lines") == 5
    assert scalar(engine, "SELECT sum(debit) FROM finance.transaction_lines") == before
    assert_ledger_balances(engine)


@pytest.mark.parametrize(
    "sql",
    [
        "UPDATE finance.owner_statements SET net_income = 0",
        "UPDATE finance.owner_statements SET status = 'draft'",
        "DELETE FROM finance.owner_statements",
        "UPDATE finance.owner_statement_lines SET amount = 1",
        "DELETE FROM finance.owner_statement_lines",
        "INSERT INTO finance.owner_statement_lines (statement_id, line_type, description, amount)"
        " SELECT id, 'adjustment', 'sneaked in', 1 FROM finance.owner_statements",
    ],
)
def test_the_database_refuses_to_change_a_final_statement(engine, session, celery_app, sql):
    final = _final_statement(engine, session, celery_app)
    from sqlalchemy.orm import Session

    with Session(engine) as s:
        with pytest.raises(sqlalchemy.exc.DBAPIError, match="revise it instead|no longer a draft"):
            s.execute(text(sql))
        s.rollback()
    assert statement(engine, final["homeowner_id"], final["property_id"], MAR) == final


def test_a_final_statement_may_only_be_voided(engine, session, celery_app):
    final = _final_statement(engine, session, celery_app)
    from sqlalchemy.orm import Session

    with Session(engine) as s:
        s.execute(text("UPDATE finance.owner_statements SET status = 'void'"))
        s.commit()
        with pytest.raises(sqlalchemy.exc.DBAPIError, match="revise it instead"):
            s.execute(text("UPDATE finance.owner_statements SET status = 'final'"))
        s.rollback()
    assert statement(engine, final["homeowner_id"], final["property_id"], MAR)["status"] == "void"


# -- the whole ledger on random data -----------------------------------------------------------


@settings(
    max_examples=15,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=portfolio())
def test_random_months_finalized_in_turn_keep_the_ledger_balanced(engine, celery_app, data):
    from db.session import session_scope
    from tasks.statements.build import generate_statements
    from tasks.statements.finalize import finalize_statement

    dbsupport.clean(engine)
    with session_scope() as session:
        load(session, data)
    now = dt.datetime.now(dt.UTC)
    months = [dt.date(2025, 12, 1), dt.date(2026, 1, 1), dt.date(2026, 2, 1), MAR]
    for month in months:
        with session_scope() as session:
            generate_statements(session, period_start=month, as_of=now)
        with engine.connect() as conn:
            drafts = (
                conn.execute(
                    text(
                        "SELECT id FROM finance.owner_statements WHERE status = 'draft'"
                        " AND period_start = :ps ORDER BY statement_number"
                    ),
                    {"ps": month},
                )
                .scalars()
                .all()
            )
        for sid in drafts:
            with session_scope() as session:
                finalize_statement(session, sid, as_of=now)

    all_statements_total_their_lines(engine)
    assert_ledger_balances(engine)
    with engine.connect() as conn:
        # Each owner's chain: a statement opens at the previous one's closing balance.
        broken = conn.execute(
            text(
                """
SELECT s.statement_number FROM finance.owner_statements s
WHERE s.opening_balance <> coalesce((
    SELECT p.closing_balance FROM finance.owner_statements p
    WHERE p.homeowner_id = s.homeowner_id AND p.property_id = s.property_id
      AND p.status = 'final' AND p.finalized_at < s.finalized_at
    ORDER BY p.finalized_at DESC LIMIT 1), 0)
"""
            )
        ).all()
        # Owner payable per owner and property = the sum of their statements' net income.
        mismatched = conn.execute(
            text(
                """
SELECT s.homeowner_id FROM finance.owner_statements s
LEFT JOIN LATERAL (
    SELECT coalesce(sum(l.credit - l.debit), 0) AS payable
    FROM finance.transaction_lines l JOIN finance.accounts a ON a.id = l.account_id
    WHERE a.code = '2000' AND l.homeowner_id = s.homeowner_id
      AND l.property_id = s.property_id) p ON true
GROUP BY s.homeowner_id, s.property_id, p.payable
HAVING sum(s.net_income) <> p.payable
"""
            )
        ).all()
        drafts_left = conn.execute(
            text("SELECT count(*) FROM finance.owner_statements WHERE status <> 'final'")
        ).scalar()
    assert broken == [] and mismatched == [] and drafts_left == 0
    # Every owner cost of the months covered is billed exactly once, to the cent.
    with engine.connect() as conn:
        wrong = conn.execute(
            text(
                """
SELECT c.id FROM service.ticket_costs c
LEFT JOIN LATERAL (
    SELECT coalesce(sum(l.amount), 0) AS billed FROM finance.owner_statement_lines l
    WHERE l.ticket_cost_id = c.id) b ON true
WHERE b.billed <> -round(c.amount * (1 + c.markup_pct / 100), 2)
   OR c.statement_line_id IS NULL
"""
            )
        ).all()
    assert wrong == []
