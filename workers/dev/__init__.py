"""Dev tooling: what `cmw dev`, the seeds, the benchmarks and the tests use, and a worker never
imports (an import-linter contract says so; only the CLI does).

- `system`: `cmw dev`, the whole system on one machine (embedded PostgreSQL and Redis when none
  is configured or answering, a worker per queue family, beat, Flower, demo channel feeds);
- `databases`: creating, migrating and dropping databases;
- `demo_feeds`: the demo's channel feeds, served on 127.0.0.1;
- `seeds`: the demo data set and the bulk benchmark data set.
"""
