"""A loopback stand-in for a Slack incoming webhook: records every JSON body posted to it."""

from __future__ import annotations

import http.server
import json
import threading


class FakeSlackWebhook:
    def __init__(self):
        self.posts: list[dict] = []
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 (http.server's name)
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                outer.posts.append({"path": self.path, **json.loads(body or b"{}")})
                self.send_response(200)
                self.send_header("Content-Type", "text/plain")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args):
                pass

        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/services/T000/B000/XXXX"

    def connection(self) -> str:
        """An Airflow connection (JSON) for the Slack webhook provider, pointing here."""
        return json.dumps({"conn_type": "slackwebhook", "password": self.url})

    def __enter__(self) -> FakeSlackWebhook:
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc) -> None:
        self._server.shutdown()
        self._server.server_close()
