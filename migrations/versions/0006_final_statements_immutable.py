"""final owner statements are immutable

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-22 03:00:00+00:00

The database itself keeps a finalized owner statement as it was sent (SPEC 6.5: "a final
statement is never changed"), as it already keeps posted ledger lines:

- a statement that is not a draft cannot be deleted, and a final one cannot be updated, except
  to be voided (status 'final' -> 'void' and nothing else); a void one never changes;
- the lines of a statement that is not a draft cannot be inserted, updated or deleted.

Corrections are revisions: a new version that carries the difference. The line checks are
statement-level triggers over transition tables, so rebuilding the drafts of a month (hundreds
of thousands of lines) costs one join, not one lookup per row.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

UPGRADE_SQL = """
CREATE FUNCTION finance.refuse_final_statement_change() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'DELETE' THEN
    IF OLD.status <> 'draft' THEN
      RAISE EXCEPTION 'owner statement % is %: it cannot be deleted; revise it instead',
        OLD.statement_number, OLD.status
        USING ERRCODE = 'restrict_violation';
    END IF;
    RETURN OLD;
  END IF;
  IF OLD.status = 'final' AND NOT (
       NEW.status = 'void'
       AND (to_jsonb(NEW) - 'status' - 'updated_at') = (to_jsonb(OLD) - 'status' - 'updated_at'))
     OR OLD.status = 'void' AND (to_jsonb(NEW) - 'updated_at') <> (to_jsonb(OLD) - 'updated_at')
  THEN
    RAISE EXCEPTION 'owner statement % is %: it cannot be changed; revise it instead',
      OLD.statement_number, OLD.status
      USING ERRCODE = 'restrict_violation';
  END IF;
  RETURN NEW;
END
$$;
CREATE TRIGGER final_statements_immutable
  BEFORE UPDATE OR DELETE ON finance.owner_statements
  FOR EACH ROW EXECUTE FUNCTION finance.refuse_final_statement_change();

CREATE FUNCTION finance.refuse_final_statement_line_change() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
  number text;
BEGIN
  IF TG_OP IN ('UPDATE', 'DELETE') THEN
    SELECT s.statement_number INTO number
    FROM (SELECT DISTINCT statement_id FROM old_lines) o
    JOIN finance.owner_statements s ON s.id = o.statement_id
    WHERE s.status <> 'draft' LIMIT 1;
  END IF;
  IF number IS NULL AND TG_OP IN ('INSERT', 'UPDATE') THEN
    SELECT s.statement_number INTO number
    FROM (SELECT DISTINCT statement_id FROM new_lines) n
    JOIN finance.owner_statements s ON s.id = n.statement_id
    WHERE s.status <> 'draft' LIMIT 1;
  END IF;
  IF number IS NOT NULL THEN
    RAISE EXCEPTION 'lines of owner statement % cannot be %d: it is no longer a draft',
      number, lower(TG_OP)
      USING ERRCODE = 'restrict_violation';
  END IF;
  RETURN NULL;
END
$$;
CREATE TRIGGER final_statement_lines_insert
  AFTER INSERT ON finance.owner_statement_lines
  REFERENCING NEW TABLE AS new_lines
  FOR EACH STATEMENT EXECUTE FUNCTION finance.refuse_final_statement_line_change();
CREATE TRIGGER final_statement_lines_update
  AFTER UPDATE ON finance.owner_statement_lines
  REFERENCING OLD TABLE AS old_lines NEW TABLE AS new_lines
  FOR EACH STATEMENT EXECUTE FUNCTION finance.refuse_final_statement_line_change();
CREATE TRIGGER final_statement_lines_delete
  AFTER DELETE ON finance.owner_statement_lines
  REFERENCING OLD TABLE AS old_lines
  FOR EACH STATEMENT EXECUTE FUNCTION finance.refuse_final_statement_line_change();
"""

DOWNGRADE_SQL = """
DROP TRIGGER IF EXISTS final_statement_lines_delete ON finance.owner_statement_lines;
DROP TRIGGER IF EXISTS final_statement_lines_update ON finance.owner_statement_lines;
DROP TRIGGER IF EXISTS final_statement_lines_insert ON finance.owner_statement_lines;
DROP FUNCTION IF EXISTS finance.refuse_final_statement_line_change();
DROP TRIGGER IF EXISTS final_statements_immutable ON finance.owner_statements;
DROP FUNCTION IF EXISTS finance.refuse_final_statement_change();
"""


def upgrade() -> None:
    op.execute(UPGRADE_SQL)


def downgrade() -> None:
    op.execute(DOWNGRADE_SQL)
