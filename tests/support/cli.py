"""`cmw` in separate OS processes: how tests run a job twice at the same moment, and how they
use the command line as an operator does (piped, on a terminal of a given width, as JSON).

Each process has its own engine and session, like two workers; they inherit the suite's
DATABASE_URL and REDIS_URL from the environment unless given another.
"""

from __future__ import annotations

import json
import os
import pty
import re
import select
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path

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


def cmw(
    *args: str,
    env: Mapping[str, str] | None = None,
    cwd: Path | str = ROOT,
    timeout: float = 90,
) -> subprocess.CompletedProcess:
    """Run `cmw ARGS...` as a subprocess with its output piped (not a terminal); wait for it."""
    return subprocess.run(
        [sys.executable, "-m", "workers.cli", *args],
        cwd=cwd,
        env=None if env is None else dict(env),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def cmw_in_terminal(
    *args: str, columns: int, env: Mapping[str, str] | None = None, timeout: float = 90
) -> tuple[int, str]:
    """Run `cmw ARGS...` with its standard output on a pseudo-terminal COLUMNS wide (what a
    person sees); its exit status and output with the terminal's escape codes removed."""
    master, slave = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "workers.cli", *args],
        cwd=ROOT,
        env={**(os.environ if env is None else env), "COLUMNS": str(columns), "TERM": "xterm"},
        stdout=slave,
        stderr=subprocess.PIPE,
    )
    os.close(slave)
    chunks = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready, _, _ = select.select([master], [], [], 0.5)
        if ready:
            try:
                data = os.read(master, 65536)
            except OSError:  # the other end closed
                break
            if not data:
                break
            chunks.append(data)
        elif proc.poll() is not None:
            break
    os.close(master)
    proc.wait(timeout=10)
    text = b"".join(chunks).decode("utf-8", errors="replace").replace("\r\n", "\n")
    return proc.returncode, ANSI_ESCAPE.sub("", text)


ANSI_ESCAPE = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b\][^\x07\x1b]*(\x07|\x1b\\)")


def tsv(stdout: str) -> list[dict[str, str]]:
    """Tab-separated output (a header line, then rows) as dictionaries."""
    header, *rows = stdout.rstrip("\n").split("\n")
    keys = header.split("\t")
    return [dict(zip(keys, row.split("\t"), strict=True)) for row in rows]


def json_lines(stdout: str) -> list[dict]:
    return [json.loads(line) for line in stdout.splitlines() if line.strip()]
