"""dead letters worked from the command line; no line added to a posted ledger transaction; no
TRUNCATE of the books

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-06 21:00:00+00:00

SPEC 7.3: every action taken on a dead letter is recorded on the row. `status` is `open` until
ops replay it (`replayed`, with the new task's id in `replay_task_id`) or discard it
(`discarded`, with the reason in `resolution`); `resolved_at` says when. All four columns are
defaulted or nullable, so a service inserting only the contract columns still succeeds, and a
CHECK keeps them coherent (an open letter has no resolution, a replayed one has its task id).

SPEC 7.2: the ledger.

- No line can be inserted into (or moved by an UPDATE into) a posted ledger transaction.
  Every transaction is posted when written (`posted_at` is NOT NULL, default now()), so the
  rule is: lines may be written only by the database transaction that wrote their ledger
  transaction (statements.finalize inserts a ledger transaction and its lines together). The
  check reads the ledger transaction's `xmin`: a row visible to us whose writer is still in
  progress can only have been written by us (or a subtransaction of ours; others' uncommitted
  rows are invisible), and `pg_xact_status` answers that for subtransactions too. A ledger
  transaction we cannot see (another session's, not yet committed) is refused as well. The
  rows are locked FOR SHARE first, so the check cannot race a concurrent change of the row.
  It is a statement-level trigger over the transition table: one join per statement.
- TRUNCATE of the ledger and statement tables is refused (row triggers do not fire on it).
  Like every trigger, these can be bypassed by a superuser with `session_replication_role =
  replica`, as the test suite does to empty its database between tests.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TIMESTAMPTZ = postgresql.TIMESTAMP(timezone=True)
LETTER_STATUSES = "status IN ('open', 'replayed', 'discarded')"
LETTER_RESOLVED = (
    "(status = 'open' AND resolved_at IS NULL AND replay_task_id IS NULL)"
    " OR (status = 'replayed' AND resolved_at IS NOT NULL AND replay_task_id IS NOT NULL)"
    " OR (status = 'discarded' AND resolved_at IS NOT NULL AND resolution IS NOT NULL)"
)
# The tables whose rows are the books: never emptied wholesale.
BOOKS = (
    "finance.transactions",
    "finance.transaction_lines",
    "finance.owner_statements",
    "finance.owner_statement_lines",
)

LEDGER_SQL = """
-- True when the row version with this xmin was written by the current database transaction
-- (or one of its subtransactions). The caller must be able to see the row: a visible row
-- whose writer is still in progress is ours. xmin is a 32-bit xid; pg_xact_status wants the
-- 64-bit one, rebuilt from the current transaction's: the signed 32-bit distance between the
-- two, taken from the current full xid (a subtransaction's xid is a little above its parent's;
-- an old row's may be in the previous epoch). Frozen and other special xids (< 3) are old.
CREATE FUNCTION finance.written_by_current_transaction(row_xmin xid) RETURNS boolean
LANGUAGE sql VOLATILE AS $$
  SELECT CASE WHEN x < 3 OR cur - distance < 3 THEN false
         ELSE pg_xact_status(CAST(CAST(cur - distance AS text) AS xid8))
              IS NOT DISTINCT FROM 'in progress'
         END
  FROM (SELECT x, cur,
               ((cur & 4294967295) - x + 4294967296) % 4294967296
               - (CASE WHEN ((cur & 4294967295) - x + 4294967296) % 4294967296 >= 2147483648
                       THEN 4294967296 ELSE 0 END) AS distance
        FROM (SELECT CAST(CAST(row_xmin AS text) AS bigint) AS x,
                     CAST(CAST(pg_current_xact_id() AS text) AS bigint) AS cur) raw) v
$$;

CREATE FUNCTION finance.refuse_lines_into_posted() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
  wanted bigint;
  seen bigint;
  posted text;
BEGIN
  SELECT count(DISTINCT transaction_id) INTO wanted FROM new_lines;
  -- Wait for, and then hold off, any concurrent change of these ledger transactions.
  PERFORM 1 FROM finance.transactions
  WHERE id IN (SELECT transaction_id FROM new_lines) FOR SHARE;
  SELECT count(*),
         min(coalesce(t.txn_number, CAST(t.id AS text)))
           FILTER (WHERE NOT finance.written_by_current_transaction(t.xmin))
    INTO seen, posted
  FROM finance.transactions t
  WHERE t.id IN (SELECT transaction_id FROM new_lines);
  IF posted IS NOT NULL OR seen < wanted THEN
    RAISE EXCEPTION 'ledger transaction % is posted: no line can be added to it; post a new transaction',
      coalesce(posted, '(written by another session)')
      USING ERRCODE = 'restrict_violation';
  END IF;
  RETURN NULL;
END
$$;
CREATE TRIGGER lines_into_posted_insert
  AFTER INSERT ON finance.transaction_lines
  REFERENCING NEW TABLE AS new_lines
  FOR EACH STATEMENT EXECUTE FUNCTION finance.refuse_lines_into_posted();
CREATE TRIGGER lines_into_posted_update
  AFTER UPDATE ON finance.transaction_lines
  REFERENCING NEW TABLE AS new_lines
  FOR EACH STATEMENT EXECUTE FUNCTION finance.refuse_lines_into_posted();

CREATE FUNCTION finance.refuse_truncate() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION '% holds the books and cannot be truncated; post reversing entries instead',
    TG_TABLE_SCHEMA || '.' || TG_TABLE_NAME
    USING ERRCODE = 'restrict_violation';
END
$$;
"""

LEDGER_DOWNGRADE_SQL = """
DROP TRIGGER IF EXISTS lines_into_posted_update ON finance.transaction_lines;
DROP TRIGGER IF EXISTS lines_into_posted_insert ON finance.transaction_lines;
DROP FUNCTION IF EXISTS finance.refuse_lines_into_posted();
DROP FUNCTION IF EXISTS finance.written_by_current_transaction(xid);
"""


def _truncate_trigger(table: str) -> str:
    return f"no_truncate_{table.split('.')[1]}"


def upgrade() -> None:
    op.add_column(
        "dead_letters",
        sa.Column("status", sa.Text(), server_default="open", nullable=False),
        schema="ops",
    )
    op.add_column(
        "dead_letters", sa.Column("resolved_at", TIMESTAMPTZ, nullable=True), schema="ops"
    )
    op.add_column("dead_letters", sa.Column("resolution", sa.Text(), nullable=True), schema="ops")
    op.add_column(
        "dead_letters", sa.Column("replay_task_id", sa.Text(), nullable=True), schema="ops"
    )
    op.create_check_constraint(
        op.f("ck_dead_letters_status_allowed"), "dead_letters", LETTER_STATUSES, schema="ops"
    )
    op.create_check_constraint(
        op.f("ck_dead_letters_resolution_recorded"), "dead_letters", LETTER_RESOLVED, schema="ops"
    )
    # What needs a person: `cmw dead-letters list` and job health count the open ones per task.
    op.create_index(
        "ix_dead_letters_open",
        "dead_letters",
        ["task_name", "failed_at"],
        unique=False,
        schema="ops",
        postgresql_where=sa.text("status = 'open'"),
    )

    op.execute(LEDGER_SQL)
    for table in BOOKS:
        op.execute(
            f"CREATE TRIGGER {_truncate_trigger(table)} BEFORE TRUNCATE ON {table}"
            " FOR EACH STATEMENT EXECUTE FUNCTION finance.refuse_truncate()"
        )


def downgrade() -> None:
    for table in BOOKS:
        op.execute(f"DROP TRIGGER IF EXISTS {_truncate_trigger(table)} ON {table}")
    op.execute("DROP FUNCTION IF EXISTS finance.refuse_truncate()")
    op.execute(LEDGER_DOWNGRADE_SQL)

    op.drop_index(
        "ix_dead_letters_open",
        table_name="dead_letters",
        schema="ops",
        postgresql_where=sa.text("status = 'open'"),
    )
    op.drop_constraint(
        op.f("ck_dead_letters_resolution_recorded"), "dead_letters", schema="ops", type_="check"
    )
    op.drop_constraint(
        op.f("ck_dead_letters_status_allowed"), "dead_letters", schema="ops", type_="check"
    )
    for column in ("replay_task_id", "resolution", "resolved_at", "status"):
        op.drop_column("dead_letters", column, schema="ops")
