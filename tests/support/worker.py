"""A real Celery worker in a subprocess, for end-to-end tests.

A subprocess rather than a thread so a test can SIGKILL it like an operator's OOM killer would.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

from workers.queues import ALL_QUEUES

ROOT = Path(__file__).resolve().parents[2]


class WorkerProcess:
    def __init__(
        self,
        env: dict[str, str],
        *,
        queues: tuple[str, ...] = ALL_QUEUES,
        concurrency: int = 2,
        log_dir: Path,
        include: tuple[str, ...] = ("tests.e2e.sample_tasks",),
        extra_env: dict[str, str] | None = None,
        events: bool = True,
    ) -> None:
        self.name = f"test-{uuid.uuid4().hex[:8]}@%h"
        self.log_path = log_dir / f"worker-{uuid.uuid4().hex[:8]}.log"
        self.env = {**env, **(extra_env or {})}
        self.args = [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "workers.app",
            "worker",
            "-Q",
            ",".join(queues),
            "-c",
            str(concurrency),
            "-P",
            "prefork",
            "-n",
            self.name,
            "--without-gossip",
            "--without-mingle",
            "-l",
            "INFO",
        ]
        if events:
            self.args.append("-E")
        else:
            self.env["TASK_EVENTS"] = "false"
        for module in include:
            self.args += ["-I", module]
        self.proc: subprocess.Popen | None = None

    def start(self, timeout: float = 60) -> WorkerProcess:
        self._log = open(self.log_path, "w")
        self.proc = subprocess.Popen(
            self.args,
            cwd=ROOT,
            env=self.env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group, so a test can kill it whole
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"worker exited early:\n{self.log()}")
            if " ready." in self.log():
                return self
            time.sleep(0.2)
        raise TimeoutError(f"worker not ready in {timeout}s:\n{self.log()}")

    def log(self) -> str:
        return self.log_path.read_text() if self.log_path.exists() else ""

    def children(self) -> list[int]:
        assert self.proc is not None
        out = subprocess.run(
            ["pgrep", "-P", str(self.proc.pid)], capture_output=True, text=True, check=False
        ).stdout
        return [int(p) for p in out.split()]

    def kill(self) -> None:
        """SIGKILL the whole worker (main process and pool children) at once."""
        assert self.proc is not None
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=10)

    def stop(self, timeout: float = 20) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)  # warm shutdown
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)
        self._log.close()
