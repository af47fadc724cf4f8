"""Scenario 4: two beat processes, and the active one killed.

Two real `celery beat` processes run the real schedule (beat_schedule.py) side by side; a
worker drains the `sla` queue, where `sla.check_breaches` falls every minute. After the first
minute slot the active beat is SIGKILLed; the standby takes over (workers/beat.py: it sends
only while it holds the leader lock, which died with the other's connection). Every minute slot
in the window must have been enqueued and executed exactly once. Real minutes pass: `FAULTS_N`
sets how many slots the window covers (at least 3).
"""

from __future__ import annotations

import datetime as dt
import os
import signal
import subprocess
import sys
import time

from sqlalchemy import text

from faults import support as s

ROOT = s.ROOT


def _beat(tmp_path, name: str) -> tuple[subprocess.Popen, object]:
    log = open(tmp_path / f"beat-{name}.log", "w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "workers.app", "beat", "-l", "INFO",
         f"--schedule={tmp_path / f'schedule-{name}'}"],
        cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}, stdout=log,
        stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    return proc, log


def _seconds_to_next_minute() -> float:
    now = dt.datetime.now(dt.UTC)
    return 60 - now.second - now.microsecond / 1e6


def test_two_beats_and_the_leader_killed_enqueue_each_slot_once(engine, make_worker, tmp_path):
    slots = max(3, s.N)
    make_worker(queues=("sla",), concurrency=1)
    started = dt.datetime.now(dt.UTC)
    first, first_log = _beat(tmp_path, "a")
    time.sleep(3)  # the first takes the lock when its first slot falls due; start order aside
    second, second_log = _beat(tmp_path, "b")
    try:
        # Past the first slot, then kill whichever beat sent it.
        time.sleep(_seconds_to_next_minute() + 20)
        leader_log = (tmp_path / "beat-a.log").read_text()
        a_led = "leader lock taken" in leader_log
        leader, standby = (first, second) if a_led else (second, first)
        standby_name = "b" if a_led else "a"
        os.killpg(leader.pid, signal.SIGKILL)
        leader.wait(timeout=10)
        time.sleep(_seconds_to_next_minute() + 60 * (slots - 2) + 20)
        ended = dt.datetime.now(dt.UTC)
    finally:
        for proc in (first, second):
            if proc.poll() is None:
                proc.terminate()
                proc.wait(timeout=20)
        first_log.close()
        second_log.close()
    time.sleep(5)  # the last slot's sweep finishing
    took_over = "leader lock taken" in (tmp_path / f"beat-{standby_name}.log").read_text()
    with engine.connect() as conn:
        per_minute = dict(
            conn.execute(
                text(
                    "SELECT date_trunc('minute', started_at), count(*) FROM ops.job_runs"
                    " WHERE task_name = 'sla.check_breaches' AND status = 'succeeded'"
                    " GROUP BY 1"
                )
            ).all()
        )
    minute = started.replace(second=0, microsecond=0) + dt.timedelta(minutes=1)
    expected = []
    while minute < ended:
        expected.append(minute)
        minute += dt.timedelta(minutes=1)
    lost = sum(1 for m in expected if per_minute.get(m, 0) == 0)
    duplicated = sum(1 for m in expected if per_minute.get(m, 0) > 1)
    s.record(
        s.Outcome(
            scenario="4. two beats, the leader killed", case="sla.check_breaches, every minute",
            runs=len(expected), lost=lost, duplicated=duplicated,
            figures={"standby took over": "yes" if took_over else "no"},
        )
    )  # fmt: skip
    assert len(expected) >= slots
    assert took_over
    assert (lost, duplicated) == (0, 0), per_minute


def test_beat_down_across_slots_catches_up_once_then_keeps_its_schedule(
    engine, make_worker, tmp_path
):
    """Scenario 5: beat stopped for two minute slots and started again with its schedule file:
    the missed sweep runs once at the restart (not once per missed slot), and then on the
    minute as before."""
    make_worker(queues=("sla",), concurrency=1)
    beat, log = _beat(tmp_path, "a")
    try:
        time.sleep(_seconds_to_next_minute() + 10)  # one slot run
        beat.terminate()
        beat.wait(timeout=20)
        stopped = dt.datetime.now(dt.UTC)
        time.sleep(_seconds_to_next_minute() + 60 + 20)  # two slots missed
        restarted = dt.datetime.now(dt.UTC)
        beat, log2 = _beat(tmp_path, "a")  # the same schedule file
        time.sleep(_seconds_to_next_minute() + 70)  # the catch-up, then two slots on time
        ended = dt.datetime.now(dt.UTC)
    finally:
        if beat.poll() is None:
            beat.terminate()
            beat.wait(timeout=20)
        log.close()
    log2.close()
    time.sleep(5)
    with engine.connect() as conn:
        starts = (
            conn.execute(
                text(
                    "SELECT started_at FROM ops.job_runs WHERE task_name = 'sla.check_breaches'"
                    " AND status = 'succeeded' ORDER BY started_at"
                )
            )
            .scalars()
            .all()
        )
    during_downtime = [t for t in starts if stopped < t < restarted]
    catch_up = [t for t in starts if restarted <= t < restarted + dt.timedelta(seconds=15)]
    after = [t for t in starts if t >= restarted + dt.timedelta(seconds=15)]
    off_schedule = [t for t in after if t.second > 5]
    slots_after = []
    minute = (restarted + dt.timedelta(seconds=15)).replace(second=0, microsecond=0)
    while minute < ended:
        if minute > restarted + dt.timedelta(seconds=15):
            slots_after.append(minute)
        minute += dt.timedelta(minutes=1)
    s.record(
        s.Outcome(
            scenario="5. beat down across slots", case="sla.check_breaches, every minute",
            runs=1, lost=max(0, len(slots_after) - len(after)) + (len(catch_up) == 0),
            duplicated=max(0, len(catch_up) - 1) + max(0, len(after) - len(slots_after)),
            figures={"runs while down": len(during_downtime), "catch-up runs": len(catch_up),
                     "slots after / runs": f"{len(slots_after)}/{len(after)}",
                     "off schedule": len(off_schedule)},
        )
    )  # fmt: skip
    assert during_downtime == []
    assert len(catch_up) == 1, starts
    assert len(after) == len(slots_after) >= 1, (starts, slots_after)
    assert off_schedule == []
