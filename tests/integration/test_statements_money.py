"""Owner statements with the money of SPEC 7.5: the owner's fees as lines, taxes never income,
flat and minimum commission, recurring charges, finalize drawing the guest money from the
clearing account, delivery of the PDF by email; and the worked example of docs/MONEY.md."""

from __future__ import annotations

import datetime as dt
import hashlib
from decimal import Decimal

from sqlalchemy import text

from tests.integration.test_statements_generate import (
    all_statements_total_their_lines,
    finalize,
    generate,
    lines_of,
    owned_property,
    run_task,
    statement,
)
from tests.integration.test_statements_render import pdf_text
from tests.support import factories as f
from tests.support.money import (
    assert_every_transaction_balances,
    balance,
    guest_payment,
    lines_of_transaction,
)

D = Decimal
UTC = dt.UTC
JAN, FEB, MAR, APR, MAY = (dt.date(2026, m, 1) for m in (1, 2, 3, 4, 5))


def by_type(lines: list[dict]) -> dict[str, list[Decimal]]:
    out: dict[str, list[Decimal]] = {}
    for ln in lines:
        out.setdefault(ln["line_type"], []).append(ln["amount"])
    return out


def ledger(engine, transaction_id) -> dict[str, tuple[Decimal, Decimal]]:
    """{account: (debits, credits)} of one transaction."""
    out: dict[str, tuple[Decimal, Decimal]] = {}
    for code, debit, credit, *_ in lines_of_transaction(engine, transaction_id):
        d, c = out.get(code, (D(0), D(0)))
        out[code] = (d + debit, c + credit)
    return out


def test_owner_fees_are_lines_in_gross_revenue_and_taxes_are_never_income(
    engine, session, celery_app
):
    pid, (hid,) = owned_property(session, commission_pct="20", cleaning_fee_to_owner=True)
    stay = f.reservation(session, pid, dt.date(2026, 3, 2), dt.date(2026, 3, 6),
                         gross_rent="1000.00", cleaning_fee="150.00", other_fees="40.00",
                         taxes="119.00", channel_commission="30.00",
                         source="airbnb")  # fmt: skip
    session.commit()

    generate(celery_app, "2026-03")

    s = statement(engine, hid, pid, MAR)
    lines = lines_of(engine, s["id"])
    assert by_type(lines) == {
        "rent": [D("1000.00")],
        "cleaning_fee": [D("150.00")],  # the owner's; the other fees are the manager's
        "channel_fee": [D("-30.00")],
        "management_fee": [D("-200.00")],  # 20% of rent: fees are not commissioned
        "payout": [D("920.00")],
    }
    (rent,) = [ln for ln in lines if ln["line_type"] == "rent"]
    assert (rent["stay_channel_commission"], rent["stay_cleaning_fee"]) == (D("30.00"), D("150"))
    assert (rent["stay_other_fees"], rent["stay_taxes"]) == (D("40.00"), D("119.00"))
    (fee,) = [ln for ln in lines if ln["line_type"] == "cleaning_fee"]
    assert fee["reservation_id"] == stay and "cleaning fee" in fee["description"]
    assert (s["gross_revenue"], s["channel_fees"], s["management_fees"]) == (
        D("1150.00"),
        D("-30.00"),
        D("-200.00"),
    )
    assert s["net_income"] == D("920.00")
    all_statements_total_their_lines(engine)

    finalize(celery_app, s["id"])

    assert ledger(engine, statement(engine, hid, pid, MAR)["transaction_id"]) == {
        # rent 1000 + cleaning 150 + other 40 + taxes 119 - 30 the channel kept
        "2100": (D("1279.00"), D("0")),
        "2200": (D("0"), D("119.00")),
        "2000": (D("0"), D("920.00")),
        "4020": (D("0"), D("40.00")),  # the other fees, kept by the manager
        "4000": (D("0"), D("200.00")),
        "2300": (D("0"), D("240.00")),
        "1300": (D("240.00"), D("0")),
    }
    assert_every_transaction_balances(engine)


def test_a_flat_fee_per_stay_and_a_monthly_minimum(engine, session, celery_app):
    pid, (hid,) = owned_property(session, commission_pct="10", commission_flat_per_stay="25.00",
                                 minimum_monthly_fee="300.00")  # fmt: skip
    f.reservation(session, pid, dt.date(2026, 3, 3), dt.date(2026, 3, 6), gross_rent="500.00")
    # Two nights in March, one in April: the flat fee comes with the first night.
    f.reservation(session, pid, dt.date(2026, 3, 30), dt.date(2026, 4, 2), gross_rent="300.00")
    session.commit()

    for period in ("2026-03", "2026-04", "2026-05"):
        generate(celery_app, period)

    march = lines_of(engine, statement(engine, hid, pid, MAR)["id"])
    assert sorted(
        (ln["description"], ln["amount"]) for ln in march if ln["line_type"] == "management_fee"
    ) == [
        ("Management commission, 10.00% of gross rent", D("-70.00")),
        ("Management fee, 25.00 per stay", D("-50.00")),
        ("Minimum monthly management fee (300.00)", D("-180.00")),
    ]
    april = statement(engine, hid, pid, APR)
    assert april["gross_revenue"] == D("100.00") and april["management_fees"] == D("-300.00")
    may = statement(engine, hid, pid, MAY)  # no revenue: no minimum
    assert (may["gross_revenue"], may["management_fees"]) == (D("0.00"), D("0.00"))
    all_statements_total_their_lines(engine)


def test_co_owners_share_fees_taxes_and_the_flat_fee_to_the_cent(engine, session, celery_app):
    pid, owners = owned_property(
        session, ("33.33", "33.33", "33.34"), commission_pct="15",
        commission_flat_per_stay="25.01", cleaning_fee_to_owner=True, other_fees_to_owner=True,
    )  # fmt: skip
    f.reservation(session, pid, dt.date(2026, 2, 26), dt.date(2026, 3, 3), gross_rent="999.99",
                  cleaning_fee="100.01", other_fees="33.33", taxes="87.77",
                  channel_commission="14.99", source="vrbo")  # fmt: skip
    session.commit()
    generate(celery_app, "2026-02")
    generate(celery_app, "2026-03")

    with engine.connect() as conn:
        sums = conn.execute(
            text(
                "SELECT sum(amount) FILTER (WHERE line_type = 'rent'),"
                " sum(stay_channel_commission), sum(stay_cleaning_fee), sum(stay_other_fees),"
                " sum(stay_taxes),"
                " sum(amount) FILTER (WHERE line_type = 'cleaning_fee'),"
                " sum(amount) FILTER (WHERE line_type = 'other_fee'),"
                " sum(amount) FILTER (WHERE description LIKE '%per stay')"
                " FROM finance.owner_statement_lines"
            )
        ).one()
    assert tuple(sums) == (
        D("999.99"),
        D("14.99"),
        D("100.01"),
        D("33.33"),
        D("87.77"),
        D("100.01"),
        D("33.33"),
        D("-25.01"),  # the flat fee, split three ways, once, in February (the first night)
    )
    assert all(statement(engine, h, pid, FEB) for h in owners)
    all_statements_total_their_lines(engine)


def test_recurring_charges_are_on_each_statement_of_their_months(engine, session, celery_app):
    pid, (a, b) = owned_property(session, ("50.00", "50.00"))
    software = f.insert(session, "finance.owner_recurring_charges", homeowner_id=a,
                        property_id=pid, description="Channel manager software",
                        amount=D("49.99"), start_month=FEB, end_month=MAR).id  # fmt: skip
    plowing = f.insert(session, "finance.owner_recurring_charges", homeowner_id=a,
                       property_id=pid, description="Snow plowing", amount=D("120.00"),
                       start_month=JAN).id  # fmt: skip
    session.commit()

    for period in ("2026-01", "2026-02", "2026-03", "2026-04"):
        generate(celery_app, period)

    def charges(hid, month):
        return sorted(
            (ln["recurring_charge_id"], ln["amount"])
            for ln in lines_of(engine, statement(engine, hid, pid, month)["id"])
            if ln["line_type"] == "recurring_charge"
        )

    assert charges(a, JAN) == [(plowing, D("-120.00"))]
    assert charges(a, FEB) == sorted([(plowing, D("-120.00")), (software, D("-49.99"))])
    assert charges(a, MAR) == sorted([(plowing, D("-120.00")), (software, D("-49.99"))])
    assert charges(a, APR) == [(plowing, D("-120.00"))]
    assert all(charges(b, m) == [] for m in (JAN, FEB, MAR, APR))  # the co-owner's are not
    assert statement(engine, a, pid, FEB)["expenses"] == D("-169.99")
    all_statements_total_their_lines(engine)

    # Finalized, the charge is the manager's revenue (4030) out of the owner's balance.
    sid = statement(engine, a, pid, JAN)["id"]
    finalize(celery_app, sid)
    assert ledger(engine, statement(engine, a, pid, JAN)["transaction_id"]) == {
        "2000": (D("120.00"), D("0")),
        "2300": (D("0"), D("120.00")),
        "1300": (D("120.00"), D("0")),
        "4030": (D("0"), D("120.00")),
    }
    generate(celery_app, "2026-01", revise=True)  # nothing changed: no revision
    assert statement(engine, a, pid, JAN)["version"] == 1


def test_a_revision_draws_the_changed_taxes_and_fees(engine, session, celery_app):
    pid, (hid,) = owned_property(session, cleaning_fee_to_owner=True)
    stay = f.reservation(session, pid, dt.date(2026, 3, 2), dt.date(2026, 3, 6),
                         gross_rent="400.00", cleaning_fee="80.00",
                         taxes="40.00")  # fmt: skip
    guest_payment(session, stay, "520.00", dt.datetime(2026, 2, 1, tzinfo=UTC))
    session.commit()
    run_task(celery_app, "finance.post_payments")
    generate(celery_app, "2026-03")
    finalize(celery_app, statement(engine, hid, pid, MAR)["id"])
    assert balance(engine, "2100", reservation_id=stay) == 0
    # The guest is charged 10.00 more cleaning and 1.00 more tax, and pays it.
    session.execute(
        text("UPDATE reservations.reservations SET cleaning_fee = 90, taxes = 41 WHERE id = :r"),
        {"r": stay},
    )
    guest_payment(session, stay, "11.00", dt.datetime(2026, 4, 2, tzinfo=UTC))
    session.commit()
    run_task(celery_app, "finance.post_payments")

    generate(celery_app, "2026-03", revise=True)

    revision = statement(engine, hid, pid, MAR)
    assert revision["version"] == 2
    lines = lines_of(engine, revision["id"])
    (rent,) = [ln for ln in lines if ln["line_type"] == "rent"]
    assert (rent["amount"], rent["stay_cleaning_fee"], rent["stay_taxes"]) == (
        D("0.00"),
        D("10.00"),
        D("1.00"),
    )
    assert by_type(lines)["cleaning_fee"] == [D("10.00")]
    finalize(celery_app, revision["id"])
    assert ledger(engine, statement(engine, hid, pid, MAR)["transaction_id"]) == {
        "2100": (D("11.00"), D("0")),
        "2200": (D("0"), D("1.00")),
        "2000": (D("0"), D("10.00")),
    }
    assert balance(engine, "2100", reservation_id=stay) == 0
    assert_every_transaction_balances(engine)


# -- delivery ----------------------------------------------------------------------------------


def messages(engine) -> list:
    with engine.connect() as conn:
        return conn.execute(
            text(
                "SELECT channel, recipient, subject, body, related_type, related_id, dedupe_key"
                " FROM comms.messages ORDER BY created_at"
            )
        ).all()


def document(engine, statement_id):
    with engine.connect() as conn:
        return conn.execute(
            text("SELECT * FROM finance.owner_statement_documents WHERE statement_id = :s"),
            {"s": statement_id},
        ).one_or_none()


def test_finalizing_queues_one_email_with_the_pdf_stored(engine, session, celery_app):
    pid = f.property_(session, name="Sea Glass Cottage")
    hid = f.homeowner(session, statement_email="books@cpa.example.com")
    f.ownership(session, hid, pid)
    f.reservation(session, pid, dt.date(2026, 3, 2), dt.date(2026, 3, 6), gross_rent="500.00")
    session.commit()
    generate(celery_app, "2026-03")
    s = statement(engine, hid, pid, MAR)

    result = finalize(celery_app, s["id"])
    again = finalize(celery_app, s["id"])

    assert (result["document_stored"], result["email_queued"]) == (1, 1)
    assert again["already_final"] == 1
    (email,) = messages(engine)
    assert (email.channel, email.recipient, email.related_type, email.related_id) == (
        "email",
        "books@cpa.example.com",
        "owner_statement",
        s["id"],
    )
    assert email.dedupe_key == f"owner_statement:{s['id']}"
    number = s["statement_number"]
    assert number in email.subject and "Sea Glass Cottage" in email.subject
    assert f"{number}.pdf" in email.body and "Payout: USD 400.00" in email.body
    doc = document(engine, s["id"])
    assert (doc.filename, doc.content_type) == (f"{number}.pdf", "application/pdf")
    assert doc.content.startswith(b"%PDF-1.")
    assert doc.sha256 == hashlib.sha256(doc.content).hexdigest()
    drawn = pdf_text(doc.content)
    assert f"Owner statement {number}" in drawn and "Final" in drawn and "400.00" in drawn


def test_an_owner_without_any_email_gets_the_pdf_stored_and_no_email(engine, session, celery_app):
    pid = f.property_(session)
    contact = f.insert(session, "directory.contacts", first_name="No", last_name="Mail").id
    hid = f.insert(session, "directory.homeowners", contact_id=contact).id
    f.ownership(session, hid, pid)
    session.commit()
    generate(celery_app, "2026-03")

    result = finalize(celery_app, statement(engine, hid, pid, MAR)["id"])

    assert (result["document_stored"], result["email_queued"]) == (1, 0)
    assert messages(engine) == []


def test_a_revision_is_delivered_too(engine, session, celery_app):
    pid, (hid,) = owned_property(session)
    session.commit()
    generate(celery_app, "2026-03")
    first = statement(engine, hid, pid, MAR)
    finalize(celery_app, first["id"])
    f.insert(session, "service.ticket_costs", property_id=pid, cost_date=dt.date(2026, 3, 9),
             amount=D("40.00"), billable_to="owner", description="Late plumber")  # fmt: skip
    session.commit()
    generate(celery_app, "2026-03", revise=True)
    revision = statement(engine, hid, pid, MAR)

    finalize(celery_app, revision["id"])

    assert [m.related_id for m in messages(engine)] == [first["id"], revision["id"]]


# -- the worked example of docs/MONEY.md -------------------------------------------------------


def test_the_worked_example_of_one_stay_from_booking_to_payout(engine, session, celery_app):
    """docs/MONEY.md, step by step: the figures there are these."""
    pid = f.property_(session, code="SGC-1", timezone="America/New_York")
    hid = f.homeowner(session, statement_email="owner@example.com")
    f.ownership(session, hid, pid, commission_pct="20", commission_flat_per_stay="25.00",
                cleaning_fee_to_owner=False)  # fmt: skip
    stay = f.reservation(session, pid, dt.date(2026, 3, 10), dt.date(2026, 3, 14),
                         gross_rent="1200.00", cleaning_fee="150.00", other_fees="0.00",
                         taxes="162.00", channel_commission="0.00", source="direct",
                         confirmation_code="CM-104233")  # fmt: skip
    software = f.insert(session, "finance.owner_recurring_charges", homeowner_id=hid,
                        property_id=pid, description="Smart lock subscription",
                        amount=D("15.00"), start_month=JAN).id  # fmt: skip
    # 1. Booked on 2 February: a 50% deposit; the balance on 24 February.
    deposit = guest_payment(session, stay, "756.00", dt.datetime(2026, 2, 2, 18, tzinfo=UTC))
    rest = guest_payment(session, stay, "756.00", dt.datetime(2026, 2, 24, 18, tzinfo=UTC))
    session.commit()
    run_task(celery_app, "finance.post_payments", as_of="2026-02-28T12:00:00+00:00")

    def entry_of_payment(pid_):
        with engine.connect() as conn:
            return conn.execute(
                text("SELECT transaction_id FROM finance.guest_payments WHERE id = :p"),
                {"p": pid_},
            ).scalar_one()

    for p in (deposit, rest):
        assert ledger(engine, entry_of_payment(p)) == {
            "1010": (D("756.00"), D("0")),
            "2100": (D("0"), D("756.00")),
        }
    feb_end = dt.date(2026, 2, 28)
    assert balance(engine, "1010", upto=feb_end) == D("1512.00")
    assert balance(engine, "2100", upto=feb_end, reservation_id=stay) == D("-1512.00")

    # 2. The March statement: rent 1,200; commission 240 + 25 flat; the lock subscription.
    generate(celery_app, "2026-03")
    s = statement(engine, hid, pid, MAR)
    assert by_type(lines_of(engine, s["id"])) == {
        "rent": [D("1200.00")],
        "management_fee": [D("-240.00"), D("-25.00")],
        "recurring_charge": [D("-15.00")],
        "payout": [D("920.00")],
    }
    assert (s["gross_revenue"], s["net_income"], s["payout_amount"]) == (
        D("1200.00"),
        D("920.00"),
        D("920.00"),
    )
    assert [ln["recurring_charge_id"] for ln in lines_of(engine, s["id"]) if ln["line_type"]
            == "recurring_charge"] == [software]  # fmt: skip

    # 3. Finalized: the stay's 1,512 leaves the clearing account.
    finalize(celery_app, s["id"])
    s = statement(engine, hid, pid, MAR)
    assert ledger(engine, s["transaction_id"]) == {
        "2100": (D("1512.00"), D("0")),
        "2200": (D("0"), D("162.00")),
        "2000": (D("0"), D("920.00")),
        "2300": (D("0"), D("430.00")),  # 150 cleaning kept + 240 + 25 + 15
        "1300": (D("430.00"), D("0")),
        "4020": (D("0"), D("150.00")),
        "4000": (D("0"), D("265.00")),
        "4030": (D("0"), D("15.00")),
    }
    mar_end = dt.date(2026, 3, 31)
    assert balance(engine, "2100", reservation_id=stay) == 0  # paid and stated: nets to zero

    # 4. The payout, sent on 10 April.
    with engine.connect() as conn:
        payout = conn.execute(text("SELECT id FROM finance.owner_payouts")).scalar_one()
    run_task(celery_app, "finance.record_payout", payout_id=str(payout), status="sent",
             reference="ACH-20260410-77", as_of="2026-04-10T14:00:00+00:00")  # fmt: skip

    # Trust cash = owner balances + guest money + taxes payable + fees not yet transferred, at
    # each month end.
    for day, cash, owner, taxes, fees in (
        (feb_end, "1512.00", "0", "0", "0"),
        (mar_end, "1512.00", "920.00", "162.00", "430.00"),
        (dt.date(2026, 4, 30), "592.00", "0", "162.00", "430.00"),
    ):
        assert balance(engine, "1010", upto=day) == D(cash)
        assert -balance(engine, "2000", upto=day) == D(owner)
        assert -balance(engine, "2200", upto=day) == D(taxes)
        assert -balance(engine, "2300", upto=day) == D(fees)
        guest = -balance(engine, "2100", upto=day)
        assert D(cash) == D(owner) + guest + D(taxes) + D(fees)
    assert_every_transaction_balances(engine)


def test_a_revision_of_a_statement_finalized_before_the_upgrade_posts_as_it_did(
    engine, session, celery_app
):
    """A final statement from before revision 0013 has rent lines without stay shares (it drew
    the rent alone and posted the channel commission to 5000). Revised, its change of channel
    commission still goes to 5000, and the revision balances."""
    pid, (hid,) = owned_property(session)
    stay = f.reservation(session, pid, dt.date(2026, 3, 2), dt.date(2026, 3, 6),
                         gross_rent="1000.00", channel_commission="30.00", taxes="50.00",
                         source="airbnb")  # fmt: skip
    old = f.insert(session, "finance.owner_statements", homeowner_id=hid, property_id=pid,
                   period_start=MAR, period_end=APR, gross_revenue=D("1000.00"),
                   channel_fees=D("-30.00"), management_fees=D("-200.00"),
                   net_income=D("770.00"), payout_amount=D("770.00")).id  # fmt: skip
    for line_type, amount, description, reservation in (
        ("rent", "1000.00", "stay", stay),
        ("channel_fee", "-30.00", "Channel commission, airbnb", None),
        ("management_fee", "-200.00", "Management commission, 20.00% of gross rent", None),
        ("payout", "770.00", "Payout", None),
    ):
        f.insert(session, "finance.owner_statement_lines", statement_id=old, line_type=line_type,
                 amount=D(amount), description=description, reservation_id=reservation,
                 nights=4 if reservation else None)  # fmt: skip
    session.execute(
        text(
            "UPDATE finance.owner_statements SET status = 'final', finalized_at = now()"
            " WHERE id = :s"
        ),
        {"s": old},
    )
    session.execute(
        text("UPDATE reservations.reservations SET channel_commission = 40 WHERE id = :r"),
        {"r": stay},
    )
    session.commit()

    generate(celery_app, "2026-03", revise=True)
    revision = statement(engine, hid, pid, MAR)
    assert by_type(lines_of(engine, revision["id"])) == {"channel_fee": [D("-10.00")]}
    finalize(celery_app, revision["id"])

    assert ledger(engine, statement(engine, hid, pid, MAR)["transaction_id"]) == {
        "2000": (D("10.00"), D("0")),
        "5000": (D("0"), D("10.00")),
    }
