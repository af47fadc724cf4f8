"""A feed server for the channel benchmark: many slow channels on several local addresses.

    python -m bench.feed_server --dir BODIES --hosts 127.0.0.1,127.0.0.2 --port P --delay 0.3

Serves `GET /feeds/<name>.ics` with the file `BODIES/<name>.ics`, after `--delay` seconds (or
`--slow HOST=SECONDS` for one host that answers slower), with
no ETag or Last-Modified (as Airbnb re-serves a calendar: the same body every time), over
HTTP/1.1 keep-alive, on every listed address at the same port: 127.0.0.1 to 127.0.0.4 stand for
Airbnb, Vrbo, Booking.com and another channel. `GET /_stats` answers the requests served and
the most answered at once, per address; `GET /_reset` zeroes them. An asyncio server in a
process of its own, so thousands of slow responses cost it little and the benchmark's own
process (and the GIL) is not part of what is measured. Prints "ready" when listening.
"""

from __future__ import annotations

import argparse
import asyncio
import json
from pathlib import Path


class Stats:
    def __init__(self) -> None:
        self.served: dict[str, int] = {}
        self.active: dict[str, int] = {}
        self.peak: dict[str, int] = {}
        self.total_active = 0
        self.total_peak = 0

    def start(self, host: str) -> None:
        self.active[host] = self.active.get(host, 0) + 1
        self.peak[host] = max(self.peak.get(host, 0), self.active[host])
        self.total_active += 1
        self.total_peak = max(self.total_peak, self.total_active)

    def end(self, host: str) -> None:
        self.active[host] -= 1
        self.total_active -= 1
        self.served[host] = self.served.get(host, 0) + 1

    def as_json(self) -> bytes:
        return json.dumps(
            {"served": self.served, "peak": self.peak, "total_peak": self.total_peak}
        ).encode()


async def serve(
    directory: Path, hosts: list[str], port: int, delay: float, slow: dict[str, float]
) -> None:
    stats = Stats()
    cache: dict[str, bytes | None] = {}

    def body_of(path: str) -> bytes | None:
        if path not in cache:
            name = path.rsplit("/", 1)[-1]
            file = directory / name
            cache[path] = (
                file.read_bytes() if path.startswith("/feeds/") and file.is_file() else None
            )
        return cache[path]

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        host = writer.get_extra_info("sockname")[0]
        try:
            while True:
                request = await reader.readuntil(b"\r\n\r\n")
                line = request.split(b"\r\n", 1)[0].decode("latin-1")
                method, target, _ = line.split(" ", 2)
                path = target.split("?", 1)[0]
                if path == "/_stats":
                    await respond(writer, 200, stats.as_json(), "application/json")
                    continue
                if path == "/_reset":
                    stats.__init__()  # type: ignore[misc]
                    await respond(writer, 200, b"{}", "application/json")
                    continue
                stats.start(host)
                try:
                    await asyncio.sleep(slow.get(host, delay))
                    body = body_of(path)
                    if body is None:
                        await respond(writer, 404, b"not found", "text/plain")
                    else:
                        await respond(writer, 200, body, "text/calendar; charset=utf-8")
                finally:
                    stats.end(host)
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.LimitOverrunError):
            pass
        finally:
            writer.close()

    async def respond(writer: asyncio.StreamWriter, status: int, body: bytes, kind: str) -> None:
        reason = {200: "OK", 404: "Not Found"}[status]
        writer.write(
            f"HTTP/1.1 {status} {reason}\r\nContent-Type: {kind}\r\n"
            f"Content-Length: {len(body)}\r\n\r\n".encode()
            + body
        )
        await writer.drain()

    servers = [await asyncio.start_server(handle, host, port, backlog=1024) for host in hosts]
    print("ready", flush=True)
    await asyncio.gather(*(s.serve_forever() for s in servers))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--dir", type=Path, required=True)
    parser.add_argument("--hosts", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--delay", type=float, default=0.3)
    parser.add_argument("--slow", action="append", default=[], help="HOST=SECONDS")
    args = parser.parse_args()
    slow = {h: float(s) for h, s in (item.split("=", 1) for item in args.slow)}
    asyncio.run(serve(args.dir, args.hosts.split(","), args.port, args.delay, slow))


if __name__ == "__main__":
    main()
