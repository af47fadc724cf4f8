"""Schema ops: the record of every task execution, the tasks that failed for good, and job
health: incidents and the totals behind the Prometheus counters (SPEC 7.4)."""

from __future__ import annotations

import datetime as dt
import uuid

from sqlalchemy import BigInteger, CheckConstraint, Double, Index, text
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.orm import Mapped, mapped_column

from db.base import Base, check_in, uuid_pk

JOB_STATUSES = ("running", "succeeded", "failed", "skipped")
# What ops.watch notices about a periodic job, or any task's open dead letters (SPEC 7.4).
INCIDENT_KINDS = ("missed", "failing", "overrunning", "dead_letters")
# A dead letter is open until ops replay it or discard it (`cmw dead-letters`, SPEC 7.3).
DEAD_LETTER_STATUSES = ("open", "replayed", "discarded")


class JobRun(Base):
    __tablename__ = "job_runs"
    __table_args__ = (
        check_in("status", JOB_STATUSES),
        Index("ix_job_runs_task_name_started_at", "task_name", "started_at"),
        Index("ix_job_runs_task_id", "task_id"),
        # ops.purge trims by age; `cmw runs` lists the newest first.
        Index("ix_job_runs_started_at", "started_at"),
        Index("ix_job_runs_running", "task_id", postgresql_where=text("status = 'running'")),
        # The finished runs not yet folded into ops.job_run_totals (the metrics add them).
        Index(
            "ix_job_runs_uncounted",
            "task_name",
            postgresql_where=text("NOT counted AND status <> 'running'"),
        ),
        {"schema": "ops"},
    )

    id: Mapped[uuid.UUID] = uuid_pk()
    task_name: Mapped[str]
    task_id: Mapped[str | None]
    # What the run was about: the task name and its payload's identity (see workers.base).
    run_key: Mapped[str | None]
    status: Mapped[str] = mapped_column(server_default="running")
    as_of: Mapped[dt.datetime | None]
    # The keyword arguments as received, one flat JSON object.
    payload: Mapped[dict | None] = mapped_column(JSONB)
    result: Mapped[dict | None] = mapped_column(JSONB)
    error: Mapped[str | None]
    retries: Mapped[int] = mapped_column(server_default=text("0"))
    duration_ms: Mapped[int | None]
    started_at: Mapped[dt.datetime] = mapped_column(server_default=text("now()"))
    finished_at: Mapped[dt.datetime | None]
    worker: Mapped[str | None]
    created_at: Mapped[dt.datetime] = mapped_column(server_default=text("now()"))
    # Folded into ops.job_run_totals by ops.watch (revision 0011).
    counted: Mapped[bool] = mapped_column(server_default=text("false"))


class DeadLetter(Base):
    __tablename__ = "dead_letters"
    __table_args__ = (
        Index("ix_dead_letters_task_name_failed_at", "task_name", "failed_at"),
        check_in("status", DEAD_LETTER_STATUSES),
        # Every action is recorded: an open letter has no resolution, a replayed one names the
        # task that replays it, a discarded one says why.
        CheckConstraint(
            "(status = 'open' AND resolved_at IS NULL AND replay_task_id IS NULL)"
            " OR (status = 'replayed' AND resolved_at IS NOT NULL AND replay_task_id IS NOT NULL)"
            " OR (status = 'discarded' AND resolved_at IS NOT NULL AND resolution IS NOT NULL)",
            name="resolution_recorded",
        ),
        # What needs a person: the open letters per task.
        Index(
            "ix_dead_letters_open",
            "task_name",
            "failed_at",
            postgresql_where=text("status = 'open'"),
        ),
        {"schema": "ops"},
    )

    id: Mapped[uuid.UUID] = uuid_pk()
    task_name: Mapped[str]
    task_id: Mapped[str | None]
    payload: Mapped[dict | None] = mapped_column(JSONB)
    error: Mapped[str]
    # validation | transient | error: why it is here, so ops know whether a re-run can help.
    error_kind: Mapped[str | None]
    failed_at: Mapped[dt.datetime] = mapped_column(server_default=text("now()"))
    retries: Mapped[int] = mapped_column(server_default=text("0"))
    created_at: Mapped[dt.datetime] = mapped_column(server_default=text("now()"))
    status: Mapped[str] = mapped_column(server_default="open")
    resolved_at: Mapped[dt.datetime | None]
    # What was done: "replayed with the stored payload", or the reason it was discarded.
    resolution: Mapped[str | None]
    # The id of the task a replay sent (its ops.job_runs rows carry the same task_id).
    replay_task_id: Mapped[str | None]


class Incident(Base):
    """A periodic job missed, failing or overrunning, or a task with open dead letters: opened
    and resolved by ops.watch, one open per task and kind (SPEC 7.4)."""

    __tablename__ = "incidents"
    __table_args__ = (
        check_in("kind", INCIDENT_KINDS),
        Index(
            "uq_incidents_open",
            "task_name",
            "kind",
            unique=True,
            postgresql_where=text("resolved_at IS NULL"),
        ),
        Index("ix_incidents_opened_at", "opened_at"),
        {"schema": "ops"},
    )

    id: Mapped[uuid.UUID] = uuid_pk()
    task_name: Mapped[str]
    kind: Mapped[str]
    opened_at: Mapped[dt.datetime]
    resolved_at: Mapped[dt.datetime | None]
    # What was seen: the slot missed, the failed run, the overrunning run, the open letters.
    details: Mapped[dict] = mapped_column(JSONB, server_default=text("'{}'::jsonb"))
    created_at: Mapped[dt.datetime] = mapped_column(server_default=text("now()"))
    updated_at: Mapped[dt.datetime] = mapped_column(server_default=text("now()"))


class JobRunTotal(Base):
    """Finished runs per task and status, folded in by ops.watch (which marks them `counted`):
    the Prometheus counters are these plus the few runs not yet counted (SPEC 7.4), so a scrape
    never counts 30 days of job runs, and ops.purge deleting old runs never lowers a counter.
    `buckets` count runs by duration (tasks.ops.queries.DURATION_BUCKETS, cumulative)."""

    __tablename__ = "job_run_totals"
    __table_args__ = ({"schema": "ops"},)

    task_name: Mapped[str] = mapped_column(primary_key=True)
    status: Mapped[str] = mapped_column(primary_key=True)
    runs: Mapped[int] = mapped_column(BigInteger, server_default=text("0"))
    duration_seconds: Mapped[float] = mapped_column(Double, server_default=text("0"))
    buckets: Mapped[list[int]] = mapped_column(ARRAY(BigInteger), server_default=text("'{}'"))
    updated_at: Mapped[dt.datetime] = mapped_column(server_default=text("now()"))


class SlaBreachTotal(Base):
    """SLA misses per kind folded in by ops.watch, like job_run_totals."""

    __tablename__ = "sla_breach_totals"
    __table_args__ = ({"schema": "ops"},)

    sla_kind: Mapped[str] = mapped_column(primary_key=True)
    breaches: Mapped[int] = mapped_column(BigInteger, server_default=text("0"))
    updated_at: Mapped[dt.datetime] = mapped_column(server_default=text("now()"))
