"""The one task base every job uses, and the `job` decorator that applies it.

A job is a plain function `fn(ctx: JobContext, payload: Model) -> dict`. The base adds what every
job needs, so tasks declare only what differs:

- payload validation with the job's pydantic model (strict JSON: unknown fields and wrong types
  are refused); a bad payload, or a PayloadError raised by the job (an unknown id), fails at
  once, is never retried, lands in ops.dead_letters, and is logged as one WARNING line;
- payloads the database could not store (a NUL in a string, a lone surrogate, NaN) are payload
  errors too, recorded with the offending values replaced (`storable`), so bad input always
  leaves its failed run and its dead letter; `as_of` must lie within 5 years of the real clock;
- an ops.job_runs row per execution: `running` is committed before the work starts, and the
  final `succeeded` / `skipped` is written in the same transaction as the work, so a job's
  effects and its record commit together or not at all;
- periodic jobs as singletons, by pg_try_advisory_xact_lock in the work transaction: a second
  copy records `skipped` and succeeds, unless it is a redelivery or a retry (the lock may be
  held by its own lost run): that one retries until the lock is free;
- retries of transient faults only (database or broker unreachable), with exponential backoff,
  full jitter and a cap; a task that fails for good lands in ops.dead_letters;
- follow-up tasks enqueued only after the work transaction has committed;
- one log line when a task starts and one when it ends.

A job that waits on the network (a channel feed) declares `own_transactions=True`: it gets no
work transaction and opens its own short ones with `ctx.transaction()`, each committing before
the job goes back to waiting, so no database transaction is ever open across a network wait
(SPEC 7.1). Follow-ups enqueued inside `ctx.transaction()` are sent as soon as it commits, and
the run's final record is written in a short transaction of its own when the job returns.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import math
import os
import re
import socket
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, TypeVar

import celery
import kombu.exceptions
import redis.exceptions
import sqlalchemy.exc
from dateutil.relativedelta import relativedelta
from pydantic import AwareDatetime, BaseModel, ConfigDict, ValidationError, field_validator
from sqlalchemy import text
from sqlalchemy.orm import Session

from db.session import session_scope
from workers.app import app

log = logging.getLogger("cmw.jobs")


class _ExpectedFailureLine(logging.Filter):
    """Drops Celery's own "Task ... raised expected: PayloadError(...)" line (celery.app.trace,
    for the exceptions in a task's `throws`): the task base logs a refused payload itself, once,
    at WARNING, with the run's fields (SPEC 7.3). Every other failure line is kept."""

    def filter(self, record: logging.LogRecord) -> bool:
        data = getattr(record, "data", None)
        return not (isinstance(data, dict) and data.get("description") == "raised expected")


logging.getLogger("celery.app.trace").addFilter(_ExpectedFailureLine())

# Transient faults: worth retrying because the same call can succeed once the peer is back.
TRANSIENT_ERRORS: tuple[type[BaseException], ...] = (
    # Postgres unreachable, restarted, or our backend terminated (psycopg OperationalError).
    sqlalchemy.exc.OperationalError,
    # A pooled connection found closed under us.
    sqlalchemy.exc.InterfaceError,
    # The broker or result backend unreachable while enqueueing a follow-up.
    kombu.exceptions.OperationalError,
    redis.exceptions.ConnectionError,
    redis.exceptions.TimeoutError,
)


class LockHeldByLostRun(Exception):
    """A redelivered or retried singleton found its job's lock taken: most likely by the
    backend of its own earlier run, whose worker died and which PostgreSQL ends within seconds
    (db.session sets client_connection_check_interval). Retried, never skipped: only a first
    delivery may skip, since a skipped redelivery of a monthly job would wait a month."""


RETRIED_ERRORS = (*TRANSIENT_ERRORS, LockHeldByLostRun)
# A run that failed before it started (a bad payload) still gets its job_runs row.
INSERT_FAILED_RUN = text(
    "INSERT INTO ops.job_runs (task_name, task_id, run_key, status, as_of, payload, error,"
    " retries, started_at, finished_at, duration_ms, worker)"
    " VALUES (:task_name, :task_id, :task_name, 'failed', now(), CAST(:payload AS jsonb),"
    " :error, :retries, now(), clock_timestamp(), :duration_ms, :worker)"
)
RETRY_BACKOFF_MAX = 300  # seconds; BROKER_VISIBILITY_TIMEOUT must stay above this + time limit
MAX_RETRIES = 8


class PayloadError(ValueError):
    """Bad input (a wrong field, an unknown id): fail at once, never retry, dead-letter it."""


class NotFound(LookupError):
    """Raised by a job's work for an id its payload names that does not exist. The task base
    turns it into a PayloadError (the payload is what is wrong), so the work need not know
    about tasks: `raise NotFound(f"unknown mapping_id {mapping_id}")`."""


class Payload(BaseModel):
    """Base of every task payload: one flat JSON object, no unknown fields."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    def run_key_parts(self) -> dict[str, Any]:
        """What identifies the run besides the task name: the payload minus as_of."""
        return self.model_dump(mode="json", exclude={"as_of"}, exclude_none=True)


# A month in a payload ('2026-02'). Matched whole (fullmatch), in ASCII digits: `$` would
# accept "2026-01\n" and `\d` any script's digits.
YEAR_MONTH = re.compile(r"([0-9]{4})-(0[1-9]|1[0-2])")


def year_month(value: str | None, field: str) -> str | None:
    """A payload's 'YYYY-MM' field checked (for a field_validator): 'YYYY-MM', years 1900-2999."""
    if value is not None:
        match = YEAR_MONTH.fullmatch(value)
        if not match or not 1900 <= int(match.group(1)) <= 2999:
            raise ValueError(f"{field} must be 'YYYY-MM' (e.g. '2026-02')")
    return value


# How far from the real clock `as_of` may lie, either way (SPEC 7.2): a year-9999 or year-1
# `as_of` scheduled feeds for year 10000, purged every run and dated purchases 0001-01-01.
AS_OF_WINDOW = relativedelta(years=5)


class PeriodicPayload(Payload):
    """Periodic jobs behave exactly as if the clock read `as_of` (ISO-8601 with an offset),
    within 5 years of the real clock. Effects that delete data or schedule future work still
    anchor to the real clock (e.g. ops.purge never deletes a row newer than keep_days)."""

    as_of: AwareDatetime | None = None

    @field_validator("as_of")
    @classmethod
    def _as_of_near_the_real_clock(cls, value: dt.datetime | None) -> dt.datetime | None:
        if value is None:
            return value
        now = utcnow()
        earliest, latest = now - AS_OF_WINDOW, now + AS_OF_WINDOW
        try:
            near = earliest <= value <= latest
        except OverflowError:  # year 1 with a positive offset is before year 1 in UTC
            near = False
        if not near:
            raise ValueError(
                f"as_of must lie within 5 years of the real clock"
                f" ({earliest.date().isoformat()} to {latest.date().isoformat()})"
            )
        return value


FollowUps = list[tuple[str, dict[str, Any]]]


@dataclass
class JobContext:
    """What a job function gets besides its payload.

    `session` is the work transaction's session; for an `own_transactions` job it is None
    except inside `ctx.transaction()`.
    """

    session: Session | None
    as_of: dt.datetime
    task_name: str
    task_id: str | None
    run_id: uuid.UUID
    # 0 on the first execution, n on the n-th retry of a transient fault.
    attempt: int = 0
    # True when the payload named its as_of (a test, a replay): follow-ups then run as of it
    # too; in production (no as_of) each follow-up runs as of the moment it executes.
    as_of_given: bool = False
    _after_commit: FollowUps = field(default_factory=list)
    # Sends follow-ups (the task base's producer); None outside a task (a plain function call).
    _send: Callable[[FollowUps], None] | None = None

    def enqueue_after_commit(self, task_name: str, **kwargs: Any) -> None:
        """Send `task_name` once this job's transaction has committed (never before). When
        this run was given an `as_of` and the follow-up takes one, it runs as of the same."""
        if self.as_of_given and "as_of" not in kwargs and _takes_as_of(task_name):
            kwargs["as_of"] = self.as_of.isoformat()
        self._after_commit.append((task_name, kwargs))

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        """A short unit of work of its own: commits at the end of the block (rolls back on an
        error), then sends the follow-ups enqueued inside it. For jobs that must not hold a
        transaction while they wait on something else (`own_transactions=True`)."""
        outer_session, outer_follow_ups = self.session, self._after_commit
        follow_ups: FollowUps = []
        try:
            with session_scope() as session:
                self.session, self._after_commit = session, follow_ups
                yield session
        finally:
            self.session, self._after_commit = outer_session, outer_follow_ups
        if follow_ups:
            if self._send is None:
                self._after_commit.extend(follow_ups)
            else:
                self._send(follow_ups)


def _takes_as_of(task_name: str) -> bool:
    model = getattr(app.tasks.get(task_name), "payload_model", None)
    return model is not None and "as_of" in model.model_fields


JobFn = Callable[[JobContext, Any], dict[str, Any]]
P = TypeVar("P", bound=Payload)


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


# -- values the database can store ----------------------------------------------------------
#
# PostgreSQL stores no NUL character in text or jsonb, no lone UTF-16 surrogate (not UTF-8), and
# no NaN or infinity in jsonb; JSON from the broker can carry all of them. Such a payload must
# still leave its failed run and its dead letter (SPEC 7.2), so the record keeps the payload
# with each offending value replaced: characters by U+FFFD, Unicode's own mark for "a character
# that could not be represented" (what ops see is the payload as sent, minus those characters,
# and the error names where they were); non-finite numbers by their name as a string.

REPLACEMENT = "\ufffd"
CANNOT_STORE = ", which the database cannot store"
_UNSTORABLE_CHAR = re.compile("[\x00\ud800-\udfff]")
# Deeper than any payload (they are flat objects); past it a value is recorded as a marker.
MAX_DEPTH = 32
# Python refuses to print integers of more than 4,300 digits (about 14,000 bits).
MAX_INT_BITS = 13_000


def storable_text(value: str) -> str:
    """The string with every character PostgreSQL cannot store replaced by U+FFFD."""
    return _UNSTORABLE_CHAR.sub(REPLACEMENT, value)


def _char_problem(value: str) -> str:
    char = _UNSTORABLE_CHAR.search(value)
    assert char is not None
    found = char.group()
    if found == "\x00":
        return "contains a NUL character (\\u0000)"
    return f"contains a lone surrogate (\\u{ord(found):04x})"


def storable(value: Any) -> tuple[Any, list[str]]:
    """`value` made of JSON types PostgreSQL can store, and where it had to be changed.

    The problems read `path: what` (`note: contains a NUL character (\\u0000)`); an empty
    list means the value was storable as it was.
    """
    problems: list[str] = []

    def fix(item: Any, path: str, depth: int) -> Any:
        where = path or "the payload"
        if item is None or isinstance(item, bool):
            return item
        if isinstance(item, str):
            if _UNSTORABLE_CHAR.search(item):
                problems.append(f"{where}: {_char_problem(item)}{CANNOT_STORE}")
                return storable_text(item)
            return item
        if isinstance(item, int):
            if item.bit_length() > MAX_INT_BITS:
                problems.append(f"{where}: an integer of {item.bit_length()} bits{CANNOT_STORE}")
                return f"<integer of {item.bit_length()} bits>"
            return item
        if isinstance(item, float):
            if not math.isfinite(item):
                problems.append(f"{where}: {item!r} is not a JSON number{CANNOT_STORE}")
                return repr(item)
            return item
        if depth >= MAX_DEPTH:
            problems.append(f"{where}: nested deeper than {MAX_DEPTH} levels")
            return "<nested too deep>"
        if isinstance(item, dict):
            fixed = {}
            for key, child in item.items():
                key = key if isinstance(key, str) else str(key)
                if _UNSTORABLE_CHAR.search(key):
                    problems.append(f"{where}: a key {_char_problem(key)}{CANNOT_STORE}")
                    key = storable_text(key)
                fixed[key] = fix(child, f"{path}.{key}" if path else key, depth + 1)
            return fixed
        if isinstance(item, list | tuple):
            return [fix(child, f"{path}[{i}]", depth + 1) for i, child in enumerate(item)]
        # Not a JSON type (only an in-process caller can pass one): recorded as its text.
        return fix(str(item), path, depth)

    return fix(value, "", 0), problems


def _stored_json(value: Any) -> str:
    """`value` as JSON text the database accepts (see `storable`)."""
    return json.dumps(storable(value)[0])


def one_line(text: str) -> str:
    """A message on one line (pydantic's and drivers' messages span several)."""
    return " ".join(text.split())


def _short(exc: BaseException) -> str:
    if isinstance(exc, PayloadError):
        return storable_text(str(exc))
    return storable_text(f"{type(exc).__name__}: {exc}")


def validation_message(exc: ValidationError) -> str:
    """pydantic's errors on one line, `field: message; field: message`, without the input
    values (the payload is recorded beside the error; a log line never carries it)."""
    parts = []
    for error in exc.errors(include_url=False, include_input=False):
        where = ".".join(str(p) for p in error["loc"]) or "the payload"
        # A validator's own ValueError reads "Value error, <its message>".
        message = error["msg"].removeprefix("Value error, ")
        parts.append(f"{where}: {message}")
    return "; ".join(parts)


_START_RUN = text(
    """
    WITH async_commit AS (SELECT set_config('synchronous_commit', 'off', true)),
    lost AS (
        UPDATE ops.job_runs SET status = 'failed', finished_at = now(),
               error = 'worker lost before finishing; the task was redelivered'
        WHERE task_id = :task_id AND status = 'running'
    )
    INSERT INTO ops.job_runs (task_name, task_id, run_key, status, as_of, payload, retries, worker)
    SELECT :task_name, :task_id, :run_key, 'running', :as_of, CAST(:payload AS jsonb), :retries,
           :worker
    FROM async_commit
    RETURNING id, (SELECT count(*) FROM ops.job_runs WHERE task_id = :task_id) AS earlier_runs
    """
)


class JobTask(celery.Task):
    """Celery task class of every job (see the module docstring)."""

    payload_model: type[Payload] = Payload
    singleton: bool = False
    # The job opens its own short transactions (ctx.transaction()) instead of running in one.
    own_transactions: bool = False
    job_fn: JobFn | None = None

    autoretry_for = RETRIED_ERRORS
    dont_autoretry_for = (PayloadError,)
    # Expected failures: Celery logs them at INFO without a traceback ("raised expected")
    # instead of an ERROR "raised unexpected" with two tracebacks.
    throws = (PayloadError,)
    retry_backoff = 2
    retry_backoff_max = RETRY_BACKOFF_MAX
    retry_jitter = True
    max_retries = MAX_RETRIES

    # -- the execution -------------------------------------------------------------------
    def execute(self, kwargs: dict[str, Any]) -> dict[str, Any]:
        request = self.request
        request.cmw_started = time.monotonic()
        payload = self.validate(kwargs)
        as_of = getattr(payload, "as_of", None) or utcnow()
        run_key = self.run_key(payload)
        run_id, earlier_runs = self._record_start(kwargs, as_of, run_key)
        request.cmw_run_id = run_id
        log.info(
            "task started",
            extra={
                "task": self.name,
                "task_id": request.id,
                "run_key": run_key,
                "as_of": as_of.isoformat(),
            },
        )
        if self.own_transactions:
            result = self._execute_own_transactions(payload, as_of, run_id)
        else:
            result = self._execute_in_one_transaction(payload, as_of, run_id, earlier_runs)
        log.info(
            "task finished",
            extra={
                "task": self.name,
                "task_id": request.id,
                "run_key": run_key,
                "duration_ms": self._elapsed_ms(),
                "result": result,
            },
        )
        return result

    def _execute_in_one_transaction(
        self, payload: Payload, as_of: dt.datetime, run_id: uuid.UUID, earlier_runs: int
    ) -> dict[str, Any]:
        """The job, its record and nothing else in one transaction; follow-ups after it."""
        after_commit: FollowUps = []
        with session_scope() as session:
            if self.singleton and not self._try_singleton_lock(session):
                if earlier_runs:
                    raise LockHeldByLostRun(
                        f"{self.name}: redelivered after its worker died, and the job's lock"
                        " is still held (by the lost run's backend, until PostgreSQL ends it)"
                    )
                result: dict[str, Any] = {"skipped": "another run of this job holds its lock"}
                self._record_end(session, run_id, "skipped", result)
            else:
                ctx = self._context(session, payload, as_of, run_id)
                result = self._run_job(ctx, payload)
                self._record_end(session, run_id, "succeeded", result)
                after_commit = ctx._after_commit
        self._send_follow_ups(after_commit)
        return result

    def _execute_own_transactions(
        self, payload: Payload, as_of: dt.datetime, run_id: uuid.UUID
    ) -> dict[str, Any]:
        """The job opens its own transactions (ctx.transaction()), each sending its follow-ups
        when it commits; the record is written last, in a short transaction of its own."""
        ctx = self._context(None, payload, as_of, run_id)
        result = self._run_job(ctx, payload)
        with session_scope() as session:
            self._record_end(session, run_id, "succeeded", result)
        self._send_follow_ups(ctx._after_commit)
        return result

    def _context(
        self,
        session: Session | None,
        payload: Payload,
        as_of: dt.datetime,
        run_id: uuid.UUID,
    ) -> JobContext:
        """Without a session the job opens its own transactions, each sending its follow-ups
        when it commits."""
        request = self.request
        return JobContext(
            session,
            as_of,
            self.name,
            request.id,
            run_id,
            request.retries or 0,
            as_of_given=getattr(payload, "as_of", None) is not None,
            _send=self._send_follow_ups if session is None else None,
        )

    def _run_job(self, ctx: JobContext, payload: Payload) -> dict[str, Any]:
        assert self.job_fn is not None
        try:
            return self.job_fn(ctx, payload)
        except NotFound as exc:
            raise PayloadError(str(exc)) from None

    def _send_follow_ups(self, follow_ups: FollowUps) -> None:
        if not follow_ups:
            return
        # One producer (one broker connection) for all of them: a channel import sends two
        # follow-ups per stay it touched. Without the "task-sent" event: it is a second broker
        # message per follow-up (0.58 against 0.33 ms a send, measured), and Flower shows the
        # follow-up anyway once a worker receives it. The flag is Celery's app-wide setting,
        # lowered only while this (single-threaded: prefork or solo) process sends.
        conf = self.app.conf
        sent_events = conf.task_send_sent_event
        conf.task_send_sent_event = False
        try:
            with self.app.producer_or_acquire() as producer:
                for task_name, task_kwargs in follow_ups:
                    # No result stored: nobody waits on a follow-up (its job_runs row is its
                    # record), and stored results would grow Redis for result_expires.
                    self.app.send_task(
                        task_name, kwargs=task_kwargs, producer=producer, ignore_result=True
                    )
        finally:
            conf.task_send_sent_event = sent_events

    def validate(self, kwargs: dict[str, Any]) -> Payload:
        # Whatever the model says of it, a value the database cannot store would fail the
        # job's writes, and then the very record of its failure (SPEC 7.2): refused, with what
        # the model says of the rest of the payload in the same message.
        storable_kwargs, problems = storable(kwargs)
        # Validated as JSON in strict mode: "abc" is not an int and "5" is not one either,
        # while ISO-8601 strings and UUID strings are what JSON carries for those types.
        try:
            payload = self.payload_model.model_validate_json(
                json.dumps(storable_kwargs), strict=True
            )
        except ValidationError as exc:
            problems.append(validation_message(exc))
        if problems:
            # A plain PayloadError carrying the message: pydantic's own error type does not
            # survive the JSON result backend.
            raise PayloadError(f"invalid payload for {self.name}: {'; '.join(problems)}")
        return payload

    def run_key(self, payload: Payload) -> str:
        parts = payload.run_key_parts()
        if not parts:
            return self.name
        return self.name + ":" + json.dumps(parts, sort_keys=True, separators=(",", ":"))

    def _elapsed_ms(self) -> int | None:
        started = getattr(self.request, "cmw_started", None)
        return None if started is None else int((time.monotonic() - started) * 1000)

    # -- the job_runs record -------------------------------------------------------------
    def _record_start(
        self, kwargs: dict[str, Any], as_of: dt.datetime, run_key: str
    ) -> tuple[uuid.UUID, int]:
        """Insert this run as `running`; returns its id and how many runs of the same task id
        came before it (a redelivery or a retry has some; the lost one is closed here)."""
        request = self.request
        with session_scope() as session:
            # One round trip: a redelivered task (its worker died) left its earlier run
            # `running`, which is closed; the new run is inserted. The commit is asynchronous
            # (no wait for the WAL flush): this row only says the run started, and the work's
            # own synchronous commit later flushes the WAL past it, so it can only be lost
            # together with a run that never committed anything.
            return session.execute(_START_RUN, {
                "task_name": self.name,
                "task_id": request.id,
                "run_key": run_key,
                "as_of": as_of,
                "payload": _stored_json(kwargs),
                "retries": request.retries or 0,
                "worker": request.hostname or _worker_name(),
            }).one()  # fmt: skip

    def _record_end(self, session: Session, run_id: uuid.UUID, status: str, result: dict) -> None:
        session.execute(
            text(
                "UPDATE ops.job_runs SET status = :status, result = CAST(:result AS jsonb),"
                " finished_at = clock_timestamp(), duration_ms = :duration_ms WHERE id = :id"
            ),
            {
                "status": status,
                "result": _stored_json(result),
                "duration_ms": self._elapsed_ms(),
                "id": run_id,
            },
        )

    def _record_failure(self, exc: BaseException, kwargs: dict, *, final: bool) -> None:
        """Mark this execution failed; when it failed for good, dead-letter it too."""
        request = self.request
        error = _short(exc)
        run_id = getattr(request, "cmw_run_id", None)
        kind = (
            "validation"
            if isinstance(exc, PayloadError)
            else "transient"
            if isinstance(exc, TRANSIENT_ERRORS)
            else "error"
        )
        try:
            with session_scope() as session:
                params = {
                    "task_name": self.name,
                    "task_id": request.id,
                    # Made storable: a payload error may be about exactly that.
                    "payload": _stored_json(kwargs),
                    "error": error if final else f"{error} (will retry)",
                    "retries": request.retries or 0,
                    "duration_ms": self._elapsed_ms(),
                    "worker": request.hostname or _worker_name(),
                }
                if run_id is not None:
                    session.execute(
                        text(
                            "UPDATE ops.job_runs SET status = 'failed', error = :error,"
                            " finished_at = clock_timestamp(), duration_ms = :duration_ms"
                            " WHERE id = :id"
                        ),
                        {**params, "id": run_id},
                    )
                else:  # failed before it started (bad payload): the run still gets its row
                    session.execute(INSERT_FAILED_RUN, params)
                if final:
                    session.execute(
                        text(
                            "INSERT INTO ops.dead_letters"
                            " (task_name, task_id, payload, error, error_kind, retries)"
                            " VALUES (:task_name, :task_id, CAST(:payload AS jsonb), :error, :kind,"
                            " :retries)"
                        ),
                        {**params, "error": error, "kind": kind},
                    )
        except TRANSIENT_ERRORS:
            # The database is what failed: the broker's copy and the log are what we have.
            log.exception("could not record the failure of %s %s", self.name, request.id)
        request.cmw_run_id = None

    def on_retry(self, exc, task_id, args, kwargs, einfo) -> None:
        self._record_failure(exc, kwargs, final=False)
        log.warning(
            "task will retry",
            extra={
                "task": self.name,
                "task_id": task_id,
                "error": _short(exc),
                "retries": self.request.retries,
            },
        )

    def on_failure(self, exc, task_id, args, kwargs, einfo) -> None:
        self._record_failure(exc, kwargs, final=True)
        fields = {
            "task": self.name,
            "task_id": task_id,
            "error": one_line(_short(exc)),
            "duration_ms": self._elapsed_ms(),
        }
        if isinstance(exc, PayloadError):
            # Bad input is the sender's mistake, not ours: one line, no traceback (Celery's
            # own line for it is dropped, see _ExpectedFailureLine).
            log.warning("payload refused", extra=fields)
        else:
            log.error("task failed", extra=fields)

    # -- singletons ----------------------------------------------------------------------
    def _try_singleton_lock(self, session: Session) -> bool:
        # Transaction-scoped: released by the commit or rollback, and by Postgres itself if this
        # process dies, so a crashed run never leaves the job locked.
        return bool(
            session.execute(
                text("SELECT pg_try_advisory_xact_lock(hashtextextended(:key, 0))"),
                {"key": f"cmw.job:{self.name}"},
            ).scalar_one()
        )


def job(
    name: str,
    *,
    payload: type[P],
    singleton: bool = False,
    own_transactions: bool = False,
    **options: Any,
) -> Callable[[Callable[[JobContext, P], dict[str, Any]]], JobTask]:
    """Register `fn(ctx, payload) -> dict` as the Celery task `name` with the house defaults.

    The queue follows from the name (workers.queues.TASK_ROUTES), so a task sent by name from
    another service lands where this app's own calls do. `own_transactions`: see the module
    docstring (a singleton's lock lives in the work transaction, so the two do not mix).
    """
    assert not (singleton and own_transactions), "a singleton's lock needs a work transaction"

    def decorate(fn: Callable[[JobContext, P], dict[str, Any]]) -> JobTask:
        def run(self: JobTask, **kwargs: Any) -> dict[str, Any]:
            return self.execute(kwargs)

        run.__name__ = fn.__name__
        run.__doc__ = fn.__doc__
        return app.task(  # type: ignore[no-any-return]
            run,
            name=name,
            base=JobTask,
            bind=True,
            payload_model=payload,
            singleton=singleton,
            own_transactions=own_transactions,
            job_fn=staticmethod(fn),
            **options,
        )

    return decorate
