"""Two beat schedulers at once: only the holder of the leader lock sends, and the standby takes
over the moment the leader's connection is gone (workers/beat.py)."""

from __future__ import annotations

from celery.beat import ScheduleEntry

from workers.beat import LeaderScheduler


def _queued(redis_client) -> int:
    return redis_client.llen("default")


def test_only_the_leader_sends_and_the_standby_takes_over_when_it_dies(
    celery_app, redis_client, tmp_path, migrated_db
):
    redis_client.delete("default")
    active = LeaderScheduler(app=celery_app, schedule_filename=str(tmp_path / "a"), lazy=True)
    standby = LeaderScheduler(app=celery_app, schedule_filename=str(tmp_path / "b"), lazy=True)
    entry = ScheduleEntry(name="purge", task="ops.purge", schedule=60, app=celery_app)
    try:
        active.apply_entry(entry)
        assert _queued(redis_client) == 1
        standby.apply_entry(entry)  # the slot is the leader's
        assert _queued(redis_client) == 1
        active.apply_entry(entry)  # still the leader
        assert _queued(redis_client) == 2

        active._lock_conn.close()  # the leader's connection gone, as when its process dies
        standby.apply_entry(entry)
        assert _queued(redis_client) == 3
        active.apply_entry(entry)  # the old leader is now the standby
        assert _queued(redis_client) == 3
    finally:
        active._drop_lock()
        standby._drop_lock()
        redis_client.delete("default")
