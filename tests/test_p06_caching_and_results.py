"""The caching helpers fetch real weather from the demo API and count the requests per key."""

import uuid

import httpx
import pytest

from lessons_src.pairs.p06_caching_and_results import get_weather, weather_calls


def test_get_weather_counts_each_request_under_its_key(course_server):
    key = f"test-{uuid.uuid4().hex[:8]}"
    assert get_weather("Oslo", key)["city"] == "Oslo"
    assert get_weather("cairo", key, delay=0.05)["city"] == "Cairo"
    assert weather_calls(key) == 2


def test_unknown_city_raises(course_server):
    with pytest.raises(httpx.HTTPStatusError):
        get_weather("atlantis", f"test-{uuid.uuid4().hex[:8]}")


def test_fail_first_fails_the_first_call_only(course_server):
    key = f"test-{uuid.uuid4().hex[:8]}"
    with pytest.raises(httpx.HTTPStatusError):
        get_weather("paris", key, fail_first=1)
    assert get_weather("paris", key, fail_first=1)["city"] == "Paris"
