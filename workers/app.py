"""The Celery app: `celery -A workers.app worker` and `celery -A workers.app beat`.

Configuration comes from Settings (db.settings); the periodic jobs from beat_schedule.py;
the tasks from the modules in TASK_MODULES. Worker wiring (engine disposal after fork, JSON
logs) is in workers.signals.
"""

from __future__ import annotations

from celery import Celery
from kombu import Queue as KombuQueue

import beat_schedule
from db.settings import Settings, get_settings
from workers.queues import ALL_QUEUES, TASK_ROUTES, Queue


def _task_modules() -> list[str]:
    """Every module (and package) under tasks/: one per job, so adding a job adds a file only."""
    import pkgutil

    import tasks

    return sorted(f"tasks.{m.name}" for m in pkgutil.iter_modules(tasks.__path__))


TASK_MODULES = _task_modules()


def build_config(settings: Settings) -> dict:
    return {
        "broker_url": settings.broker_url,
        "result_backend": settings.result_backend,
        "result_expires": settings.result_expires,
        # JSON only: a pickle message is refused before it is ever deserialized.
        "task_serializer": "json",
        "result_serializer": "json",
        "accept_content": ["json"],
        "result_accept_content": ["json"],
        # Acknowledge after the task finishes, and requeue when its worker process dies, so a
        # killed worker loses nothing; every task is idempotent, so a rerun is safe.
        "task_acks_late": True,
        "task_reject_on_worker_lost": True,
        # With late acks, take one message at a time: a prefetched message would sit behind a
        # long task (and be redelivered late if this worker died).
        "worker_prefetch_multiplier": 1,
        # A task running when the broker connection drops keeps running and commits its work.
        # Cancelling it instead (Celery's opt-in, its default from 6.0) lost the task on Redis:
        # the cancelled request was acknowledged on the reconnected channel, so it was neither
        # finished nor redelivered (faults/test_broker_database.py found 2 of 40 lost per
        # restart). Its acknowledgement may now miss the broker; then it is redelivered after
        # the visibility timeout and its keyed effects make the rerun a no-op.
        "worker_cancel_long_running_tasks_on_connection_loss": False,
        "task_soft_time_limit": settings.task_soft_time_limit,
        "task_time_limit": settings.task_time_limit,
        # Redis redelivers an unacknowledged message after this long: above the longest hard
        # time limit plus the longest retry countdown, or a running task would be duplicated.
        "broker_transport_options": {
            "visibility_timeout": settings.broker_visibility_timeout,
            "unacked_restore_interval": settings.broker_unacked_restore_interval,
            "unacked_restore_throttle": settings.broker_unacked_restore_throttle,
        },
        "result_backend_transport_options": {
            "visibility_timeout": settings.broker_visibility_timeout
        },
        "broker_connection_retry_on_startup": True,
        "task_default_queue": Queue.DEFAULT.value,
        "task_queues": [KombuQueue(name, routing_key=name) for name in ALL_QUEUES],
        "task_routes": TASK_ROUTES,
        # Task events for Flower.
        "worker_send_task_events": settings.task_events,
        "task_send_sent_event": settings.task_events,
        "task_track_started": True,
        "timezone": "UTC",
        "enable_utc": True,
        "beat_schedule": beat_schedule.BEAT_SCHEDULE,
        # Sends only while holding the beat leader lock: a second beat is a standby.
        "beat_scheduler": "workers.beat:LeaderScheduler",
        "include": TASK_MODULES,
        "worker_hijack_root_logger": False,
    }


app = Celery("cmw")
app.config_from_object(build_config(get_settings()))

import workers.signals  # noqa: E402,F401  (connects worker signal handlers)
