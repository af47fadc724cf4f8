"""Benchmarks: run by `make bench`, figures written to docs/PERFORMANCE.md (never timed tests)."""
