"""Fetch weather from the course's demo API, for the caching exercises' tasks (pair 06)."""

from __future__ import annotations

from functools import cache
from typing import Any

import httpx

from lessons_src.demo_api import DemoAPI, start_demo_api


@cache
def _client() -> httpx.Client:
    return httpx.Client(timeout=5.0)


def _api() -> DemoAPI:
    return start_demo_api()  # finds the running instance (a health check), or starts one


def get_weather(city: str, key: str, delay: float = 0.0, fail_first: int = 0) -> dict[str, Any]:
    """GET /weather/{city} with `key` (counted per key), answered after `delay` s, failing (503) the first calls."""
    response = _client().get(_api().url_for(f"/weather/{city}", delay=delay, key=key, fail_first=fail_first or None))
    response.raise_for_status()
    return response.json()


def weather_calls(key: str) -> int:
    """Return how many requests carrying `key` reached the demo API since its last reset."""
    return _api().stats().attempts(key)
