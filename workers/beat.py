"""The beat scheduler: Celery's own, sending only while it holds the beat leader lock.

Two beat processes (a standby beside the active one, or two by mistake) must not enqueue each
periodic slot twice. Both run `LeaderScheduler` (`beat_scheduler` in workers/app.py) and keep
their schedules in step; when an entry falls due, a beat sends it only if it holds a
PostgreSQL session-level advisory lock (`pg_try_advisory_lock`) on a connection of its own. The
lock lives as long as that connection: a beat that dies loses it at once (PostgreSQL sees the
connection close), and the standby, trying again at each due slot, takes over from the next
one. The database keys of each job stay the backstop: a slot sent twice anyway (a leader that
died between sending and PostgreSQL noticing) runs as a singleton and writes each effect once.
"""

from __future__ import annotations

import logging

import psycopg
from celery.beat import PersistentScheduler

from db.seeds import psycopg_connect_kwargs
from workers.settings import get_settings

log = logging.getLogger(__name__)

LOCK_SQL = "SELECT pg_try_advisory_lock(hashtextextended('cmw.beat.leader', 0))"


class LeaderScheduler(PersistentScheduler):
    _lock_conn: psycopg.Connection | None = None

    def apply_entry(self, entry, producer=None):  # noqa: ANN001
        if self.is_leader():
            super().apply_entry(entry, producer=producer)
        else:
            log.debug("beat standby: %s left to the leader", entry.name)

    def is_leader(self) -> bool:
        """Hold (or take) the leader lock; False while another beat holds it or the database is
        unreachable (a slot is better sent by nobody than twice: the next one catches up)."""
        if self._lock_conn is not None:
            try:
                self._lock_conn.execute("SELECT 1")  # still ours while the connection lives
                return True
            except psycopg.Error:
                self._drop_lock()  # the database restarted, say: the lock went with it
        try:
            conn = psycopg.connect(
                **psycopg_connect_kwargs(get_settings().database_url),
                autocommit=True,
                application_name="cmw-beat",
            )
            row = conn.execute(LOCK_SQL).fetchone()
        except psycopg.Error as exc:
            log.warning("beat: leader lock unavailable (%s); not sending", exc)
            return False
        if row and row[0]:
            self._lock_conn = conn
            log.info("beat: leader lock taken; this beat sends the periodic tasks")
            return True
        conn.close()
        return False

    def _drop_lock(self) -> None:
        if self._lock_conn is not None:
            try:
                self._lock_conn.close()
            except psycopg.Error:
                pass
            self._lock_conn = None

    def close(self) -> None:
        self._drop_lock()
        super().close()


# -- reading the schedule (cmw schedule; job health) ---------------------------------------


def schedule_text(schedule: object) -> str:
    """A beat entry's schedule as people write it: `*/5 * * * *` for a crontab (minute, hour,
    day of month, month, day of week, in UTC), `every 30 s` for an interval."""
    from celery.schedules import crontab
    from celery.schedules import schedule as interval

    if isinstance(schedule, crontab):
        return " ".join(
            str(part)
            for part in (
                schedule._orig_minute,
                schedule._orig_hour,
                schedule._orig_day_of_month,
                schedule._orig_month_of_year,
                schedule._orig_day_of_week,
            )
        )
    if isinstance(schedule, interval):
        return f"every {schedule.run_every.total_seconds():g} s"
    return str(schedule)


def next_run(schedule, now):  # noqa: ANN001, ANN201  (a celery schedule, an aware datetime)
    """The next slot of `schedule` after `now`, to the minute (Celery's estimate lands a few
    seconds before the slot)."""
    import datetime as dt

    estimate = now + schedule.remaining_estimate(now) + dt.timedelta(seconds=30)
    return estimate.replace(second=0, microsecond=0)
