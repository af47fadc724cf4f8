"""Schema ops: the record of every task execution, and the tasks that failed for good."""

from __future__ import annotations

import datetime as dt
import uuid

from sqlalchemy import CheckConstraint, Index, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from db.base import Base, check_in, uuid_pk

JOB_STATUSES = ("running", "succeeded", "failed", "skipped")
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
