"""Scenario 8: a soak under steady load with injected failures.

For `FAULTS_SOAK_SECONDS` (60 by default; 1800 for the documented half hour) a worker takes a
steady stream of small tasks (about 20 a second) while one of its pool processes is killed every
15 seconds. Sampled after a warm-up and at the end: Redis's key count and memory (apart from
task results, which expire after `result_expires`; the tasks are sent without results, as beat
and the fan-outs send them), the queue and unacked lengths, and the database connections of
the workers. At the end every task's effect must exist once.
"""

from __future__ import annotations

import os
import signal
import time
import uuid

import redis

from faults import support as s

QUEUE = "faults_soak"
RATE = 20  # tasks a second
KILL_EVERY = 15.0
MB = 2**20


def _sample(client: redis.Redis, engine) -> dict:
    keys = [k.decode() for k in client.scan_iter(count=1000)]
    results = [k for k in keys if k.startswith("celery-task-meta-")]
    return {
        "keys": len(keys) - len(results),
        "result_keys": len(results),
        "results_without_ttl": sum(1 for k in results if client.ttl(k) < 0),
        "memory": client.info("memory")["used_memory"],
        "queued": client.llen(QUEUE),
        "unacked": client.hlen("unacked"),
        "connections": s.scalar(
            engine,
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
            " AND application_name = 'cmw'",
        ),
    }


def test_a_soak_with_pool_processes_killed_keeps_redis_and_connections_flat(
    engine, celery_app, make_worker, redis_server
):
    worker = make_worker(queues=(QUEUE,), concurrency=2, extra_env=s.FAST_REDELIVERY)
    client = redis.Redis.from_url(redis_server.url)
    keys: list[str] = []
    kills = 0
    started = time.monotonic()
    next_kill = started + KILL_EVERY
    first = None
    while time.monotonic() - started < s.SOAK_SECONDS:
        tick = time.monotonic()
        for _ in range(RATE):
            key = f"soak-{uuid.uuid4().hex[:12]}"
            keys.append(key)
            # As beat and the fan-outs send: no result stored (the job run is the record).
            celery_app.send_task(
                "e2e.slow_insert", kwargs={"key": key, "seconds": 0.01}, queue=QUEUE,
                ignore_result=True,
            )  # fmt: skip
        if first is None and tick - started > 10:
            first = _sample(client, engine)
        if tick >= next_kill:
            children = worker.children()
            if children:
                os.kill(children[0], signal.SIGKILL)
                kills += 1
            next_kill += KILL_EVERY
        time.sleep(max(0.0, 1.0 - (time.monotonic() - tick)))
    # Drain: every task done (a killed child's task is requeued at once).
    messages = "SELECT count(*) FROM comms.messages WHERE dedupe_key LIKE 'soak-%'"
    try:
        s.wait_for(lambda: s.scalar(engine, messages) >= len(keys), 120)
    except TimeoutError:
        pass
    time.sleep(2)
    last = _sample(client, engine)
    done = s.scalar(engine, messages)
    assert first is not None
    s.record(
        s.Outcome(
            scenario="8. soak", case=f"{s.SOAK_SECONDS} s, {RATE} tasks/s, a child killed"
            f" every {KILL_EVERY:.0f} s", runs=len(keys), lost=len(keys) - done,
            figures={
                "children killed": kills,
                "keys (not results) start/end": f"{first['keys']}/{last['keys']}",
                "memory MB start/end": f"{first['memory'] / MB:.1f}/{last['memory'] / MB:.1f}",
                "result keys start/end": f"{first['result_keys']}/{last['result_keys']}",
                "results without TTL": last["results_without_ttl"],
                "queued/unacked at end": f"{last['queued']}/{last['unacked']}",
                "db connections start/end": f"{first['connections']}/{last['connections']}",
            },
        )
    )  # fmt: skip
    assert done == len(keys)
    assert last["queued"] == 0 and last["unacked"] == 0
    assert last["keys"] <= first["keys"] + 5
    assert last["results_without_ttl"] == 0
    assert last["result_keys"] <= first["result_keys"]
    assert last["memory"] <= first["memory"] + MB  # flat: within a megabyte
    assert last["connections"] <= first["connections"] + 2
