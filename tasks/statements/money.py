"""The money math of owner statements, in plain Python: the reference the SQL must equal.

Pure functions only (no database), so the property-based tests can throw thousands of random
stays, owner splits and costs at them. `tasks.statements.build` computes the same thing in
set-based SQL for every statement of a month at once; an integration test checks that the two
agree on random data. Every rule here is therefore mirrored there, tie-breaks included.

The rules (SPEC 6.5):

- Money is whole cents. A split of an amount into parts uses the largest-remainder method
  (Hamilton's): each part gets the floor of its exact quota, and the cents left over go one by
  one to the parts with the largest remainders (ties: the earlier part in the given order), so
  the parts always sum exactly to the whole.
- A stay's nights fall into *segments*: nights of the same calendar month with the same set of
  owner relationships in force. Its gross rent and channel commission are split across the
  segments by nights (ties: the earlier segment), so the months sum exactly to the stay.
- A segment's share is split among the relationships in force by `ownership_pct` (ties: by
  md5 of the stay's id and the relationship's, so the odd cent of a 50/50 split goes to each
  co-owner about half the time). When the owners' percentages sum to less than 100 (bad data, which
  the job reports), the missing share belongs to nobody: it is never invented for an owner;
  above 100 the shares are scaled down to the whole.
- `by_night` recognises a segment's share in the segment's month; `by_checkout` recognises all
  of a relationship's shares of the stay in the month of the check-out date (or of the
  relationship's last day, when it ended before the guest left).
- Lines of a statement: rent (+) per stay; channel commission (-) per channel; management
  commission (-) per commission terms: `commission_pct` of gross rent or of net rent (gross -
  channel commission), summed exactly over the stays and rounded half up to cents once per
  line. Owner-billable costs: `amount x (1 + markup_pct/100)` rounded to cents,
  split among the owners in force on the cost date like a segment, one expense line (-) each.
- Totals are the sums of the lines; balance before payout = opening + net income;
  payout = max(0, that - reserve); closing = that - payout; reserve held = what stays back of
  the reserve, max(0, min(balance before payout, reserve)).

What SPEC 7.5 adds (docs/MONEY.md has the ledger side):

- A stay's cleaning fee, other fees and taxes are split exactly like its rent (across segments
  by nights, among owners by ownership_pct, largest remainder) and recognised with it. A
  relationship with `cleaning_fee_to_owner` / `other_fees_to_owner` gets its shares as lines
  of their own (`cleaning_fee`, `other_fee`, + to the owner, counted in gross revenue); the
  other shares are the manager's; taxes are never owner income. Each rent line carries the
  statement's shares of the stay's channel commission, fees and taxes (what finalize draws
  from the guest clearing account besides the rent).
- A flat commission per stay (`commission_flat_per_stay`) is charged with the stay's first
  night (recognised as that night is, by night or at check-out) to the owners in force that
  night: the stay's flat fee is sum(flat_i x pct_i) / max(sum(pct_i), 100%) rounded half up,
  split among them by the largest-remainder method with weights flat_i x pct_i (equal terms:
  the flat amount split by ownership); one management_fee line per statement and flat amount.
- In a month whose revenue lines (rent and owner fees) sum above zero, a management fee below
  the relationship's `minimum_monthly_fee` (the relationship in force last in the month) is
  raised to it by one more management_fee line.
- Each recurring owner charge whose months include the period is one `recurring_charge` line
  (- to the owner), counted in the statement's expenses.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import uuid
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

CENT = Decimal("0.01")
ZERO = Decimal("0.00")
# ownership_pct is numeric(5,2): in hundredths of a percent it is an integer, 10000 = 100%.
WHOLE = 10000

# Net income is the sum of these line types; reserve and payout lines say what becomes of the
# balance, they are not income.
INCOME_TYPES = (
    "rent",
    "cleaning_fee",
    "other_fee",
    "channel_fee",
    "management_fee",
    "expense",
    "recurring_charge",
    "adjustment",
)
# The statement totals: gross_revenue and expenses sum these; the others one type each.
REVENUE_TYPES = ("rent", "cleaning_fee", "other_fee")
EXPENSE_TYPES = ("expense", "recurring_charge")

# The accounts of a finalized statement's journal entry (tasks.statements.finalize, whose
# postings `ledger_postings` below computes for the tests; docs/MONEY.md explains them).
TRUST_CASH = "1010"
DUE_FROM_TRUST = "1300"  # the manager's fees earned and still in the trust account
OWNER_PAYABLE = "2000"
GUEST_CLEARING = "2100"  # guest money received and not yet drawn by a final statement
TAXES_PAYABLE = "2200"
DUE_TO_OPERATING = "2300"  # the trust account's side of 1300
GUEST_FEE_REVENUE = "4020"  # cleaning and other fees the manager keeps
# Where channel commission went before SPEC 7.5 (statements finalized then), and where a
# revision of one of them still posts its change of channel commission.
CHANNEL_EXPENSE = "5000"
# The manager's revenue from what the statement charges the owner, by line type: each such
# line is the owner's money becoming the manager's (Cr revenue when charged, Dr when credited).
REVENUE_ACCOUNT_FOR_LINE = {
    "management_fee": "4000",  # Management commission revenue (percentage, flat, minimum)
    "expense": "4010",  # Expense recoveries: costs billed with markup
    "adjustment": "4010",  # manual corrections of what the owner was charged or credited
    "recurring_charge": "4030",  # Owner recurring charges
}
# Trust accounts: every journal entry's lines on these balance by themselves, so trust cash =
# owner balances + guest money + taxes payable + fees not yet transferred at every date.
TRUST_ACCOUNTS = (TRUST_CASH, OWNER_PAYABLE, GUEST_CLEARING, TAXES_PAYABLE, DUE_TO_OPERATING)


# -- cents and splits ------------------------------------------------------------------------


def round_cents(value: Decimal) -> Decimal:
    """Half up (away from zero), as PostgreSQL's round(numeric, 2)."""
    return value.quantize(CENT, rounding=ROUND_HALF_UP)


def to_cents(value: Decimal) -> int:
    cents = value * 100
    if cents != cents.to_integral_value():
        raise ValueError(f"{value} is not a whole number of cents")
    return int(cents)


def from_cents(cents: int) -> Decimal:
    return (Decimal(cents) / 100).quantize(CENT)


def largest_remainder_cents(
    total: int, weights: Sequence[int], tie_keys: Sequence[Any] | None = None
) -> list[int]:
    """Split `total` cents in proportion to `weights` (integers >= 0, not all 0).

    Floors of the exact quotas, then one more cent to each of the parts with the largest
    remainders until the total is reached; equal remainders go to the part with the smaller
    tie key (default: the earlier part). Works for negative totals too (floors toward minus
    infinity, remainders in [0, 1)).
    """
    denominator = sum(weights)
    if denominator <= 0 or any(w < 0 for w in weights):
        raise ValueError("weights must be >= 0 and not all 0")
    keys = list(range(len(weights))) if tie_keys is None else list(tie_keys)
    floors = []
    remainders = []
    for w in weights:
        q, r = divmod(total * w, denominator)
        floors.append(q)
        remainders.append(r)
    left = total - sum(floors)
    order = sorted(range(len(weights)), key=lambda i: (-remainders[i], keys[i]))
    for i in order[:left]:
        floors[i] += 1
    return floors


def largest_remainder(total: Decimal, weights: Sequence[int]) -> list[Decimal]:
    """`largest_remainder_cents` on a Decimal amount of whole cents."""
    return [from_cents(c) for c in largest_remainder_cents(to_cents(total), weights)]


def pct_weight(pct: Decimal) -> int:
    """ownership_pct (numeric(5,2)) as an integer weight, 10000 = 100%."""
    return to_cents(pct)


def owner_tie_key(item_id: uuid.UUID, relationship_id: uuid.UUID) -> str:
    """Who of two owners with equal remainders gets the odd cent: an order that changes from
    one stay (or cost) to the next, so 50/50 co-owners each get it about half the time rather
    than the same owner always. The SQL computes the same md5 (compared bytewise)."""
    return hashlib.md5(f"{item_id}{relationship_id}".encode()).hexdigest()


def owner_split_cents(
    total: int, owner_weights: Sequence[int], tie_keys: Sequence[str] | None = None
) -> list[int]:
    """Split among owners in force (weights in hundredths of a percent). When they sum to less
    than 100% the rest goes to an extra part, nobody's, which loses every tie; that part is
    dropped from the result."""
    keys = [(0, k) for k in (tie_keys or [str(i) for i in range(len(owner_weights))])]
    held = sum(owner_weights)
    if held >= WHOLE:
        return largest_remainder_cents(total, owner_weights, keys)
    return largest_remainder_cents(total, [*owner_weights, WHOLE - held], [*keys, (1, "")])[:-1]


# -- calendar --------------------------------------------------------------------------------


def month_start(day: dt.date) -> dt.date:
    return day.replace(day=1)


def add_months(day: dt.date, months: int) -> dt.date:
    index = day.year * 12 + day.month - 1 + months
    return dt.date(index // 12, index % 12 + 1, 1)


def parse_period(period: str) -> tuple[dt.date, dt.date]:
    """'YYYY-MM' -> (first day, first day of the next month)."""
    year, month = (int(p) for p in period.split("-"))
    start = dt.date(year, month, 1)
    return start, add_months(start, 1)


def previous_period(as_of: dt.datetime) -> str:
    """The calendar month before as_of's month, read in UTC (the beat fires on the 1st)."""
    start = add_months(month_start(as_of.astimezone(dt.UTC).date()), -1)
    return f"{start.year:04d}-{start.month:02d}"


# -- inputs of the reference -----------------------------------------------------------------


@dataclass(frozen=True)
class Relationship:
    id: uuid.UUID
    homeowner_id: uuid.UUID
    property_id: uuid.UUID
    ownership_pct: Decimal
    commission_pct: Decimal = Decimal("0")
    commission_base: str = "gross_rent"
    revenue_recognition: str = "by_night"
    reserve_amount: Decimal = ZERO
    start_date: dt.date = dt.date(2000, 1, 1)
    end_date: dt.date | None = None
    cleaning_fee_to_owner: bool = False
    other_fees_to_owner: bool = False
    commission_flat_per_stay: Decimal = ZERO
    minimum_monthly_fee: Decimal = ZERO

    def in_force(self, day: dt.date) -> bool:
        return self.start_date <= day and (self.end_date is None or day < self.end_date)

    def overlaps(self, start: dt.date, end: dt.date) -> bool:
        return self.start_date < end and (self.end_date is None or self.end_date > start)


@dataclass(frozen=True)
class Stay:
    id: uuid.UUID
    property_id: uuid.UUID
    check_in: dt.date
    check_out: dt.date
    gross_rent: Decimal
    channel_commission: Decimal = ZERO
    source: str = "direct"
    cleaning_fee: Decimal = ZERO
    other_fees: Decimal = ZERO
    taxes: Decimal = ZERO

    @property
    def nights(self) -> int:
        return (self.check_out - self.check_in).days

    @property
    def guest_money(self) -> Decimal:
        """What the guest pays into the trust account for it: everything charged, less the
        channel's commission, which the channel keeps (docs/MONEY.md)."""
        return (
            self.gross_rent
            + self.cleaning_fee
            + self.other_fees
            + self.taxes
            - self.channel_commission
        )


@dataclass(frozen=True)
class Cost:
    id: uuid.UUID
    property_id: uuid.UUID
    cost_date: dt.date
    amount: Decimal
    markup_pct: Decimal = ZERO

    @property
    def billed_amount(self) -> Decimal:
        return round_cents(self.amount * (1 + self.markup_pct / 100))


@dataclass(frozen=True)
class RecurringCharge:
    id: uuid.UUID
    homeowner_id: uuid.UUID
    property_id: uuid.UUID
    amount: Decimal
    start_month: dt.date
    end_month: dt.date | None = None
    description: str = "Recurring charge"

    def charged_in(self, period_start: dt.date) -> bool:
        return self.start_month <= period_start and (
            self.end_month is None or period_start <= self.end_month
        )


@dataclass(frozen=True)
class Segment:
    """Nights of one stay in one month with one set of relationships in force."""

    month: dt.date
    first_night: dt.date
    nights: int
    relationship_ids: tuple[uuid.UUID, ...]  # sorted


# -- stays -----------------------------------------------------------------------------------


def segments(stay: Stay, relationships: Iterable[Relationship]) -> list[Segment]:
    """The stay's segments, ordered by first night."""
    rels = [r for r in relationships if r.property_id == stay.property_id]
    groups: dict[tuple[dt.date, tuple[uuid.UUID, ...]], list[dt.date]] = {}
    for i in range(stay.nights):
        night = stay.check_in + dt.timedelta(days=i)
        owners = tuple(sorted(r.id for r in rels if r.in_force(night)))
        groups.setdefault((month_start(night), owners), []).append(night)
    found = [
        Segment(month, nights[0], len(nights), owners) for (month, owners), nights in groups.items()
    ]
    return sorted(found, key=lambda s: s.first_night)


def split_across_segments(amount: Decimal, segs: Sequence[Segment]) -> list[Decimal]:
    """A stay amount across its segments by nights (the months then sum to the stay)."""
    return largest_remainder(amount, [s.nights for s in segs])


def month_shares(stay: Stay, relationships: Iterable[Relationship]) -> dict[dt.date, Decimal]:
    """The stay's gross rent per month (by night), summing exactly to gross_rent."""
    segs = segments(stay, relationships)
    out: dict[dt.date, Decimal] = defaultdict(lambda: ZERO)
    for seg, share in zip(segs, split_across_segments(stay.gross_rent, segs), strict=True):
        out[seg.month] += share
    return dict(out)


def split_among_owners(
    amount: Decimal,
    relationship_ids: Sequence[uuid.UUID],
    by_id: dict[uuid.UUID, Relationship],
    item_id: uuid.UUID,
) -> dict[uuid.UUID, Decimal]:
    """An amount of one stay or cost (`item_id`) among the relationships in force, by
    ownership_pct."""
    ids = sorted(relationship_ids)
    cents = owner_split_cents(
        to_cents(amount),
        [pct_weight(by_id[i].ownership_pct) for i in ids],
        [owner_tie_key(item_id, i) for i in ids],
    )
    return {i: from_cents(c) for i, c in zip(ids, cents, strict=True)}


def recognition_month(stay: Stay, seg: Segment, rel: Relationship) -> dt.date:
    if rel.revenue_recognition == "by_night":
        return seg.month
    day = stay.check_out
    if rel.end_date is not None:
        day = min(day, rel.end_date - dt.timedelta(days=1))
    return month_start(day)


@dataclass
class StayShare:
    """One relationship's part of one stay recognised in one month."""

    rent: Decimal = ZERO
    channel: Decimal = ZERO
    cleaning: Decimal = ZERO
    other: Decimal = ZERO
    taxes: Decimal = ZERO
    # The flat commission per stay charged to this part (only with the stay's first night).
    flat: Decimal = ZERO
    nights: int = 0


# The stay amounts split like its rent, as StayShare's field -> Stay's attribute.
STAY_AMOUNTS = (
    ("rent", "gross_rent"),
    ("channel", "channel_commission"),
    ("cleaning", "cleaning_fee"),
    ("other", "other_fees"),
    ("taxes", "taxes"),
)


def flat_fee_parts(
    stay: Stay, relationship_ids: Sequence[uuid.UUID], by_id: dict[uuid.UUID, Relationship]
) -> dict[uuid.UUID, Decimal]:
    """The stay's flat commission among the owners in force on its first night: the total is
    sum(flat x weight) / max(sum(weight), 100%) rounded half up, split by largest remainder
    with weights flat x weight (ties by owner tie key)."""
    ids = sorted(relationship_ids)
    weights = [to_cents(by_id[i].commission_flat_per_stay) * pct_weight(by_id[i].ownership_pct)
               for i in ids]  # fmt: skip
    if not any(weights):
        return {}
    den = max(sum(pct_weight(by_id[i].ownership_pct) for i in ids), WHOLE)
    total = (2 * sum(weights) + den) // (2 * den)  # half up: the weights are >= 0
    cents = largest_remainder_cents(total, weights, [owner_tie_key(stay.id, i) for i in ids])
    return {i: from_cents(c) for i, c in zip(ids, cents, strict=True)}


def stay_shares(
    stay: Stay, relationships: Iterable[Relationship]
) -> dict[tuple[uuid.UUID, dt.date], StayShare]:
    """(relationship id, recognition month) -> its rent, channel commission, fees, taxes, flat
    commission and nights."""
    rels = [r for r in relationships if r.property_id == stay.property_id]
    by_id = {r.id: r for r in rels}
    segs = segments(stay, rels)
    per_segment = {
        name: split_across_segments(getattr(stay, attr), segs) for name, attr in STAY_AMOUNTS
    }
    out: dict[tuple[uuid.UUID, dt.date], StayShare] = {}
    for i, seg in enumerate(segs):
        if not seg.relationship_ids:
            continue
        parts = {
            name: split_among_owners(amounts[i], seg.relationship_ids, by_id, stay.id)
            for name, amounts in per_segment.items()
        }
        flat = flat_fee_parts(stay, seg.relationship_ids, by_id) if i == 0 else {}
        for rel_id in seg.relationship_ids:
            key = (rel_id, recognition_month(stay, seg, by_id[rel_id]))
            share = out.setdefault(key, StayShare())
            for name, _ in STAY_AMOUNTS:
                setattr(share, name, getattr(share, name) + parts[name][rel_id])
            share.flat += flat.get(rel_id, ZERO)
            share.nights += seg.nights
    return out


def management_fee(parts: Iterable[tuple[Relationship, StayShare]]) -> Decimal:
    """The commission on one statement line: the exact sum over its relationships, rounded once."""
    exact = Decimal(0)
    for rel, share in parts:
        base = share.rent if rel.commission_base == "gross_rent" else share.rent - share.channel
        exact += rel.commission_pct * base / 100
    return round_cents(exact)


def cost_shares(cost: Cost, relationships: Iterable[Relationship]) -> dict[uuid.UUID, Decimal]:
    """The billed amount of an owner cost among the relationships in force on its date."""
    rels = [r for r in relationships if r.property_id == cost.property_id]
    in_force = sorted(r.id for r in rels if r.in_force(cost.cost_date))
    if not in_force:
        return {}
    return split_among_owners(cost.billed_amount, in_force, {r.id: r for r in rels}, cost.id)


# -- statements ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Line:
    line_type: str
    amount: Decimal
    reservation_id: uuid.UUID | None = None
    ticket_cost_id: uuid.UUID | None = None
    adjustment_id: uuid.UUID | None = None
    nights: int | None = None
    # What a line about no stay, cost or adjustment is about (its channel, its terms).
    label: str | None = None
    recurring_charge_id: uuid.UUID | None = None
    # Rent lines: the statement's shares of the stay's channel commission, fees and taxes.
    stay_channel: Decimal | None = None
    stay_cleaning: Decimal | None = None
    stay_other: Decimal | None = None
    stay_taxes: Decimal | None = None

    @property
    def ref(self) -> uuid.UUID | None:
        return (
            self.reservation_id
            or self.ticket_cost_id
            or self.adjustment_id
            or self.recurring_charge_id
        )

    @property
    def guest_money(self) -> Decimal:
        """Rent lines: the guest money the statement draws from the clearing account for the
        stay (rent, fees and taxes, less the channel's commission)."""
        return (
            self.amount
            + (self.stay_cleaning or ZERO)
            + (self.stay_other or ZERO)
            + (self.stay_taxes or ZERO)
            - (self.stay_channel or ZERO)
        )


StatementKey = tuple[uuid.UUID, uuid.UUID]  # (homeowner_id, property_id)


def statement_terms(
    relationships: Iterable[Relationship], key: StatementKey, period_start: dt.date
) -> Relationship:
    """The relationship of a statement whose terms hold for the month as a whole (reserve,
    minimum fee): the one in force last in the month (latest start, then largest id)."""
    period_end = add_months(period_start, 1)
    return max(
        (
            r
            for r in relationships
            if (r.homeowner_id, r.property_id) == key and r.overlaps(period_start, period_end)
        ),
        key=lambda r: (r.start_date, r.id),
    )


def reference_lines(
    period_start: dt.date,
    relationships: Sequence[Relationship],
    stays: Iterable[Stay],
    costs: Iterable[Cost] = (),
    charges: Iterable[RecurringCharge] = (),
) -> dict[StatementKey, list[Line]]:
    """The income lines of every statement of a period on fresh data (nothing billed yet):
    one statement per homeowner and property with a relationship overlapping the month."""
    period_end = add_months(period_start, 1)
    by_id = {r.id: r for r in relationships}
    out: dict[StatementKey, list[Line]] = {
        (r.homeowner_id, r.property_id): []
        for r in relationships
        if r.overlaps(period_start, period_end)
    }
    channel: dict[StatementKey, dict[str, Decimal]] = defaultdict(lambda: defaultdict(Decimal))
    fees: dict[StatementKey, dict[tuple[Decimal, str], list]] = defaultdict(
        lambda: defaultdict(list)
    )
    flat: dict[StatementKey, dict[Decimal, Decimal]] = defaultdict(lambda: defaultdict(Decimal))
    for stay in stays:
        per_key: dict[StatementKey, list[tuple[Relationship, StayShare]]] = defaultdict(list)
        for (rel_id, month), share in stay_shares(stay, relationships).items():
            if month == period_start:
                rel = by_id[rel_id]
                per_key[(rel.homeowner_id, rel.property_id)].append((rel, share))
        for key, parts in per_key.items():

            def total(name: str, parts: list = parts) -> Decimal:
                return sum((getattr(s, name) for _, s in parts), ZERO)

            out.setdefault(key, []).append(
                Line(
                    "rent",
                    total("rent"),
                    reservation_id=stay.id,
                    nights=sum(s.nights for _, s in parts),
                    stay_channel=total("channel"),
                    stay_cleaning=total("cleaning"),
                    stay_other=total("other"),
                    stay_taxes=total("taxes"),
                )
            )
            # The owner's fees: the shares of the relationships that say the fee is theirs.
            for line_type, name, flag in (
                ("cleaning_fee", "cleaning", "cleaning_fee_to_owner"),
                ("other_fee", "other", "other_fees_to_owner"),
            ):
                owned = sum((getattr(s, name) for r, s in parts if getattr(r, flag)), ZERO)
                if owned:
                    out[key].append(Line(line_type, owned, reservation_id=stay.id))
            channel[key][stay.source] += total("channel")
            for rel, share in parts:
                fees[key][(rel.commission_pct, rel.commission_base)].append((rel, share))
                flat[key][rel.commission_flat_per_stay] += share.flat
    # One channel commission line per channel, one management commission line per terms, one
    # flat fee line per flat amount.
    for key, per_source in channel.items():
        for source, amount in sorted(per_source.items()):
            if amount:
                out[key].append(Line("channel_fee", -amount, label=f"channel:{source}"))
    for key, per_terms in fees.items():
        for (pct, base), parts in per_terms.items():
            fee = management_fee(parts)
            if fee:
                out[key].append(Line("management_fee", -fee, label=f"fee:{pct}:{base}"))
    for key, per_flat in flat.items():
        for amount_per_stay, charged in sorted(per_flat.items()):
            if charged:
                out[key].append(Line("management_fee", -charged, label=f"flat:{amount_per_stay}"))
    for cost in costs:
        if not period_start <= cost.cost_date < period_end:
            continue
        per_owner: dict[StatementKey, Decimal] = defaultdict(lambda: ZERO)
        for rel_id, share in cost_shares(cost, relationships).items():
            rel = by_id[rel_id]
            per_owner[(rel.homeowner_id, rel.property_id)] += share
        for key, share in per_owner.items():
            out.setdefault(key, []).append(Line("expense", -share, ticket_cost_id=cost.id))
    # The monthly minimum, in a month with revenue: the management fee raised to it.
    for key, lines in out.items():
        minimum = statement_terms(relationships, key, period_start).minimum_monthly_fee
        revenue = sum((ln.amount for ln in lines if ln.line_type in REVENUE_TYPES), ZERO)
        charged = -sum((ln.amount for ln in lines if ln.line_type == "management_fee"), ZERO)
        if minimum > 0 and revenue > 0 and charged < minimum:
            lines.append(Line("management_fee", charged - minimum, label=f"minimum:{minimum}"))
    for charge in charges:
        key = (charge.homeowner_id, charge.property_id)
        if charge.charged_in(period_start) and key in out:
            out[key].append(Line("recurring_charge", -charge.amount, recurring_charge_id=charge.id))
    return out


@dataclass(frozen=True)
class Totals:
    opening_balance: Decimal
    gross_revenue: Decimal
    channel_fees: Decimal
    management_fees: Decimal
    expenses: Decimal
    adjustments: Decimal
    net_income: Decimal
    reserve_held: Decimal
    payout_amount: Decimal
    closing_balance: Decimal
    lines: tuple[Line, ...] = field(default=())

    @property
    def balance_before_payout(self) -> Decimal:
        return self.opening_balance + self.net_income


def statement_totals(
    income_lines: Iterable[Line], opening_balance: Decimal, reserve_amount: Decimal
) -> Totals:
    """Totals of a statement from its income lines, with the reserve and payout lines added
    (a reserve line when the owner keeps a reserve, a payout line when something is paid)."""
    lines = list(income_lines)

    def total(kind: str) -> Decimal:
        return sum((ln.amount for ln in lines if ln.line_type == kind), ZERO)

    net = sum((total(k) for k in INCOME_TYPES), ZERO)
    before_payout = opening_balance + net
    payout = max(ZERO, before_payout - reserve_amount)
    held = max(ZERO, min(before_payout, reserve_amount))
    if reserve_amount > 0:
        lines.append(Line("reserve", held))
    if payout > 0:
        lines.append(Line("payout", payout))
    return Totals(
        opening_balance=opening_balance,
        gross_revenue=sum((total(k) for k in REVENUE_TYPES), ZERO),
        channel_fees=total("channel_fee"),
        management_fees=total("management_fee"),
        expenses=sum((total(k) for k in EXPENSE_TYPES), ZERO),
        adjustments=total("adjustment"),
        net_income=net,
        reserve_held=held,
        payout_amount=payout,
        closing_balance=before_payout - payout,
        lines=tuple(lines),
    )


# -- the ledger ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Posting:
    account_code: str
    debit: Decimal
    credit: Decimal
    reservation_id: uuid.UUID | None = None


def _posting(code: str, amount: Decimal, reservation_id: uuid.UUID | None = None) -> Posting:
    """A debit when `amount` is positive, a credit when negative."""
    return Posting(code, max(amount, ZERO), max(-amount, ZERO), reservation_id)


def ledger_postings(lines: Iterable[Line]) -> list[Posting]:
    """The journal entry of a finalized statement (docs/MONEY.md), balanced by construction.

    Trust side: each stay's guest money leaves the clearing account (Dr 2100, per stay: rent,
    fees and taxes less the channel's commission), its taxes become taxes payable (Cr 2200),
    the owner's net income becomes owner payable (Cr 2000) and the manager's part - the fees
    it keeps plus what the statement charges the owner - is due to operating (Cr 2300).
    Operating side: that part is due from the trust (Dr 1300) and is revenue: 4020 for the
    fees kept, 4000 / 4010 / 4030 for each charging line (Dr when it credits the owner).
    Both sides balance by themselves. Zero amounts post nothing. A channel commission line
    not matched by the stay shares of the rent lines (a revision of a statement finalized
    before SPEC 7.5) posts to 5000, as that statement did.
    """
    lines = list(lines)
    postings: list[Posting] = []
    net = sum((ln.amount for ln in lines if ln.line_type in INCOME_TYPES), ZERO)
    stay_fees = owner_fees = channel_undrawn = ZERO
    for ln in lines:
        if ln.line_type == "rent":
            postings.append(_posting(GUEST_CLEARING, ln.guest_money, ln.reservation_id))
            postings.append(_posting(TAXES_PAYABLE, -(ln.stay_taxes or ZERO), ln.reservation_id))
            stay_fees += (ln.stay_cleaning or ZERO) + (ln.stay_other or ZERO)
            channel_undrawn += ln.stay_channel or ZERO
        elif ln.line_type in ("cleaning_fee", "other_fee"):
            owner_fees += ln.amount
        elif ln.line_type == "channel_fee":
            channel_undrawn += ln.amount
    # None, but for a revision of a statement finalized before SPEC 7.5 (no stay shares).
    postings.append(_posting(CHANNEL_EXPENSE, channel_undrawn))
    kept = stay_fees - owner_fees
    charged = ZERO
    for ln in lines:
        if ln.line_type in REVENUE_ACCOUNT_FOR_LINE:
            postings.append(_posting(REVENUE_ACCOUNT_FOR_LINE[ln.line_type], ln.amount))
            charged -= ln.amount
    manager = kept + charged
    postings += [
        _posting(GUEST_FEE_REVENUE, -kept),
        _posting(OWNER_PAYABLE, -net),
        _posting(DUE_TO_OPERATING, -manager),
        _posting(DUE_FROM_TRUST, manager),
    ]
    return [p for p in postings if p.debit or p.credit]
