"""Scenario 7: poison messages. A pickle-serialized message pushed straight into a queue is
refused and never executed; payloads with wrong types, unknown fields, unknown ids or huge
strings are dead-lettered with a clear error, never retried; the worker goes on working."""

from __future__ import annotations

import os
import pickle
import tempfile
import time
import uuid
from pathlib import Path

from sqlalchemy import text

from faults import support as s


class _Exploit:
    """Unpickling this would create the marker file: proof that pickle was executed."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_a_pickled_message_is_refused_and_never_runs(engine, celery_app, make_worker):
    worker = make_worker(queues=("default",), concurrency=1)
    marker = Path(tempfile.mkdtemp()) / "pickle-was-executed"
    refused = 0
    for _ in range(s.N):
        task_id = str(uuid.uuid4())
        body = pickle.dumps(((), {"keep_days": _Exploit(str(marker))}, {}))
        with celery_app.connection_for_write() as conn:
            conn.Producer().publish(
                body, routing_key="default", exchange="", serializer=None,
                content_type="application/x-python-serialize", content_encoding="binary",
                headers={"lang": "py", "task": "ops.purge", "id": task_id,
                         "root_id": task_id, "parent_id": None, "argsrepr": "()",
                         "kwargsrepr": "{}", "retries": 0},
            )  # fmt: skip
        # The worker is unharmed: a good task sent after it runs.
        assert celery_app.send_task("ops.purge", kwargs={}).get(timeout=60)["keep_days"] == 30
        refused += not s.runs_of(engine, task_id) and not marker.exists()
    time.sleep(1)
    assert not marker.exists()
    assert "ContentDisallowed" in worker.log() or "disallowed" in worker.log().lower()
    s.record(
        s.Outcome(scenario="7. poison messages", case="pickle pushed into the queue", runs=s.N,
                  figures={"refused, never executed": f"{refused} of {s.N}"})
    )  # fmt: skip
    assert refused == s.N


BAD_PAYLOADS = [
    ("wrong type", "ops.purge", {"keep_days": "thirty"}, "keep_days"),
    ("unknown field", "ops.purge", {"keep_days": 3, "drop_tables": True}, "drop_tables"),
    ("unknown id", "recurring.sync_reservation", {"reservation_id": str(uuid.uuid4())},
     "unknown reservation_id"),
    ("huge string", "recurring.sync_reservation", {"reservation_id": "x" * 1_000_000},
     "reservation_id"),
]  # fmt: skip


def test_bad_payloads_are_dead_lettered_once_with_a_clear_error(engine, celery_app, make_worker):
    worker = make_worker(concurrency=1)
    clear = 0
    for _ in range(s.N):
        for _label, task, kwargs, words in BAD_PAYLOADS:
            result = celery_app.send_task(task, kwargs=kwargs)
            try:
                result.get(timeout=60)
            except Exception:
                pass
            time.sleep(0.5)
            runs = s.runs_of(engine, result.id)
            with engine.connect() as conn:
                letters = conn.execute(
                    text("SELECT error, retries FROM ops.dead_letters WHERE task_id = :t"),
                    {"t": result.id},
                ).all()
            ok = (
                [r.status for r in runs] == ["failed"]
                and len(letters) == 1
                and letters[0].retries == 0
                and words.lower() in letters[0].error.lower()
            )
            clear += ok
    assert worker.proc.poll() is None  # still running
    assert celery_app.send_task("ops.purge", kwargs={}).get(timeout=60)["keep_days"] == 30
    total = s.N * len(BAD_PAYLOADS)
    s.record(
        s.Outcome(scenario="7. poison messages", case="bad payloads (4 kinds)", runs=total,
                  figures={"dead-lettered once, no retry, clear error": f"{clear} of {total}"})
    )  # fmt: skip
    assert clear == total
