"""The `.cmw-dev/env` fallback of workers.settings (SPEC 7.3): used when no connection variable
is set, found from the current folder upward, all or nothing, never over an explicit variable,
and written readable by its owner only."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from workers.settings import (
    CONNECTION_VARIABLES,
    EnvironmentSettings,
    Settings,
    dev_env_in_use,
    origin_of,
    read_env_file,
    write_env_file,
)

DEV_URLS = {
    "DATABASE_URL": "postgresql+psycopg://postgres@/cmw?host=/tmp/project/.cmw-dev/pg",
    "REDIS_URL": "redis://127.0.0.1:6389/0",
    "CMW_CHANNEL_ALLOWED_HOSTS": "127.0.0.1",
}


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A project folder where `cmw dev` ran, the current directory a subfolder of it, and no
    connection variable set."""
    for name in CONNECTION_VARIABLES:
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)
    monkeypatch.delenv("CMW_CHANNEL_ALLOWED_HOSTS", raising=False)
    write_env_file(tmp_path / ".cmw-dev" / "env", {**DEV_URLS, "LOG_FORMAT": "json"})
    (tmp_path / "docs" / "deep").mkdir(parents=True)
    monkeypatch.chdir(tmp_path / "docs" / "deep")
    return tmp_path


def test_with_no_variable_set_the_file_cmw_dev_wrote_is_used(project: Path):
    settings = Settings()
    assert settings.database_url == DEV_URLS["DATABASE_URL"]
    assert settings.redis_url == DEV_URLS["REDIS_URL"]
    assert settings.cmw_channel_allowed_hosts == "127.0.0.1"
    # Only the connection variables (and the demo feeds' hosts) are taken from it.
    assert settings.log_format == "text"
    assert dev_env_in_use() == project / ".cmw-dev" / "env"
    assert origin_of("DATABASE_URL").startswith(str(project / ".cmw-dev" / "env"))


@pytest.mark.parametrize("variable", CONNECTION_VARIABLES)
def test_any_connection_variable_set_means_the_file_is_ignored_whole(
    project: Path, monkeypatch: pytest.MonkeyPatch, variable: str
):
    monkeypatch.setenv(variable, "redis://elsewhere.example:6379/3")
    settings = Settings()
    assert settings.database_url != DEV_URLS["DATABASE_URL"]
    assert settings.redis_url != DEV_URLS["REDIS_URL"]
    assert dev_env_in_use() is None


def test_cmw_dev_itself_plans_from_the_environment_alone(project: Path):
    settings = EnvironmentSettings()
    assert settings.database_url != DEV_URLS["DATABASE_URL"]
    assert "database_url" not in settings.model_fields_set


def test_outside_the_project_nothing_is_found(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    for name in CONNECTION_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    assert dev_env_in_use() is None
    assert origin_of("DATABASE_URL") == "the default"


def test_the_file_is_readable_by_its_owner_only_and_round_trips(tmp_path: Path):
    path = tmp_path / ".cmw-dev" / "env"
    write_env_file(path, {"DATABASE_URL": "postgresql+psycopg://u:secret@db:5432/cmw"})
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert read_env_file(path) == {"DATABASE_URL": "postgresql+psycopg://u:secret@db:5432/cmw"}
    write_env_file(path, {"REDIS_URL": "redis://x:1/0"})  # replaced whole, still private
    assert read_env_file(path) == {"REDIS_URL": "redis://x:1/0"}
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
