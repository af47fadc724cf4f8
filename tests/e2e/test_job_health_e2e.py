"""A real beat, killed while the workers run: ops.watch, run by hand five minutes later, opens
a `missed` incident for the every-minute SLA sweep (SPEC 7.4).

Beat runs until it has sent sla.check_breaches once (at the next minute), so the job has a
real run; then it is SIGKILLed, and the watch runs as of five minutes later (the test does not
sit through the five minutes: `as_of` is what every periodic job takes for that)."""

from __future__ import annotations

import datetime as dt
import json
import signal
import subprocess
import sys
import time

import pytest
from sqlalchemy import text

from tests.support.cli import start_cmw_run
from tests.support.services import ROOT

pytestmark = pytest.mark.e2e


def test_beat_killed_for_five_minutes_opens_a_missed_incident(
    worker, worker_env, session, tmp_path
):
    beat = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "workers.app", "beat",
         f"--schedule={tmp_path / 'celerybeat-schedule'}", "--loglevel=INFO"],
        cwd=ROOT, env=worker_env, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 100
        while time.monotonic() < deadline:
            session.commit()
            ran = session.execute(
                text(
                    "SELECT max(started_at) FROM ops.job_runs"
                    " WHERE task_name = 'sla.check_breaches' AND status = 'succeeded'"
                )
            ).scalar()
            if ran is not None:
                break
            time.sleep(0.5)
        assert ran is not None, "beat never sent sla.check_breaches"
    finally:
        beat.send_signal(signal.SIGKILL)
        beat.wait(timeout=10)

    later = dt.datetime.now(dt.UTC) + dt.timedelta(minutes=5)
    proc = start_cmw_run("ops.watch", {"as_of": later.isoformat()})
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    assert json.loads(out.strip().splitlines()[-1])["opened"] >= 1
    session.commit()
    [incident] = session.execute(
        text(
            "SELECT * FROM ops.incidents WHERE task_name = 'sla.check_breaches'"
            " AND kind = 'missed' AND resolved_at IS NULL"
        )
    ).all()
    assert dt.datetime.fromisoformat(incident.details["slot"]) > ran
    [notice] = session.execute(
        text("SELECT * FROM comms.messages WHERE related_type = 'incident' AND related_id = :i"),
        {"i": incident.id},
    ).all()
    assert "sla.check_breaches missed" in notice.subject
