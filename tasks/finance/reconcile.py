"""finance.reconcile_trust: the monthly three-way reconciliation of the trust account.

At a month end (transactions dated up to its last day) it compares three figures:

1. trust cash in the ledger (account 1010);
2. the bank's balance of the trust account that day, entered by ops in finance.bank_balances
   (account_code '1010', balance_date the month's last day);
3. what is owed from the trust account, summed from the sub-ledgers: owner balances (2000 per
   owner and property, net of what owners owe), guest money held (2100 per stay: stays checking
   in after the month end, and stays begun but not yet on a final statement), taxes payable
   (2200) and manager fees not yet transferred to operating (2300).

The ledger is built so that 1 = 3 by construction (every journal entry's trust lines balance
by themselves, docs/MONEY.md), so a book difference means an entry made around that rule; a
bank difference means the bank and the books disagree (an unrecorded receipt, a payout sent
but not reported, a bank fee, a typo in the balance entered). The result is recorded in
finance.trust_reconciliations, one row per account and month brought up to date by each run,
with status `balanced`, `difference` or `no_bank_balance` (nothing entered yet: recorded, not
notified; the run after ops enter it decides). A difference queues one ops email
(related_type 'trust_reconciliation'), once per month and pair of differences (dedupe_key).
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from sqlalchemy.orm import Session

from tasks.finance import queries as q
from tasks.statements import money

OWED = ("owner_balances", "guest_funds_future", "guest_funds_current", "taxes_payable",
        "fees_held")  # fmt: skip


def reconcile_trust(
    session: Session,
    month_start: dt.date,
    *,
    as_of: dt.datetime,
    ops_recipient: str,
    account_code: str = money.TRUST_CASH,
) -> dict[str, Any]:
    """Reconcile the trust account at the end of the month starting `month_start`; record it
    and notify a difference. Returns the figures."""
    month_end = money.add_months(month_start, 1) - dt.timedelta(days=1)
    row = (
        session.execute(
            q.TRUST_BALANCES,
            {
                "month_end": month_end,
                "codes": list(money.TRUST_ACCOUNTS),
                "trust_cash": account_code,
                "payable": money.OWNER_PAYABLE,
                "clearing": money.GUEST_CLEARING,
                "taxes_payable": money.TAXES_PAYABLE,
                "due_to_operating": money.DUE_TO_OPERATING,
            },
        )
        .mappings()
        .one()
    )
    # Whole cents throughout (an empty ledger sums to a bare 0).
    figures = {k: v.quantize(money.CENT) if isinstance(v, Decimal) else v for k, v in row.items()}
    bank: Decimal | None = session.execute(
        q.BANK_BALANCE, {"account_code": account_code, "month_end": month_end}
    ).scalar_one_or_none()
    ledger = figures["ledger_balance"]
    owed = sum((figures[k] for k in OWED), Decimal(0))
    book_difference = ledger - owed
    bank_difference = None if bank is None else bank - ledger
    if book_difference or bank_difference:
        status = "difference"
    elif bank is None:
        status = "no_bank_balance"
    else:
        status = "balanced"
    record = {
        **figures,
        "account_code": account_code,
        "month": month_start,
        "month_end": month_end,
        "status": status,
        "bank_balance": bank,
        "owed_total": owed,
        "bank_difference": bank_difference,
        "book_difference": book_difference,
        "reconciled_at": as_of,
    }
    row = session.execute(q.RECORD_RECONCILIATION, record).mappings().one()
    notified = 0
    if status == "difference":
        notified = session.execute(
            q.NOTIFY_DIFFERENCE,
            {
                "id": row["id"],
                "recipient": ops_recipient,
                "subject": f"Trust account {account_code} does not reconcile at {month_end}",
                "body": notice_body(record),
                "dedupe_key": f"trust_reconciliation:{account_code}:{month_start:%Y-%m}"
                f":bank:{bank_difference}:book:{book_difference}",
            },
        ).rowcount
    return {
        "month": f"{month_start:%Y-%m}",
        "status": status,
        "ledger_balance": str(ledger),
        "bank_balance": None if bank is None else str(bank),
        "owed_total": str(owed),
        "bank_difference": None if bank_difference is None else str(bank_difference),
        "book_difference": str(book_difference),
        "runs": row["runs"],
        "notified": notified,
    }


def notice_body(r: dict[str, Any]) -> str:
    def line(label: str, value: Decimal | None) -> str:
        return f"  {label:<38} {'not entered' if value is None else f'{value:,.2f}':>16}"

    return (
        "\n".join(
            [
                f"The trust account {r['account_code']} does not reconcile at {r['month_end']}.",
                "",
                line("Bank balance (entered by ops)", r["bank_balance"]),
                line("Trust cash in the ledger", r["ledger_balance"]),
                line("Bank - ledger", r["bank_difference"]),
                "",
                line("Owner balances", r["owner_balances"]),
                line("Guest money for future stays", r["guest_funds_future"]),
                line("Guest money for stays not yet stated", r["guest_funds_current"]),
                line("Taxes payable", r["taxes_payable"]),
                line("Manager fees not yet transferred", r["fees_held"]),
                line("Owed from the trust account", r["owed_total"]),
                line("Ledger - owed", r["book_difference"]),
                "",
                "Check receipts and payouts around the month end against the bank statement,"
                " correct the balance entered in finance.bank_balances if it was mistyped, then"
                f" run finance.reconcile_trust for {r['month']:%Y-%m} again.",
            ]
        )
        + "\n"
    )
