"""Settings read once from the environment (pydantic-settings); nothing else reads os.environ."""

from __future__ import annotations

import datetime as dt
from functools import lru_cache

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_DATABASE_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/cmw"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=None, extra="ignore", case_sensitive=False)

    database_url: str = DEFAULT_DATABASE_URL
    redis_url: str = DEFAULT_REDIS_URL
    # Overrides REDIS_URL for the broker only, e.g. amqp://guest:guest@127.0.0.1:5672//.
    celery_broker_url: str | None = None
    # Overrides REDIS_URL for results only.
    celery_result_backend: str | None = None
    # Comma-separated host names or addresses the channel fetcher may reach even when private.
    cmw_channel_allowed_hosts: str = ""
    # Channel feeds in flight at once in one worker process, and at most this many to one host
    # (SPEC 7.1): fetching is I/O-bound, so one process keeps many fetches waiting at once.
    cmw_channel_fetch_concurrency: int = Field(default=50, ge=1, le=1000)
    cmw_channel_per_host_concurrency: int = Field(default=8, ge=1, le=1000)
    # Mappings one channel.sync_mapping batch claims: enough that a batch keeps every host's
    # slots busy for seconds (the pipeline drains only at a batch's end), few enough that a
    # batch ends well inside the task time limit at normal latencies.
    cmw_channel_batch_size: int = Field(default=500, ge=1, le=5000)
    # Where channel ops notices go (comms.messages channel 'slack'): feeds failing for a day,
    # cancellations held for a feed that suddenly emptied.
    cmw_channel_ops_recipient: str = "#ops-channel-sync"
    # Where notifications go when a ticket's team has no notify_email (team.teams: "null: the
    # ops default"): SLA breaches and warnings, cancelled work already started.
    cmw_ops_email: str = "ops@localhost"
    # Guest journeys and door codes (SPEC 7.6). A property's local check-in / check-out time
    # when it has none of its own (property.properties.check_in_time / check_out_time).
    cmw_check_in_time: dt.time = dt.time(16, 0)
    cmw_check_out_time: dt.time = dt.time(11, 0)
    # A stay's door code opens this long before its check-in time and closes this long after
    # its check-out time (early bag drop, a late leaver), and has this many digits.
    cmw_door_code_before_minutes: int = Field(default=60, ge=0, le=24 * 60)
    cmw_door_code_after_minutes: int = Field(default=60, ge=0, le=24 * 60)
    cmw_door_code_digits: int = Field(default=6, ge=4, le=10)
    # Where the lock service takes its commands (comms.messages channel 'webhook').
    cmw_lock_webhook_url: str = "http://lock-service/commands"
    # "user:password" for Flower; required whenever Flower listens beyond localhost.
    flower_basic_auth: str | None = None
    # Task events (what Flower shows); off saves a message per task state on the broker.
    task_events: bool = True
    log_format: str = Field(default="text", pattern="^(text|json)$")
    # Task time limits (seconds); the broker's visibility timeout is derived from the hard one.
    task_soft_time_limit: int = 300
    task_time_limit: int = 360
    # Redis redelivers an unacknowledged task after this many seconds; must exceed
    # task_time_limit plus the longest retry countdown (see workers.base.RETRY_BACKOFF_MAX).
    broker_visibility_timeout: int = 1200
    # How often a Redis consumer looks for messages whose worker died (kombu scans every
    # interval x throttle seconds): a killed worker's task is redelivered after the visibility
    # timeout plus up to this long.
    broker_unacked_restore_interval: int = 10
    broker_unacked_restore_throttle: int = 6
    # How long results stay in the result backend (seconds).
    result_expires: int = 24 * 3600
    # analytics.refresh leaves a view refreshed less than this many minutes ago alone (unless
    # `force`): beat fires hourly, and a by-hand refresh just before it need not be repeated.
    analytics_min_interval_minutes: int = 30
    # ops.purge default retention.
    job_runs_keep_days: int = 30
    # Database pool per process: workers run one task at a time per process.
    db_pool_size: int = 5
    db_max_overflow: int = 5

    @model_validator(mode="after")
    def _visibility_covers_time_limit(self) -> Settings:
        if self.broker_visibility_timeout <= self.task_time_limit:
            raise ValueError("BROKER_VISIBILITY_TIMEOUT must exceed TASK_TIME_LIMIT")
        if self.task_soft_time_limit >= self.task_time_limit:
            raise ValueError("TASK_SOFT_TIME_LIMIT must be below TASK_TIME_LIMIT")
        return self

    @property
    def broker_url(self) -> str:
        return self.celery_broker_url or self.redis_url

    @property
    def result_backend(self) -> str:
        return self.celery_result_backend or self.redis_url

    @property
    def channel_allowed_hosts(self) -> frozenset[str]:
        return frozenset(
            h.strip().lower() for h in self.cmw_channel_allowed_hosts.split(",") if h.strip()
        )


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
