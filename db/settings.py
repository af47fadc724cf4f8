"""Settings read once from the environment (pydantic-settings); nothing else reads os.environ.

At the bottom layer, with the engine (db.session) that reads it: db imports neither the runtime
(workers) nor the jobs (tasks), and both of those read their settings from here.

One fallback: the URLs `cmw dev` wrote to `.cmw-dev/env` (SPEC 7.3), so that `cmw runs` in a
second terminal reaches the system `make dev` runs. That file is read only when none of the
connection variables (DATABASE_URL, REDIS_URL, CELERY_BROKER_URL, CELERY_RESULT_BACKEND) is set:
it is all or nothing, so a stale file can never mix with, or override, what the environment
names (the test suite sets DATABASE_URL and REDIS_URL). It is looked for in the current
directory and its parents, the way git finds its repository: "in the project" means anywhere
under the directory `cmw dev` ran in.
"""

from __future__ import annotations

import datetime as dt
import os
from functools import lru_cache
from pathlib import Path
from typing import Any, ClassVar

from pydantic import Field, model_validator
from pydantic.fields import FieldInfo
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

DEFAULT_DATABASE_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/cmw"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"

# Where `cmw dev` writes the URLs it uses, under the folder it ran in (its data folder).
DEV_ENV_DIR = ".cmw-dev"
DEV_ENV_NAME = "env"
# The variables that say which system to reach; any one of them set disables the fallback.
CONNECTION_VARIABLES = ("DATABASE_URL", "REDIS_URL", "CELERY_BROKER_URL", "CELERY_RESULT_BACKEND")
# What the file may set: the connections, and the hosts the demo's channel feeds need.
DEV_ENV_VARIABLES = (*CONNECTION_VARIABLES, "CMW_CHANNEL_ALLOWED_HOSTS")


def find_dev_env(start: Path | None = None) -> Path | None:
    """`.cmw-dev/env` in `start` (the current directory) or the nearest parent that has one."""
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        candidate = folder / DEV_ENV_DIR / DEV_ENV_NAME
        if candidate.is_file():
            return candidate
    return None


def read_env_file(path: Path) -> dict[str, str]:
    """`NAME=value` lines (blank lines and `#` comments skipped); only DEV_ENV_VARIABLES."""
    values: dict[str, str] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        name, sep, value = line.strip().partition("=")
        if sep and not name.startswith("#") and name.strip().upper() in DEV_ENV_VARIABLES:
            values[name.strip().upper()] = value.strip()
    return values


def write_env_file(path: Path, values: dict[str, str]) -> None:
    """Write `values` as `NAME=value` lines, readable by the owner only (URLs may carry
    passwords), replacing the file in one rename so a reader never sees half of it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write("# Written by `cmw dev`: the system it runs. Read by `cmw` commands run under\n")
        fh.write("# this folder when none of DATABASE_URL / REDIS_URL / CELERY_* is set.\n")
        for name, value in values.items():
            fh.write(f"{name}={value}\n")
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)


def connection_variables_set() -> list[str]:
    """The connection variables the environment sets (names as the settings read them)."""
    present = {name.upper() for name in os.environ}
    return [name for name in CONNECTION_VARIABLES if name in present]


def dev_env_in_use() -> Path | None:
    """The `.cmw-dev/env` the settings fall back to, or None (explicit variables, or no file)."""
    if connection_variables_set():
        return None
    return find_dev_env()


class DevEnvSource(PydanticBaseSettingsSource):
    """The `.cmw-dev/env` fallback, below the environment in priority (see the module)."""

    def __init__(self, settings_cls: type[BaseSettings]) -> None:
        super().__init__(settings_cls)
        path = dev_env_in_use()
        self.values = read_env_file(path) if path else {}

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        return self.values.get(field_name.upper()), field_name, False

    def __call__(self) -> dict[str, Any]:
        return {
            name: self.values[name.upper()]
            for name in self.settings_cls.model_fields
            if name.upper() in self.values
        }


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=None, extra="ignore", case_sensitive=False)
    # Whether `.cmw-dev/env` (written by `cmw dev`) fills in what the environment leaves out.
    reads_dev_env: ClassVar[bool] = True

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        if not cls.reads_dev_env:
            return (init_settings, env_settings)
        return (init_settings, env_settings, DevEnvSource(settings_cls))

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
    # `cmw` prints tracebacks (else one line per error); same as `cmw --debug`.
    cmw_debug: bool = False

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


class EnvironmentSettings(Settings):
    """The environment alone, without the `.cmw-dev/env` fallback: what `cmw dev` decides
    from (a URL it wrote on an earlier run must not be taken for one the user set)."""

    reads_dev_env: ClassVar[bool] = False


def origin_of(variable: str) -> str:
    """Where the value of a connection variable comes from, for error messages."""
    if variable.upper() in {name.upper() for name in os.environ}:
        return "the environment"
    path = dev_env_in_use()
    if path is not None and variable.upper() in read_env_file(path):
        return f"{path} (written by `cmw dev`)"
    return "the default"


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
