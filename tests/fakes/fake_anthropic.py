"""A fake Anthropic Messages API server for tests and benchmarks (never a product backend).

It listens on 127.0.0.1 (a free port) in a background thread and speaks enough of the real HTTP API that the
real ``anthropic`` SDK works against it unchanged::

    with FakeAnthropic(latency=0.1) as server:
        client = anthropic.Anthropic(base_url=server.url, api_key=server.api_key, max_retries=0)
        server.enqueue("429", "ok")
        ...

Endpoints: ``POST /v1/messages`` (plain JSON or SSE with ``"stream": true``), ``POST /v1/messages/count_tokens``,
``POST/GET /v1/messages/batches``, ``GET /v1/messages/batches/{id}``, ``GET /v1/messages/batches/{id}/results``
(JSONL) and ``POST /v1/messages/batches/{id}/cancel``. Every request must carry ``api_key`` (as ``x-api-key``, or as
``Authorization: Bearer`` which is how anthropic 2.x sends ``api_key=``), else it gets 401.

One-shot behaviours (see ``BEHAVIOURS``) are queued with ``enqueue`` and consumed one per ``POST /v1/messages``
(first in, first out; an empty queue means ``"ok"``). Every ``POST /v1/messages`` is answered ``latency`` after it
arrived (``tiny_latency``, if given, for queries of at most 16 output tokens), its answer composed before that wait. Sleeps are cut short when the server stops or the client goes away.

Token usage is estimated as ``ceil(chars / 4)``. Prompt caching is simulated: everything up to and including
the last block carrying ``cache_control`` (in the order tools, system blocks, message content blocks) is the
cacheable prefix; the first request with a given prefix (and model) reports ``cache_creation_input_tokens``,
later ones ``cache_read_input_tokens``. There is no minimum cacheable length and no cache expiry.

Standard library only.
"""

from __future__ import annotations

import contextlib
import copy
import datetime as dt
import hashlib
import json
import math
import select
import socket
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

__all__ = ["BEHAVIOURS", "FakeAnthropic", "RecordedRequest"]

BEHAVIOURS = frozenset({"ok", "429", "529", "500", "401", "403", "spend_limit", "timeout", "malformed", "no_tool",
                        "garbage"})
GARBAGE = b"<html><body>502 Bad Gateway</body></html> not json"  # a 200 whose body is not JSON (nor SSE)

SPEND_LIMIT_MESSAGE = (
    "Your credit balance is too low to access the Anthropic API. Please go to Plans & Billing to upgrade or "
    "purchase credits."
)
RATE_LIMIT_MESSAGE = "Number of request tokens has exceeded your per-minute rate limit"

# behaviour -> (status, error type, message)
_ERRORS: dict[str, tuple[int, str, str]] = {
    "429": (429, "rate_limit_error", RATE_LIMIT_MESSAGE),
    "529": (529, "overloaded_error", "Overloaded"),
    "500": (500, "api_error", "Internal server error"),
    "401": (401, "authentication_error", "invalid x-api-key"),
    "403": (403, "permission_error", "Your API key does not have permission to use the specified resource."),
    "spend_limit": (400, "invalid_request_error", SPEND_LIMIT_MESSAGE),
}

_POLL = 0.05  # granularity of interruptible sleeps
_JSON_CHUNKS = 4  # number of input_json_delta events a streamed tool_use is split into


@dataclass
class RecordedRequest:
    """One request the server received. ``status`` is 0 while unanswered, and stays 0 when no answer was
    written (the client went away or the server stopped first)."""

    time: float  # time.monotonic() at arrival
    path: str
    method: str
    headers: dict[str, str]  # lower-cased keys
    body: dict | None
    status: int = 0
    behaviour: str = ""


@dataclass
class _Batch:
    id: str
    requests: list[dict]
    created: float  # time.monotonic()
    created_at: dt.datetime
    canceled: bool = False
    results: list[dict] | None = field(default=None)


class _Stopped(Exception):
    """The server is stopping, or the client hung up: abandon the request without answering."""


def _hex() -> str:
    return uuid.uuid4().hex[:24]


def _tokens(chars: int) -> int:
    return math.ceil(chars / 4)


def _rfc3339(moment: dt.datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def _strip_cache_control(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _strip_cache_control(v) for k, v in value.items() if k != "cache_control"}
    if isinstance(value, list):
        return [_strip_cache_control(v) for v in value]
    return value


def _block_chars(block: Any) -> int:
    if isinstance(block, str):
        return len(block)
    if isinstance(block, dict) and block.get("type") == "text" and isinstance(block.get("text"), str):
        return len(block["text"])
    return len(json.dumps(_strip_cache_control(block), sort_keys=True))


def _segments(body: dict) -> list[tuple[Any, bool]]:
    """The request's prompt in cache order (tools, system, messages): (block, carries cache_control)."""
    out: list[tuple[Any, bool]] = []
    for tool in body.get("tools") or []:
        out.append((tool, isinstance(tool, dict) and "cache_control" in tool))
    system = body.get("system")
    if isinstance(system, str):
        out.append((system, False))
    elif isinstance(system, list):
        out.extend((b, isinstance(b, dict) and "cache_control" in b) for b in system)
    for message in body.get("messages") or []:
        role = message.get("role", "") if isinstance(message, dict) else ""
        content = message.get("content") if isinstance(message, dict) else None
        if isinstance(content, str):
            out.append(({"role": role, "text": content}, False))
        elif isinstance(content, list):
            for b in content:
                marked = isinstance(b, dict) and "cache_control" in b
                out.append((b if not isinstance(b, dict) else {**b, "_role": role}, marked))
    return out


def _segment_chars(block: Any) -> int:
    if isinstance(block, dict) and "_role" in block:
        block = {k: v for k, v in block.items() if k != "_role"}
    elif isinstance(block, dict) and set(block) == {"role", "text"}:
        return len(block["text"])
    return _block_chars(block)


def _last_user_text(body: dict) -> str:
    for message in reversed(body.get("messages") or []):
        if not isinstance(message, dict) or message.get("role") != "user":
            continue
        content = message.get("content")
        if isinstance(content, str):
            return content
        texts: list[str] = []
        for block in content or []:
            if not isinstance(block, dict):
                continue
            if block.get("type") == "text":
                texts.append(str(block.get("text", "")))
            elif block.get("type") == "tool_result":
                inner = block.get("content")
                if isinstance(inner, str):
                    texts.append(inner)
                elif isinstance(inner, list):
                    texts.extend(str(b.get("text", "")) for b in inner if isinstance(b, dict))
        return " ".join(t for t in texts if t)
    return ""


def _resolve(schema: Any, root: dict) -> Any:
    """Follow a local ``$ref`` (``#/$defs/X``) once."""
    if isinstance(schema, dict) and isinstance(schema.get("$ref"), str) and schema["$ref"].startswith("#/"):
        target: Any = root
        for part in schema["$ref"][2:].split("/"):
            target = target.get(part, {}) if isinstance(target, dict) else {}
        return target
    return schema


def _default_value(name: str, schema: Any, root: dict, prompt: str, depth: int = 0) -> Any:
    schema = _resolve(schema, root)
    if not isinstance(schema, dict):
        return f"Fake {name}"
    if "const" in schema:
        return schema["const"]
    if schema.get("enum"):
        return schema["enum"][0]
    for key in ("anyOf", "oneOf", "allOf"):
        if schema.get(key):
            options = [s for s in schema[key] if _resolve(s, root).get("type") != "null"] or schema[key]
            return _default_value(name, options[0], root, prompt, depth)
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "null")
    if kind == "string":
        text = f"Fake {name} for {prompt[:60]}"
        text = text.ljust(int(schema.get("minLength", 0)), ".")
        if "maxLength" in schema:
            text = text[: int(schema["maxLength"])]
        return text
    if kind in ("integer", "number"):
        value = 100
        if "maximum" in schema:
            value = min(value, schema["maximum"])
        if "minimum" in schema:
            value = max(value, schema["minimum"])
        return int(value) if kind == "integer" else float(value)
    if kind == "boolean":
        return True
    if kind == "array":
        return []
    if kind == "null":
        return None
    if kind == "object" or "properties" in schema:
        if depth > 5:
            return {}
        return {
            prop: _default_value(prop, sub, root, prompt, depth + 1)
            for prop, sub in (schema.get("properties") or {}).items()
        }
    return f"Fake {name}"


def default_tool_input(tool: dict, body: dict) -> dict:
    """A valid-looking input for ``tool`` built from its ``input_schema``.

    The deliverable fields (summary/content/status/blockers/progress) get fixed, valid values; every other
    property gets a generic value of its type (strings, 100 for numbers, [] for arrays, the first enum value).
    """
    schema = tool.get("input_schema") or {}
    prompt = _last_user_text(body)
    value = _default_value(tool.get("name", "input"), schema, schema, prompt)
    value = value if isinstance(value, dict) else {}
    props = schema.get("properties") or {}
    fixed = {
        "summary": f"Fake answer for {prompt[:60]}",
        "content": "Fake deliverable content produced by the FakeAnthropic test server.",
        "status": "done",
        "blockers": [],
        "progress": 100,
    }
    for key, fixed_value in fixed.items():
        if key in props:
            value[key] = fixed_value
    return value


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 256
    allow_reuse_address = True
    fake: FakeAnthropic


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:  # silence the default stderr log
        pass

    def setup(self) -> None:
        super().setup()
        self.server.fake._track(self.connection, add=True)

    def finish(self) -> None:
        with contextlib.suppress(OSError):
            super().finish()
        self.server.fake._track(self.connection, add=False)

    def do_GET(self) -> None:
        self.server.fake._handle(self, "GET")

    def do_POST(self) -> None:
        self.server.fake._handle(self, "POST")

    def do_DELETE(self) -> None:
        self.server.fake._handle(self, "DELETE")


class FakeAnthropic:
    """The fake server. ``start()`` it (or use it as a context manager), point the SDK at ``url``."""

    def __init__(
        self,
        *,
        api_key: str = "sk-fake-test-key",
        latency: float = 0.0,
        retry_after: float = 1.0,
        timeout_sleep: float = 30.0,
        responder: Callable[[dict], dict] | None = None,
        batch_delay: float = 0.5,
        tiny_latency: float | None = None,
    ) -> None:
        self.api_key = api_key
        self.latency = latency
        # latency of tiny queries (max_tokens <= 16, e.g. a health probe); default ``latency``
        self.tiny_latency = tiny_latency
        self.retry_after = retry_after
        self.timeout_sleep = timeout_sleep
        self.responder = responder
        self.batch_delay = batch_delay
        self.url = ""
        self.requests: list[RecordedRequest] = []
        self.in_flight = 0  # requests being answered now
        self.max_in_flight = 0  # the most answered at once since the start (or the last reset)
        self._queue: deque[str] = deque()
        self._cache: set[str] = set()
        self._batches: dict[str, _Batch] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._connections: set[socket.socket] = set()
        self._httpd: _Server | None = None
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> FakeAnthropic:
        if self._httpd is not None:
            return self
        self._stop.clear()
        httpd = _Server(("127.0.0.1", 0), _Handler)
        httpd.fake = self
        self._httpd = httpd
        self.url = f"http://127.0.0.1:{httpd.server_address[1]}"
        self._thread = threading.Thread(
            target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, name="fake-anthropic", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        httpd, self._httpd = self._httpd, None
        if httpd is None:
            return
        self._stop.set()  # wakes every sleeping handler
        httpd.shutdown()
        httpd.server_close()
        with self._lock:
            connections = list(self._connections)
        for conn in connections:  # unblock keep-alive handler threads waiting for a next request
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> FakeAnthropic:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ------------------------------------------------------------------ control

    def enqueue(self, *behaviours: str) -> None:
        """Queue one-shot behaviours for the next ``POST /v1/messages`` requests (FIFO)."""
        unknown = [b for b in behaviours if b not in BEHAVIOURS]
        if unknown:
            raise ValueError(f"unknown behaviour(s) {unknown}; known: {sorted(BEHAVIOURS)}")
        with self._lock:
            self._queue.extend(behaviours)

    def reset(self) -> None:
        """Forget queued behaviours, recorded requests, the prompt-cache memory and batches."""
        with self._lock:
            self._queue.clear()
            self.requests.clear()
            self._cache.clear()
            self._batches.clear()
            self.max_in_flight = self.in_flight

    # ------------------------------------------------------------------ internals

    def _track(self, conn: socket.socket, *, add: bool) -> None:
        with self._lock:
            if add:
                self._connections.add(conn)
            else:
                self._connections.discard(conn)

    def _next_behaviour(self) -> str:
        with self._lock:
            return self._queue.popleft() if self._queue else "ok"

    def _sleep(self, seconds: float, handler: _Handler) -> None:
        """Sleep in small steps; raise ``_Stopped`` if the server stops or the client disconnects."""
        deadline = time.monotonic() + seconds
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return
            if self._stop.wait(min(_POLL, remaining)):
                raise _Stopped
            if _client_gone(handler.connection):
                raise _Stopped

    def _handle(self, handler: _Handler, method: str) -> None:
        path = urlsplit(handler.path).path.rstrip("/") or "/"
        headers = {k.lower(): v for k, v in handler.headers.items()}
        raw = handler.rfile.read(int(headers.get("content-length") or 0))
        body: dict | None = None
        if raw:
            try:
                parsed = json.loads(raw)
                body = parsed if isinstance(parsed, dict) else {"_": parsed}
            except ValueError:
                body = None
        record = RecordedRequest(time.monotonic(), path, method, headers, body)
        with self._lock:
            self.requests.append(record)
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            self._dispatch(handler, record, raw)
        except _Stopped:
            handler.close_connection = True
        except (BrokenPipeError, ConnectionResetError):
            handler.close_connection = True
        finally:
            with self._lock:
                self.in_flight -= 1

    def _dispatch(self, handler: _Handler, record: RecordedRequest, raw: bytes) -> None:
        path, method, body = record.path, record.method, record.body
        if method == "POST" and path == "/v1/messages":
            return self._messages(handler, record, raw)
        if _presented_key(record.headers) != self.api_key:
            record.behaviour = "401"
            return self._error(handler, record, *_ERRORS["401"])
        if raw and body is None:
            return self._error(handler, record, 400, "invalid_request_error", "Request body is not valid JSON")
        body = body or {}

        record.behaviour = "ok"
        if method == "POST" and path == "/v1/messages/count_tokens":
            return self._json(handler, record, 200, {"input_tokens": max(1, self._usage(body, remember=False)[0])})
        if path == "/v1/messages/batches":
            if method == "POST":
                return self._create_batch(handler, record, body)
            if method == "GET":
                with self._lock:
                    batches = list(self._batches.values())
                data = [self._batch_object(b) for b in reversed(batches)]
                first, last = (data[0]["id"], data[-1]["id"]) if data else (None, None)
                page = {"data": data, "has_more": False, "first_id": first, "last_id": last}
                return self._json(handler, record, 200, page)
        parts = path.split("/")  # ["", "v1", "messages", "batches", id, (results|cancel)]
        if len(parts) in (5, 6) and parts[1:4] == ["v1", "messages", "batches"]:
            with self._lock:
                batch = self._batches.get(parts[4])
            if batch is None:
                return self._error(handler, record, 404, "not_found_error", f"No batch with id {parts[4]}")
            action = parts[5] if len(parts) == 6 else ""
            if action == "" and method == "GET":
                return self._json(handler, record, 200, self._batch_object(batch))
            if action == "" and method == "DELETE":
                with self._lock:
                    self._batches.pop(batch.id, None)
                return self._json(handler, record, 200, {"id": batch.id, "type": "message_batch_deleted"})
            if action == "cancel" and method == "POST":
                if not self._batch_ended(batch):
                    batch.canceled = True
                return self._json(handler, record, 200, self._batch_object(batch))
            if action == "results" and method == "GET":
                return self._batch_results(handler, record, batch)
        record.behaviour = "not_found"
        return self._error(handler, record, 404, "not_found_error", f"{method} {path} is not served by FakeAnthropic")

    # ------------------------------------------------------------------ messages

    def _messages(self, handler: _Handler, record: RecordedRequest, raw: bytes) -> None:
        """``POST /v1/messages``: every answer leaves ``latency`` after the request arrived, whatever
        it is; an answer is composed before that wait, not after it, as a real API's latency
        includes its own work."""
        body = record.body
        tiny = isinstance(body, dict) and int(body.get("max_tokens") or 0) <= 16 and self.tiny_latency is not None
        answer_at = record.time + (self.tiny_latency if tiny else self.latency)

        def wait() -> None:
            self._sleep(answer_at - time.monotonic(), handler)

        if _presented_key(record.headers) != self.api_key:
            wait()
            record.behaviour = "401"
            return self._error(handler, record, *_ERRORS["401"])
        if raw and body is None:
            wait()
            return self._error(handler, record, 400, "invalid_request_error", "Request body is not valid JSON")
        body = body or {}
        behaviour = record.behaviour = self._next_behaviour()
        if behaviour in _ERRORS:
            wait()
            return self._error(handler, record, *_ERRORS[behaviour])
        if behaviour == "timeout":
            wait()
            self._sleep(self.timeout_sleep, handler)
        if behaviour == "garbage":
            wait()
            return self._garbage(handler, record, "text/event-stream" if body.get("stream") else "application/json")
        message = self._message(body, behaviour)
        chunks = self._sse_chunks(message) if body.get("stream") else None
        wait()
        if chunks is not None:
            return self._stream(handler, record, chunks)
        return self._json(handler, record, 200, message)

    def _usage(self, body: dict, *, remember: bool) -> tuple[int, int, int]:
        """(input_tokens, cache_creation_input_tokens, cache_read_input_tokens) for a request body."""
        segments = _segments(body)
        marked = [i for i, (_, is_marked) in enumerate(segments) if is_marked]
        total = _tokens(sum(_segment_chars(b) for b, _ in segments))
        if not marked:
            return max(1, total), 0, 0
        prefix_blocks = [b for b, _ in segments[: marked[-1] + 1]]
        prefix = _tokens(sum(_segment_chars(b) for b in prefix_blocks))
        key_material = json.dumps([body.get("model"), _strip_cache_control(prefix_blocks)], sort_keys=True, default=str)
        key = hashlib.sha256(key_material.encode()).hexdigest()
        with self._lock:
            seen = key in self._cache
            if remember:
                self._cache.add(key)
        remaining = max(1, total - prefix)
        return (remaining, 0, prefix) if seen else (remaining, prefix, 0)

    def _message(self, body: dict, behaviour: str = "ok") -> dict:
        tools = [t for t in body.get("tools") or [] if isinstance(t, dict)]
        choice = body.get("tool_choice") if isinstance(body.get("tool_choice"), dict) else {}
        content: list[dict]
        if tools and behaviour != "no_tool" and choice.get("type") != "none":
            tool = next((t for t in tools if t.get("name") == choice.get("name")), tools[0])
            if behaviour == "malformed":
                tool_input: dict = {"summary": 5}
            elif self.responder is not None:
                tool_input = self.responder(body)
            else:
                tool_input = default_tool_input(tool, body)
            content = [{"type": "tool_use", "id": f"toolu_{_hex()}", "name": tool.get("name", ""), "input": tool_input}]
            stop_reason = "tool_use"
        else:
            text = None
            if self.responder is not None and behaviour != "no_tool":
                text = (self.responder(body) or {}).get("text")
            if text is None:
                text = f"Fake reply to: {_last_user_text(body)[:60]}"
            content = [{"type": "text", "text": text}]
            stop_reason = "end_turn"
        input_tokens, creation, read = self._usage(body, remember=True)
        return {
            "id": f"msg_{_hex()}",
            "type": "message",
            "role": "assistant",
            "model": body.get("model", "claude-fake"),
            "content": content,
            "stop_reason": stop_reason,
            "stop_sequence": None,
            "usage": {
                "input_tokens": input_tokens,
                "cache_creation_input_tokens": creation,
                "cache_read_input_tokens": read,
                "output_tokens": _tokens(len(json.dumps(content))),
                "service_tier": "standard",
            },
        }

    # ------------------------------------------------------------------ batches

    def _create_batch(self, handler: _Handler, record: RecordedRequest, body: dict) -> None:
        requests = body.get("requests")
        if not isinstance(requests, list) or not requests:
            return self._error(handler, record, 400, "invalid_request_error", "requests: must be a non-empty list")
        batch = _Batch(f"msgbatch_{_hex()}", copy.deepcopy(requests), time.monotonic(), dt.datetime.now(dt.UTC))
        with self._lock:
            self._batches[batch.id] = batch
        return self._json(handler, record, 200, self._batch_object(batch))

    def _batch_ended(self, batch: _Batch) -> bool:
        return batch.canceled or time.monotonic() - batch.created >= self.batch_delay

    def _batch_object(self, batch: _Batch) -> dict:
        ended = self._batch_ended(batch)
        n = len(batch.requests)
        counts = {"processing": n, "succeeded": 0, "errored": 0, "canceled": 0, "expired": 0}
        if ended:
            counts = {**counts, "processing": 0, ("canceled" if batch.canceled else "succeeded"): n}
        ended_at = batch.created_at + dt.timedelta(seconds=self.batch_delay)
        return {
            "id": batch.id,
            "type": "message_batch",
            "processing_status": "ended" if ended else "in_progress",
            "request_counts": counts,
            "created_at": _rfc3339(batch.created_at),
            "expires_at": _rfc3339(batch.created_at + dt.timedelta(hours=24)),
            "ended_at": _rfc3339(ended_at) if ended else None,
            "results_url": f"{self.url}/v1/messages/batches/{batch.id}/results" if ended else None,
            "cancel_initiated_at": _rfc3339(batch.created_at) if batch.canceled else None,
            "archived_at": None,
        }

    def _batch_results(self, handler: _Handler, record: RecordedRequest, batch: _Batch) -> None:
        if not self._batch_ended(batch):
            msg = f"Batch {batch.id} is still processing; results are available once it has ended"
            return self._error(handler, record, 400, "invalid_request_error", msg)
        with self._lock:
            results = batch.results
        if results is None:
            results = []
            for item in batch.requests:
                custom_id = item.get("custom_id") if isinstance(item, dict) else None
                params = item.get("params") if isinstance(item, dict) else None
                if batch.canceled:
                    result: dict = {"type": "canceled"}
                else:
                    result = {"type": "succeeded", "message": self._message(params or {})}
                results.append({"custom_id": custom_id, "result": result})
            with self._lock:
                batch.results = results
        payload = "".join(json.dumps(line) + "\n" for line in results).encode()
        record.status = 200
        handler.send_response(200)
        self._common_headers(handler, "application/binary")
        handler.send_header("Content-Length", str(len(payload)))
        handler.end_headers()
        handler.wfile.write(payload)

    # ------------------------------------------------------------------ writing answers

    def _common_headers(self, handler: _Handler, content_type: str) -> None:
        request_id = f"req_{_hex()}"
        handler.send_header("Content-Type", content_type)
        handler.send_header("request-id", request_id)
        handler.send_header("x-request-id", request_id)

    def _json(self, handler: _Handler, record: RecordedRequest, status: int, payload: dict,
              extra_headers: dict[str, str] | None = None) -> None:
        data = json.dumps(payload).encode()
        record.status = status
        handler.send_response(status)
        self._common_headers(handler, "application/json")
        for name, value in (extra_headers or {}).items():
            handler.send_header(name, value)
        handler.send_header("Content-Length", str(len(data)))
        handler.end_headers()
        handler.wfile.write(data)

    def _garbage(self, handler: _Handler, record: RecordedRequest, content_type: str) -> None:
        record.status = 200
        handler.send_response(200)
        self._common_headers(handler, content_type)
        handler.send_header("Content-Length", str(len(GARBAGE)))
        handler.end_headers()
        handler.wfile.write(GARBAGE)

    def _error(self, handler: _Handler, record: RecordedRequest, status: int, kind: str, message: str) -> None:
        extra: dict[str, str] = {}
        if status == 429:
            extra = {"retry-after": f"{self.retry_after:g}", "retry-after-ms": str(int(self.retry_after * 1000))}
        payload = {"type": "error", "error": {"type": kind, "message": message}}
        self._json(handler, record, status, payload, extra)

    @staticmethod
    def _sse_chunks(message: dict) -> list[bytes]:
        """``message`` as the real SSE event sequence, one chunk per event."""
        usage = message["usage"]
        start = {**message, "content": [], "stop_reason": None, "stop_sequence": None,
                 "usage": {**usage, "output_tokens": 1}}
        events: list[tuple[str, dict]] = [
            ("message_start", {"type": "message_start", "message": start}),
            ("ping", {"type": "ping"}),
        ]
        for index, block in enumerate(message["content"]):
            if block["type"] == "tool_use":
                empty = {**block, "input": {}}
                events.append(("content_block_start", {"type": "content_block_start", "index": index,
                                                       "content_block": empty}))
                text = json.dumps(block["input"])
                step = max(1, math.ceil(len(text) / _JSON_CHUNKS))
                for i in range(0, len(text), step):
                    delta = {"type": "input_json_delta", "partial_json": text[i: i + step]}
                    events.append(("content_block_delta", {"type": "content_block_delta", "index": index,
                                                           "delta": delta}))
            else:
                events.append(("content_block_start", {"type": "content_block_start", "index": index,
                                                       "content_block": {"type": "text", "text": ""}}))
                words = block["text"].split(" ")
                pieces = [" ".join(words[i: i + 3]) + (" " if i + 3 < len(words) else "")
                          for i in range(0, len(words), 3)]
                for piece in pieces:
                    events.append(("content_block_delta", {"type": "content_block_delta", "index": index,
                                                           "delta": {"type": "text_delta", "text": piece}}))
            events.append(("content_block_stop", {"type": "content_block_stop", "index": index}))
        events.append(("message_delta", {
            "type": "message_delta",
            "delta": {"stop_reason": message["stop_reason"], "stop_sequence": None},
            "usage": {"input_tokens": usage["input_tokens"],
                      "cache_creation_input_tokens": usage["cache_creation_input_tokens"],
                      "cache_read_input_tokens": usage["cache_read_input_tokens"],
                      "output_tokens": usage["output_tokens"]},
        }))
        events.append(("message_stop", {"type": "message_stop"}))
        return [f"event: {name}\ndata: {json.dumps(data)}\n\n".encode() for name, data in events]

    def _stream(self, handler: _Handler, record: RecordedRequest, chunks: list[bytes]) -> None:
        """Answer with ``chunks`` (``_sse_chunks``), chunked, flushing every event."""
        record.status = 200
        handler.send_response(200)
        self._common_headers(handler, "text/event-stream; charset=utf-8")
        handler.send_header("Cache-Control", "no-cache")
        handler.send_header("Transfer-Encoding", "chunked")
        handler.end_headers()
        for chunk in chunks:
            handler.wfile.write(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
            handler.wfile.flush()
        handler.wfile.write(b"0\r\n\r\n")
        handler.wfile.flush()


def _presented_key(headers: dict[str, str]) -> str | None:
    """The credential a request carries: ``x-api-key``, else an ``Authorization: Bearer`` token.

    (anthropic 2.x sends ``api_key=`` as ``Authorization: Bearer <key>``; older SDKs send ``x-api-key``.)
    """
    if "x-api-key" in headers:
        return headers["x-api-key"]
    scheme, _, token = headers.get("authorization", "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" else None


def _client_gone(conn: socket.socket) -> bool:
    """True when the peer has closed the connection (readable with no data)."""
    try:
        readable, _, _ = select.select([conn], [], [], 0)
        if not readable:
            return False
        return conn.recv(1, socket.MSG_PEEK) == b""
    except (OSError, ValueError):
        return True
