"""The fake Anthropic server, driven by the real ``anthropic`` SDK over HTTP."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import anthropic
import pytest

from castmatch.llm.schema import TOOL_NAME, Deliverable, deliverable_tool
from tests.fakes.fake_anthropic import FakeAnthropic

MODEL = "claude-sonnet-4-5"
SYSTEM_PREFIX = "You are the CastMatch backend agent. " * 40


@pytest.fixture(scope="module")
def server():
    with FakeAnthropic(timeout_sleep=3.0, retry_after=0.05, batch_delay=0.3) as fake:
        yield fake


@pytest.fixture
def fake(server):
    server.reset()
    server.latency = 0.0
    yield server
    server.reset()
    server.latency = 0.0


def client_for(fake: FakeAnthropic, **kwargs) -> anthropic.Anthropic:
    kwargs.setdefault("max_retries", 0)
    kwargs.setdefault("api_key", fake.api_key)
    return anthropic.Anthropic(base_url=fake.url, **kwargs)


def deliverable_request(user: str = "Build the Redis connection pool", *, cached: bool = True) -> dict:
    system: list[dict] = [{"type": "text", "text": SYSTEM_PREFIX}]
    if cached:
        system[0]["cache_control"] = {"type": "ephemeral"}
    return {
        "model": MODEL,
        "max_tokens": 1024,
        "system": system,
        "messages": [{"role": "user", "content": user}],
        "tools": [deliverable_tool()],
        "tool_choice": {"type": "tool", "name": TOOL_NAME},
    }


def tool_input(message) -> dict:
    blocks = [b for b in message.content if b.type == "tool_use"]
    assert len(blocks) == 1
    return blocks[0].input


class TestFakeAnthropic:
    def test_forced_tool_call_returns_valid_deliverable(self, fake):
        message = client_for(fake).messages.create(**deliverable_request())
        assert message.type == "message" and message.role == "assistant"
        assert message.id.startswith("msg_") and message.model == MODEL
        assert message.stop_reason == "tool_use"
        block = message.content[0]
        assert block.type == "tool_use" and block.name == TOOL_NAME and block.id.startswith("toolu_")
        deliverable = Deliverable.model_validate(block.input)
        assert deliverable.status == "done" and deliverable.progress == 100 and deliverable.blockers == []
        assert deliverable.summary == "Fake answer for Build the Redis connection pool"
        assert message.usage.output_tokens > 0
        [req] = fake.requests
        assert req.path == "/v1/messages" and req.method == "POST" and req.status == 200
        assert req.behaviour == "ok" and req.body["model"] == MODEL
        assert req.headers["authorization"] == f"Bearer {fake.api_key}"  # anthropic 2.x: api_key as Bearer

    def test_text_answer_and_responder(self, fake):
        client = client_for(fake)
        message = client.messages.create(model=MODEL, max_tokens=64, messages=[{"role": "user", "content": "hi"}])
        assert message.stop_reason == "end_turn" and message.content[0].type == "text"
        fake.responder = lambda body: {"summary": "custom summary text", "content": "x" * 30, "status": "blocked",
                                       "blockers": ["no db"], "progress": 10}
        try:
            assert tool_input(client.messages.create(**deliverable_request()))["blockers"] == ["no db"]
        finally:
            fake.responder = None

    def test_prompt_cache_creation_then_read(self, fake):
        client = client_for(fake)
        first = client.messages.create(**deliverable_request("first unit"))
        second = client.messages.create(**deliverable_request("second, different unit"))
        assert first.usage.cache_creation_input_tokens > 0
        assert first.usage.cache_read_input_tokens == 0
        assert second.usage.cache_creation_input_tokens == 0
        assert second.usage.cache_read_input_tokens == first.usage.cache_creation_input_tokens
        assert second.usage.input_tokens >= 1
        uncached = client.messages.create(**deliverable_request(cached=False))
        assert uncached.usage.cache_creation_input_tokens == 0 and uncached.usage.cache_read_input_tokens == 0
        assert uncached.usage.input_tokens > first.usage.cache_creation_input_tokens

    def test_429_raises_without_retries_and_recovers_with_retries(self, fake):
        fake.enqueue("429")
        with pytest.raises(anthropic.RateLimitError) as info:
            client_for(fake).messages.create(**deliverable_request())
        assert info.value.status_code == 429 and info.value.type == "rate_limit_error"
        assert info.value.request_id and info.value.request_id.startswith("req_")
        assert info.value.response.headers["retry-after"] == "0.05"
        fake.reset()
        fake.enqueue("429")
        message = client_for(fake, max_retries=2).messages.create(**deliverable_request())
        Deliverable.model_validate(tool_input(message))
        assert [(r.status, r.behaviour) for r in fake.requests] == [(429, "429"), (200, "ok")]

    @pytest.mark.parametrize(
        ("behaviour", "error"),
        [("529", anthropic.OverloadedError), ("500", anthropic.InternalServerError),
         ("403", anthropic.PermissionDeniedError), ("401", anthropic.AuthenticationError),
         ("spend_limit", anthropic.BadRequestError)],
    )
    def test_error_behaviours_map_to_sdk_exceptions(self, fake, behaviour, error):
        fake.enqueue(behaviour)
        with pytest.raises(error) as info:
            client_for(fake).messages.create(**deliverable_request())
        if behaviour == "529":
            assert isinstance(info.value, anthropic.InternalServerError)
            assert info.value.status_code == 529 and info.value.type == "overloaded_error"
        if behaviour == "spend_limit":
            assert "credit balance is too low" in info.value.message
        assert fake.requests[-1].behaviour == behaviour

    def test_wrong_key_is_401_regardless_of_queue(self, fake):
        fake.enqueue("ok")
        with pytest.raises(anthropic.AuthenticationError):
            client_for(fake, api_key="sk-wrong").messages.create(**deliverable_request())
        assert fake.requests[-1].status == 401
        client_for(fake).messages.create(**deliverable_request())  # the queued "ok" is still there

    def test_timeout_raises_api_timeout_error(self, fake):
        fake.enqueue("timeout")
        started = time.monotonic()
        with pytest.raises(anthropic.APITimeoutError):
            client_for(fake, timeout=0.5).messages.create(**deliverable_request())
        assert time.monotonic() - started < 2.5
        assert fake.requests[-1].behaviour == "timeout"

    def test_malformed_and_no_tool(self, fake):
        fake.enqueue("malformed", "no_tool")
        client = client_for(fake)
        bad = tool_input(client.messages.create(**deliverable_request()))
        assert bad == {"summary": 5}
        with pytest.raises(ValueError):
            Deliverable.model_validate(bad)
        message = client.messages.create(**deliverable_request())
        assert [b.type for b in message.content] == ["text"]

    def test_streaming_matches_non_stream_answer(self, fake):
        client = client_for(fake)
        plain = client.messages.create(**deliverable_request())
        with client.messages.stream(**deliverable_request()) as stream:
            final = stream.get_final_message()
        assert final.stop_reason == plain.stop_reason == "tool_use"
        assert tool_input(final) == tool_input(plain)
        assert final.usage.output_tokens == plain.usage.output_tokens
        assert final.usage.cache_read_input_tokens == plain.usage.cache_creation_input_tokens
        events = [e.type for e in client.messages.create(**deliverable_request(), stream=True)]
        assert events[0] == "message_start" and events[-1] == "message_stop"
        assert events.count("content_block_delta") > 1 and "message_delta" in events
        text_request = {"model": MODEL, "max_tokens": 64, "messages": [{"role": "user", "content": "say a few words"}]}
        with client.messages.stream(**text_request) as stream:
            streamed_text = "".join(stream.text_stream)
        assert streamed_text == client.messages.create(**text_request).content[0].text

    def test_concurrent_requests_are_served_in_parallel(self, fake):
        fake.latency = 0.5
        client = client_for(fake)
        with ThreadPoolExecutor(max_workers=20) as pool:
            messages = list(pool.map(lambda i: client.messages.create(**deliverable_request(f"unit {i}")), range(20)))
        assert fake.max_in_flight >= 10, fake.max_in_flight  # answered side by side, not queued one by one
        assert len(messages) == 20 and len(fake.requests) == 20

    def test_batches_create_retrieve_results(self, fake):
        client = client_for(fake)
        batch = client.messages.batches.create(
            requests=[{"custom_id": f"unit-{i}", "params": deliverable_request(f"batch unit {i}")} for i in range(3)]
        )
        assert batch.id.startswith("msgbatch_") and batch.processing_status == "in_progress"
        assert batch.request_counts.processing == 3 and batch.results_url is None
        deadline = time.monotonic() + 5
        while batch.processing_status != "ended" and time.monotonic() < deadline:
            time.sleep(0.05)
            batch = client.messages.batches.retrieve(batch.id)
        assert batch.processing_status == "ended" and batch.ended_at is not None
        assert batch.request_counts.succeeded == 3 and batch.request_counts.processing == 0
        results = {r.custom_id: r.result for r in client.messages.batches.results(batch.id)}
        assert sorted(results) == ["unit-0", "unit-1", "unit-2"]
        for custom_id, result in results.items():
            assert result.type == "succeeded"
            deliverable = Deliverable.model_validate(tool_input(result.message))
            assert deliverable.summary.endswith(custom_id.replace("unit-", "batch unit "))
