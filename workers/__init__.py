"""Celery runtime of Central Memory Workers: app, settings, queues, the task base, CLI."""
