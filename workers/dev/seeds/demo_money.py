"""The demo's money from guest to owner (SPEC 7.5), added to the demo builder's rows.

Called once at the end of `DemoBuilder.build()` (workers/dev/seeds/demo.py), with the same seeded
random generator, so the demo stays deterministic. What it adds:

- owner terms: cleaning fees are the owner's at every fourth property (and other fees at some),
  a flat commission of 25.00 per stay at some, a monthly minimum of 250.00 at others;
- recurring owner charges: a smart lock subscription (15.00 a month for a year) at every third
  property, and snow plowing (120.00 a month, December to March) at the Blue Ridge lodges;
- guest payments for every booked guest stay, as the payment service would have recorded them:
  half at booking, the rest 30 days before check-in (those not due yet are not there); a
  cancelled stay's deposit refunded when it was cancelled; and one payment the payment service
  could not match to a reservation (finance.post_payments marks it with an error);
- the trust account's bank balance at the end of last month, as ops would enter it: what the
  guests had paid by then (no payout is sent in the demo yet, so the first reconciliation after
  the payments are posted balances).

KAI-0 (Hale Kai) is the demo statement to look at: the owner's cleaning fees, a flat fee per
stay, the lock subscription, and payments for every stay (`cmw run statements.generate`, then
`cmw statements render OS-… --format pdf`).
"""

from __future__ import annotations

import datetime as dt
from decimal import ROUND_HALF_UP, Decimal
from typing import TYPE_CHECKING, Any

from db.models.directory import HomeownerPropertyRelationship
from db.models.finance import BankBalance, GuestPayment, OwnerRecurringCharge
from db.models.reservations import Reservation
from workers.dev.seeds import add_months

if TYPE_CHECKING:
    from workers.dev.seeds.demo import DemoBuilder

CENT = Decimal("0.01")
LOCK_SUBSCRIPTION = Decimal("15.00")
SNOW_PLOWING = Decimal("120.00")
FLAT_PER_STAY = Decimal("25.00")
MINIMUM_FEE = Decimal("250.00")


def add_money(builder: DemoBuilder) -> None:
    """Add the demo's owner terms, recurring charges, guest payments and bank balance."""
    for table in (OwnerRecurringCharge, GuestPayment, BankBalance):
        builder.rows.setdefault(table.__table__, [])  # type: ignore[attr-defined]
    props = {p.id: p for p in builder.properties}
    for rel in builder.rows[HomeownerPropertyRelationship.__table__]:  # type: ignore[attr-defined]
        i = props[rel["property_id"]].index
        rel["cleaning_fee_to_owner"] = i % 4 == 0
        rel["other_fees_to_owner"] = i % 8 == 0
        rel["commission_flat_per_stay"] = FLAT_PER_STAY if i % 5 == 0 else Decimal("0.00")
        rel["minimum_monthly_fee"] = MINIMUM_FEE if i % 6 == 3 else Decimal("0.00")
    add_recurring_charges(builder)
    add_guest_payments(builder)


def add_recurring_charges(builder: DemoBuilder) -> None:
    winter = dt.date(builder.anchor.year - (builder.anchor.month < 7), 12, 1)
    for prop in builder.properties:
        if prop.status == "inactive" or not prop.owners:
            continue
        homeowner_id = prop.owners[0][0]
        if prop.index % 3 == 0:
            builder.add(
                OwnerRecurringCharge,
                homeowner_id=homeowner_id,
                property_id=prop.id,
                description="Smart lock subscription",
                amount=LOCK_SUBSCRIPTION,
                start_month=add_months(builder.anchor, -6),
                end_month=add_months(builder.anchor, 5),
            )
        if prop.resort.code == "BRL":
            builder.add(
                OwnerRecurringCharge,
                homeowner_id=homeowner_id,
                property_id=prop.id,
                description="Snow plowing (winter contract)",
                amount=SNOW_PLOWING,
                start_month=winter,
                end_month=add_months(winter, 3),
            )


def guest_money(row: dict[str, Any]) -> Decimal:
    """What the guest pays into trust for a stay: everything charged less the channel's
    commission (tasks.statements.money.Stay.guest_money)."""
    return (
        row["gross_rent"]
        + row["cleaning_fee"]
        + row["other_fees"]
        + row["taxes"]
        - row["channel_commission"]
    )


def add_guest_payments(builder: DemoBuilder) -> None:
    props = {p.id: p for p in builder.properties}
    payments: list[tuple[dict[str, Any], Decimal, dt.datetime]] = []
    for row in builder.rows[Reservation.__table__]:  # type: ignore[attr-defined]
        if row["reservation_type"] != "guest" or row["status"] == "inquiry":
            continue
        due = guest_money(row)
        deposit = (due / 2).quantize(CENT, ROUND_HALF_UP)
        booked = row["booked_at"]
        payments.append((row, deposit, booked))
        if row["status"] == "cancelled":
            if row["cancelled_at"] and row["cancelled_at"] <= builder.now:
                payments.append((row, -deposit, row["cancelled_at"]))
            continue
        balance_at = max(
            booked + dt.timedelta(hours=1),
            dt.datetime.combine(row["check_in"] - dt.timedelta(days=30), dt.time(17), dt.UTC),
        )
        payments.append((row, due - deposit, balance_at))
    month_end_total = Decimal(0)
    n = 0
    for row, amount, received_at in sorted(payments, key=lambda p: p[2]):
        if not amount or received_at > builder.now:
            continue
        n += 1
        builder.add(
            GuestPayment,
            reservation_id=row["id"],
            amount=amount,
            received_at=received_at,
            external_ref=f"demo_pay_{n:05d}",
        )
        local_day = received_at.astimezone(props[row["property_id"]].tz).date()
        if local_day < builder.anchor:
            month_end_total += amount
    # A payment the payment service could not match (a mistyped reservation id).
    builder.add(
        GuestPayment,
        reservation_id=builder.ids.uuid(),
        amount=Decimal("250.00"),
        received_at=builder.now - dt.timedelta(days=2),
        external_ref="demo_pay_unmatched",
    )
    builder.add(
        BankBalance,
        account_code="1010",
        balance_date=builder.anchor - dt.timedelta(days=1),
        balance=month_end_total,
        note="Trust account statement, month end (demo)",
    )
