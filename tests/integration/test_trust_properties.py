"""The trust account's invariants on random books (SPEC 7.5, docs/MONEY.md).

Random properties with owner splits (sometimes sold mid-way), owner fee flags, flat and minimum
commission, recurring charges and costs; random stays with fees, taxes and channel commission,
some in the future; random guest payments per stay (in full, a deposit and the balance, a
deposit only, overpaid then refunded, nothing); months December to March posted, generated,
finalized in turn, with some payouts sent on the 10th of the next month. Then, computed from
the payments, payouts and statements rather than from the ledger:

- every journal entry balances, and so do its lines on the trust accounts;
- every stay stated in full has drawn exactly its guest money from the clearing account, so
  for every stay that is paid and stated the clearing nets to zero; an unstated stay's
  clearing holds exactly what was paid for it;
- at every month end, trust cash = owner balances + guest money held + taxes payable + fees not
  yet transferred, to the cent, and each of them is what the payments, payouts and final
  statements say it is; finance.reconcile_trust agrees (balanced against a bank balance equal
  to those payments and payouts);
- every statement's lines sum to its totals.
"""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import text

from tasks.statements import money
from tests.integration.test_statements_generate import (
    SPLITS,
    TERMS,
    all_statements_total_their_lines,
    load,
)
from tests.support import db as dbsupport
from tests.support.money import assert_every_transaction_balances, balance

D = Decimal
UTC = dt.UTC
MONTHS = [dt.date(2025, 12, 1), dt.date(2026, 1, 1), dt.date(2026, 2, 1), dt.date(2026, 3, 1)]
MONTH_ENDS = [dt.date(2025, 11, 30)] + [
    money.add_months(m, 1) - dt.timedelta(days=1) for m in MONTHS
] + [dt.date(2026, 4, 30)]  # fmt: skip
LAST_STATED = dt.date(2026, 3, 31)
PLANS = ("full", "deposit_and_balance", "deposit_only", "overpaid_and_refunded", "none")


@st.composite
def books(draw) -> dict:
    rels: list[money.Relationship] = []
    stays: list[money.Stay] = []
    costs: list[money.Cost] = []
    charges: list[money.RecurringCharge] = []
    payments: list[tuple[uuid.UUID, Decimal, dt.datetime]] = []
    for _ in range(draw(st.integers(min_value=1, max_value=2))):
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
            sold = draw(st.dates(min_value=dt.date(2025, 12, 2), max_value=dt.date(2026, 3, 20)))
            rels += owners(draw(st.sampled_from(SPLITS[:2])), dt.date(2020, 1, 1), sold)
            rels += owners(draw(st.sampled_from(SPLITS[:2])), sold, None)
        for _ in range(draw(st.integers(min_value=1, max_value=4))):
            future = draw(st.integers(min_value=0, max_value=4)) == 0
            low, high = (
                (dt.date(2026, 4, 2), dt.date(2026, 5, 20))
                if future
                else (dt.date(2025, 12, 1), dt.date(2026, 3, 20))
            )
            check_in = draw(st.dates(min_value=low, max_value=high))
            nights = draw(st.integers(min_value=1, max_value=20))
            check_out = check_in + dt.timedelta(days=nights)
            if not future:  # stated by the end of March whatever the recognition
                check_out = min(check_out, LAST_STATED)
                if check_out <= check_in:
                    continue
            gross = D(draw(st.integers(min_value=0, max_value=500_000))) / 100
            stay = money.Stay(
                uuid.uuid4(), pid, check_in, check_out, gross,
                D(draw(st.integers(min_value=0, max_value=int(gross * 15)))) / 100,
                draw(st.sampled_from(("direct", "airbnb"))),
                cleaning_fee=D(draw(st.sampled_from((0, 9500, 15001)))) / 100,
                other_fees=D(draw(st.sampled_from((0, 3333)))) / 100,
                taxes=D(draw(st.integers(min_value=0, max_value=60_000))) / 100,
            )  # fmt: skip
            stays.append(stay)
            payments += pay(draw, stay)
        for _ in range(draw(st.integers(min_value=0, max_value=2))):
            costs.append(
                money.Cost(
                    uuid.uuid4(),
                    pid,
                    draw(st.dates(min_value=MONTHS[0], max_value=LAST_STATED)),
                    D(draw(st.integers(min_value=1, max_value=50_000))) / 100,
                    draw(st.sampled_from((D("0"), D("10.00")))),
                )  # fmt: skip
            )
        if draw(st.booleans()):
            owner = draw(st.sampled_from([r for r in rels if r.property_id == pid]))
            charges.append(
                money.RecurringCharge(
                    uuid.uuid4(), owner.homeowner_id, pid, D("49.99"), MONTHS[1], None
                )
            )
    return {
        "rels": rels,
        "stays": stays,
        "costs": costs,
        "charges": charges,
        "payments": payments,
        "sent": draw(st.lists(st.booleans(), min_size=12, max_size=12)),
    }


def pay(draw, stay: money.Stay) -> list[tuple[uuid.UUID, Decimal, dt.datetime]]:
    """The guest's payments for a stay under a random plan, received before check-in."""
    due = stay.guest_money
    plan = draw(st.sampled_from(PLANS))

    def when() -> dt.datetime:
        day = draw(st.dates(min_value=dt.date(2025, 11, 1), max_value=stay.check_in))
        return dt.datetime.combine(day, dt.time(draw(st.integers(0, 23))), tzinfo=UTC)

    deposit = (due / 2).quantize(money.CENT)
    amounts = {
        "full": [due],
        "deposit_and_balance": [deposit, due - deposit],
        "deposit_only": [deposit],
        "overpaid_and_refunded": [due + D("10.00"), D("-10.00")],
        "none": [],
    }[plan]
    return [(stay.id, amount, when()) for amount in amounts if amount]


def run_the_books(engine, data: dict) -> None:
    from db.session import session_scope
    from tasks.finance.payments import post_payments
    from tasks.finance.payouts import record_payout
    from tasks.statements.build import generate_statements
    from tasks.statements.finalize import finalize_statement

    with session_scope() as session:
        load(session, data)
        for reservation_id, amount, received_at in data["payments"]:
            session.execute(
                text(
                    "INSERT INTO finance.guest_payments"
                    " (reservation_id, amount, received_at, external_ref)"
                    " VALUES (:r, :a, :t, :ref)"
                ),
                {"r": reservation_id, "a": amount, "t": received_at, "ref": uuid.uuid4().hex},
            )
    sent = iter(data["sent"])
    now = dt.datetime.now(UTC)
    for month in MONTHS:
        month_end = money.add_months(month, 1)
        with session_scope() as session:
            post_payments(session, as_of=dt.datetime.combine(month_end, dt.time(), tzinfo=UTC))
            generate_statements(session, period_start=month, as_of=now)
        with engine.connect() as conn:
            drafts = conn.execute(
                text(
                    "SELECT id FROM finance.owner_statements WHERE status = 'draft'"
                    " AND period_start = :ps ORDER BY statement_number"
                ),
                {"ps": month},
            ).scalars()
            drafts = list(drafts)
        for sid in drafts:
            with session_scope() as session:
                finalize_statement(session, sid, as_of=now)
        with engine.connect() as conn:
            payouts = conn.execute(
                text(
                    "SELECT po.id FROM finance.owner_payouts po"
                    " JOIN finance.owner_statements s ON s.id = po.statement_id"
                    " WHERE s.period_start = :ps ORDER BY po.payout_number"
                ),
                {"ps": month},
            ).scalars()
            payouts = list(payouts)
        for payout_id in payouts:
            if next(sent, False):
                at = dt.datetime.combine(month_end.replace(day=10), dt.time(15), tzinfo=UTC)
                with session_scope() as session:
                    record_payout(session, payout_id, "sent", at=at, reference=payout_id.hex)
    with session_scope() as session:  # what is left (received in April and May)
        post_payments(session, as_of=dt.datetime(2026, 6, 1, tzinfo=UTC))


# What the payments, payouts and final statements say is in and owed from the trust account at
# a month end (property zone America/Denver, as load() creates them).
EXPECTED_AT = text(
    """
WITH final AS (
    SELECT s.id, s.net_income FROM finance.owner_statements s
    WHERE s.status = 'final' AND s.period_end - 1 <= :d
),
lines AS (
    SELECT
        coalesce(sum(l.stay_taxes) FILTER (WHERE l.line_type = 'rent'), 0) AS taxes,
        coalesce(sum(coalesce(l.stay_cleaning_fee, 0) + coalesce(l.stay_other_fees, 0))
                 FILTER (WHERE l.line_type = 'rent'), 0)
        - coalesce(sum(l.amount) FILTER (WHERE l.line_type IN ('cleaning_fee', 'other_fee')), 0)
        - coalesce(sum(l.amount) FILTER (WHERE l.line_type IN ('management_fee', 'expense',
                                                               'recurring_charge',
                                                               'adjustment')), 0) AS fees
    FROM final f JOIN finance.owner_statement_lines l ON l.statement_id = f.id
),
sent AS (
    SELECT coalesce(sum(amount), 0) AS amount FROM finance.owner_payouts
    WHERE status = 'sent' AND (sent_at AT TIME ZONE 'America/Denver')::date <= :d
)
SELECT
    (SELECT coalesce(sum(amount), 0) FROM finance.guest_payments
     WHERE (received_at AT TIME ZONE 'America/Denver')::date <= :d) - sent.amount AS cash,
    (SELECT coalesce(sum(net_income), 0) FROM final) - sent.amount AS owners,
    lines.taxes, lines.fees
FROM lines, sent
"""
)


@settings(
    # Each example builds and finalizes four months of statements (PDFs included): 20 keep the
    # test under 20 s on the shared two cores.
    max_examples=20,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=books())
def test_the_trust_account_always_equals_what_is_owed_from_it(engine, celery_app, data):
    dbsupport.clean(engine)
    run_the_books(engine, data)

    assert_every_transaction_balances(engine)
    all_statements_total_their_lines(engine)
    paid: dict[uuid.UUID, Decimal] = {}
    for reservation_id, amount, _ in data["payments"]:
        paid[reservation_id] = paid.get(reservation_id, D(0)) + amount
    for stay in data["stays"]:
        clearing = balance(engine, "2100", reservation_id=stay.id)  # debits - credits
        if stay.check_out <= LAST_STATED:
            # Stated in full: it drew exactly its guest money; paid, it nets to zero.
            assert clearing == stay.guest_money - paid.get(stay.id, D(0)), stay
        else:
            assert clearing == -paid.get(stay.id, D(0)), stay

    for day in MONTH_ENDS:
        with engine.connect() as conn:
            want = conn.execute(EXPECTED_AT, {"d": day}).mappings().one()
        cash = balance(engine, "1010", upto=day)
        owners = -balance(engine, "2000", upto=day)
        guests = -balance(engine, "2100", upto=day)
        taxes = -balance(engine, "2200", upto=day)
        fees = -balance(engine, "2300", upto=day)
        assert (cash, owners, taxes, fees) == (
            want["cash"],
            want["owners"],
            want["taxes"],
            want["fees"],
        ), day
        assert cash == owners + guests + taxes + fees, day

    # The job sees the same: March balanced against a bank balance equal to the books.
    from db.session import session_scope
    from tasks.finance.reconcile import reconcile_trust

    with session_scope() as session:
        session.execute(
            text("INSERT INTO finance.bank_balances (balance_date, balance) VALUES (:d, :b)"),
            {"d": LAST_STATED, "b": balance(engine, "1010", upto=LAST_STATED)},
        )
        result = reconcile_trust(
            session, MONTHS[-1], as_of=dt.datetime.now(UTC), ops_recipient="ops@localhost"
        )
    assert (result["status"], result["book_difference"], result["notified"]) == (
        "balanced",
        "0.00",
        0,
    )
