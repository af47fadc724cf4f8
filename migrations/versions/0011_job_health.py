"""job health: incidents, and the totals behind the Prometheus counters

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-06 23:00:00+00:00

SPEC 7.4. `ops.incidents`: what ops.watch notices (a periodic job missed, failing or
overrunning; a task with open dead letters), one open per task and kind (a partial unique
index). The Prometheus counters (runs by task and status, their durations, SLA breaches) must
be computed at scrape time in milliseconds and never go down when ops.purge deletes old runs:
ops.watch folds finished runs and recorded misses into `ops.job_run_totals` /
`ops.sla_breach_totals` and marks them `counted`; a scrape adds the few not yet counted (a
partial index each). A flag rather than a time mark: a row written late, or with an old
timestamp (another service, a test), is still counted exactly once. The rows already there
are counted here: their totals are written and the new column defaults to true for them
(no table rewrite), then to false for rows to come.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TIMESTAMPTZ = postgresql.TIMESTAMP(timezone=True)
NOW = sa.text("now()")
# tasks.ops.queries.DURATION_BUCKETS as of this revision, in milliseconds.
BUCKETS_MS = (5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000, 120000,
              300000, 600000)  # fmt: skip
BUCKET_COUNTS = ", ".join(f"count(*) FILTER (WHERE duration_ms <= {ms})" for ms in BUCKETS_MS)


def upgrade() -> None:
    op.create_table(
        "incidents",
        sa.Column(
            "id", sa.UUID(), server_default=sa.text("ops.uuid_generate_v7()"), nullable=False
        ),
        sa.Column("task_name", sa.Text(), nullable=False),
        sa.Column("kind", sa.Text(), nullable=False),
        sa.Column("opened_at", TIMESTAMPTZ, nullable=False),
        sa.Column("resolved_at", TIMESTAMPTZ, nullable=True),
        sa.Column(
            "details",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default=sa.text("'{}'::jsonb"),
            nullable=False,
        ),
        sa.Column("created_at", TIMESTAMPTZ, server_default=NOW, nullable=False),
        sa.Column("updated_at", TIMESTAMPTZ, server_default=NOW, nullable=False),
        sa.CheckConstraint(
            "kind IN ('missed', 'failing', 'overrunning', 'dead_letters')",
            name=op.f("ck_incidents_kind_allowed"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_incidents")),
        schema="ops",
    )
    op.create_index(
        "uq_incidents_open",
        "incidents",
        ["task_name", "kind"],
        unique=True,
        schema="ops",
        postgresql_where=sa.text("resolved_at IS NULL"),
    )
    op.create_index("ix_incidents_opened_at", "incidents", ["opened_at"], schema="ops")
    op.execute(
        "CREATE TRIGGER set_updated_at BEFORE UPDATE ON ops.incidents"
        " FOR EACH ROW EXECUTE FUNCTION ops.set_updated_at()"
    )

    op.create_table(
        "job_run_totals",
        sa.Column("task_name", sa.Text(), nullable=False),
        sa.Column("status", sa.Text(), nullable=False),
        sa.Column("runs", sa.BigInteger(), server_default=sa.text("0"), nullable=False),
        sa.Column("duration_seconds", sa.Double(), server_default=sa.text("0"), nullable=False),
        sa.Column(
            "buckets",
            postgresql.ARRAY(sa.BigInteger()),
            server_default=sa.text("'{}'"),
            nullable=False,
        ),
        sa.Column("updated_at", TIMESTAMPTZ, server_default=NOW, nullable=False),
        sa.PrimaryKeyConstraint("task_name", "status", name=op.f("pk_job_run_totals")),
        schema="ops",
    )
    op.create_table(
        "sla_breach_totals",
        sa.Column("sla_kind", sa.Text(), nullable=False),
        sa.Column("breaches", sa.BigInteger(), server_default=sa.text("0"), nullable=False),
        sa.Column("updated_at", TIMESTAMPTZ, server_default=NOW, nullable=False),
        sa.PrimaryKeyConstraint("sla_kind", name=op.f("pk_sla_breach_totals")),
        schema="ops",
    )
    for table in ("job_run_totals", "sla_breach_totals"):
        op.execute(
            f"CREATE TRIGGER set_updated_at BEFORE UPDATE ON ops.{table}"
            " FOR EACH ROW EXECUTE FUNCTION ops.set_updated_at()"
        )
    # The rows already there, counted now (see the docstring).
    op.execute(
        f"""
        INSERT INTO ops.job_run_totals (task_name, status, runs, duration_seconds, buckets)
        SELECT task_name, status, count(*), coalesce(sum(duration_ms), 0) / 1000.0,
               ARRAY[{BUCKET_COUNTS}]
        FROM ops.job_runs WHERE status <> 'running'
        GROUP BY task_name, status
        """
    )
    op.execute(
        "INSERT INTO ops.sla_breach_totals (sla_kind, breaches)"
        " SELECT sla_kind, count(*) FROM service.ticket_misses GROUP BY sla_kind"
    )
    op.add_column(
        "job_runs",
        sa.Column("counted", sa.Boolean(), server_default=sa.text("true"), nullable=False),
        schema="ops",
    )
    op.add_column(
        "ticket_misses",
        sa.Column("counted", sa.Boolean(), server_default=sa.text("true"), nullable=False),
        schema="service",
    )
    # Counted at the next fold, unless still running (counted when it has finished).
    op.execute("UPDATE ops.job_runs SET counted = false WHERE status = 'running'")
    op.alter_column("job_runs", "counted", server_default=sa.text("false"), schema="ops")
    op.alter_column("ticket_misses", "counted", server_default=sa.text("false"), schema="service")
    op.create_index(
        "ix_job_runs_uncounted",
        "job_runs",
        ["task_name"],
        schema="ops",
        postgresql_where=sa.text("NOT counted AND status <> 'running'"),
    )
    op.create_index(
        "ix_ticket_misses_uncounted",
        "ticket_misses",
        ["sla_kind"],
        schema="service",
        postgresql_where=sa.text("NOT counted"),
    )


def downgrade() -> None:
    op.drop_index("ix_ticket_misses_uncounted", table_name="ticket_misses", schema="service")
    op.drop_index("ix_job_runs_uncounted", table_name="job_runs", schema="ops")
    op.drop_column("ticket_misses", "counted", schema="service")
    op.drop_column("job_runs", "counted", schema="ops")
    op.drop_table("sla_breach_totals", schema="ops")
    op.drop_table("job_run_totals", schema="ops")
    op.drop_index("ix_incidents_opened_at", table_name="incidents", schema="ops")
    op.drop_index(
        "uq_incidents_open",
        table_name="incidents",
        schema="ops",
        postgresql_where=sa.text("resolved_at IS NULL"),
    )
    op.drop_table("incidents", schema="ops")
