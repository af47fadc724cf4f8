"""Schema finance: a double-entry ledger and owner statements with their payouts (SPEC 4
"Finance", 6.5).

Business IDs: transactions.txn_number "TXN-010001", owner_statements.statement_number
"OS-010001", owner_payouts.payout_number "PO-010001".

SPEC 7.5 adds the money around the statements (docs/MONEY.md): guest payments posted to the
ledger, recurring owner charges, the bank balances ops enter and the trust reconciliations
checked against them, and the PDF each finalized statement was delivered with.

The ledger is append-only: corrections are reversing transactions, so transactions and their
lines have no updated_at. The guarantees that span rows (every transaction balances; a posted
line is never updated or deleted; a statement that is no longer a draft, and its lines, never
change — revision 0006 — except that a final statement may be voided) are triggers created by
the migrations; the per-row rules are the CHECKs below. Money references are RESTRICT:
nothing a ledger line or a statement points at can be deleted from under it.
"""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal

from sqlalchemy import CheckConstraint, ForeignKey, Index, Numeric, UniqueConstraint, text
from sqlalchemy.dialects.postgresql import BYTEA
from sqlalchemy.orm import Mapped, mapped_column

from db.base import Base, business_id, check_in, created_at, updated_at, uuid_pk

ACCOUNT_TYPES = ("asset", "liability", "equity", "revenue", "expense")
NORMAL_BALANCES = ("debit", "credit")
STATEMENT_STATUSES = ("draft", "final", "void")
STATEMENT_LINE_TYPES = (
    "rent",
    "channel_fee",
    "management_fee",
    "expense",
    "adjustment",
    "reserve",
    "payout",
    # SPEC 7.5: the owner's fees (+) and recurring charges (-).
    "cleaning_fee",
    "other_fee",
    "recurring_charge",
)
PAYOUT_STATUSES = ("pending", "sent", "failed", "cancelled")
RECONCILIATION_STATUSES = ("balanced", "difference", "no_bank_balance")
# Ledger references posted at most once (a receipt, a payout sent).
POSTED_ONCE_REFERENCES = "reference_type IN ('guest_payment', 'owner_payout')"


def _total() -> Mapped[Decimal]:
    """A statement total: the signed sum of its lines, 0 until the statement is built."""
    return mapped_column(Numeric(12, 2), server_default=text("0"))


class Account(Base):
    """Chart of accounts; the migrations seed the accounts the statements job posts to."""

    __tablename__ = "accounts"
    __table_args__ = (
        check_in("account_type", ACCOUNT_TYPES),
        check_in("normal_balance", NORMAL_BALANCES),
        {"schema": "finance"},
    )

    id: Mapped[uuid.UUID] = uuid_pk()
    code: Mapped[str] = mapped_column(unique=True)
    name: Mapped[str]
    account_type: Mapped[str]
    normal_balance: Mapped[str]
    is_active: Mapped[bool] = mapped_column(server_default=text("true"))
    created_at: Mapped[dt.datetime] = created_at()
    updated_at: Mapped[dt.datetime] = updated_at()


class Transaction(Base):
    """A journal entry header. Written once, posted when written, never changed."""

    __tablename__ = "transactions"
    __table_args__ = (
        # "The ledger entries of this statement / payout": reference_type + reference_id.
        Index("ix_transactions_reference", "reference_type", "reference_id"),
        Index("ix_transactions_txn_date", "txn_date"),
        # A guest payment or a sent payout is posted once, whatever runs or retries post it.
        Index(
            "uq_transactions_posted_once",
            "reference_type",
            "reference_id",
            unique=True,
            postgresql_where=text(POSTED_ONCE_REFERENCES),
        ),
        {"schema": "finance"},
    )

    id: Mapped[uuid.UUID] = uuid_pk()
    txn_number: Mapped[str] = business_id("finance", "transactions", "txn_number", "TXN")
    txn_date: Mapped[dt.date]
    description: Mapped[str | None]
    # e.g. 'owner_statement' + the statement's id.
    reference_type: Mapped[str | None]
    reference_id: Mapped[uuid.UUID | None]
    # The transaction this one reverses; unique, so a transaction is reversed at most once.
    reversal_of_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("finance.transactions.id", ondelete="RESTRICT"), unique=True
    )
    # Every transaction is posted when written (there are no draft entries): its lines are
    # immutable from then on.
    posted_at: Mapped[dt.datetime] = mapped_column(server_default=text("now()"))
    created_at: Mapped[dt.datetime] = created_at()


class TransactionLine(Base):
    """One debit or one credit of a transaction (append-only)."""

    __tablename__ = "transaction_lines"
    __table_args__ = (
        # Each side >= 0 and exactly one of them non-zero.
        CheckConstraint(
            "debit >= 0 AND credit >= 0 AND ((debit > 0) <> (credit > 0))",
            name="one_sided",
        ),
        Index("ix_transaction_lines_transaction_id", "transaction_id"),
        Index("ix_transaction_lines_account_id", "account_id"),
        # An owner's running balance on the owner-payable account.
        Index(
            "ix_transaction_lines_homeowner_id",
            "homeowner_id",
            postgresql_where=text("homeowner_id IS NOT NULL"),
        ),
        {"schema": "finance"},
    )

    id: Mapped[uuid.UUID] = uuid_pk()
    transaction_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("finance.transactions.id", ondelete="RESTRICT")
    )
    account_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("finance.accounts.id", ondelete="RESTRICT")
    )
    homeowner_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("directory.homeowners.id", ondelete="RESTRICT")
    )
    property_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("property.properties.id", ondelete="RESTRICT")
    )
    reservation_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("reservations.reservations.id", ondelete="RESTRICT")
    )
    debit: Mapped[Decimal] = mapped_column(Numeric(14, 2), server_default=text("0"))
    credit: Mapped[Decimal] = mapped_column(Numeric(14, 2), server_default=text("0"))
    memo: Mapped[str | None]
    created_at: Mapped[dt.datetime] = created_at()


class OwnerStatement(Base):
    """One homeowner, one property, one calendar month (in the property's zone), one version.

    A draft is rebuilt freely; a final statement never changes (the database refuses it). A
    revision is a new version (status draft, then final) that carries only the difference and
    supersedes the old one, which stays final: supersedes_id links the new to the old.
    """

    __tablename__ = "owner_statements"
    __table_args__ = (
        check_in("status", STATEMENT_STATUSES),
        CheckConstraint("period_end > period_start", name="period_ordered"),
        CheckConstraint("version >= 1", name="version_positive"),
        CheckConstraint(
            "status <> 'final' OR finalized_at IS NOT NULL", name="final_has_finalized_at"
        ),
        UniqueConstraint(
            "homeowner_id",
            "property_id",
            "period_start",
            "version",
            name="uq_owner_statements_owner_property_period_version",
        ),
        # At most one draft per owner, property and period, so concurrent statements.generate
        # runs build the same draft (INSERT ... ON CONFLICT).
        Index(
            "uq_owner_statements_one_draft",
            "homeowner_id",
            "property_id",
            "period_start",
            unique=True,
            postgresql_where=text("status = 'draft'"),
        ),
        Index("ix_owner_statements_property_id_period_start", "property_id", "period_start"),
        {"schema": "finance"},
    )

    id: Mapped[uuid.UUID] = uuid_pk()
    statement_number: Mapped[str] = business_id(
        "finance", "owner_statements", "statement_number", "OS"
    )
    homeowner_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("directory.homeowners.id", ondelete="RESTRICT")
    )
    property_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("property.properties.id", ondelete="RESTRICT")
    )
    period_start: Mapped[dt.date]
    # Exclusive: the first day of the next month.
    period_end: Mapped[dt.date]
    version: Mapped[int] = mapped_column(server_default=text("1"))
    status: Mapped[str] = mapped_column(server_default="draft")
    currency: Mapped[str] = mapped_column(server_default="USD")
    # Signed, + to the owner; each total is the sum of its lines (fees and expenses negative).
    # balance before payout = opening_balance + net_income;
    # payout_amount = max(0, that - reserve_held); closing_balance = that - payout_amount.
    opening_balance: Mapped[Decimal] = _total()
    gross_revenue: Mapped[Decimal] = _total()
    channel_fees: Mapped[Decimal] = _total()
    management_fees: Mapped[Decimal] = _total()
    expenses: Mapped[Decimal] = _total()
    adjustments: Mapped[Decimal] = _total()
    net_income: Mapped[Decimal] = _total()
    reserve_held: Mapped[Decimal] = _total()
    payout_amount: Mapped[Decimal] = _total()
    closing_balance: Mapped[Decimal] = _total()
    generated_at: Mapped[dt.datetime] = mapped_column(server_default=text("now()"))
    finalized_at: Mapped[dt.datetime | None]
    # The ledger transaction posted at finalization.
    transaction_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("finance.transactions.id", ondelete="RESTRICT")
    )
    # The earlier version this one revises; unique, so a version is superseded once.
    supersedes_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("finance.owner_statements.id", ondelete="RESTRICT"), unique=True
    )
    created_at: Mapped[dt.datetime] = created_at()
    updated_at: Mapped[dt.datetime] = updated_at()


class OwnerStatementLine(Base):
    """One signed line of a statement (+ to the owner). Drafts replace their lines when
    rebuilt rather than updating them, so there is no updated_at."""

    __tablename__ = "owner_statement_lines"
    __table_args__ = (
        check_in("line_type", STATEMENT_LINE_TYPES),
        CheckConstraint("nights IS NULL OR nights >= 0", name="nights_nonnegative"),
        Index("ix_owner_statement_lines_statement_id", "statement_id", "sort_order"),
        Index(
            "ix_owner_statement_lines_reservation_id",
            "reservation_id",
            postgresql_where=text("reservation_id IS NOT NULL"),
        ),
        Index(
            "ix_owner_statement_lines_ticket_cost_id",
            "ticket_cost_id",
            postgresql_where=text("ticket_cost_id IS NOT NULL"),
        ),
        Index(
            "ix_owner_statement_lines_recurring_charge_id",
            "recurring_charge_id",
            postgresql_where=text("recurring_charge_id IS NOT NULL"),
        ),
        {"schema": "finance"},
    )

    id: Mapped[uuid.UUID] = uuid_pk()
    statement_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("finance.owner_statements.id", ondelete="CASCADE")
    )
    line_type: Mapped[str]
    reservation_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("reservations.reservations.id", ondelete="RESTRICT")
    )
    ticket_cost_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("service.ticket_costs.id", ondelete="RESTRICT")
    )
    adjustment_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("finance.owner_adjustments.id", ondelete="RESTRICT")
    )
    # What the owner reads on the statement.
    description: Mapped[str]
    # recurring_charge lines: the charge they bill (one line per charge and month).
    recurring_charge_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey(
            "finance.owner_recurring_charges.id",
            ondelete="RESTRICT",
            name="fk_owner_statement_lines_recurring_charge_id",
        )
    )
    # Rent lines: the reservation's nights within the period.
    nights: Mapped[int | None]
    amount: Mapped[Decimal] = mapped_column(Numeric(12, 2))
    sort_order: Mapped[int] = mapped_column(server_default=text("0"))
    # Rent lines only: this statement's shares of the stay's channel commission, cleaning fee,
    # other fees and taxes, whoever they belong to. With the rent they are the guest money the
    # statement draws from the clearing account at finalize (docs/MONEY.md); the owner reads
    # the owner's fees as their own lines, never the taxes.
    stay_channel_commission: Mapped[Decimal | None] = mapped_column(Numeric(12, 2))
    stay_cleaning_fee: Mapped[Decimal | None] = mapped_column(Numeric(12, 2))
    stay_other_fees: Mapped[Decimal | None] = mapped_column(Numeric(12, 2))
    stay_taxes: Mapped[Decimal | None] = mapped_column(Numeric(12, 2))
    created_at: Mapped[dt.datetime] = created_at()


class OwnerAdjustment(Base):
    """A manual adjustment to an owner's account (a credit, a correction), entered by staff.

    Statements are rebuilt freely, so manual adjustments cannot live only as statement lines:
    they are kept here and picked up, like owner-billable ticket costs, by the statement of
    the period containing adjustment_date, which becomes an 'adjustment' line. statement_line_id
    is set when the statement is finalized, so an adjustment is applied once.
    """

    __tablename__ = "owner_adjustments"
    __table_args__ = (
        Index(
            "ix_owner_adjustments_unapplied",
            "property_id",
            "adjustment_date",
            postgresql_where=text("statement_line_id IS NULL"),
        ),
        Index("ix_owner_adjustments_homeowner_id", "homeowner_id"),
        {"schema": "finance"},
    )

    id: Mapped[uuid.UUID] = uuid_pk()
    homeowner_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("directory.homeowners.id", ondelete="RESTRICT")
    )
    property_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("property.properties.id", ondelete="RESTRICT")
    )
    adjustment_date: Mapped[dt.date]
    # Signed: + to the owner.
    amount: Mapped[Decimal] = mapped_column(Numeric(12, 2))
    description: Mapped[str]
    # use_alter: owner_statement_lines.adjustment_id points back here.
    statement_line_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey(
            "finance.owner_statement_lines.id",
            ondelete="SET NULL",
            use_alter=True,
            name="fk_owner_adjustments_statement_line_id_owner_statement_lines",
        ),
        unique=True,
    )
    created_at: Mapped[dt.datetime] = created_at()
    updated_at: Mapped[dt.datetime] = updated_at()


class OwnerPayout(Base):
    """The payout of a finalized statement with a positive payout (one per statement)."""

    __tablename__ = "owner_payouts"
    __table_args__ = (
        check_in("status", PAYOUT_STATUSES),
        CheckConstraint("amount > 0", name="amount_positive"),
        Index("ix_owner_payouts_homeowner_id", "homeowner_id"),
        Index(
            "ix_owner_payouts_pending_scheduled_for",
            "scheduled_for",
            postgresql_where=text("status = 'pending'"),
        ),
        {"schema": "finance"},
    )

    id: Mapped[uuid.UUID] = uuid_pk()
    payout_number: Mapped[str] = business_id("finance", "owner_payouts", "payout_number", "PO")
    statement_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("finance.owner_statements.id", ondelete="RESTRICT"), unique=True
    )
    homeowner_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("directory.homeowners.id", ondelete="RESTRICT")
    )
    amount: Mapped[Decimal] = mapped_column(Numeric(12, 2))
    status: Mapped[str] = mapped_column(server_default="pending")
    # The date the money is to be sent (sending it is another service's work, which reports
    # back through finance.record_payout).
    scheduled_for: Mapped[dt.date]
    sent_at: Mapped[dt.datetime | None]
    # The bank transfer's reference, as the payment service reported it.
    reference: Mapped[str | None]
    failed_at: Mapped[dt.datetime | None]
    failure_reason: Mapped[str | None]
    # The cash movement of a sent payout (Dr 2000 Owner payable / Cr 1010 Trust cash).
    transaction_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("finance.transactions.id", ondelete="RESTRICT"), unique=True
    )
    created_at: Mapped[dt.datetime] = created_at()
    updated_at: Mapped[dt.datetime] = updated_at()


class OwnerRecurringCharge(Base):
    """A monthly charge to an owner for a property (a software fee, snow plowing): one
    `recurring_charge` line on each statement of the months from start_month to end_month
    (first days of months; end_month is the last one charged, NULL = open)."""

    __tablename__ = "owner_recurring_charges"
    __table_args__ = (
        CheckConstraint("amount > 0", name="amount_positive"),
        CheckConstraint(
            "extract(day FROM start_month) = 1 AND (end_month IS NULL"
            " OR (extract(day FROM end_month) = 1 AND end_month >= start_month))",
            name="months",
        ),
        Index("ix_owner_recurring_charges_property_id_homeowner_id", "property_id", "homeowner_id"),
        {"schema": "finance"},
    )

    id: Mapped[uuid.UUID] = uuid_pk()
    homeowner_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("directory.homeowners.id", ondelete="RESTRICT")
    )
    property_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("property.properties.id", ondelete="RESTRICT")
    )
    description: Mapped[str]
    # Charged to the owner each month (the line carries it negated).
    amount: Mapped[Decimal] = mapped_column(Numeric(12, 2))
    start_month: Mapped[dt.date]
    end_month: Mapped[dt.date | None]
    created_at: Mapped[dt.datetime] = created_at()
    updated_at: Mapped[dt.datetime] = updated_at()


class GuestPayment(Base):
    """Money a guest paid into the trust account (negative: a refund), recorded by the payment
    service, posted to the ledger by finance.post_payments.

    reservation_id has no foreign key on purpose: a payment for a reservation we do not know
    is stored and gets `error`, visible to ops, instead of being refused at the door. Once
    posted (transaction_id set) a payment never changes (trigger): corrections are refunds.
    """

    __tablename__ = "guest_payments"
    __table_args__ = (
        CheckConstraint("amount <> 0", name="amount_nonzero"),
        # The job's queue: what is neither posted nor in error. No other index beyond the keys:
        # posting updates every payment once, and that update (transaction_id changes) writes
        # a new entry in each index of the table.
        Index(
            "ix_guest_payments_unposted",
            "received_at",
            postgresql_where=text("transaction_id IS NULL AND error IS NULL"),
        ),
        {"schema": "finance"},
    )

    id: Mapped[uuid.UUID] = uuid_pk()
    reservation_id: Mapped[uuid.UUID]
    amount: Mapped[Decimal] = mapped_column(Numeric(12, 2))
    received_at: Mapped[dt.datetime] = mapped_column(server_default=text("now()"))
    # The payment service's own id of the payment: the idempotency key of the receipt.
    external_ref: Mapped[str] = mapped_column(unique=True)
    # Checked at commit: finance.post_payments marks the payment with its entry's id first.
    # One payment, one entry: the entry's reference is the payment (uq_transactions_posted_once).
    transaction_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey(
            "finance.transactions.id", ondelete="RESTRICT", deferrable=True, initially="DEFERRED"
        )
    )
    # Why it could not be posted; clear it (after fixing the row) to have it posted again.
    error: Mapped[str | None]
    created_at: Mapped[dt.datetime] = created_at()
    updated_at: Mapped[dt.datetime] = updated_at()


class BankBalance(Base):
    """The balance of a bank account on a day, as ops read it from the bank (the trust
    account is account_code 1010); finance.reconcile_trust compares the month-end one."""

    __tablename__ = "bank_balances"
    __table_args__ = (
        UniqueConstraint("account_code", "balance_date"),
        {"schema": "finance"},
    )

    id: Mapped[uuid.UUID] = uuid_pk()
    account_code: Mapped[str] = mapped_column(
        ForeignKey("finance.accounts.code", ondelete="RESTRICT"), server_default="1010"
    )
    balance_date: Mapped[dt.date]
    balance: Mapped[Decimal] = mapped_column(Numeric(14, 2))
    note: Mapped[str | None]
    created_at: Mapped[dt.datetime] = created_at()
    updated_at: Mapped[dt.datetime] = updated_at()


class TrustReconciliation(Base):
    """The three-way reconciliation of a trust account at a month end (finance.reconcile_trust):
    the ledger's trust cash, the bank's balance, and what is owed from it, by kind. One row per
    account and month, brought up to date by each run (`runs` counts them).

    bank_difference = bank_balance - ledger_balance; book_difference = ledger_balance -
    owed_total, owed_total = owner_balances + guest_funds_future + guest_funds_current +
    taxes_payable + fees_held.
    """

    __tablename__ = "trust_reconciliations"
    __table_args__ = (
        check_in("status", RECONCILIATION_STATUSES),
        UniqueConstraint("account_code", "month"),
        {"schema": "finance"},
    )

    id: Mapped[uuid.UUID] = uuid_pk()
    account_code: Mapped[str] = mapped_column(
        ForeignKey("finance.accounts.code", ondelete="RESTRICT")
    )
    # First day of the month reconciled; month_end its last day.
    month: Mapped[dt.date]
    month_end: Mapped[dt.date]
    status: Mapped[str]
    ledger_balance: Mapped[Decimal] = mapped_column(Numeric(14, 2))
    bank_balance: Mapped[Decimal | None] = mapped_column(Numeric(14, 2))
    # Owner payable (2000), net of what owners owe.
    owner_balances: Mapped[Decimal] = mapped_column(Numeric(14, 2))
    # Guest rent clearing (2100): for stays checking in after the month end, and for stays
    # begun by then but not yet on a final statement.
    guest_funds_future: Mapped[Decimal] = mapped_column(Numeric(14, 2))
    guest_funds_current: Mapped[Decimal] = mapped_column(Numeric(14, 2))
    taxes_payable: Mapped[Decimal] = mapped_column(Numeric(14, 2))
    # Due to operating (2300): manager fees earned and still in the trust account.
    fees_held: Mapped[Decimal] = mapped_column(Numeric(14, 2))
    owed_total: Mapped[Decimal] = mapped_column(Numeric(14, 2))
    bank_difference: Mapped[Decimal | None] = mapped_column(Numeric(14, 2))
    book_difference: Mapped[Decimal] = mapped_column(Numeric(14, 2))
    # Owners whose balance is negative at the month end (they owe: their costs were paid with
    # other people's money until recovered).
    negative_owner_balances: Mapped[int] = mapped_column(server_default=text("0"))
    runs: Mapped[int] = mapped_column(server_default=text("1"))
    reconciled_at: Mapped[dt.datetime]
    created_at: Mapped[dt.datetime] = created_at()
    updated_at: Mapped[dt.datetime] = updated_at()


class OwnerStatementDocument(Base):
    """The PDF a finalized statement was sent with, stored for the delivery service: the email
    in comms.messages (related_type 'owner_statement', related_id = the statement) attaches the
    document whose statement_id is its related_id."""

    __tablename__ = "owner_statement_documents"
    __table_args__ = {"schema": "finance"}

    id: Mapped[uuid.UUID] = uuid_pk()
    statement_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("finance.owner_statements.id", ondelete="RESTRICT"), unique=True
    )
    content_type: Mapped[str] = mapped_column(server_default="application/pdf")
    filename: Mapped[str]
    content: Mapped[bytes] = mapped_column(BYTEA)
    sha256: Mapped[str]
    created_at: Mapped[dt.datetime] = created_at()
