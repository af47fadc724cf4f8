"""The money math of owner statements (tasks.statements.money), property-based.

Random stays spanning month and year ends, owner splits (33.33/33.33/33.34 among them),
ownership changes in the middle of a stay, costs with markup: cents are never lost or invented.
"""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tasks.statements.money import (
    INCOME_TYPES,
    TRUST_ACCOUNTS,
    Cost,
    Line,
    Relationship,
    Stay,
    add_months,
    largest_remainder,
    largest_remainder_cents,
    ledger_postings,
    management_fee,
    month_shares,
    month_start,
    owner_split_cents,
    parse_period,
    previous_period,
    reference_lines,
    segments,
    split_among_owners,
    statement_totals,
    stay_shares,
)

PROPERTY = uuid.UUID("00000000-0000-7000-8000-000000000001")
CENT = Decimal("0.01")

# Shares of one property: each tuple sums to 100.
SPLITS = (
    ("100.00",),
    ("50.00", "50.00"),
    ("60.00", "40.00"),
    ("33.33", "33.33", "33.34"),
    ("33.34", "33.33", "33.33"),
    ("0.01", "99.99"),
    ("25.00", "25.00", "25.00", "25.00"),
    ("12.50", "37.50", "49.99", "0.01"),
)

money = st.integers(min_value=0, max_value=5_000_000).map(lambda c: Decimal(c) / 100)
signed_money = st.integers(min_value=-500_000, max_value=500_000).map(lambda c: Decimal(c) / 100)
# Check-ins clustered around month and year ends (Dec 2025 - Mar 2026 and a leap February).
check_ins = st.one_of(
    st.dates(min_value=dt.date(2025, 12, 20), max_value=dt.date(2026, 1, 5)),
    st.dates(min_value=dt.date(2028, 2, 20), max_value=dt.date(2028, 3, 5)),
    st.dates(min_value=dt.date(2025, 11, 1), max_value=dt.date(2026, 4, 30)),
)


def uid() -> uuid.UUID:
    return uuid.uuid4()


@st.composite
def stays(draw, property_id: uuid.UUID = PROPERTY) -> Stay:
    check_in = draw(check_ins)
    nights = draw(st.integers(min_value=1, max_value=70))
    gross = draw(money)
    channel = draw(st.integers(min_value=0, max_value=to_cents(gross))) if gross else 0
    return Stay(
        uuid.UUID(int=draw(st.integers(min_value=1, max_value=2**120))),
        property_id,
        check_in,
        check_in + dt.timedelta(days=nights),
        gross,
        Decimal(channel) / 100,
        draw(st.sampled_from(("direct", "airbnb", "vrbo", "booking_com"))),
    )


def to_cents(value: Decimal) -> int:
    return int(value * 100)


@st.composite
def ownerships(draw, property_id: uuid.UUID = PROPERTY) -> list[Relationship]:
    """The owners of one property: one split for all time, or a sale on a random date (the
    seller's relationship ends the day the buyers' start)."""
    terms = st.fixed_dictionaries(
        {
            "commission_pct": st.sampled_from(("0.00", "15.00", "20.00", "22.50", "33.33")),
            "commission_base": st.sampled_from(("gross_rent", "net_rent")),
            "revenue_recognition": st.sampled_from(("by_night", "by_checkout")),
            "reserve_amount": st.sampled_from(("0.00", "250.00", "500.00")),
        }
    )

    def owners(split: tuple[str, ...], start: dt.date, end: dt.date | None) -> list[Relationship]:
        t = draw(terms)
        return [
            Relationship(
                # Random, never drawn: shrinking would make two owners share an id.
                id=uid(),
                homeowner_id=uid(),
                property_id=property_id,
                ownership_pct=Decimal(pct),
                commission_pct=Decimal(t["commission_pct"]),
                commission_base=t["commission_base"],
                revenue_recognition=t["revenue_recognition"],
                reserve_amount=Decimal(t["reserve_amount"]),
                start_date=start,
                end_date=end,
            )
            for pct in split
        ]

    start = dt.date(2020, 1, 1)
    first = draw(st.sampled_from(SPLITS))
    if not draw(st.booleans()):
        return owners(first, start, None)
    sold_on = draw(st.dates(min_value=dt.date(2025, 12, 1), max_value=dt.date(2026, 3, 31)))
    return owners(first, start, sold_on) + owners(draw(st.sampled_from(SPLITS)), sold_on, None)


# -- the largest-remainder method ------------------------------------------------------------


@given(
    total=st.integers(min_value=-(10**9), max_value=10**9),
    weights=st.lists(st.integers(min_value=0, max_value=10_000), min_size=1, max_size=12).filter(
        lambda w: sum(w) > 0
    ),
)
def test_parts_sum_to_the_whole_and_each_is_within_a_cent_of_its_quota(total, weights):
    parts = largest_remainder_cents(total, weights)
    assert sum(parts) == total
    for part, w in zip(parts, weights, strict=True):
        exact = Decimal(total * w) / sum(weights)
        assert exact - 1 < part < exact + 1 or part == exact
    # Deterministic.
    assert parts == largest_remainder_cents(total, weights)


def test_thirds_the_odd_cent_goes_to_the_largest_remainder_then_the_earlier_part():
    assert largest_remainder(Decimal("100.00"), [1, 1, 1]) == [
        Decimal("33.34"),
        Decimal("33.33"),
        Decimal("33.33"),
    ]
    assert largest_remainder(Decimal("0.02"), [1, 1, 1]) == [
        Decimal("0.01"),
        Decimal("0.01"),
        Decimal("0.00"),
    ]
    # 33.33 / 33.33 / 33.34 of 100.00 is exact.
    assert owner_split_cents(10000, [3333, 3333, 3334]) == [3333, 3333, 3334]
    # Of 1.00: quotas .3333, .3333, .3334 -> the last has the largest remainder.
    assert owner_split_cents(100, [3333, 3333, 3334]) == [33, 33, 34]


def test_negative_totals_split_exactly():
    assert largest_remainder_cents(-100, [1, 1, 1]) == [-33, -33, -34]
    assert sum(largest_remainder_cents(-7, [3, 5])) == -7


def test_owners_holding_less_than_100_percent_never_get_the_missing_share():
    # Two owners at 40% each (bad data): 80% of the amount is paid, 20% belongs to nobody.
    parts = owner_split_cents(10001, [4000, 4000])
    assert parts == [4000, 4000] or sorted(parts) == [4000, 4001]
    assert sum(parts) <= 8001


@given(total=st.integers(min_value=0, max_value=10**8), split=st.sampled_from(SPLITS))
def test_owner_split_sums_exactly_when_the_owners_hold_100_percent(total, split):
    weights = [int(Decimal(p) * 100) for p in split]
    parts = owner_split_cents(total, weights)
    assert sum(parts) == total
    for part, w in zip(parts, weights, strict=True):
        assert abs(part * 10000 - total * w) < 10000


def test_the_odd_cent_of_a_50_50_split_is_not_always_the_same_owners():
    a, b = uid(), uid()
    rels = {
        a: Relationship(a, uid(), PROPERTY, Decimal("50")),
        b: Relationship(b, uid(), PROPERTY, Decimal("50")),
    }
    winners = set()
    for _ in range(40):
        parts = split_among_owners(Decimal("0.01"), [a, b], rels, uid())
        assert sum(parts.values()) == Decimal("0.01")
        winners.add(max(parts, key=parts.get))
    assert winners == {a, b}


# -- stays across months ---------------------------------------------------------------------


def test_a_stay_across_a_month_end_is_prorated_by_night():
    rel = Relationship(uid(), uid(), PROPERTY, Decimal("100"))
    stay = Stay(uid(), PROPERTY, dt.date(2026, 1, 30), dt.date(2026, 2, 2), Decimal("100.00"))
    assert month_shares(stay, [rel]) == {
        dt.date(2026, 1, 1): Decimal("66.67"),
        dt.date(2026, 2, 1): Decimal("33.33"),
    }


def test_a_stay_across_a_year_end_split_three_ways():
    owners = [Relationship(uid(), uid(), PROPERTY, Decimal(p)) for p in ("33.33", "33.33", "33.34")]
    stay = Stay(uid(), PROPERTY, dt.date(2025, 12, 29), dt.date(2026, 1, 3), Decimal("1000.01"))
    shares = stay_shares(stay, owners)
    december = sum(s.rent for (r, m), s in shares.items() if m == dt.date(2025, 12, 1))
    january = sum(s.rent for (r, m), s in shares.items() if m == dt.date(2026, 1, 1))
    # 3 of 5 nights in December: 600.006 -> 600.01; January 400.00.
    assert (december, january) == (Decimal("600.01"), Decimal("400.00"))
    assert sorted(s.rent for (r, m), s in shares.items() if m == dt.date(2026, 1, 1)) == [
        Decimal("133.32"),
        Decimal("133.32"),
        Decimal("133.36"),
    ]


def test_by_checkout_recognises_the_whole_stay_in_the_check_out_month():
    rel = Relationship(uid(), uid(), PROPERTY, Decimal("100"), revenue_recognition="by_checkout")
    stay = Stay(uid(), PROPERTY, dt.date(2026, 1, 28), dt.date(2026, 2, 3), Decimal("600.00"))
    assert {m: s.rent for (r, m), s in stay_shares(stay, [rel]).items()} == {
        dt.date(2026, 2, 1): Decimal("600.00")
    }
    (share,) = stay_shares(stay, [rel]).values()
    assert share.nights == 6


def test_by_checkout_of_an_owner_who_sold_mid_stay_lands_in_their_last_month():
    sold = dt.date(2026, 2, 1)
    seller = Relationship(
        uid(), uid(), PROPERTY, Decimal("100"), revenue_recognition="by_checkout", end_date=sold
    )
    buyer = Relationship(uid(), uid(), PROPERTY, Decimal("100"), start_date=sold)
    stay = Stay(uid(), PROPERTY, dt.date(2026, 1, 29), dt.date(2026, 2, 4), Decimal("600.00"))
    shares = stay_shares(stay, [seller, buyer])
    assert shares[(seller.id, dt.date(2026, 1, 1))].rent == Decimal("300.00")
    assert shares[(buyer.id, dt.date(2026, 2, 1))].rent == Decimal("300.00")


def test_management_commission_on_gross_or_net_rent():
    gross = Relationship(uid(), uid(), PROPERTY, Decimal("100"), commission_pct=Decimal("20"))
    net = Relationship(
        uid(), uid(), PROPERTY, Decimal("100"), commission_pct=Decimal("20"),
        commission_base="net_rent",
    )  # fmt: skip
    stay = Stay(
        uid(), PROPERTY, dt.date(2026, 3, 1), dt.date(2026, 3, 4), Decimal("1000.00"),
        Decimal("150.00"),
    )  # fmt: skip
    (g,) = stay_shares(stay, [gross]).values()
    (n,) = stay_shares(stay, [net]).values()
    assert management_fee([(gross, g)]) == Decimal("200.00")
    assert management_fee([(net, n)]) == Decimal("170.00")
    # Rounded half up per line: 15% of 0.03 = 0.0045 -> 0.00; of 0.10 = 0.015 -> 0.02.
    tiny = Relationship(uid(), uid(), PROPERTY, Decimal("100"), commission_pct=Decimal("15"))
    for rent, fee in (("0.03", "0.00"), ("0.10", "0.02")):
        s = Stay(uid(), PROPERTY, dt.date(2026, 3, 1), dt.date(2026, 3, 2), Decimal(rent))
        (share,) = stay_shares(s, [tiny]).values()
        assert management_fee([(tiny, share)]) == Decimal(fee)


@settings(max_examples=400)
@given(stay=stays(), rels=ownerships())
def test_a_stay_sums_exactly_to_its_gross_rent_across_months_and_owners(stay, rels):
    months = month_shares(stay, rels)
    assert sum(months.values()) == stay.gross_rent
    # Every night is owned (each split sums to 100): the owners' shares over all months are
    # the whole rent and the whole channel commission, whatever their recognition.
    shares = stay_shares(stay, rels)
    assert sum(s.rent for s in shares.values()) == stay.gross_rent
    assert sum(s.channel for s in shares.values()) == stay.channel_commission
    # The by-night owners' shares of a month are exactly that month's share of the stay.
    by_id = {r.id: r for r in rels}
    if all(r.revenue_recognition == "by_night" for r in rels):
        for month, amount in months.items():
            owners = sum(s.rent for (r, m), s in shares.items() if m == month)
            assert owners == amount
    # Each month's share is within a cent of its nights' exact share.
    for seg in segments(stay, rels):
        assert seg.nights >= 1 and month_start(seg.first_night) == seg.month
    for month, amount in months.items():
        nights = sum(s.nights for s in segments(stay, rels) if s.month == month)
        exact = stay.gross_rent * nights / stay.nights
        assert abs(amount - exact) < CENT * len(months)
    assert all(rel_id in by_id for rel_id, _ in shares)


@settings(max_examples=300)
@given(
    stay=stays(),
    rels=ownerships(),
    fees=st.tuples(money, money, money),
    flat=st.sampled_from(("0.00", "25.00", "25.01", "99.99")),
)
def test_fees_taxes_and_the_flat_fee_split_exactly_and_once(stay, rels, fees, flat):
    """SPEC 7.5: a stay's cleaning fee, other fees and taxes reach its owners exactly, like its
    rent; the flat fee per stay is charged once, whole, with the first night."""
    from dataclasses import replace

    cleaning, other, taxes = fees
    stay = replace(stay, cleaning_fee=cleaning, other_fees=other, taxes=taxes)
    rels = [replace(r, commission_flat_per_stay=Decimal(flat)) for r in rels]
    shares = stay_shares(stay, rels)
    assert sum(s.cleaning for s in shares.values()) == cleaning
    assert sum(s.other for s in shares.values()) == other
    assert sum(s.taxes for s in shares.values()) == taxes
    assert sum(s.flat for s in shares.values()) == Decimal(flat)
    first_night_owners = {r.id for r in rels if r.in_force(stay.check_in)}
    assert {rel_id for (rel_id, _), s in shares.items() if s.flat} <= first_night_owners


# -- statements ------------------------------------------------------------------------------


@st.composite
def costs(draw) -> Cost:
    return Cost(
        uid(),
        PROPERTY,
        draw(st.dates(min_value=dt.date(2025, 12, 1), max_value=dt.date(2026, 3, 31))),
        draw(money),
        Decimal(draw(st.sampled_from(("0", "10", "12.5", "15", "33.33")))),
    )


@settings(max_examples=200)
@given(
    rels=ownerships(),
    stay_list=st.lists(stays(), max_size=8),
    cost_list=st.lists(costs(), max_size=4),
    opening=signed_money,
    adjustment=signed_money,
)
def test_statements_total_their_lines_and_the_ledger_balances(
    rels, stay_list, cost_list, opening, adjustment
):
    months = [dt.date(2025, 11, 1)] + [add_months(dt.date(2025, 11, 1), i) for i in range(1, 8)]
    rent_seen = Decimal(0)
    for period_start in months:
        per_key = reference_lines(period_start, rels, stay_list, cost_list)
        for key, lines in per_key.items():
            lines = [*lines, Line("adjustment", adjustment, adjustment_id=uid())]
            reserve = max(r.reserve_amount for r in rels if (r.homeowner_id, r.property_id) == key)
            t = statement_totals(lines, opening, reserve)
            sums = {k: sum((ln.amount for ln in t.lines if ln.line_type == k), Decimal(0))
                    for k in (*INCOME_TYPES, "reserve", "payout")}  # fmt: skip
            assert t.gross_revenue == sums["rent"]
            assert t.channel_fees == sums["channel_fee"] <= 0
            assert t.expenses == sums["expense"] <= 0
            assert t.adjustments == sums["adjustment"]
            assert t.management_fees == sums["management_fee"]
            assert t.net_income == sum(sums[k] for k in INCOME_TYPES)
            assert t.payout_amount == sums["payout"] >= 0
            assert t.reserve_held == sums["reserve"]
            assert t.closing_balance == t.opening_balance + t.net_income - t.payout_amount
            assert 0 <= t.reserve_held <= reserve
            assert t.payout_amount == max(0, t.balance_before_payout - reserve)
            postings = ledger_postings(t.lines)
            assert sum(p.debit for p in postings) == sum(p.credit for p in postings)
            assert all((p.debit > 0) != (p.credit > 0) for p in postings)
            rent_seen += t.gross_revenue
    # Every stay that starts and ends inside the months covered is recognised exactly once.
    inside = [s for s in stay_list if s.check_in >= months[0] and s.check_out < months[-1]]
    if len(inside) == len(stay_list):
        assert rent_seen == sum((s.gross_rent for s in stay_list), Decimal(0))


def test_ledger_postings_of_a_statement():
    r = uid()
    # The rent line carries the stay's channel commission (kept by the channel, SPEC 7.5),
    # cleaning fee (the owner's: its own line) and taxes.
    lines = [
        Line(
            "rent",
            Decimal("1000.00"),
            reservation_id=r,
            nights=4,
            stay_channel=Decimal("30.00"),
            stay_cleaning=Decimal("150.00"),
            stay_other=Decimal("0.00"),
            stay_taxes=Decimal("120.00"),
        ),  # fmt: skip
        Line("cleaning_fee", Decimal("150.00"), reservation_id=r),
        Line("channel_fee", Decimal("-30.00")),
        Line("management_fee", Decimal("-200.00")),
        Line("expense", Decimal("-110.00"), ticket_cost_id=uid()),
        Line("recurring_charge", Decimal("-15.00"), recurring_charge_id=uid()),
        Line("adjustment", Decimal("25.00"), adjustment_id=uid()),
        Line("payout", Decimal("820.00")),
    ]
    postings = {(p.account_code, p.debit, p.credit) for p in ledger_postings(lines)}
    d = Decimal
    assert postings == {
        ("2100", d("1240.00"), d("0")),  # 1000 + 150 + 120 - 30 leaves the clearing
        ("2200", d("0"), d("120.00")),  # taxes payable
        ("2000", d("0"), d("820.00")),  # 1000 + 150 - 30 - 200 - 110 - 15 + 25
        ("2300", d("0"), d("300.00")),  # the manager's: 200 + 110 + 15 - 25
        ("1300", d("300.00"), d("0")),
        ("4000", d("0"), d("200.00")),
        ("4010", d("0"), d("110.00")),
        ("4010", d("25.00"), d("0")),
        ("4030", d("0"), d("15.00")),
    }
    # The trust accounts balance by themselves: 1240 = 120 + 820 + 300.
    trust = [p for p in ledger_postings(lines) if p.account_code in TRUST_ACCOUNTS]
    assert sum(p.debit for p in trust) == sum(p.credit for p in trust)


def test_channel_commission_not_drawn_with_a_stay_posts_to_5000_as_before():
    """A revision of a statement finalized before SPEC 7.5: its rent lines carry no stay
    shares, so a change of channel commission is posted as it was then."""
    lines = [Line("channel_fee", Decimal("-10.00"))]
    postings = {(p.account_code, p.debit, p.credit) for p in ledger_postings(lines)}
    assert postings == {
        ("5000", Decimal("0"), Decimal("10.00")),
        ("2000", Decimal("10.00"), Decimal("0")),
    }


def test_fees_the_manager_keeps_are_guest_fee_revenue():
    r = uid()
    lines = [
        Line(
            "rent",
            Decimal("500.00"),
            reservation_id=r,
            stay_channel=Decimal("0"),
            stay_cleaning=Decimal("90.00"),
            stay_other=Decimal("10.00"),
            stay_taxes=Decimal("0"),
        ),  # fmt: skip
        Line("other_fee", Decimal("10.00"), reservation_id=r),
    ]
    postings = {(p.account_code, p.debit, p.credit) for p in ledger_postings(lines)}
    d = Decimal
    assert postings == {
        ("2100", d("600.00"), d("0")),
        ("2000", d("0"), d("510.00")),
        ("2300", d("0"), d("90.00")),
        ("1300", d("90.00"), d("0")),
        ("4020", d("0"), d("90.00")),
    }


def test_a_negative_balance_is_carried_not_paid():
    t = statement_totals([Line("expense", Decimal("-400.00"))], Decimal("100.00"), Decimal("0"))
    assert (t.net_income, t.payout_amount, t.closing_balance) == (
        Decimal("-400.00"),
        Decimal("0.00"),
        Decimal("-300.00"),
    )
    later = statement_totals([Line("rent", Decimal("1000.00"))], t.closing_balance, Decimal(0))
    assert (later.payout_amount, later.closing_balance) == (Decimal("700.00"), Decimal("0.00"))


def test_the_reserve_is_held_back_before_paying_out():
    t = statement_totals([Line("rent", Decimal("800.00"))], Decimal("0"), Decimal("500.00"))
    assert (t.reserve_held, t.payout_amount, t.closing_balance) == (
        Decimal("500.00"),
        Decimal("300.00"),
        Decimal("500.00"),
    )
    short = statement_totals([Line("rent", Decimal("300.00"))], Decimal("0"), Decimal("500.00"))
    assert (short.reserve_held, short.payout_amount, short.closing_balance) == (
        Decimal("300.00"),
        Decimal("0.00"),
        Decimal("300.00"),
    )


def test_costs_are_billed_with_markup_and_split_among_owners():
    owners = [Relationship(uid(), uid(), PROPERTY, Decimal(p)) for p in ("33.33", "33.33", "33.34")]
    cost = Cost(uid(), PROPERTY, dt.date(2026, 1, 15), Decimal("185.00"), Decimal("10.00"))
    assert cost.billed_amount == Decimal("203.50")
    lines = reference_lines(dt.date(2026, 1, 1), owners, [], [cost])
    by_pct = {
        owner.ownership_pct: ln.amount
        for owner in owners
        for ln in lines[(owner.homeowner_id, PROPERTY)]
    }
    # Quotas 67.8266, 67.8266, 67.8469: floors leave 2 cents, to the 33.34% owner (largest
    # remainder) and to one of the two 33.33% owners.
    assert by_pct[Decimal("33.34")] == Decimal("-67.85")
    amounts = sorted(ln.amount for key_lines in lines.values() for ln in key_lines)
    assert amounts == [Decimal("-67.85"), Decimal("-67.83"), Decimal("-67.82")]


@pytest.mark.parametrize(
    ("as_of", "period"),
    [
        (dt.datetime(2026, 3, 1, 6, 0, tzinfo=dt.UTC), "2026-02"),
        (dt.datetime(2026, 1, 1, 6, 0, tzinfo=dt.UTC), "2025-12"),
        # 20:00 on 31 January in New York is already February in UTC.
        (dt.datetime(2026, 1, 31, 20, 0, tzinfo=dt.timezone(dt.timedelta(hours=-5))), "2026-01"),
    ],
)
def test_the_default_period_is_the_month_before_as_of_in_utc(as_of, period):
    assert previous_period(as_of) == period


def test_parse_period():
    assert parse_period("2026-12") == (dt.date(2026, 12, 1), dt.date(2027, 1, 1))
