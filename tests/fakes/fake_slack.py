"""A loopback stand-in for Slack: an incoming webhook, the Web API's ``chat.postMessage`` and the
three steps of ``files_upload_v2`` (``files.getUploadURLExternal``, the upload itself,
``files.completeUploadExternal``). Records every message posted (path, text, channel, the bot token
used) and every file uploaded (``uploads``: name, title, bytes), reached through the Slack
provider's own hooks via the connections it hands out."""

from __future__ import annotations

import http.server
import json
import threading
import urllib.parse

BOT_TOKEN = "xoxb-fake-castmatch"


class FakeSlack:
    def __init__(self):
        self.posts: list[dict] = []
        self.uploads: dict[str, dict] = {}  # file id -> {"filename", "title", "data"}
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 (http.server's name)
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                if self.path.startswith("/upload/"):  # step 2 of files_upload_v2: the bytes
                    outer.uploads[self.path.rsplit("/", 1)[1]]["data"] = body
                    self.send_response(200)
                    self.send_header("Content-Type", "text/plain")
                    self.end_headers()
                    self.wfile.write(b"OK")
                    return None
                if self.path.startswith("/api/"):
                    if "json" in self.headers.get("Content-Type", ""):
                        fields = json.loads(body or b"{}")
                    else:
                        fields = {k: v[0] for k, v in urllib.parse.parse_qs(body.decode()).items()}
                    token = self.headers.get("Authorization", "").removeprefix("Bearer ")
                    if token != BOT_TOKEN:
                        return self._reply({"ok": False, "error": "invalid_auth"})
                    outer.posts.append({"path": self.path, "token": token, **fields})
                    if self.path.startswith("/api/files.getUploadURLExternal"):
                        file_id = f"F{len(outer.uploads) + 1:04d}"
                        outer.uploads[file_id] = {"filename": fields.get("filename"), "title": None, "data": b""}
                        root = f"http://127.0.0.1:{self.server.server_address[1]}"
                        return self._reply({"ok": True, "file_id": file_id, "upload_url": f"{root}/upload/{file_id}"})
                    if self.path.startswith("/api/files.completeUploadExternal"):
                        done = fields["files"] if isinstance(fields["files"], list) else json.loads(fields["files"])
                        for f in done:
                            outer.uploads[f["id"]]["title"] = f.get("title")
                        return self._reply({"ok": True, "files": [{"id": f["id"]} for f in done]})
                    return self._reply({"ok": True, "channel": fields.get("channel"), "ts": f"{len(outer.posts)}.0"})
                outer.posts.append({"path": self.path, **json.loads(body or b"{}")})
                self.send_response(200)
                self.send_header("Content-Type", "text/plain")
                self.end_headers()
                self.wfile.write(b"ok")

            def _reply(self, payload: dict) -> None:
                data = json.dumps(payload).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        root = f"http://127.0.0.1:{self._server.server_address[1]}"
        self.url = f"{root}/services/T000/B000/XXXX"
        self.api_url = f"{root}/api/"

    def connection(self) -> str:
        """An Airflow connection (JSON) for the Slack webhook provider, pointing here."""
        return json.dumps({"conn_type": "slackwebhook", "password": self.url})

    def api_connection(self, channel: str = "#castmatch-alerts") -> str:
        """An Airflow connection (JSON) for the Slack API provider (bot token), pointing here."""
        return json.dumps({"conn_type": "slack", "password": BOT_TOKEN,
                           "extra": {"base_url": self.api_url, "channel": channel}})

    def messages(self, path_prefix: str = "/api/chat.postMessage") -> list[dict]:
        return [p for p in self.posts if p["path"].startswith(path_prefix)]

    def __enter__(self) -> FakeSlack:
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc) -> None:
        self._server.shutdown()
        self._server.server_close()


FakeSlackWebhook = FakeSlack  # the webhook-only name older tests use
