"""A small stand-in of the CastMatch product for the ``make run`` demo (never a product backend).

Standard library only, on 127.0.0.1. It gives the demo's KPIs something real and local to
measure, clearly labelled as demo data:

- ``GET /health``: 200 while it runs (the ``platform_health``-style probes and uptime);
- ``POST /v1/conversations``: one simulated casting conversation turn; it answers after a short
  think time and is recorded, so its latency is *measured* by the demo's ``http_latency`` KPIs;
- ``GET /metrics``: the product's business figures, counted from the recorded conversations
  (``http_json`` KPIs): beta users engaged, conversations in the last day, users active in the
  last seven days.

A built-in traffic generator plays a small cohort of beta users who hold conversations through
the same endpoint, so the business figures grow from traffic the service actually served, not
from constants. Point the KPIs at a real product (``kpis.yaml`` ``source``) and none of this runs.

    python -m castmatch.demo_service --port 8765 [--users 240] [--think 0.2]
"""

from __future__ import annotations

import argparse
import json
import random
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

LABEL = "DEMO DATA (castmatch.demo_service, simulated traffic)"


class DemoProduct:
    """The simulated product: users, conversations, and how long a reply takes."""

    def __init__(self, *, users: int = 240, think_seconds: float = 0.2, seed: int = 7):
        self.users = users
        self.think = think_seconds
        self.random = random.Random(seed)
        self.conversations: list[tuple[float, int]] = []  # (time, user id)
        self.lock = threading.Lock()

    def converse(self, user_id: int, text: str) -> dict:
        time.sleep(self.think * (0.5 + self.random.random()))  # the reply takes a moment
        with self.lock:
            self.conversations.append((time.time(), user_id))
        return {"reply": f"[{LABEL}] Shortlist for: {text[:80]}", "user_id": user_id}

    def metrics(self) -> dict:
        now = time.time()
        with self.lock:
            conversations = list(self.conversations)
        return {
            "label": LABEL,
            "beta_users_engaged": len({u for _, u in conversations}),
            "conversations_per_day": sum(1 for t, _ in conversations if now - t < 86400),
            "active_users": len({u for t, u in conversations if now - t < 7 * 86400}),
            "conversations_total": len(conversations),
        }


def _handler(product: DemoProduct):
    class Handler(BaseHTTPRequestHandler):
        def _send(self, status: int, body: dict) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self):  # noqa: N802 (http.server's name)
            if self.path == "/health":
                return self._send(200, {"status": "ok", "label": LABEL})
            if self.path == "/metrics":
                return self._send(200, product.metrics())
            return self._send(404, {"error": "not found"})

        def do_POST(self):  # noqa: N802
            if self.path.startswith("/v1/conversations"):
                length = int(self.headers.get("content-length") or 0)
                body = json.loads(self.rfile.read(length) or b"{}") if length else {}
                user = int(body.get("user_id", product.random.randrange(product.users)))
                return self._send(200, product.converse(user, str(body.get("text", "casting brief"))))
            return self._send(404, {"error": "not found"})

        def log_message(self, *args):
            pass

    return Handler


def _traffic(url: str, product: DemoProduct, stop: threading.Event) -> None:
    """Beta users holding conversations through the service's own endpoint."""
    import urllib.request

    user = 0
    while not stop.is_set():
        body = json.dumps({"user_id": user % product.users, "text": "lead actor, 30-40, Hindi and Marathi"}).encode()
        request = urllib.request.Request(f"{url}/v1/conversations", data=body, method="POST",
                                         headers={"Content-Type": "application/json"})
        try:
            urllib.request.urlopen(request, timeout=10).read()
        except OSError:
            pass
        user += 1
        stop.wait(0.05)


class DemoService:
    """The demo product served on 127.0.0.1 in background threads (``port`` 0: a free one)."""

    def __init__(self, port: int = 8765, *, users: int = 240, think: float = 0.2, traffic: bool = True):
        self.product = DemoProduct(users=users, think_seconds=think)
        self.server = ThreadingHTTPServer(("127.0.0.1", port), _handler(self.product))
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._stop = threading.Event()
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        if traffic:
            threading.Thread(target=_traffic, args=(self.url, self.product, self._stop), daemon=True).start()

    def stop(self) -> None:
        self._stop.set()
        self.server.shutdown()
        self.server.server_close()

    def __enter__(self) -> DemoService:
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="castmatch-demo-service", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--users", type=int, default=240, help="simulated beta users")
    parser.add_argument("--think", type=float, default=0.2, help="mean reply time of a conversation turn (s)")
    args = parser.parse_args(argv)
    service = DemoService(args.port, users=args.users, think=args.think)
    print(f"demo product on {service.url} ({LABEL}): /health, POST /v1/conversations, /metrics", flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        service.stop()


if __name__ == "__main__":
    main()
