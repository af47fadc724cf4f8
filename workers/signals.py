"""Worker wiring: a fresh database pool per worker process, and the log format."""

from __future__ import annotations

import logging

from celery.signals import after_setup_logger, after_setup_task_logger, worker_process_init

from db.session import dispose_engine
from db.settings import get_settings
from workers.logs import apply_format


@worker_process_init.connect
def _fresh_pool_after_fork(**_: object) -> None:
    # A pooled connection inherited from the parent would be shared by two processes.
    dispose_engine()


@after_setup_logger.connect
@after_setup_task_logger.connect
def _log_format(logger: logging.Logger, **_: object) -> None:
    apply_format(logger, get_settings().log_format)
    # The job lines go through cmw.jobs; let them reach the worker's handlers.
    logging.getLogger("cmw").setLevel(logging.INFO)
