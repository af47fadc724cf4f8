"""Write a benchmark's section of docs/PERFORMANCE.md between its markers.

Each benchmark owns one section, `<!-- bench:NAME:start -->` ... `<!-- bench:NAME:end -->`;
a section not yet in the file is appended. An exclusive lock on the file lets several
benchmarks write at once without losing each other's sections.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

DOC = Path(__file__).resolve().parent.parent / "docs" / "PERFORMANCE.md"

HEADER = """# Performance

Figures measured by the benchmarks in `bench/` (`make bench SCALE=N`), on a freshly seeded
database, never by timed unit tests. Machine: 2 cores, 24 GiB, PostgreSQL and Redis on the same
host. Each job is compared with its *floor*: the bare SQL statements it issues, run directly.
"""


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


# -- the summary table: one row per job and scale, kept in bench/results.json ------------------

RESULTS = Path(__file__).resolve().parent / "results.json"

SUMMARY_INTRO = """## Summary: every job against its floor

One row per job and scale, written by each benchmark as it finishes (`make bench SCALE=N`;
the figures are also kept in `bench/results.json`). *Rows* are the rows the measured run
created or changed; *floor* is the bare SQL the job issues, run directly (for channel sync,
the parts of an import measured alone, summed over the feeds and divided by the two cores the
worker's processes share); *ratio* = wall / floor (target: at most 1.5); *per 1k rows* shows
how the cost grows with the data. Each job's own section below has the detail and the plans."""


def record_summary(
    job: str,
    scale: int,
    *,
    rows: int,
    wall_s: float,
    floor_s: float | None,
    target: str = "",
) -> None:
    """Store one job's figures at one scale and rewrite the summary section."""
    import datetime as dt
    import json

    with open(RESULTS, "a+", encoding="utf-8") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        fh.seek(0)
        results = json.loads(fh.read() or "{}")
        results[f"{job}@{scale}"] = {
            "job": job,
            "scale": scale,
            "rows": rows,
            "wall_s": round(wall_s, 4),
            "floor_s": None if floor_s is None else round(floor_s, 4),
            "target": target,
            "load": round(os.getloadavg()[0], 1),
            "date": dt.date.today().isoformat(),
        }
        fh.seek(0)
        fh.truncate()
        fh.write(json.dumps(results, indent=1, sort_keys=True) + "\n")
        fcntl.flock(fh, fcntl.LOCK_UN)
    write_section("summary", summary_markdown(results))


def summary_markdown(results: dict) -> str:
    lines = [
        SUMMARY_INTRO,
        "",
        "| job | scale | rows | wall | floor | ratio | per 1k rows | target | load | date |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | --- | ---: | --- |",
    ]
    for r in sorted(results.values(), key=lambda r: (r["job"], r["scale"])):
        floor = r["floor_s"]
        ratio = f"{r['wall_s'] / floor:.2f}" if floor else "-"
        per_k = f"{r['wall_s'] * 1000 / r['rows']:.2f} ms" if r["rows"] else "-"
        lines.append(
            f"| {r['job']} | {r['scale']} | {r['rows']:,} | {_secs(r['wall_s'])}"
            f" | {_secs(floor) if floor else '-'} | {ratio} | {per_k} | {r['target'] or '-'}"
            f" | {r['load']} | {r['date']} |"
        )
    return "\n".join(lines)


def _secs(seconds: float) -> str:
    return f"{seconds * 1000:.1f} ms" if seconds < 1 else f"{seconds:.2f} s"
