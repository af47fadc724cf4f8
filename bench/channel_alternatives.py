"""Ways to keep many feed fetches in flight in one process, measured alone (no database).

    python -m bench.channel_alternatives --mode loop|threads --port P --names FILE
        [--hosts 127.0.0.1,...] [--concurrency 50] [--per-host 8]

Fetches every feed named in FILE (one name per line; `/feeds/<name>` on the hosts in turn)
from bench/feed_server.py and prints one JSON line: wall time, CPU time of this process, peak
memory and how many fetches succeeded. The modes:

- `loop`: what channel sync uses -- tasks.channel.fetch.FeedFetcher, an asyncio event loop in a
  thread with httpx's AsyncClient behind the SSRF guard, each fetch taking its host's slot
  and then a process slot;
- `threads`: a thread pool of `concurrency` threads, each fetch with httpx's sync Client (no
  guard: this measures the concurrency model alone), a semaphore per host. A thread waiting for
  its host's semaphore holds a pool thread, as any blocking design does.

With `--slow-host H` (and the feed server's `--slow H=SECONDS`) it also reports when the other
hosts' feeds were all fetched: whether one slow channel holds up the rest.

The benchmark (bench/bench_channel.py) runs each in a process of its own and records the
figures in docs/PERFORMANCE.md.
"""

from __future__ import annotations

import argparse
import json
import re
import threading
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


Done = dict[str, float]  # url -> seconds from the start until its fetch completed


def run_loop(urls: list[str], hosts: set[str], concurrency: int, per_host: int) -> Done:
    from tasks.channel.fetch import FeedFetcher, FeedRequest

    fetcher = FeedFetcher(hosts, concurrency=concurrency, per_host=per_host)
    done: Done = {}
    started = time.monotonic()
    try:
        futures = {fetcher.start(url, FeedRequest(url)): url for url in urls}
        for future in as_completed(futures):
            fetched = future.result()
            if fetched.error is None:
                done[futures[future]] = time.monotonic() - started
            fetched.done()
    finally:
        fetcher.close()
    return done


def run_threads(urls: list[str], concurrency: int, per_host: int) -> Done:
    import httpx

    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    client = httpx.Client(limits=limits, timeout=30, trust_env=False)
    semaphores: dict[str, threading.Semaphore] = {}
    lock = threading.Lock()

    def fetch(url: str) -> bool:
        host = httpx.URL(url).host
        with lock:
            semaphore = semaphores.setdefault(host, threading.Semaphore(per_host))
        with semaphore:
            response = client.get(url)
            response.read()
            return response.status_code == 200

    done: Done = {}
    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        futures = {pool.submit(fetch, url): url for url in urls}
        for future in as_completed(futures):
            if future.result():
                done[futures[future]] = time.monotonic() - started
    client.close()
    return done


def peak_kb() -> int:
    status = Path("/proc/self/status").read_text()
    return int(re.search(r"VmHWM:\s+(\d+) kB", status).group(1))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--mode", choices=("loop", "threads"), required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--names", type=Path, required=True)
    parser.add_argument("--hosts", default="127.0.0.1,127.0.0.2,127.0.0.3,127.0.0.4")
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--per-host", type=int, default=8)
    parser.add_argument("--slow-host", default=None, help="report when the others were done")
    args = parser.parse_args()
    hosts = args.hosts.split(",")
    names = args.names.read_text().split()
    urls = [
        f"http://{hosts[n % len(hosts)]}:{args.port}/feeds/{name}" for n, name in enumerate(names)
    ]
    started, cpu = time.monotonic(), time.process_time()
    if args.mode == "loop":
        done = run_loop(urls, set(hosts), args.concurrency, args.per_host)
    else:
        done = run_threads(urls, args.concurrency, args.per_host)
    others = [t for url, t in done.items() if not args.slow_host or args.slow_host not in url]
    print(
        json.dumps(
            {
                "mode": args.mode,
                "feeds": len(urls),
                "ok": len(done),
                "wall_s": time.monotonic() - started,
                # When the feeds of every host but the slow one were all fetched.
                "others_done_s": max(others) if others else None,
                "cpu_s": time.process_time() - cpu,
                # VmHWM: this process's own peak (ru_maxrss keeps the parent's across exec).
                "peak_rss_mb": peak_kb() / 1024,
            }
        )
    )


if __name__ == "__main__":
    main()
