"""Time the benchmark data load (`workers.dev.seeds.bench.seed_bench`) on a fresh database.

    python -m bench.seed_bench --scale 1 --scale 10 [--write-doc] [--keep]

For each scale: create a database on the local PostgreSQL (`CMW_BENCH_ADMIN_URL`, default
postgresql://postgres@127.0.0.1:5432/postgres), migrate it to head, time `seed_bench` (the
load, the foreign-key checks and ANALYZE; not the migration), print the rows per table, and
drop the database unless `--keep`. `--write-doc` records the figures in the "Seed" section of
docs/PERFORMANCE.md, replacing the row of each scale it ran and keeping the others.
`--database-url` times the load into an existing migrated, empty database instead (it is
neither created nor dropped).
"""

from __future__ import annotations

import datetime as dt
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import psycopg
import typer
from rich.console import Console
from rich.table import Table

from db.urls import libpq_kwargs
from workers.dev.databases import create_database, drop_database
from workers.dev.seeds.bench import seed_bench

ROOT = Path(__file__).resolve().parents[1]

DOC = ROOT / "docs" / "PERFORMANCE.md"
START_MARKER = "<!-- bench:seed:start -->"
END_MARKER = "<!-- bench:seed:end -->"
DOC_HEADER = (
    "| scale | properties | reservations | tickets | all rows | seconds | rows/s | date "
    "| machine |\n"
    "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- | --- |"
)

console = Console()
err = Console(stderr=True)


@dataclass(frozen=True)
class SeedRun:
    scale: int
    counts: dict[str, int]
    seconds: float
    machine: str

    @property
    def rows(self) -> int:
        return sum(self.counts.values())

    def doc_row(self) -> str:
        c = self.counts
        return (
            f"| {self.scale} | {c['property.properties']:,} | {c['reservations.reservations']:,}"
            f" | {c['service.tickets']:,} | {self.rows:,} | {self.seconds:.1f}"
            f" | {self.rows / self.seconds:,.0f} | {dt.date.today().isoformat()} | {self.machine} |"
        )


def main(
    scale: Annotated[list[int], typer.Option(help="Scale(s) to load; repeat for several.")] = [1],  # noqa: B006
    write_doc: Annotated[
        bool, typer.Option(help="Record the figures in docs/PERFORMANCE.md.")
    ] = False,
    keep: Annotated[bool, typer.Option(help="Keep the database(s) afterwards.")] = False,
    admin_url: Annotated[
        str, typer.Option(envvar="CMW_BENCH_ADMIN_URL", help="libpq URL to create databases from.")
    ] = "postgresql://postgres@127.0.0.1:5432/postgres",
    database_url: Annotated[
        str | None, typer.Option(help="Load into this existing, migrated, empty database.")
    ] = None,
) -> None:
    if database_url and len(scale) > 1:
        raise typer.BadParameter("--database-url takes one --scale")
    runs = [run_scale(n, admin_url, database_url, keep) for n in scale]
    if write_doc:
        write_doc_section(runs)
        console.print(f"Recorded in {DOC.relative_to(ROOT)}")


def run_scale(scale: int, admin_url: str, database_url: str | None, keep: bool) -> SeedRun:
    name = f"cmw_bench_seed_{scale}"
    url = database_url or create_database(admin_url, name, migrate=True)
    try:
        load = os.getloadavg()[0]
        started, cpu_started = time.perf_counter(), time.process_time()
        counts = seed_bench(url, scale=scale, console=err)
        seconds = time.perf_counter() - started
        run = SeedRun(scale, counts, seconds, machine(url, load))
        # Python's own CPU time: the part of the wall time that other load cannot inflate.
        err.print(f"client CPU: {time.process_time() - cpu_started:.1f} s")
        print_run(run)
        return run
    finally:
        if database_url is None and not keep:
            drop_database(admin_url, name)
        elif database_url is None:
            console.print(f"Kept database [bold]{name}[/]")


def machine(database_url: str, load: float) -> str:
    """What the figures were measured on: cores, memory, the server's version, and the load
    average when the run started (other work on the machine slows a run down)."""
    memory_gib = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    with psycopg.connect(**libpq_kwargs(database_url)) as conn:
        row = conn.execute("SHOW server_version").fetchone()
    version = row[0].split()[0] if row else "?"
    return f"{os.cpu_count()} cores, {memory_gib:.0f} GiB, PostgreSQL {version}, load {load:.1f}"


def print_run(run: SeedRun) -> None:
    table = Table(title=f"seed_bench --scale {run.scale}")
    table.add_column("table")
    table.add_column("rows", justify="right")
    for name, count in run.counts.items():
        table.add_row(name, f"{count:,}")
    table.add_row("[bold]all", f"[bold]{run.rows:,}")
    console.print(table)
    console.print(
        f"scale {run.scale}: {run.rows:,} rows in {run.seconds:.1f} s"
        f" ({run.rows / run.seconds:,.0f} rows/s) on {run.machine}"
    )


def write_doc_section(runs: list[SeedRun]) -> None:
    """Replace the rows of the scales just run between the markers; keep the other rows."""
    text = DOC.read_text()
    if START_MARKER not in text or END_MARKER not in text:
        raise SystemExit(f"{DOC} has no {START_MARKER} ... {END_MARKER} section")
    head, rest = text.split(START_MARKER, 1)
    body, tail = rest.split(END_MARKER, 1)
    rows = {scale_of(line): line for line in body.splitlines() if scale_of(line) is not None}
    rows.update({run.scale: run.doc_row() for run in runs})
    table = "\n".join([DOC_HEADER, *(rows[n] for n in sorted(rows))])
    DOC.write_text(f"{head}{START_MARKER}\n{table}\n{END_MARKER}{tail}")


def scale_of(line: str) -> int | None:
    """The scale of a figures row ("| 10 | ..."), None for any other line."""
    cells = line.split("|")
    if len(cells) > 2 and cells[1].strip().isdigit():
        return int(cells[1].strip())
    return None


if __name__ == "__main__":
    typer.run(main)
