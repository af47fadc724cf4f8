"""money from guest to owner: fees, receipts, trust reconciliation, statement delivery

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-06 22:00:00+00:00

SPEC 7.5 (docs/MONEY.md has the ledger design and a worked example):

- owner relationships say whether cleaning and other fees are the owner's, and carry a flat
  commission per stay and a monthly minimum; statement lines gain the types `cleaning_fee`,
  `other_fee` and `recurring_charge`, a link to the recurring charge they bill, and on rent
  lines the stay's shares of channel commission, fees and taxes (what finalize draws from the
  guest clearing account besides the rent);
- `finance.owner_recurring_charges`, `finance.guest_payments` (posted by finance.post_payments;
  no foreign key on reservation_id on purpose: a payment for an unknown reservation must be
  stored and marked with an error, not refused), `finance.bank_balances` (entered by ops),
  `finance.trust_reconciliations` (finance.reconcile_trust's results) and
  `finance.owner_statement_documents` (the PDF each finalized statement was sent with);
- payouts record how they were sent (`reference`, `transaction_id`) or why they failed;
- a ledger transaction of a guest payment or of a sent payout is posted once (unique index);
- the chart of accounts gains 1300 Due from trust, 2200 Taxes payable, 2300 Due to operating,
  4020 Guest fee revenue and 4030 Owner recurring charges.

Everything added to existing tables is nullable or defaulted, so a service inserting only the
contract columns still succeeds. The downgrade keeps every existing row: it refuses to run
while statements carry lines of the new types (the old CHECK could not hold them) and keeps
the new accounts that ledger lines already use.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TIMESTAMPTZ = postgresql.TIMESTAMP(timezone=True)
MONEY = sa.Numeric(12, 2)
LEDGER_MONEY = sa.Numeric(14, 2)

OLD_LINE_TYPES = ("rent", "channel_fee", "management_fee", "expense", "adjustment", "reserve",
                  "payout")  # fmt: skip
NEW_LINE_TYPES = ("cleaning_fee", "other_fee", "recurring_charge")

# code, name, type, normal balance (docs/MONEY.md says what each is for).
ACCOUNTS = [
    ("1300", "Due from trust (manager fees not yet transferred)", "asset", "debit"),
    ("2200", "Taxes payable (occupancy taxes collected)", "liability", "credit"),
    ("2300", "Due to operating (manager fees held in trust)", "liability", "credit"),
    ("4020", "Guest fee revenue (cleaning and other fees kept)", "revenue", "credit"),
    ("4030", "Owner recurring charges", "revenue", "credit"),
]

NEW_TABLES_WITH_UPDATED_AT = (
    "finance.owner_recurring_charges",
    "finance.guest_payments",
    "finance.bank_balances",
    "finance.trust_reconciliations",
)

# A guest payment in the ledger is the ledger's: once posted, the payment service may not move
# or change it (a correction is a refund, a negative payment), only its error note.
GUEST_PAYMENT_GUARD_SQL = """
CREATE FUNCTION finance.refuse_posted_payment_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF OLD.transaction_id IS NOT NULL AND (
       TG_OP = 'DELETE'
       OR NEW.reservation_id IS DISTINCT FROM OLD.reservation_id
       OR NEW.amount IS DISTINCT FROM OLD.amount
       OR NEW.received_at IS DISTINCT FROM OLD.received_at
       OR NEW.external_ref IS DISTINCT FROM OLD.external_ref
       OR NEW.transaction_id IS DISTINCT FROM OLD.transaction_id) THEN
    RAISE EXCEPTION 'guest payment % is posted to the ledger: it cannot be %d; record a refund',
      OLD.external_ref, lower(TG_OP)
      USING ERRCODE = 'restrict_violation';
  END IF;
  IF TG_OP = 'DELETE' THEN
    RETURN OLD;
  END IF;
  RETURN NEW;
END
$$;
CREATE TRIGGER posted_payments_immutable BEFORE UPDATE OR DELETE ON finance.guest_payments
  FOR EACH ROW EXECUTE FUNCTION finance.refuse_posted_payment_change();
"""


def _id() -> sa.Column:
    return sa.Column("id", sa.UUID(), server_default=sa.text("ops.uuid_generate_v7()"),
                     nullable=False)  # fmt: skip


def _created_at() -> sa.Column:
    return sa.Column("created_at", TIMESTAMPTZ, server_default=sa.text("now()"), nullable=False)


def _updated_at() -> sa.Column:
    return sa.Column("updated_at", TIMESTAMPTZ, server_default=sa.text("now()"), nullable=False)


def _line_type_check(types: Sequence[str]) -> None:
    op.drop_constraint(
        op.f("ck_owner_statement_lines_line_type_allowed"),
        "owner_statement_lines",
        schema="finance",
        type_="check",
    )
    op.create_check_constraint(
        op.f("ck_owner_statement_lines_line_type_allowed"),
        "owner_statement_lines",
        "line_type IN (" + ", ".join(f"'{t}'" for t in types) + ")",
        schema="finance",
    )


def upgrade() -> None:
    # -- owner relationships: fees and commission terms ------------------------------------------
    for name in ("cleaning_fee_to_owner", "other_fees_to_owner"):
        op.add_column(
            "homeowner_property_relationship",
            sa.Column(name, sa.Boolean(), server_default=sa.text("false"), nullable=False),
            schema="directory",
        )
    for name, check in (
        ("commission_flat_per_stay", "flat_fee"),
        ("minimum_monthly_fee", "minimum_fee"),
    ):
        op.add_column(
            "homeowner_property_relationship",
            sa.Column(name, MONEY, server_default=sa.text("0"), nullable=False),
            schema="directory",
        )
        op.create_check_constraint(
            op.f(f"ck_homeowner_property_relationship_{check}_nonnegative"),
            "homeowner_property_relationship",
            f"{name} >= 0",
            schema="directory",
        )

    # -- recurring owner charges -----------------------------------------------------------------
    op.create_table(
        "owner_recurring_charges",
        _id(),
        sa.Column("homeowner_id", sa.UUID(), nullable=False),
        sa.Column("property_id", sa.UUID(), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("amount", MONEY, nullable=False),
        sa.Column("start_month", sa.Date(), nullable=False),
        sa.Column("end_month", sa.Date(), nullable=True),
        _created_at(),
        _updated_at(),
        sa.CheckConstraint("amount > 0", name=op.f("ck_owner_recurring_charges_amount_positive")),
        sa.CheckConstraint(
            "extract(day FROM start_month) = 1 AND (end_month IS NULL"
            " OR (extract(day FROM end_month) = 1 AND end_month >= start_month))",
            name=op.f("ck_owner_recurring_charges_months"),
        ),
        sa.ForeignKeyConstraint(
            ["homeowner_id"],
            ["directory.homeowners.id"],
            name=op.f("fk_owner_recurring_charges_homeowner_id_homeowners"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["property_id"],
            ["property.properties.id"],
            name=op.f("fk_owner_recurring_charges_property_id_properties"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_owner_recurring_charges")),
        schema="finance",
    )
    op.create_index(
        "ix_owner_recurring_charges_property_id_homeowner_id",
        "owner_recurring_charges",
        ["property_id", "homeowner_id"],
        schema="finance",
    )

    # -- statement lines -------------------------------------------------------------------------
    _line_type_check(OLD_LINE_TYPES + NEW_LINE_TYPES)
    op.add_column(
        "owner_statement_lines",
        sa.Column("recurring_charge_id", sa.UUID(), nullable=True),
        schema="finance",
    )
    op.create_foreign_key(
        "fk_owner_statement_lines_recurring_charge_id",
        "owner_statement_lines",
        "owner_recurring_charges",
        ["recurring_charge_id"],
        ["id"],
        source_schema="finance",
        referent_schema="finance",
        ondelete="RESTRICT",
    )
    op.create_index(
        "ix_owner_statement_lines_recurring_charge_id",
        "owner_statement_lines",
        ["recurring_charge_id"],
        schema="finance",
        postgresql_where=sa.text("recurring_charge_id IS NOT NULL"),
    )
    for name in ("stay_channel_commission", "stay_cleaning_fee", "stay_other_fees", "stay_taxes"):
        op.add_column("owner_statement_lines", sa.Column(name, MONEY), schema="finance")

    # -- guest payments ----------------------------------------------------------------------------
    op.create_table(
        "guest_payments",
        _id(),
        sa.Column("reservation_id", sa.UUID(), nullable=False),
        sa.Column("amount", MONEY, nullable=False),
        sa.Column("received_at", TIMESTAMPTZ, server_default=sa.text("now()"), nullable=False),
        sa.Column("external_ref", sa.Text(), nullable=False),
        sa.Column("transaction_id", sa.UUID(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        _created_at(),
        _updated_at(),
        sa.CheckConstraint("amount <> 0", name=op.f("ck_guest_payments_amount_nonzero")),
        # Deferred: finance.post_payments marks a payment with its journal entry's id before
        # it writes the entry, in the same transaction (one UPDATE claims and marks).
        sa.ForeignKeyConstraint(
            ["transaction_id"],
            ["finance.transactions.id"],
            name=op.f("fk_guest_payments_transaction_id_transactions"),
            ondelete="RESTRICT",
            deferrable=True,
            initially="DEFERRED",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_guest_payments")),
        sa.UniqueConstraint("external_ref", name=op.f("uq_guest_payments_external_ref")),
        schema="finance",
    )
    # No more indexes than these: posting updates every payment once, and an update that
    # changes transaction_id writes a new entry in every index of the table (docs/DECISIONS.md).
    op.create_index(
        "ix_guest_payments_unposted",
        "guest_payments",
        ["received_at"],
        schema="finance",
        postgresql_where=sa.text("transaction_id IS NULL AND error IS NULL"),
    )
    op.execute(GUEST_PAYMENT_GUARD_SQL)

    # -- bank balances and reconciliations -----------------------------------------------------
    op.create_table(
        "bank_balances",
        _id(),
        sa.Column("account_code", sa.Text(), server_default="1010", nullable=False),
        sa.Column("balance_date", sa.Date(), nullable=False),
        sa.Column("balance", LEDGER_MONEY, nullable=False),
        sa.Column("note", sa.Text(), nullable=True),
        _created_at(),
        _updated_at(),
        sa.ForeignKeyConstraint(
            ["account_code"],
            ["finance.accounts.code"],
            name=op.f("fk_bank_balances_account_code_accounts"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_bank_balances")),
        sa.UniqueConstraint(
            "account_code", "balance_date", name=op.f("uq_bank_balances_account_code_balance_date")
        ),
        schema="finance",
    )
    op.create_table(
        "trust_reconciliations",
        _id(),
        sa.Column("account_code", sa.Text(), nullable=False),
        sa.Column("month", sa.Date(), nullable=False),
        sa.Column("month_end", sa.Date(), nullable=False),
        sa.Column("status", sa.Text(), nullable=False),
        sa.Column("ledger_balance", LEDGER_MONEY, nullable=False),
        sa.Column("bank_balance", LEDGER_MONEY, nullable=True),
        sa.Column("owner_balances", LEDGER_MONEY, nullable=False),
        sa.Column("guest_funds_future", LEDGER_MONEY, nullable=False),
        sa.Column("guest_funds_current", LEDGER_MONEY, nullable=False),
        sa.Column("taxes_payable", LEDGER_MONEY, nullable=False),
        sa.Column("fees_held", LEDGER_MONEY, nullable=False),
        sa.Column("owed_total", LEDGER_MONEY, nullable=False),
        sa.Column("bank_difference", LEDGER_MONEY, nullable=True),
        sa.Column("book_difference", LEDGER_MONEY, nullable=False),
        sa.Column(
            "negative_owner_balances", sa.Integer(), server_default=sa.text("0"), nullable=False
        ),
        sa.Column("runs", sa.Integer(), server_default=sa.text("1"), nullable=False),
        sa.Column("reconciled_at", TIMESTAMPTZ, nullable=False),
        _created_at(),
        _updated_at(),
        sa.CheckConstraint(
            "status IN ('balanced', 'difference', 'no_bank_balance')",
            name=op.f("ck_trust_reconciliations_status_allowed"),
        ),
        sa.ForeignKeyConstraint(
            ["account_code"],
            ["finance.accounts.code"],
            name=op.f("fk_trust_reconciliations_account_code_accounts"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_trust_reconciliations")),
        sa.UniqueConstraint(
            "account_code", "month", name=op.f("uq_trust_reconciliations_account_code_month")
        ),
        schema="finance",
    )

    # -- the PDF each statement was sent with -------------------------------------------------
    op.create_table(
        "owner_statement_documents",
        _id(),
        sa.Column("statement_id", sa.UUID(), nullable=False),
        sa.Column("content_type", sa.Text(), server_default="application/pdf", nullable=False),
        sa.Column("filename", sa.Text(), nullable=False),
        sa.Column("content", postgresql.BYTEA(), nullable=False),
        sa.Column("sha256", sa.Text(), nullable=False),
        _created_at(),
        sa.ForeignKeyConstraint(
            ["statement_id"],
            ["finance.owner_statements.id"],
            name=op.f("fk_owner_statement_documents_statement_id_owner_statements"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_owner_statement_documents")),
        sa.UniqueConstraint("statement_id", name=op.f("uq_owner_statement_documents_statement_id")),
        schema="finance",
    )

    # -- payouts ---------------------------------------------------------------------------------
    op.add_column("owner_payouts", sa.Column("reference", sa.Text()), schema="finance")
    op.add_column("owner_payouts", sa.Column("failed_at", TIMESTAMPTZ), schema="finance")
    op.add_column("owner_payouts", sa.Column("failure_reason", sa.Text()), schema="finance")
    op.add_column("owner_payouts", sa.Column("transaction_id", sa.UUID()), schema="finance")
    op.create_foreign_key(
        op.f("fk_owner_payouts_transaction_id_transactions"),
        "owner_payouts",
        "transactions",
        ["transaction_id"],
        ["id"],
        source_schema="finance",
        referent_schema="finance",
        ondelete="RESTRICT",
    )
    op.create_unique_constraint(
        op.f("uq_owner_payouts_transaction_id"), "owner_payouts", ["transaction_id"],
        schema="finance",
    )  # fmt: skip

    # -- the ledger ------------------------------------------------------------------------------
    # A receipt or a payout is in the ledger once, whatever runs or retries post it.
    op.create_index(
        "uq_transactions_posted_once",
        "transactions",
        ["reference_type", "reference_id"],
        unique=True,
        schema="finance",
        postgresql_where=sa.text("reference_type IN ('guest_payment', 'owner_payout')"),
    )
    # ON CONFLICT: a downgrade keeps the accounts posted lines use, so they may be here.
    for code, name, account_type, normal_balance in ACCOUNTS:
        op.get_bind().execute(
            sa.text(
                "INSERT INTO finance.accounts (code, name, account_type, normal_balance)"
                " VALUES (:code, :name, :account_type, :normal_balance)"
                " ON CONFLICT (code) DO NOTHING"
            ),
            {
                "code": code,
                "name": name,
                "account_type": account_type,
                "normal_balance": normal_balance,
            },
        )

    for fullname in NEW_TABLES_WITH_UPDATED_AT:
        op.execute(
            f"CREATE TRIGGER set_updated_at BEFORE UPDATE ON {fullname}"
            " FOR EACH ROW EXECUTE FUNCTION ops.set_updated_at()"
        )


def downgrade() -> None:
    bind = op.get_bind()
    in_use = bind.execute(
        sa.text(
            "SELECT count(*) FROM finance.owner_statement_lines"
            " WHERE line_type IN ('cleaning_fee', 'other_fee', 'recurring_charge')"
        )
    ).scalar_one()
    if in_use:
        raise RuntimeError(
            f"{in_use} owner statement lines are cleaning_fee, other_fee or recurring_charge"
            " lines, which revision 0009 cannot hold; downgrading would lose them"
        )
    # The new accounts stay where ledger lines use them (posted lines never change).
    codes = ", ".join(f"'{code}'" for code, *_ in ACCOUNTS)
    op.execute(
        f"DELETE FROM finance.accounts a WHERE a.code IN ({codes}) AND NOT EXISTS"
        " (SELECT 1 FROM finance.transaction_lines l WHERE l.account_id = a.id)"
    )
    op.drop_index(
        "uq_transactions_posted_once",
        table_name="transactions",
        schema="finance",
        postgresql_where=sa.text("reference_type IN ('guest_payment', 'owner_payout')"),
    )

    op.drop_constraint(
        op.f("uq_owner_payouts_transaction_id"), "owner_payouts", schema="finance", type_="unique"
    )
    op.drop_constraint(
        op.f("fk_owner_payouts_transaction_id_transactions"),
        "owner_payouts",
        schema="finance",
        type_="foreignkey",
    )
    for name in ("transaction_id", "failure_reason", "failed_at", "reference"):
        op.drop_column("owner_payouts", name, schema="finance")

    op.drop_table("owner_statement_documents", schema="finance")
    op.drop_table("trust_reconciliations", schema="finance")
    op.drop_table("bank_balances", schema="finance")
    op.execute("DROP TABLE finance.guest_payments")
    op.execute("DROP FUNCTION finance.refuse_posted_payment_change()")

    for name in ("stay_taxes", "stay_other_fees", "stay_cleaning_fee", "stay_channel_commission"):
        op.drop_column("owner_statement_lines", name, schema="finance")
    op.drop_index(
        "ix_owner_statement_lines_recurring_charge_id",
        table_name="owner_statement_lines",
        schema="finance",
        postgresql_where=sa.text("recurring_charge_id IS NOT NULL"),
    )
    op.drop_constraint(
        "fk_owner_statement_lines_recurring_charge_id",
        "owner_statement_lines",
        schema="finance",
        type_="foreignkey",
    )
    op.drop_column("owner_statement_lines", "recurring_charge_id", schema="finance")
    _line_type_check(OLD_LINE_TYPES)
    op.drop_table("owner_recurring_charges", schema="finance")

    for check in ("minimum_fee", "flat_fee"):
        op.drop_constraint(
            op.f(f"ck_homeowner_property_relationship_{check}_nonnegative"),
            "homeowner_property_relationship",
            schema="directory",
            type_="check",
        )
    for name in (
        "minimum_monthly_fee",
        "commission_flat_per_stay",
        "other_fees_to_owner",
        "cleaning_fee_to_owner",
    ):
        op.drop_column("homeowner_property_relationship", name, schema="directory")
