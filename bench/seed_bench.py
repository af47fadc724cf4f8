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
from typing import Annotated

import typer
from rich.table import Table

from bench import harness
from bench.harness import ADMIN_URL, ROOT, AdminUrl, Keep, Scales, WriteDoc, console, err
from bench.report import DOC
from workers.dev.seeds.bench import seed_bench

START_MARKER = "<!-- bench:seed:start -->"
END_MARKER = "<!-- bench:seed:end -->"
DOC_HEADER = (
    "| scale | properties | reservations | tickets | all rows | seconds | rows/s | date "
    "| machine |\n"
    "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- | --- |"
)


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
    scale: Scales = [1],  # noqa: B006
    write_doc: WriteDoc = False,
    keep: Keep = False,
    admin_url: AdminUrl = ADMIN_URL,
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
    with harness.given_or_bench_database(database_url, admin_url, name, keep=keep) as url:
        load = os.getloadavg()[0]  # when the load starts, not when it ends
        started, cpu_started = time.perf_counter(), time.process_time()
        counts = seed_bench(url, scale=scale, console=err)
        seconds = time.perf_counter() - started
        run = SeedRun(scale, counts, seconds, harness.machine(url, load))
        # Python's own CPU time: the part of the wall time that other load cannot inflate.
        err.print(f"client CPU: {time.process_time() - cpu_started:.1f} s")
        print_run(run)
        return run


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
