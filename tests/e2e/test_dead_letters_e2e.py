"""Bad input through a real worker, and its dead letter worked from the command line (SPEC 7.2,
7.3): a refused payload is one WARNING line in the worker's log, a NUL leaves its failed run and
one dead letter, and a replayed letter runs on the worker under the task id recorded on it."""

from __future__ import annotations

import json
import uuid

import pytest
from sqlalchemy import text

from tests.support.cli import cmw, json_lines
from tests.support.runs import runs_of, wait_for

pytestmark = pytest.mark.e2e


def _letters(engine, task_id: str):
    with engine.connect() as conn:
        return conn.execute(
            text(
                "SELECT id, payload, error, status, replay_task_id FROM ops.dead_letters"
                " WHERE task_id = :t"
            ),
            {"t": task_id},
        ).all()


def test_a_refused_payload_is_one_warning_line_on_the_worker_and_its_letter_is_replayed(
    worker, engine
):
    done = cmw("enqueue", "ops.purge", "--payload", '{"keep_days": "Ada Lovelace"}')
    assert done.returncode == 0, done.stderr
    task_id = done.stdout.split(" as ")[1].split()[0]
    [dead] = wait_for(lambda: _letters(engine, task_id), timeout=60)
    assert dead.status == "open"

    # The worker said it once, at WARNING, without a traceback or the payload.
    log = [line for line in worker.log().splitlines() if task_id in line]
    loud = [line for line in log if "WARNING" in line or "ERROR" in line]
    assert len(loud) == 1 and "payload refused" in loud[0], log
    assert "raised unexpected" not in worker.log() and "Lovelace" not in worker.log()

    replayed = cmw("dead-letters", "replay", str(dead.id), "--payload", '{"keep_days": 45}')
    assert replayed.returncode == 0, replayed.stderr
    [after] = _letters(engine, task_id)
    assert after.status == "replayed" and after.replay_task_id in replayed.stdout
    runs = wait_for(
        lambda: [r for r in runs_of(engine, after.replay_task_id) if r.status == "succeeded"],
        timeout=60,
    )
    assert runs[0].worker.startswith("test-")  # it ran on the worker
    listed = json_lines(cmw("dead-letters", "list", "--status", "replayed", "--json").stdout)
    assert [(r["id"], r["replay_task_id"]) for r in listed] == [
        (str(dead.id), after.replay_task_id)
    ]


def test_a_nul_sent_by_another_service_leaves_a_failed_run_and_one_dead_letter(
    worker, celery_app, engine
):
    task_id = str(uuid.uuid4())
    celery_app.send_task(
        "ops.purge", kwargs={"keep_days": 5, "note": "from\u0000the portal"}, task_id=task_id
    )
    [dead] = wait_for(lambda: _letters(engine, task_id), timeout=60)
    assert dead.payload == {"keep_days": 5, "note": "from\ufffdthe portal"}
    assert "note: contains a NUL character" in dead.error
    [run] = runs_of(engine, task_id)
    assert run.status == "failed" and "NUL" in run.error
    assert json.dumps(dead.payload)  # stored, and read back as JSON
