"""The small pieces that keep failures honest: back-off bounds, error descriptions that never
raise, a limiter that says why it refuses while Redis is down."""

from __future__ import annotations

import pytest

from castmatch.config.models import RetrySettings
from castmatch.describe import describe
from castmatch.llm.claude import backoff_delay


class TestBackoff:
    def test_retry_after_is_honoured_within_the_floor_and_the_ceiling(self):
        retry = RetrySettings(backoff_seconds=2, min_backoff_seconds=1, max_backoff_seconds=60)
        assert backoff_delay(retry, 1, 0.0) == 1.0  # retry-after: 0 never fires the next attempt at once
        assert backoff_delay(retry, 1, 7.5) == 7.5
        assert backoff_delay(retry, 1, 600) == 60.0

    def test_without_retry_after_it_grows_with_jitter_inside_the_bounds(self):
        retry = RetrySettings(backoff_seconds=2, min_backoff_seconds=1, max_backoff_seconds=10)
        for attempt, (low, high) in {1: (1.0, 2.0), 2: (2.0, 4.0), 3: (4.0, 8.0), 6: (10.0, 10.0)}.items():
            delays = {backoff_delay(retry, attempt, None) for _ in range(50)}
            assert all(low <= d <= high for d in delays), (attempt, delays)
        assert len({backoff_delay(retry, 2, None) for _ in range(20)}) > 1  # jitter


class TestDescribe:
    def test_an_exception_with_no_message_is_still_described(self):
        assert describe(AssertionError()) == "AssertionError"
        assert describe(ValueError("")) == "ValueError"

    def test_odd_api_bodies_and_status_codes(self):
        class Odd(Exception):
            status_code = 529
            body = {"error": "not a dict"}

        assert describe(Odd("overloaded\nsecond line")) == "Odd (529): overloaded"

    def test_a_database_error_names_the_drivers_error(self):
        import sqlalchemy as sa

        wrapped = sa.exc.OperationalError("INSERT ...", {}, ConnectionError("terminating connection\ndetail"))
        assert describe(wrapped) == "ConnectionError: terminating connection"


class TestLimiterWithoutRedis:
    def test_refuses_after_waiting_and_says_why(self, caplog):
        from castmatch.llm.errors import LLMTransientError, RateLimiterUnavailable
        from castmatch.llm.ratelimit import Limit, RedisRateLimiter

        limiter = RedisRateLimiter("redis://:pw@127.0.0.1:1/0", {"m": Limit(10, 1000, 1000)}, redis_wait_seconds=0.5,
                                   retry_later_seconds=60)
        with pytest.raises(RateLimiterUnavailable) as refused:
            limiter.acquire("m", 100)
        message = str(refused.value)
        assert isinstance(refused.value, LLMTransientError)  # Airflow tries the unit again later
        assert "call refused: the rate limiter's Redis at redis://***@127.0.0.1:1/0 has been down for 0.5 s" in message
        assert "Airflow tries the unit again in 60 s" in message and "pw" not in message
        assert "no Claude call is sent without a rate limit: waiting up to 0.5 s" in caplog.text
