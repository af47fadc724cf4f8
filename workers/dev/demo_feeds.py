"""The channel feeds of the demo data, served by `cmw dev` on http://127.0.0.1:8765.

The demo's channel mappings (workers/dev/seeds/demo.py) import `http://127.0.0.1:8765/feeds/<code>.ics`,
so that channel sync has something to fetch on a laptop. Each feed is an Airbnb-format
calendar with two stays, placed from today by the property code (the same feed all day, so the
second sync of a day is a 304) and far enough ahead not to overlap the demo's own stays.
`cmw dev` adds 127.0.0.1 to the channel fetcher's allowed hosts for its own processes only.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import icalendar

DEMO_FEEDS_HOST = "127.0.0.1"
DEMO_FEEDS_PORT = 8765
PRODID = "-//Airbnb Inc//Hosting Calendar 0.8.8//EN"


def demo_feed(code: str, today: dt.date) -> bytes:
    seed = int(hashlib.sha256(code.encode()).hexdigest(), 16)
    cal = icalendar.Calendar()
    cal.add("prodid", PRODID)
    cal.add("version", "2.0")
    for n in range(2):
        start = today + dt.timedelta(days=400 + 20 * n + seed % 7)
        confirmation = f"HM{(seed >> (8 * n)) % 10**8:08d}"
        event = icalendar.Event()
        event.add("uid", f"demo-{code}-{n}@airbnb.com")
        event.add("summary", "Reserved")
        event.add("dtstart", start)
        event.add("dtend", start + dt.timedelta(days=3 + (seed >> n) % 4))
        event.add(
            "description",
            "Reservation URL: https://www.airbnb.com/hosting/reservations/details/"
            f"{confirmation}\nPhone Number (Last 4 Digits): {seed % 10_000:04d}",
        )
        event.add("dtstamp", dt.datetime.combine(today, dt.time(), dt.UTC))
        cal.add_component(event)
    return cal.to_ical()


class DemoFeedServer:
    def __init__(self, host: str = DEMO_FEEDS_HOST, port: int = DEMO_FEEDS_PORT) -> None:
        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                path = self.path.split("?", 1)[0]
                if not (path.startswith("/feeds/") and path.endswith(".ics")):
                    self.send_error(404)
                    return
                today = dt.datetime.now(dt.UTC).date()
                body = demo_feed(path[len("/feeds/") : -len(".ics")], today)
                etag = '"' + hashlib.sha256(body).hexdigest()[:16] + '"'
                if self.headers.get("If-None-Match") == etag:
                    self.send_response(304)
                    self.send_header("ETag", etag)
                    self.end_headers()
                    return
                self.send_response(200)
                self.send_header("Content-Type", "text/calendar; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.send_header("ETag", etag)
                self.end_headers()
                self.wfile.write(body)

        self.server = ThreadingHTTPServer((host, port), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def start(self) -> DemoFeedServer:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
