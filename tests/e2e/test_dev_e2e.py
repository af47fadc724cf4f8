"""`cmw dev` as a new user runs it (SPEC 2.1, 7.3), in a network namespace of its own where no
PostgreSQL or Redis answers, so it starts the embedded ones: a second shell in the same folder
reaches the system with no variable set (`cmw runs`, `cmw schedule | cat`, `cmw dead-letters
list`), and a Ctrl-C typed in its terminal stops everything without a traceback.

Needs root and util-linux's `unshare` / `nsenter` (the CI machine has both); skipped elsewhere.
"""

from __future__ import annotations

import fcntl
import os
import select
import shutil
import subprocess
import sys
import termios
import time
from pathlib import Path

import pytest

from tests.support.cli import ANSI_ESCAPE, tsv
from workers.settings import CONNECTION_VARIABLES

pytestmark = pytest.mark.e2e


def _can_make_a_network_namespace() -> bool:
    if os.geteuid() != 0 or not all(shutil.which(t) for t in ("unshare", "nsenter", "ip")):
        return False
    probe = subprocess.run(["unshare", "-n", "true"], capture_output=True)
    return probe.returncode == 0


needs_netns = pytest.mark.skipif(
    not _can_make_a_network_namespace(), reason="needs root, unshare, nsenter and ip"
)


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in (*CONNECTION_VARIABLES, "CMW_DEBUG")}
    env.pop("CMW_CHANNEL_ALLOWED_HOSTS", None)
    env["COLUMNS"] = "200"
    return env


class Terminal:
    """A process whose controlling terminal is a pseudo-terminal we type into."""

    def __init__(self, args: list[str], cwd: Path, env: dict[str, str]) -> None:
        self.master, slave = os.openpty()

        def own_the_terminal() -> None:
            os.setsid()
            fcntl.ioctl(0, termios.TIOCSCTTY, 0)

        self.proc = subprocess.Popen(
            args, cwd=cwd, env=env, stdin=slave, stdout=slave, stderr=slave,
            preexec_fn=own_the_terminal,
        )  # fmt: skip
        os.close(slave)
        self.output = b""

    def read_until(self, predicate, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate(self.text()):
                return True
            ready, _, _ = select.select([self.master], [], [], 0.5)
            if ready:
                try:
                    data = os.read(self.master, 65536)
                except OSError:  # the process closed the terminal
                    return predicate(self.text())
                if not data:
                    return predicate(self.text())
                self.output += data
            elif self.proc.poll() is not None:
                return predicate(self.text())
        return False

    def type(self, keys: bytes) -> None:
        os.write(self.master, keys)

    def text(self) -> str:
        return ANSI_ESCAPE.sub("", self.output.decode("utf-8", errors="replace"))

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)
        os.close(self.master)


@needs_netns
def test_make_dev_then_a_second_shell_reaches_it_and_ctrl_c_is_clean(tmp_path: Path):
    env = _env()
    dev = Terminal(
        [
            "unshare", "-n", "sh", "-c",
            f"ip link set lo up && exec {sys.executable} -m workers.cli dev",
        ],
        cwd=tmp_path,
        env=env,
    )  # fmt: skip
    try:
        assert dev.read_until(lambda out: "started." in out, timeout=240), dev.text()
        env_file = tmp_path / ".cmw-dev" / "env"
        assert oct(env_file.stat().st_mode & 0o777) == "0o600"
        assert "DATABASE_URL=postgresql+psycopg://postgres@/cmw?host=" in env_file.read_text()

        def second_shell(*args: str) -> subprocess.CompletedProcess:
            return subprocess.run(
                ["nsenter", f"--net=/proc/{dev.proc.pid}/ns/net",
                 sys.executable, "-m", "workers.cli", *args],
                cwd=tmp_path, env=env, capture_output=True, text=True, timeout=90,
            )  # fmt: skip

        runs = second_shell("runs")
        assert runs.returncode == 0, runs.stderr
        assert runs.stdout.startswith("started_at\ttask_name\tstatus")
        schedule = second_shell("schedule")
        assert schedule.returncode == 0, schedule.stderr
        assert "channel.export_calendars" in [r["task"] for r in tsv(schedule.stdout)]
        letters = second_shell("dead-letters", "list")
        assert letters.returncode == 0, letters.stderr
        assert letters.stdout.startswith("failed_at\tid\ttask_name\tstatus")
        statements = second_shell("statements", "render", "OS-010001", "--format", "csv")
        assert statements.returncode == 0, statements.stderr  # the demo has its statements

        dev.type(b"\x03")  # Ctrl-C
        assert dev.read_until(lambda out: "stopped embedded PostgreSQL" in out, timeout=90)
        assert dev.proc.wait(timeout=30) == 0
        shown = dev.text()
        assert "Exception ignored" not in shown and "Traceback" not in shown, shown
    finally:
        dev.close()
