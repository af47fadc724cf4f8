"""ops.watch: a missed, failing or overrunning periodic job, or a task's open dead letters,
noticed within minutes (SPEC 7.4).

Every periodic job of beat_schedule.py is watched with its own cadence, read from its schedule
(a crontab or an interval), never restated here:

- **missed**: no run started within the grace after a due slot (2 minutes or a tenth of the
  period, whichever is longer), for a slot since this system first ran a job (a fresh install
  has missed nothing). It stays open until a run started after the missed slot succeeds;
- **failing**: the job's newest finished run failed for good (a failure that will be retried
  is not yet the job failing; a `skipped` copy counts for nothing);
- **overrunning**: a run still `running` after the hard time limit (a stuck task, or a worker
  that died with it);
- **dead_letters**, for any task: it has open dead letters, until they are replayed or
  discarded.

One incident is open per task and kind (`ops.incidents`, a partial unique index); opening one
queues one ops email and resolving it (when its condition has cleared) one more
(`related_type='incident'`, a dedupe key per incident and event). The same evaluation, read
only, is what `cmw health` shows.

ops.watch also folds finished runs and SLA misses into the totals the Prometheus counters are
read from (tasks.ops.metrics), marking them `counted`.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, field
from typing import Any

from celery.schedules import crontab
from celery.schedules import schedule as interval_schedule
from sqlalchemy.orm import Session

from db.settings import get_settings
from tasks.ops import queries as q

MIN_GRACE = dt.timedelta(minutes=2)
# Rows folded into the totals per watch at most: a backlog (after an upgrade, or a burst) is
# worked off over a few minutes instead of one long statement.
FOLD_LIMIT = 20_000
# A run may start a little before its slot's minute (beat's clock against the database's).
EARLY = dt.timedelta(seconds=60)


# -- the schedule ----------------------------------------------------------------------------


@dataclass(frozen=True)
class PeriodicJob:
    """One entry of beat_schedule.py, with what watching it needs."""

    key: str
    task: str
    schedule: Any  # celery crontab or interval schedule

    @property
    def period(self) -> dt.timedelta:
        if isinstance(self.schedule, crontab):
            # The gap between two slots, seen from a fixed point; for a monthly crontab it is a
            # month (28 to 31 days, whichever this one is), good enough for a grace of a tenth.
            anchor = dt.datetime(2026, 1, 15, tzinfo=dt.UTC)
            last = previous_slot(self.schedule, anchor)
            return last - previous_slot(self.schedule, last - dt.timedelta(minutes=1))
        return _interval(self.schedule)

    @property
    def grace(self) -> dt.timedelta:
        return max(MIN_GRACE, self.period / 10)

    def last_due(self, now: dt.datetime) -> dt.datetime | None:
        """The newest slot whose grace has passed by `now` (crontabs; None for intervals)."""
        if not isinstance(self.schedule, crontab):
            return None
        return previous_slot(self.schedule, now - self.grace)

    def next_due(self, now: dt.datetime, last_started: dt.datetime | None) -> dt.datetime:
        if isinstance(self.schedule, crontab):
            return next_slot(self.schedule, now)
        return (last_started or now) + self.period

    def describe(self) -> str:
        from workers.beat import schedule_text

        return schedule_text(self.schedule)


def _interval(schedule: Any) -> dt.timedelta:
    if isinstance(schedule, interval_schedule):
        return schedule.run_every
    if isinstance(schedule, dt.timedelta):
        return schedule
    return dt.timedelta(seconds=float(schedule))


def periodic_jobs() -> list[PeriodicJob]:
    import beat_schedule

    return [
        PeriodicJob(key, entry["task"], entry["schedule"])
        for key, entry in beat_schedule.BEAT_SCHEDULE.items()
    ]


def _matches_day(cron: crontab, day: dt.datetime) -> bool:
    return (
        day.month in cron.month_of_year
        and day.day in cron.day_of_month
        and day.isoweekday() % 7 in cron.day_of_week  # celery: 0 is Sunday
    )


def previous_slot(cron: crontab, at: dt.datetime) -> dt.datetime:
    """The newest time at or before `at` (UTC, to the minute) the crontab fires."""
    t = at.astimezone(dt.UTC).replace(second=0, microsecond=0)
    hours, minutes = sorted(cron.hour, reverse=True), sorted(cron.minute, reverse=True)
    for _ in range(366 * 4):  # a crontab fires at least once in four years (29 February)
        if _matches_day(cron, t):
            for hour in hours:
                if hour > t.hour:
                    continue
                for minute in minutes:
                    if hour < t.hour or minute <= t.minute:
                        return t.replace(hour=hour, minute=minute)
        t = t.replace(hour=23, minute=59) - dt.timedelta(days=1)
    raise ValueError(f"crontab {cron} never fires")


def next_slot(cron: crontab, after: dt.datetime) -> dt.datetime:
    """The first time after `after` (to the minute) the crontab fires."""
    t = after.astimezone(dt.UTC).replace(second=0, microsecond=0) + dt.timedelta(minutes=1)
    hours, minutes = sorted(cron.hour), sorted(cron.minute)
    for _ in range(366 * 4):
        if _matches_day(cron, t):
            for hour in hours:
                if hour < t.hour:
                    continue
                for minute in minutes:
                    if hour > t.hour or minute >= t.minute:
                        return t.replace(hour=hour, minute=minute)
        t = t.replace(hour=0, minute=0) + dt.timedelta(days=1)
    raise ValueError(f"crontab {cron} never fires")


# -- what is wrong now -----------------------------------------------------------------------


@dataclass
class JobState:
    """One periodic job as seen now: its runs and what is wrong with it."""

    job: PeriodicJob
    last_started_at: dt.datetime | None = None
    last_status: str | None = None
    last_success_at: dt.datetime | None = None
    next_due_at: dt.datetime | None = None
    problems: dict[str, dict[str, Any]] = field(default_factory=dict)


@dataclass
class Evaluation:
    jobs: list[JobState]
    # Every condition that holds now: (task, kind) -> details.
    conditions: dict[tuple[str, str], dict[str, Any]]
    open_incidents: list[Any]
    # Open dead letters per task: task -> (task_name, letters, since).
    letters: dict[str, Any]


def evaluate(session: Session, *, now: dt.datetime) -> Evaluation:
    """What ops.watch would open or keep open as of `now`; writes nothing."""
    jobs = periodic_jobs()
    tasks = [j.task for j in jobs]
    first_run = session.execute(q.FIRST_RUN).scalar()
    latest = {r.task: r for r in session.execute(q.LATEST_RUNS, {"tasks": tasks, "now": now})}
    limit = dt.timedelta(seconds=get_settings().task_time_limit)
    overrunning = {r.task_name: r for r in session.execute(q.OVERRUNNING, {"before": now - limit})}
    letters = {r.task_name: r for r in session.execute(q.OPEN_DEAD_LETTERS)}
    open_incidents = session.execute(q.OPEN_INCIDENTS).all()
    missed_open = {i.task_name: i for i in open_incidents if i.kind == "missed"}
    conditions: dict[tuple[str, str], dict[str, Any]] = {}
    states = []
    for job in jobs:
        runs = latest[job.task]
        state = JobState(
            job,
            last_started_at=runs.last_started_at,
            last_status=runs.last_status,
            last_success_at=runs.last_success_at,
            next_due_at=job.next_due(now, runs.last_started_at),
        )
        missed = _missed(session, job, now, first_run, runs, missed_open.get(job.task))
        if missed is not None:
            state.problems["missed"] = missed
        if runs.finished_status == "failed":
            state.problems["failing"] = {
                "run_id": str(runs.finished_id),
                "task_id": runs.finished_task_id,
                "started_at": runs.finished_at.isoformat(),
                "error": (runs.finished_error or "")[:500],
            }
        if job.task in overrunning:
            run = overrunning[job.task]
            state.problems["overrunning"] = {
                "runs": run.runs,
                "running_since": run.since.isoformat(),
                "task_id": run.task_id,
                "time_limit_seconds": int(limit.total_seconds()),
            }
        for kind, details in state.problems.items():
            conditions[(job.task, kind)] = details
        states.append(state)
    for task, row in letters.items():
        conditions[(task, "dead_letters")] = {
            "letters": row.letters,
            "oldest_failed_at": row.since.isoformat(),
        }
    return Evaluation(states, conditions, open_incidents, letters)


def _missed(
    session: Session,
    job: PeriodicJob,
    now: dt.datetime,
    first_run: dt.datetime | None,
    runs: Any,
    open_incident: Any,
) -> dict[str, Any] | None:
    """The missed slot (details), or None. An open incident stays until a run started after
    its slot has succeeded."""
    if open_incident is not None:
        slot = dt.datetime.fromisoformat(open_incident.details["slot"])
        if runs.last_success_at is None or runs.last_success_at <= slot:
            return dict(open_incident.details)
    if first_run is None:
        return None  # nothing has ever run: a fresh install, not a missed job
    grace = job.grace
    slot = job.last_due(now)
    if slot is None:  # an interval: due one period after its last start
        last = runs.last_started_at or first_run
        due = last + job.period
        if due + grace > now:
            return None
        return _missed_details(job, due, grace)
    if slot < first_run:
        return None
    started = session.execute(
        q.RUN_STARTED_BETWEEN, {"task": job.task, "lo": slot - EARLY, "hi": slot + grace}
    ).scalar_one()
    return None if started else _missed_details(job, slot, grace)


def _missed_details(job: PeriodicJob, slot: dt.datetime, grace: dt.timedelta) -> dict[str, Any]:
    return {
        "slot": slot.isoformat(),
        "grace_seconds": int(grace.total_seconds()),
        "schedule": job.describe(),
        "beat_entry": job.key,
    }


# -- ops.watch -------------------------------------------------------------------------------


def watch(session: Session, *, as_of: dt.datetime) -> dict[str, Any]:
    """Open and resolve incidents as of `as_of`, notify, and fold the totals."""
    evaluation = evaluate(session, now=as_of)
    opened = resolved = 0
    recipient = get_settings().cmw_ops_email
    for (task, kind), details in sorted(evaluation.conditions.items()):
        incident_id = session.execute(
            q.OPEN_INCIDENT,
            {"task": task, "kind": kind, "now": as_of, "details": json.dumps(details)},
        ).scalar()
        if incident_id is not None:
            opened += 1
            _notify(session, recipient, incident_id, task, kind, details, "opened")
    keep = [f"{task}|{kind}" for task, kind in evaluation.conditions]
    for row in session.execute(q.RESOLVE_CLEARED, {"now": as_of, "keep": keep}).all():
        resolved += 1
        _notify(session, recipient, row.id, row.task_name, row.kind, row.details, "resolved")
    folded = fold_totals(session)
    return {
        "jobs": len(evaluation.jobs),
        "conditions": len(evaluation.conditions),
        "opened": opened,
        "resolved": resolved,
        "open": len(evaluation.conditions),
        **folded,
    }


SUBJECTS = {
    "missed": "{task} missed its run at {slot}",
    "failing": "{task} is failing",
    "overrunning": "{task} has run past its time limit",
    "dead_letters": "{task} has dead letters",
}
WHAT_TO_DO = {
    "missed": "Is beat running (`cmw health`), and a worker on its queue? The incident resolves"
    " when a later run succeeds.",
    "failing": "Its newest run failed: `cmw runs --task {task} --status failed` shows the error."
    " The incident resolves when a later run succeeds.",
    "overrunning": "A run is still `running` past the hard time limit: a stuck task, or its"
    " worker died. Check the worker; a lost run is redelivered by the broker.",
    "dead_letters": "Work them: `cmw dead-letters list --task {task}`, then replay or discard"
    " each. The incident resolves when none is open.",
}


def _notify(
    session: Session,
    recipient: str,
    incident_id: Any,
    task: str,
    kind: str,
    details: dict[str, Any],
    event: str,
) -> None:
    headline = SUBJECTS[kind].format(task=task, slot=details.get("slot", ""))
    if event == "opened":
        subject = f"[cmw] {headline}"
        body = (
            f"{headline}.\n\n{WHAT_TO_DO[kind].format(task=task)}\n\nDetails: "
            f"{json.dumps(details, sort_keys=True)}\nIncident {incident_id}."
        )
    else:
        subject = f"[cmw] resolved: {headline}"
        body = f"Resolved: {headline}. Nothing more to do.\nIncident {incident_id}."
    session.execute(
        q.NOTIFY,
        {
            "recipient": recipient,
            "subject": subject,
            "body": body,
            "incident_id": incident_id,
            "dedupe_key": f"incident:{incident_id}:{event}",
        },
    )


def fold_totals(session: Session, limit: int = FOLD_LIMIT) -> dict[str, int]:
    """Add the finished runs and recorded SLA misses not yet counted to the totals."""
    runs = session.execute(q.FOLD_JOB_RUNS, {"limit": limit}).one()
    misses = session.execute(q.FOLD_MISSES, {"limit": limit}).one()
    return {"runs_folded": int(runs.folded), "misses_folded": int(misses.folded)}
