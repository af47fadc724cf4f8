"""Render an owner statement as its owner reads it: HTML, CSV or PDF.

One loader (`load_statement`) reads the statement, its property and owner, its lines with the
stays, costs and adjustments they come from, and its payout; three renderers turn that view
into an HTML page, a CSV file (one row per line, then the summary) or a PDF drawn with
reportlab. What the owner sees: the property and period, each stay with its dates, its nights
this month, its rent and the fees that are the owner's (SPEC 7.5), the channel and management
commissions (percentage, flat per stay, monthly minimum), each cost with its date, amount and
markup, the recurring charges, the adjustments, and the balance: opening, net income, reserve
held back, payout and closing. Taxes are never the owner's and never shown as income.
"""

from __future__ import annotations

import csv
import datetime as dt
import html
import io
import uuid
from dataclasses import dataclass, field
from decimal import Decimal

from sqlalchemy.orm import Session

from tasks.statements import queries as q
from tasks.statements.money import REVENUE_TYPES, ZERO


class StatementNotFound(LookupError):
    pass


@dataclass
class StayRow:
    reservation_id: uuid.UUID
    code: str
    source: str
    check_in: dt.date
    check_out: dt.date
    stay_nights: int
    nights: int | None = None
    rent: Decimal = ZERO
    # The owner's fees of the stay this month (cleaning_fee / other_fee lines).
    cleaning: Decimal = ZERO
    other: Decimal = ZERO
    descriptions: list[str] = field(default_factory=list)

    @property
    def fees(self) -> Decimal:
        return self.cleaning + self.other


@dataclass
class OtherRow:
    """A commission, cost, adjustment, reserve or payout line."""

    line_type: str
    date: dt.date | None
    description: str
    amount: Decimal
    base_amount: Decimal | None = None
    markup_pct: Decimal | None = None


@dataclass
class StatementView:
    id: uuid.UUID
    number: str
    version: int
    status: str
    currency: str
    period_start: dt.date
    period_end: dt.date
    generated_at: dt.datetime
    finalized_at: dt.datetime | None
    supersedes: str | None
    owner_name: str
    owner_email: str | None
    property_code: str
    property_name: str
    property_timezone: str
    totals: dict[str, Decimal]
    stays: list[StayRow]
    commissions: list[OtherRow]
    costs: list[OtherRow]
    charges: list[OtherRow]
    adjustments: list[OtherRow]
    balance_lines: list[OtherRow]
    payout_scheduled_for: dt.date | None
    payout_number: str | None

    @property
    def period_label(self) -> str:
        return f"{self.period_start:%B %Y}"

    @property
    def period_range(self) -> str:
        last = self.period_end - dt.timedelta(days=1)
        return f"{self.period_start:%Y-%m-%d} to {last:%Y-%m-%d}"

    @property
    def balance_before_payout(self) -> Decimal:
        return self.totals["opening_balance"] + self.totals["net_income"]

    def empty(self, what: str) -> str:
        """The text of an empty table (a revision carries only what changed)."""
        if self.supersedes:
            return f"No change to {what} in this revision."
        return f"No {what} this month."

    def notes(self) -> list[str]:
        """What the owner should know about the payout and the balance."""
        out = []
        payout = self.totals["payout_amount"]
        if self.payout_scheduled_for:
            out.append(
                f"Payout {self.payout_number or ''} of {self.currency} {money(payout)} is"
                f" scheduled for {self.payout_scheduled_for}."
            )
        elif payout > 0:
            out.append("The payout is scheduled when the statement is finalized.")
        if self.totals["reserve_held"] > 0:
            out.append(
                f"{self.currency} {money(self.totals['reserve_held'])} is held back as your"
                " reserve for upcoming costs; it stays in your balance."
            )
        if self.has_fees:
            out.append(
                "Owner fees are the cleaning and other fees of your stays that are yours,"
                " counted like the stay's rent; taxes collected from guests are never income."
            )
        if self.totals["closing_balance"] < 0:
            out.append(
                "The closing balance is negative: it is carried forward and recovered from"
                " next month's income."
            )
        return out

    @property
    def month_label(self) -> str:
        return f"{self.period_start:%Y-%m}"

    @property
    def costs_heading(self) -> str:
        return "Costs and recurring charges" if self.charges else "Costs billed"

    @staticmethod
    def charge_label(charge: OtherRow) -> str:
        return f"{charge.description} (monthly)"

    @property
    def has_fees(self) -> bool:
        return any(s.fees for s in self.stays)

    def summary(self) -> list[tuple[str, Decimal]]:
        t = self.totals
        return [
            ("Opening balance", t["opening_balance"]),
            ("Rent and owner fees" if self.has_fees else "Rent", t["gross_revenue"]),
            ("Channel commission", t["channel_fees"]),
            ("Management commission", t["management_fees"]),
            ("Expenses and recurring charges" if self.charges else "Expenses", t["expenses"]),
            ("Adjustments", t["adjustments"]),
            ("Net income", t["net_income"]),
            ("Balance before payout", self.balance_before_payout),
            ("Reserve held back", t["reserve_held"]),
            ("Payout", t["payout_amount"]),
            ("Closing balance", t["closing_balance"]),
        ]


def resolve_statement_id(session: Session, ident: str) -> uuid.UUID:
    """A statement's id from its id or its number (OS-010001)."""
    try:
        return uuid.UUID(ident)
    except ValueError:
        found = session.execute(
            q.STATEMENT_BY_NUMBER, {"n": ident.strip().upper()}
        ).scalar_one_or_none()
        if found is None:
            raise StatementNotFound(f"no owner statement {ident!r}") from None
        return found


def load_statement(session: Session, ident: str | uuid.UUID) -> StatementView:
    statement_id = ident if isinstance(ident, uuid.UUID) else resolve_statement_id(session, ident)
    head = session.execute(q.HEADER_SQL, {"id": statement_id}).mappings().one_or_none()
    if head is None:
        raise StatementNotFound(f"no owner statement {ident}")
    stays: dict[uuid.UUID, StayRow] = {}
    commissions: list[OtherRow] = []
    costs: list[OtherRow] = []
    charges: list[OtherRow] = []
    adjustments: list[OtherRow] = []
    balance: list[OtherRow] = []
    for row in session.execute(q.LINES_SQL, {"id": statement_id}).mappings():
        kind = row["line_type"]
        if kind in REVENUE_TYPES and row["reservation_id"]:
            stay = stays.get(row["reservation_id"])
            if stay is None:
                stay = stays[row["reservation_id"]] = StayRow(
                    reservation_id=row["reservation_id"],
                    code=row["confirmation_code"] or "(no code)",
                    source=row["source"],
                    check_in=row["check_in"],
                    check_out=row["check_out"],
                    stay_nights=row["stay_nights"],
                )
            if kind == "cleaning_fee":
                stay.cleaning += row["amount"]
                continue
            if kind == "other_fee":
                stay.other += row["amount"]
                continue
            stay.rent += row["amount"]
            if row["nights"] is not None:
                stay.nights = (stay.nights or 0) + row["nights"]
            stay.descriptions.append(row["description"])
        elif kind == "recurring_charge":
            charges.append(OtherRow(kind, None, row["description"], row["amount"]))
        elif kind in ("channel_fee", "management_fee"):
            commissions.append(OtherRow(kind, None, row["description"], row["amount"]))
        elif kind == "expense":
            costs.append(
                OtherRow(
                    kind,
                    row["cost_date"],
                    # the line's own description repeats the date and amount shown beside it;
                    # a revision line keeps its own ("Revision, added: ...")
                    row["description"]
                    if row["description"].startswith("Revision")
                    else row["cost_description"],
                    row["amount"],
                    row["cost_amount"],
                    row["markup_pct"],
                )
            )
        elif kind == "adjustment":
            adjustments.append(
                OtherRow(kind, row["adjustment_date"], row["description"], row["amount"])
            )
        else:
            balance.append(OtherRow(kind, None, row["description"], row["amount"]))
    totals = {
        k: head[k]
        for k in (
            "opening_balance",
            "gross_revenue",
            "channel_fees",
            "management_fees",
            "expenses",
            "adjustments",
            "net_income",
            "reserve_held",
            "payout_amount",
            "closing_balance",
        )
    }
    return StatementView(
        id=head["id"],
        number=head["statement_number"],
        version=head["version"],
        status=head["status"],
        currency=head["currency"],
        period_start=head["period_start"],
        period_end=head["period_end"],
        generated_at=head["generated_at"],
        finalized_at=head["finalized_at"],
        supersedes=head["supersedes"],
        owner_name=head["owner_name"] or "Owner",
        owner_email=head["owner_email"],
        property_code=head["property_code"],
        property_name=head["property_name"],
        property_timezone=head["timezone"],
        totals=totals,
        stays=sorted(stays.values(), key=lambda s: (s.check_in, s.code)),
        commissions=commissions,
        costs=costs,
        charges=charges,
        adjustments=adjustments,
        balance_lines=balance,
        payout_scheduled_for=head["scheduled_for"],
        payout_number=head["payout_number"],
    )


def money(value: Decimal) -> str:
    """1,234.56 / -1,234.56 (the currency is named once, in the heading)."""
    return f"{value:,.2f}"


def status_label(view: StatementView) -> str:
    label = {"draft": "DRAFT (not final)", "final": "Final", "void": "VOID"}[view.status]
    if view.supersedes:
        label += f", revision of {view.supersedes}"
    return label


# -- HTML ------------------------------------------------------------------------------------

CSS = """
body { font-family: -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; color: #1d2733;
       margin: 2rem auto; max-width: 60rem; padding: 0 1rem; }
h1 { font-size: 1.5rem; margin-bottom: .2rem; }
h2 { font-size: 1.1rem; margin-top: 2rem; border-bottom: 2px solid #1d4e89; padding-bottom: .2rem; }
.meta { color: #4a5868; }
table { border-collapse: collapse; width: 100%; margin-top: .5rem; }
th, td { padding: .35rem .5rem; border-bottom: 1px solid #dde3ea; text-align: left; }
th { background: #f0f4f8; font-weight: 600; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
tr.total td { font-weight: 700; border-top: 2px solid #1d2733; }
.neg { color: #a12a2a; }
.badge { display: inline-block; padding: .1rem .5rem; border-radius: .3rem; background: #e8eef5; }
.draft { background: #fff1c2; }
"""


def _nights(stay: StayRow) -> str:
    """Nights recognised this month, and of how many when the stay spans months."""
    if stay.nights is None or stay.nights == stay.stay_nights:
        return str(stay.nights if stay.nights is not None else stay.stay_nights)
    return f"{stay.nights} of {stay.stay_nights}"


def _td_money(value: Decimal) -> str:
    cls = "num neg" if value < 0 else "num"
    return f'<td class="{cls}">{money(value)}</td>'


def render_html(view: StatementView) -> str:
    e = html.escape
    out = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>Owner statement {e(view.number)}, {e(view.period_label)}</title>",
        f"<style>{CSS}</style></head><body>",
        f"<h1>Owner statement {e(view.number)}</h1>",
        f'<p class="meta"><span class="badge{" draft" if view.status == "draft" else ""}">'
        f"{e(status_label(view))}</span> version {view.version}</p>",
        "<table>",
        f"<tr><th>Owner</th><td>{e(view.owner_name)}"
        + (f" &lt;{e(view.owner_email)}&gt;" if view.owner_email else "")
        + "</td></tr>",
        f"<tr><th>Property</th><td>{e(view.property_name)} ({e(view.property_code)})</td></tr>",
        f"<tr><th>Period</th><td>{e(view.period_label)}: {e(view.period_range)}</td></tr>",
        f"<tr><th>Currency</th><td>{e(view.currency)}</td></tr>",
        "</table>",
        "<h2>Summary</h2>",
        '<table class="summary">',
    ]
    for label, value in view.summary():
        total = ' class="total"' if label in ("Net income", "Closing balance") else ""
        out.append(f"<tr{total}><td>{e(label)}</td>{_td_money(value)}</tr>")
    out.append("</table>")
    out += [f"<p>{e(note)}</p>" for note in view.notes()]

    fees = view.has_fees
    out += [
        "<h2>Stays</h2>",
        "<table><tr><th>Stay</th><th>Channel</th><th>Check-in</th><th>Check-out</th>"
        '<th class="num">Nights this month</th><th class="num">Rent</th>'
        + ('<th class="num">Owner fees</th>' if fees else "")
        + "</tr>",
    ]
    for s in view.stays:
        out.append(
            f"<tr><td>{e(s.code)}</td><td>{e(s.source)}</td><td>{s.check_in}</td>"
            f'<td>{s.check_out}</td><td class="num">{e(_nights(s))}</td>{_td_money(s.rent)}'
            + (_td_money(s.fees) if fees else "")
            + "</tr>"
        )
    if not view.stays:
        out.append(f'<tr><td colspan="6">{e(view.empty("stays"))}</td></tr>')
    if fees:
        rent_total = sum((s.rent for s in view.stays), ZERO)
        out.append(
            f'<tr class="total"><td colspan="5">Total</td>{_td_money(rent_total)}'
            f"{_td_money(view.totals['gross_revenue'] - rent_total)}</tr></table>"
        )
    else:
        out.append(
            f'<tr class="total"><td colspan="5">Rent</td>'
            f"{_td_money(view.totals['gross_revenue'])}</tr></table>"
        )

    out += [
        "<h2>Commissions</h2>",
        '<table><tr><th>Commission</th><th class="num">Amount</th></tr>',
    ]
    for c in view.commissions:
        out.append(f"<tr><td>{e(c.description)}</td>{_td_money(c.amount)}</tr>")
    if not view.commissions:
        out.append(f'<tr><td colspan="2">{e(view.empty("commissions"))}</td></tr>')
    out.append("</table>")

    out += [
        f"<h2>{e(view.costs_heading)}</h2>",
        '<table><tr><th>Date</th><th>Description</th><th class="num">Cost</th>'
        '<th class="num">Markup</th><th class="num">Billed</th></tr>',
    ]
    for c in view.costs:
        base = money(c.base_amount) if c.base_amount is not None else ""
        markup = f"{c.markup_pct}%" if c.markup_pct else ""
        out.append(
            f"<tr><td>{c.date or ''}</td><td>{e(c.description)}</td>"
            f'<td class="num">{base}</td><td class="num">{markup}</td>{_td_money(c.amount)}</tr>'
        )
    for c in view.charges:
        out.append(
            f"<tr><td>{view.month_label}</td><td>{e(view.charge_label(c))}</td>"
            f'<td class="num"></td><td class="num"></td>{_td_money(c.amount)}</tr>'
        )
    if not view.costs and not view.charges:
        out.append(f'<tr><td colspan="5">{e(view.empty("costs"))}</td></tr>')
    out.append("</table>")

    if view.adjustments:
        out += [
            "<h2>Adjustments</h2><table><tr><th>Date</th><th>Description</th>"
            '<th class="num">Amount</th></tr>'
        ]
        for a in view.adjustments:
            out.append(
                f"<tr><td>{a.date or ''}</td><td>{e(a.description)}</td>{_td_money(a.amount)}</tr>"
            )
        out.append("</table>")

    out.append(
        f'<p class="meta">Generated {view.generated_at:%Y-%m-%d %H:%M} UTC'
        + (
            f", finalized {view.finalized_at:%Y-%m-%d %H:%M} UTC"
            if view.finalized_at
            else ", not finalized"
        )
        + ".</p></body></html>"
    )
    return "\n".join(out) + "\n"


# -- CSV -------------------------------------------------------------------------------------

CSV_COLUMNS = (
    "statement",
    "property",
    "period",
    "section",
    "reference",
    "date",
    "check_in",
    "check_out",
    "nights",
    "description",
    "amount",
)


def render_csv(view: StatementView) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\r\n")
    w.writerow(CSV_COLUMNS)
    period = f"{view.period_start:%Y-%m}"
    base = (view.number, view.property_code, period)
    for s in view.stays:
        w.writerow(
            (
                *base,
                "rent",
                s.code,
                "",
                s.check_in,
                s.check_out,
                s.nights if s.nights is not None else "",
                f"{s.source} stay",
                s.rent,
            )  # fmt: skip
        )
        for section, amount, label in (
            ("cleaning_fee", s.cleaning, "cleaning fee"),
            ("other_fee", s.other, "other fees"),
        ):
            if amount:
                w.writerow((*base, section, s.code, "", s.check_in, s.check_out, "", label, amount))
    for c in view.commissions:
        w.writerow((*base, c.line_type, "", "", "", "", "", c.description, c.amount))
    for c in view.costs:
        w.writerow((*base, "expense", "", c.date or "", "", "", "", c.description, c.amount))
    for c in view.charges:
        w.writerow((*base, "recurring_charge", "", "", "", "", "", c.description, c.amount))
    for a in view.adjustments:
        w.writerow((*base, "adjustment", "", a.date or "", "", "", "", a.description, a.amount))
    for label, value in view.summary():
        key = label.lower().replace(" ", "_")
        w.writerow((*base, "summary", key, "", "", "", "", label, value))
    return buf.getvalue()


# -- PDF -------------------------------------------------------------------------------------


def render_pdf(view: StatementView) -> bytes:
    from reportlab.lib import colors
    from reportlab.lib.enums import TA_RIGHT
    from reportlab.lib.pagesizes import LETTER
    from reportlab.lib.styles import ParagraphStyle, getSampleStyleSheet
    from reportlab.lib.units import inch
    from reportlab.platypus import (
        KeepTogether,
        Paragraph,
        SimpleDocTemplate,
        Spacer,
        Table,
        TableStyle,
    )

    styles = getSampleStyleSheet()
    small = ParagraphStyle("small", parent=styles["Normal"], fontSize=8.5, leading=10.5)
    small_right = ParagraphStyle("small_right", parent=small, alignment=TA_RIGHT)
    h2 = ParagraphStyle("h2", parent=styles["Heading2"], fontSize=12, spaceBefore=10)
    navy = colors.HexColor("#1d4e89")
    grid = colors.HexColor("#dde3ea")
    shade = colors.HexColor("#f0f4f8")

    def p(value: object, style: ParagraphStyle = small) -> Paragraph:
        return Paragraph(html.escape(str(value)), style)

    def m(value: Decimal) -> Paragraph:
        return p(money(value), small_right)

    def table(rows: list[list], widths: list[float], totals: tuple[int, ...] = ()) -> Table:
        t = Table(rows, colWidths=widths, repeatRows=1)
        style = [
            ("BACKGROUND", (0, 0), (-1, 0), shade),
            ("LINEBELOW", (0, 0), (-1, -1), 0.5, grid),
            ("VALIGN", (0, 0), (-1, -1), "MIDDLE"),
            ("TOPPADDING", (0, 0), (-1, -1), 2),
            ("BOTTOMPADDING", (0, 0), (-1, -1), 2),
        ]
        for r in totals:
            style.append(("LINEABOVE", (0, r), (-1, r), 1.2, colors.black))
        t.setStyle(TableStyle(style))
        return t

    story: list = [
        Paragraph(f"Owner statement {html.escape(view.number)}", styles["Title"]),
        p(f"{status_label(view)} · version {view.version} · {view.currency}"),
        Spacer(1, 8),
    ]
    info = [
        [p("Owner"), p(view.owner_name + (f" <{view.owner_email}>" if view.owner_email else ""))],
        [p("Property"), p(f"{view.property_name} ({view.property_code})")],
        [p("Period"), p(f"{view.period_label}: {view.period_range}")],
    ]
    info_table = Table(info, colWidths=[1.1 * inch, 5.9 * inch])
    info_table.setStyle(
        TableStyle(
            [("LINEBELOW", (0, 0), (-1, -1), 0.5, grid), ("BACKGROUND", (0, 0), (0, -1), shade)]
        )
    )
    story.append(info_table)

    summary_rows = [[p(""), p(view.currency, small_right)]]
    summary_rows += [[p(label), m(value)] for label, value in view.summary()]
    totals_at = tuple(
        i + 1
        for i, (label, _) in enumerate(view.summary())
        if label in ("Net income", "Closing balance")
    )
    story += [
        Paragraph("Summary", h2),
        table(summary_rows, [4.5 * inch, 2.5 * inch], totals_at),
        Spacer(1, 4),
        *(p(note) for note in view.notes()),
    ]

    fees = view.has_fees
    headings = (
        ("Nights this month", "Rent", "Owner fees") if fees else ("Nights this month", "Rent")
    )
    stay_rows = [
        [p(h) for h in ("Stay", "Channel", "Check-in", "Check-out")]
        + [p(h, small_right) for h in headings]
    ]
    for s in view.stays:
        stay_rows.append(
            [
                p(s.code),
                p(s.source),
                p(s.check_in),
                p(s.check_out),
                p(_nights(s), small_right),
                m(s.rent),
            ]
            + ([m(s.fees)] if fees else [])
        )
    if not view.stays:
        stay_rows.append([p(view.empty("stays")), "", "", "", "", ""])
    if fees:
        rent_total = sum((s.rent for s in view.stays), ZERO)
        fee_total = view.totals["gross_revenue"] - rent_total
        stay_rows.append([p("Total"), "", "", "", "", m(rent_total), m(fee_total)])
        widths = (1.45, 0.85, 0.9, 0.9, 1.1, 0.9, 0.9)
    else:
        stay_rows.append([p("Rent"), "", "", "", "", m(view.totals["gross_revenue"])])
        widths = (1.6, 1.0, 1.0, 1.0, 1.2, 1.2)
    # Each heading kept with (the start of) its table, never alone at the foot of a page.
    story.append(
        KeepTogether(
            [
                Paragraph("Stays", h2),
                table(stay_rows, [w * inch for w in widths], (len(stay_rows) - 1,)),
            ]
        )
    )

    commission_rows = [[p("Commission"), p("Amount", small_right)]]
    commission_rows += [[p(c.description), m(c.amount)] for c in view.commissions]
    if not view.commissions:
        commission_rows.append([p(view.empty("commissions")), ""])
    story.append(
        KeepTogether(
            [Paragraph("Commissions", h2), table(commission_rows, [5.8 * inch, 1.2 * inch])]
        )
    )

    cost_rows = [
        [p("Date"), p("Description")] + [p(h, small_right) for h in ("Cost", "Markup", "Billed")]
    ]
    for c in view.costs:
        cost_rows.append(
            [
                p(c.date or ""),
                p(c.description),
                m(c.base_amount) if c.base_amount is not None else "",
                p(f"{c.markup_pct}%" if c.markup_pct else "", small_right),
                m(c.amount),
            ]  # fmt: skip
        )
    if not view.costs and not view.charges:
        cost_rows.append([p(""), p(view.empty("costs")), "", "", ""])
    # Recurring charges are billed like costs, once a month: same table, dated by the month.
    for c in view.charges:
        cost_rows.append([p(view.month_label), p(view.charge_label(c)), "", "", m(c.amount)])
    story.append(
        KeepTogether(
            [
                Paragraph(view.costs_heading, h2),
                table(cost_rows, [w * inch for w in (0.8, 3.8, 0.8, 0.7, 0.9)]),
            ]
        )
    )

    if view.adjustments:
        adj_rows = [[p("Date"), p("Description"), p("Amount", small_right)]]
        adj_rows += [[p(a.date or ""), p(a.description), m(a.amount)] for a in view.adjustments]
        story.append(
            KeepTogether(
                [
                    Paragraph("Adjustments", h2),
                    table(adj_rows, [w * inch for w in (0.8, 5.3, 0.9)]),
                ]
            )
        )

    generated = f"Generated {view.generated_at:%Y-%m-%d %H:%M} UTC" + (
        f", finalized {view.finalized_at:%Y-%m-%d %H:%M} UTC" if view.finalized_at else ""
    )

    def footer(canvas, doc) -> None:
        canvas.saveState()
        canvas.setFont("Helvetica", 7.5)
        canvas.setFillColor(navy)
        canvas.drawString(0.75 * inch, 0.5 * inch, f"{view.number} · {generated}")
        canvas.drawRightString(LETTER[0] - 0.75 * inch, 0.5 * inch, f"Page {doc.page}")
        canvas.restoreState()

    buf = io.BytesIO()
    doc = SimpleDocTemplate(
        buf,
        pagesize=LETTER,
        leftMargin=0.75 * inch,
        rightMargin=0.75 * inch,
        topMargin=0.7 * inch,
        bottomMargin=0.8 * inch,
        title=f"Owner statement {view.number}",
        author="Central Memory",
        subject=f"{view.property_name}, {view.period_label}",
    )
    doc.build(story, onFirstPage=footer, onLaterPages=footer)
    return buf.getvalue()


def render(view: StatementView, fmt: str) -> str | bytes:
    if fmt == "html":
        return render_html(view)
    if fmt == "csv":
        return render_csv(view)
    if fmt == "pdf":
        return render_pdf(view)
    raise ValueError(f"unknown format {fmt!r}")
