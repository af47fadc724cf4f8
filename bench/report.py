"""Write a benchmark's section of docs/PERFORMANCE.md between its markers.

Each benchmark owns one section, `<!-- bench:NAME:start -->` ... `<!-- bench:NAME:end -->`;
a section not yet in the file is appended. An exclusive lock on the file lets several
benchmarks write at once without losing each other's sections.
"""

from __future__ import annotations

import fcntl
import os
import platform
from pathlib import Path

DOC = Path(__file__).resolve().parent.parent / "docs" / "PERFORMANCE.md"

HEADER = """# Performance

Figures measured by the benchmarks in `bench/` (`make bench SCALE=N`), on a freshly seeded
database, never by timed unit tests. Machine: 2 cores, 24 GiB, PostgreSQL and Redis on the same
host. Each job is compared with its *floor*: the bare SQL statements it issues, run directly.
"""


def machine() -> str:
    return f"{os.cpu_count()} cores, {platform.python_implementation()} {platform.python_version()}"


def write_section(name: str, markdown: str, doc: Path = DOC) -> None:
    start, end = f"<!-- bench:{name}:start -->", f"<!-- bench:{name}:end -->"
    block = f"{start}\n{markdown.strip()}\n{end}"
    doc.parent.mkdir(parents=True, exist_ok=True)
    with open(doc, "a+", encoding="utf-8") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        fh.seek(0)
        text = fh.read() or HEADER
        if start in text and end in text:
            before, rest = text.split(start, 1)
            after = rest.split(end, 1)[1]
            text = before + block + after
        else:
            text = text.rstrip() + "\n\n" + block + "\n"
        fh.seek(0)
        fh.truncate()
        fh.write(text)
        fcntl.flock(fh, fcntl.LOCK_UN)
