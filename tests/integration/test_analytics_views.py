"""The analytics views against a small data set whose every figure is worked out by hand.

Each figure below is computed in the comments from the rows inserted here, following the
definitions in docs/ANALYTICS.md, and compared with what the views hold after a real
`analytics.refresh`. Three properties and three guests over January-April 2026:

P1 (active, America/New_York), nights by date (January has 31 days):
    A  guest  direct       Jan 10-15  5 n  rent 1000.00  cleaning 150            G1
    H  guest  booking_com  Jan 12-14  2 n  rent  400.00  commission 60.00        G3 (double
                                                          booking inside A)
    C  owner_stay          Jan 20-25  5 n                                        owner contact
    D  block               Jan 23-27  4 n  (overlaps C on the 23rd and 24th)
    E  guest  vrbo         Jan 26-28  2 n  rent  500.00  cleaning 80, comm 40    G2 (first
                                                          night over the block D)
    B  guest  airbnb       Jan 29-Feb 3  5 n  rent 1000.00  cleaning 100 + other 20,
                                                          commission 33.33       G1
    I  guest  direct       Feb 27-Apr 2  34 n  rent 1000.00  cleaning 200,
                                                          commission 100.00      G3
    F  guest  direct       Jan 5-8   cancelled: counts nowhere                   G1
    G  guest  direct       Feb 10-12 inquiry: not a booking, counts nowhere      G2
P2 (active, Pacific/Honolulu):
    J  guest  direct       Jan 31-Feb 2  2 n  rent 100.01                        G2
    L  block               Apr 1-May 1  30 n
P3 (offboarded, America/New_York):
    K  guest  direct       Jan 5-7  2 n  rent 300.00                             G1
P4 (offboarded, no stays): no rows anywhere.
"""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal

import pytest
from sqlalchemy import text

from tests.support import factories as f

D = Decimal
UTC = dt.UTC
NIL = uuid.UUID("00000000-0000-0000-0000-000000000000")  # "no team"


def day(month: int, d: int, year: int = 2026) -> dt.date:
    return dt.date(year, month, d)


def at(month: int, d: int, hour: int = 12, minute: int = 0, year: int = 2026) -> dt.datetime:
    return dt.datetime(year, month, d, hour, minute, tzinfo=UTC)


@pytest.fixture
def stays(session, celery_app):
    """The stays of the module docstring, committed, and the views refreshed."""
    p1 = f.property_(session, code="P1", timezone="America/New_York")
    p2 = f.property_(session, code="P2", timezone="Pacific/Honolulu")
    p3 = f.property_(session, code="P3", status="offboarded")
    f.property_(session, code="P4", status="offboarded")
    g1, g2, g3, owner = (f.contact(session) for _ in range(4))
    r = f.reservation
    # Booked 2025-12-20 15:00 UTC = 10:00 in New York: booked date Dec 20, lead time 21 days.
    r(
        session,
        p1,
        day(1, 10),
        day(1, 15),
        source="direct",
        gross_rent="1000.00",
        cleaning_fee=D("150.00"),
        booked_at=at(12, 20, 15, year=2025),
        guest_contact_id=g1,
    )  # A
    # Booked 2026-01-02 12:00 UTC: Jan 2 in New York, lead time 10 days.
    r(
        session,
        p1,
        day(1, 12),
        day(1, 14),
        source="booking_com",
        gross_rent="400.00",
        channel_commission=D("60.00"),
        booked_at=at(1, 2),
        guest_contact_id=g3,
    )  # H
    r(
        session,
        p1,
        day(1, 20),
        day(1, 25),
        reservation_type="owner_stay",
        source="owner",
        gross_rent="0",
        guest_contact_id=owner,
    )  # C
    r(
        session,
        p1,
        day(1, 23),
        day(1, 27),
        reservation_type="block",
        source="owner",
        gross_rent="0",
    )  # D
    # Booked 2026-01-16 12:00 UTC: lead time 10 days.
    r(
        session,
        p1,
        day(1, 26),
        day(1, 28),
        source="vrbo",
        gross_rent="500.00",
        cleaning_fee=D("80.00"),
        channel_commission=D("40.00"),
        booked_at=at(1, 16),
        guest_contact_id=g2,
    )  # E
    # Booked 2026-01-01 03:00 UTC = Dec 31 22:00 in New York: booked date Dec 31 (the
    # property's local date, not the UTC one), lead time 29 days (not 28).
    r(
        session,
        p1,
        day(1, 29),
        day(2, 3),
        source="airbnb",
        status="checked_out",
        gross_rent="1000.00",
        cleaning_fee=D("100.00"),
        other_fees=D("20.00"),
        taxes=D("134.40"),
        channel_commission=D("33.33"),
        booked_at=at(1, 1, 3),
        guest_contact_id=g1,
    )  # B
    # Booked 2026-01-28 12:00 UTC: lead time 30 days.
    r(
        session,
        p1,
        day(2, 27),
        day(4, 2),
        source="direct",
        gross_rent="1000.00",
        cleaning_fee=D("200.00"),
        channel_commission=D("100.00"),
        booked_at=at(1, 28),
        guest_contact_id=g3,
    )  # I
    r(
        session,
        p1,
        day(1, 5),
        day(1, 8),
        status="cancelled",
        gross_rent="900.00",
        guest_contact_id=g1,
    )  # F
    r(
        session,
        p1,
        day(2, 10),
        day(2, 12),
        status="inquiry",
        gross_rent="250.00",
        guest_contact_id=g2,
    )  # G
    # Booked 2026-01-31 05:00 UTC = Jan 30 19:00 in Honolulu: lead time 1 day (0 in UTC).
    r(
        session,
        p2,
        day(1, 31),
        day(2, 2),
        source="direct",
        gross_rent="100.01",
        booked_at=at(1, 31, 5),
        guest_contact_id=g2,
    )  # J
    r(
        session, p2, day(4, 1), day(5, 1), reservation_type="block", source="owner", gross_rent="0"
    )  # L
    # Booked 2025-12-01 12:00 UTC: lead time 35 days.
    r(
        session,
        p3,
        day(1, 5),
        day(1, 7),
        source="direct",
        status="checked_out",
        gross_rent="300.00",
        booked_at=at(12, 1, year=2025),
        guest_contact_id=g1,
    )  # K
    session.commit()
    result = celery_app.tasks["analytics.refresh"].apply(kwargs={"force": True})
    assert result.successful(), result.result
    return {"p1": p1, "p2": p2, "p3": p3, "g1": g1, "g2": g2, "g3": g3, "owner": owner}


def rows(session, sql: str, key: tuple[str, ...]) -> dict:
    out = {}
    for row in session.execute(text(sql)).mappings():
        out[tuple(row[k] for k in key) if len(key) > 1 else row[key[0]]] = dict(row)
    return out


PERF_COLUMNS = (
    "nights_in_month",
    "owner_block_nights",
    "available_nights",
    "booked_nights",
    "occupancy",
    "revenue",
    "adr",
    "revpar",
)


def test_property_performance_by_month(session, stays):
    perf = rows(
        session, "SELECT * FROM analytics.property_performance_mv", ("property_id", "month")
    )
    p1, p2, p3 = stays["p1"], stays["p2"], stays["p3"]
    # Rows: every property not offboarded (P1, P2) for every month with a live night anywhere
    # (Jan-Apr; the block L's nights end on Apr 30), plus P3's one month with a stay.
    assert sorted((k[0], k[1].month) for k in perf) == sorted(
        [(p, m) for p in (p1, p2) for m in (1, 2, 3, 4)] + [(p3, 1)]
    )
    expected = {
        # P1 January. Guest nights: A 10-14, H 12-13 (inside A: counted once), E 26-27,
        # B 29-31 -> 5 + 2 + 3 = 10 booked. Owner/block nights: C 20-24 and D 23-26 cover
        # 20..26, but the 26th is sold to E (a guest night over a block is booked): 6.
        # Available 31 - 6 = 25; occupancy 10/25 = 0.4. Revenue by night: A 1000 + H 400 +
        # E 500 + B's 3 of 5 nights 600 = 2500; ADR 2500/10 = 250; RevPAR 2500/25 = 100.
        (p1, day(1, 1)): (31, 6, 25, 10, D("0.4000"), D("2500.00"), D("250.00"), D("100.00")),
        # P1 February: B Feb 1-2 and I Feb 27-28 -> 4 booked of 28; 4/28 = 0.142857.
        # Revenue: B 2/5 of 1000 = 400 + I's February share 58.82 (see the revenue test)
        # = 458.82; ADR 458.82/4 = 114.705 -> 114.71; RevPAR 458.82/28 = 16.386 -> 16.39.
        (p1, day(2, 1)): (28, 0, 28, 4, D("0.1429"), D("458.82"), D("114.71"), D("16.39")),
        # P1 March: I every night, 31 of 31. Revenue 911.77; ADR = RevPAR = 911.77/31 = 29.41.
        (p1, day(3, 1)): (31, 0, 31, 31, D("1.0000"), D("911.77"), D("29.41"), D("29.41")),
        # P1 April: I's last night, Apr 1: 1 of 30 = 0.0333; revenue 29.41; RevPAR 0.98.
        (p1, day(4, 1)): (30, 0, 30, 1, D("0.0333"), D("29.41"), D("29.41"), D("0.98")),
        # P2 January: J's Jan 31: 1/31 = 0.032258; its January share of 100.01 is 50.01 (the
        # odd cent goes to the earlier of two equal remainders); RevPAR 50.01/31 = 1.613.
        (p2, day(1, 1)): (31, 0, 31, 1, D("0.0323"), D("50.01"), D("50.01"), D("1.61")),
        # P2 February: J's Feb 1: 1/28 = 0.0357; 50.00; RevPAR 50/28 = 1.786.
        (p2, day(2, 1)): (28, 0, 28, 1, D("0.0357"), D("50.00"), D("50.00"), D("1.79")),
        # P2 March: no stay; a row all the same: occupancy 0, ADR undefined (no night sold).
        (p2, day(3, 1)): (31, 0, 31, 0, D("0.0000"), D("0.00"), None, D("0.00")),
        # P2 April: blocked every night: nothing available, occupancy and RevPAR undefined.
        (p2, day(4, 1)): (30, 30, 0, 0, None, D("0.00"), None, None),
        # P3 (offboarded) January only: K's 2 nights of 31 = 0.0645; 300; ADR 150; 9.677.
        (p3, day(1, 1)): (31, 0, 31, 2, D("0.0645"), D("300.00"), D("150.00"), D("9.68")),
    }
    for key, values in expected.items():
        assert tuple(perf[key][c] for c in PERF_COLUMNS) == values, key


def test_revenue_summary_by_month_property_and_source(session, stays):
    rev = rows(
        session,
        "SELECT * FROM analytics.revenue_summary_mv",
        ("month", "property_id", "source"),
    )
    p1, p2, p3 = stays["p1"], stays["p2"], stays["p3"]
    cols = ("gross_rent", "fees", "commissions", "net")
    expected = {
        # A: rent 1000, cleaning 150 (fees at check-in), no commission: net 1150. F is
        # cancelled and adds nothing.
        (day(1, 1), p1, "direct"): (D("1000.00"), D("150.00"), D("0.00"), D("1150.00")),
        # B: 3 of its 5 nights in January: rent 1000 x 3/5 = 600. Fees 100 + 20 = 120, all
        # in January (check-in). Commission 33.33 by night: 3333 x 3/5 = 1999.8 and
        # 3333 x 2/5 = 1333.2 cents; rounded down 1999 + 1333 = 3332, the missing cent goes
        # to the larger remainder (.8, January): 20.00 and 13.33. Net 600 + 120 - 20 = 700.
        # Taxes (134.40) are not revenue and appear nowhere.
        (day(1, 1), p1, "airbnb"): (D("600.00"), D("120.00"), D("20.00"), D("700.00")),
        (day(2, 1), p1, "airbnb"): (D("400.00"), D("0.00"), D("13.33"), D("386.67")),
        # E: 500 + 80 - 40 = 540.
        (day(1, 1), p1, "vrbo"): (D("500.00"), D("80.00"), D("40.00"), D("540.00")),
        # H: 400 - 60 = 340 (a double booking's rent still counts).
        (day(1, 1), p1, "booking_com"): (D("400.00"), D("0.00"), D("60.00"), D("340.00")),
        # I: 34 nights, 2 in February, 31 in March, 1 in April. Rent in cents:
        # 100000 x 2/34 = 5882.35, x 31/34 = 91176.47, x 1/34 = 2941.18 -> rounded down
        # 5882 + 91176 + 2941 = 99999; the cent left goes to the largest remainder (.47,
        # March): 58.82, 911.77, 29.41 (sum 1000.00). Commission: 10000 x 2/34 = 588.24,
        # x 31/34 = 9117.65, x 1/34 = 294.12 -> 588 + 9117 + 294 = 9999, the cent to March
        # (.65): 5.88, 91.18, 2.94. Cleaning 200 in February (check-in).
        (day(2, 1), p1, "direct"): (D("58.82"), D("200.00"), D("5.88"), D("252.94")),
        (day(3, 1), p1, "direct"): (D("911.77"), D("0.00"), D("91.18"), D("820.59")),
        (day(4, 1), p1, "direct"): (D("29.41"), D("0.00"), D("2.94"), D("26.47")),
        # J: 10001 cents over 2 nights: 5000.5 each; rounded down 10000, the cent left goes to
        # the earlier month on a tie: 50.01 and 50.00.
        (day(1, 1), p2, "direct"): (D("50.01"), D("0.00"), D("0.00"), D("50.01")),
        (day(2, 1), p2, "direct"): (D("50.00"), D("0.00"), D("0.00"), D("50.00")),
        (day(1, 1), p3, "direct"): (D("300.00"), D("0.00"), D("0.00"), D("300.00")),
    }
    # Owner stays, blocks, the cancellation and the inquiry have no rows.
    assert set(rev) == set(expected)
    for key, values in expected.items():
        assert tuple(rev[key][c] for c in cols) == values, key


def test_revenue_is_the_same_figure_on_both_screens(session, stays):
    """Property performance's revenue is revenue summary's gross rent, summed over sources."""
    mismatches = session.execute(
        text(
            "SELECT p.property_id, p.month FROM analytics.property_performance_mv p"
            " LEFT JOIN (SELECT property_id, month, sum(gross_rent) AS rent"
            "            FROM analytics.revenue_summary_mv GROUP BY property_id, month) r"
            "   USING (property_id, month)"
            " WHERE p.revenue <> coalesce(r.rent, 0)"
        )
    ).all()
    assert mismatches == []


def test_guest_lifetime_value(session, stays):
    ltv = rows(session, "SELECT * FROM analytics.guest_lifetime_value_mv", ("guest_contact_id",))
    cols = ("stays", "nights", "revenue", "first_stay", "last_stay")
    assert ltv.keys() == {stays["g1"], stays["g2"], stays["g3"]}  # the owner's stay: no row
    # G1: A (5 n, 1000), B (5 n, 1000), K (2 n, 300); F cancelled never counts. First
    # check-in Jan 5 (K), last check-out Feb 3 (B).
    assert tuple(ltv[stays["g1"]][c] for c in cols) == (
        3, 12, D("2300.00"), day(1, 5), day(2, 3),
    )  # fmt: skip
    # G2: E (2 n, 500), J (2 n, 100.01); G is an inquiry, not a stay.
    assert tuple(ltv[stays["g2"]][c] for c in cols) == (
        2, 4, D("600.01"), day(1, 26), day(2, 2),
    )  # fmt: skip
    # G3: H (2 n, 400), I (34 n, 1000).
    assert tuple(ltv[stays["g3"]][c] for c in cols) == (
        2, 36, D("1400.00"), day(1, 12), day(4, 2),
    )  # fmt: skip


def test_occupancy_trends_by_iso_week(session, stays):
    trends = rows(
        session, "SELECT * FROM analytics.occupancy_trends_mv", ("property_id", "week_start")
    )
    p1, p2, p3 = stays["p1"], stays["p2"], stays["p3"]
    # Weeks with a live night anywhere: ISO 2026-W02 (Mon Jan 5) .. W06 (Feb 2), W09 (Feb 23)
    # .. W18 (Apr 27, the block L's last nights). W01, W07 and W08 have none (G is an inquiry).
    weeks = [day(1, 5) + dt.timedelta(weeks=n) for n in (0, 1, 2, 3, 4, *range(7, 17))]
    assert sorted(trends) == sorted([(p, w) for p in (p1, p2) for w in weeks] + [(p3, day(1, 5))])
    cols = (
        "iso_year",
        "iso_week",
        "available_nights",
        "booked_nights",
        "occupancy",
        "arrivals",
        "avg_lead_time_days",
        "avg_length_of_stay",
    )
    expected = {
        # W02 Jan 5-11: A's 10th and 11th: 2/7 = 0.2857. Arrival A: lead 21 days, 5 nights.
        (p1, day(1, 5)): (2026, 2, 7, 2, D("0.2857"), 1, D("21.00"), D("5.00")),
        # W03 Jan 12-18: A 12-14 with H 12-13 inside it: 3 nights, 3/7. Arrival H: lead 10
        # (booked Jan 2), 2 nights.
        (p1, day(1, 12)): (2026, 3, 7, 3, D("0.4286"), 1, D("10.00"), D("2.00")),
        # W04 Jan 19-25: C/D cover the 20th-25th: 6 owner/block nights, 1 available, not sold.
        (p1, day(1, 19)): (2026, 4, 1, 0, D("0.0000"), 0, None, None),
        # W05 Jan 26-Feb 1: E 26-27 (the 26th over the block: booked), B 29-Feb 1: 6 of 7.
        # Arrivals E (lead 10, 2 n) and B (lead 29, 5 n): averages 19.5 and 3.5.
        (p1, day(1, 26)): (2026, 5, 7, 6, D("0.8571"), 2, D("19.50"), D("3.50")),
        # W06 Feb 2-8: B's last night: 1/7.
        (p1, day(2, 2)): (2026, 6, 7, 1, D("0.1429"), 0, None, None),
        # W09 Feb 23-Mar 1: I's Feb 27, 28, Mar 1: 3/7. Arrival I: lead 30, 34 nights.
        (p1, day(2, 23)): (2026, 9, 7, 3, D("0.4286"), 1, D("30.00"), D("34.00")),
        (p1, day(3, 2)): (2026, 10, 7, 7, D("1.0000"), 0, None, None),
        # W14 Mar 30-Apr 5: I's Mar 30, 31, Apr 1: 3/7.
        (p1, day(3, 30)): (2026, 14, 7, 3, D("0.4286"), 0, None, None),
        (p1, day(4, 6)): (2026, 15, 7, 0, D("0.0000"), 0, None, None),
        # P2 W05: J's Jan 31 and Feb 1: 2/7. Arrival J: lead 1 day (Honolulu date), 2 nights.
        (p2, day(1, 26)): (2026, 5, 7, 2, D("0.2857"), 1, D("1.00"), D("2.00")),
        (p2, day(2, 2)): (2026, 6, 7, 0, D("0.0000"), 0, None, None),
        # P2 W14: the block from Apr 1: 5 nights blocked, 2 available, none sold.
        (p2, day(3, 30)): (2026, 14, 2, 0, D("0.0000"), 0, None, None),
        # P2 W15: blocked all week: nothing available, occupancy undefined.
        (p2, day(4, 6)): (2026, 15, 0, 0, None, 0, None, None),
        # P2 W18 Apr 27-May 3: the block's last 4 nights (27-30): 3 available.
        (p2, day(4, 27)): (2026, 18, 3, 0, D("0.0000"), 0, None, None),
        # P3 W02: K's Jan 5 and 6: 2/7. Arrival K: lead 35 days, 2 nights.
        (p3, day(1, 5)): (2026, 2, 7, 2, D("0.2857"), 1, D("35.00"), D("2.00")),
    }
    for key, values in expected.items():
        assert tuple(trends[key][c] for c in cols) == values, key


@pytest.fixture
def tickets(session, celery_app):
    """Tickets of two teams and none, February-April 2026 (UTC months)."""
    t1 = f.team(session, code="T1")
    t2 = f.team(session, code="T2")
    tk = f.ticket

    def miss(ticket_id, kind: str, due: dt.datetime, team_id) -> None:
        f.insert(
            session,
            "service.ticket_misses",
            ticket_id=ticket_id,
            sla_kind=kind,
            due_at=due,
            breached_at=due,
            priority="normal",
            team_id=team_id,
        )

    # t1, T1: answered 10:30 (due 11:00), resolved after 240 min (due Mar 3): both met.
    tk(session, current_team_id=t1, status="resolved", created_at=at(3, 2, 10),
       first_response_at=at(3, 2, 10, 30), resolved_at=at(3, 2, 14),
       response_due_at=at(3, 2, 11), resolution_due_at=at(3, 3, 10))  # fmt: skip
    # t2, T1, recurring: answered 09:20 for a 09:15 deadline (late, though no sweep recorded a
    # breach: still a miss), resolved after 1440 min within its deadline.
    tk(session, current_team_id=t1, status="resolved", source="recurring",
       created_at=at(3, 5, 9), first_response_at=at(3, 5, 9, 20), resolved_at=at(3, 6, 9),
       response_due_at=at(3, 5, 9, 15), resolution_due_at=at(3, 7, 9))  # fmt: skip
    # t3: missed its response deadline under T1 (recorded with team T1) and was escalated to
    # T2, which missed the resolution deadline (recorded with T2); resolved Mar 31 23:30 UTC,
    # 21 days 15.5 hours = 31170 minutes after it was opened.
    t3 = tk(session, current_team_id=t2, status="resolved", created_at=at(3, 10, 8),
            first_response_at=at(3, 10, 12), resolved_at=at(3, 31, 23, 30),
            response_due_at=at(3, 10, 9), response_breached_at=at(3, 10, 9),
            resolution_due_at=at(3, 12, 8), resolution_breached_at=at(3, 12, 8))  # fmt: skip
    miss(t3, "response", at(3, 10, 9), t1)
    miss(t3, "resolution", at(3, 12, 8), t2)
    # t4, T1, recurring: opened Mar 31 23:50 UTC (March), answered in time on Apr 1 00:05 for
    # a 00:10 deadline (an April outcome); unresolved, its resolution deadline still ahead.
    tk(session, current_team_id=t1, status="acknowledged", source="recurring",
       created_at=at(3, 31, 23, 50), first_response_at=at(4, 1, 0, 5),
       response_due_at=at(4, 1, 0, 10), resolution_due_at=at(4, 3, 23, 50))  # fmt: skip
    # t5, no team: answered and resolved (60 min) in time.
    tk(session, status="resolved", created_at=at(3, 15, 12), first_response_at=at(3, 15, 12, 5),
       resolved_at=at(3, 15, 13), response_due_at=at(3, 15, 12, 15),
       resolution_due_at=at(3, 15, 16))  # fmt: skip
    # t6, T2: opened Feb 27, answered in time (a February outcome), resolved Mar 1 after
    # 2880 min, before its Mar 2 deadline (a March outcome).
    tk(session, current_team_id=t2, status="closed", created_at=at(2, 27, 10),
       first_response_at=at(2, 27, 10, 30), resolved_at=at(3, 1, 10),
       response_due_at=at(2, 27, 11), resolution_due_at=at(3, 2, 10))  # fmt: skip
    # t7, T1: cancelled unanswered before its deadline was missed: no outcome, just opened.
    tk(session, current_team_id=t1, status="cancelled", created_at=at(3, 20, 10),
       response_due_at=at(3, 20, 11), resolution_due_at=at(3, 23, 10))  # fmt: skip
    # t8, T1, recurring, no SLA deadlines: resolved after 30 min.
    tk(session, current_team_id=t1, status="resolved", source="recurring",
       created_at=at(3, 25, 8), resolved_at=at(3, 25, 8, 30))  # fmt: skip
    # t9, no team: breached both deadlines in February and is still open.
    t9 = tk(session, status="open", created_at=at(2, 10, 9), response_due_at=at(2, 10, 9, 15),
            response_breached_at=at(2, 10, 9, 15), resolution_due_at=at(2, 13, 9),
            resolution_breached_at=at(2, 13, 9))  # fmt: skip
    miss(t9, "response", at(2, 10, 9, 15), None)
    miss(t9, "resolution", at(2, 13, 9), None)
    session.commit()
    result = celery_app.tasks["analytics.refresh"].apply(
        kwargs={"views": ["operational_kpis_mv"], "force": True}
    )
    assert result.successful(), result.result
    return {"t1": t1, "t2": t2}


def test_operational_kpis_by_month_and_team(session, tickets):
    kpis = rows(session, "SELECT * FROM analytics.operational_kpis_mv", ("month", "team_id"))
    t1, t2 = tickets["t1"], tickets["t2"]
    cols = (
        "tickets_opened",
        "tickets_resolved",
        "median_resolution_minutes",
        "response_sla_total",
        "response_sla_met",
        "response_sla_compliance",
        "resolution_sla_total",
        "resolution_sla_met",
        "resolution_sla_compliance",
        "breaches",
        "recurring_tickets",
    )
    expected = {
        # T1 March. Opened (current team T1): t1, t2, t4, t7, t8 = 5; recurring t2, t4, t8.
        # Resolved in March: t1 240, t2 1440, t8 30 min: median 240. Response outcomes due in
        # March counted against T1: t1 met, t2 late, t3 missed under T1 -> 1 of 3 = 0.3333.
        # Resolution outcomes: t1 and t2 met -> 2 of 2. Breaches recorded with T1: t3's
        # response miss (Mar 10).
        (day(3, 1), t1): (5, 3, D("240.0"), 3, 1, D("0.3333"), 2, 2, D("1.0000"), 1, 3),
        # T2 March. Opened: t3. Resolved: t3 (31170) and t6 (2880): median (2880 + 31170) / 2
        # = 17025. No response deadline of T2's fell in March (t3's miss is T1's). Resolution:
        # t3 missed (recorded with T2), t6 met -> 1 of 2 = 0.5. Breaches: t3's resolution miss.
        (day(3, 1), t2): (1, 2, D("17025.0"), 0, 0, None, 2, 1, D("0.5000"), 1, 0),
        # No team, March: t5, everything in time, 60 min.
        (day(3, 1), NIL): (1, 1, D("60.0"), 1, 1, D("1.0000"), 1, 1, D("1.0000"), 0, 0),
        # T2 February: t6 opened and answered in time; resolved in March.
        (day(2, 1), t2): (1, 0, None, 1, 1, D("1.0000"), 0, 0, None, 0, 0),
        # No team, February: t9 opened, both deadlines missed, two breaches recorded.
        (day(2, 1), NIL): (1, 0, None, 1, 0, D("0.0000"), 1, 0, D("0.0000"), 2, 0),
        # T1 April: only t4's response, in time (opened in March, deadline in April).
        (day(4, 1), t1): (0, 0, None, 1, 1, D("1.0000"), 0, 0, None, 0, 0),
    }
    assert set(kpis) == set(expected)
    for key, values in expected.items():
        assert tuple(kpis[key][c] for c in cols) == values, key
