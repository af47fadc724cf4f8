"""`cmw run` in separate OS processes: how tests run a job twice at the same moment.

Each process has its own engine and session, like two workers; they inherit the suite's
DATABASE_URL and REDIS_URL from the environment.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Mapping

from tests.support.services import ROOT


def start_cmw_run(
    task: str, payload: dict, env: Mapping[str, str] | None = None
) -> subprocess.Popen:
    """Start `cmw run TASK --payload JSON` without waiting for it."""
    return subprocess.Popen(
        [sys.executable, "-m", "workers.cli", "run", task, "--payload", json.dumps(payload)],
        cwd=ROOT,
        env=None if env is None else dict(env),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def results_of(procs: list[subprocess.Popen], timeout: float = 180) -> list[dict]:
    """Wait for every process; each must succeed; their JSON results (the last stdout line)."""
    results = []
    for proc in procs:
        out, err = proc.communicate(timeout=timeout)
        assert proc.returncode == 0, err
        results.append(json.loads(out.strip().splitlines()[-1]))
    return results


def cmw_run_at_once(
    task: str,
    payload: dict,
    *,
    copies: int = 2,
    timeout: float = 180,
    env: Mapping[str, str] | None = None,
) -> list[dict]:
    """Run `copies` processes of the same task and payload at once; their results."""
    return results_of([start_cmw_run(task, payload, env) for _ in range(copies)], timeout)
