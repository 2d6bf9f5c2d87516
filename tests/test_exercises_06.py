"""Each check of pair 06 accepts the reference solution and rejects plausible wrong answers."""

from datetime import timedelta

import pytest
from prefect import task
from prefect.cache_policies import INPUTS, NO_CACHE

from lessons_src.caching_demo import get_weather
from lessons_src.checks import TODO
from lessons_src.demo_api import start_demo_api
from lessons_src.exercises import exercises

EX = exercises("06")


@pytest.fixture
def demo_api(course_server):
    """The demo API, started or reused; the checks use fresh keys, so no reset is needed between tests."""
    return start_demo_api()


def test_task_with_todo_body_is_unsolved():
    @task
    def weather_across_runs(city: str, key: str) -> dict:
        return TODO

    assert EX.evaluate(1, weather_across_runs).status == "unsolved"


def test_cache_key_fn_returning_todo_is_unsolved():
    def city_cache_key(context, parameters: dict) -> str:
        return TODO

    @task(cache_key_fn=city_cache_key)
    def weather_any_case(city: str, key: str) -> dict:
        return get_weather(city, key)

    assert EX.evaluate(3, weather_any_case).status == "unsolved"


def plain_function(city: str, key: str) -> dict:
    return get_weather(city, key)


@task
def weather_default(city: str, key: str) -> dict:
    return get_weather(city, key)


@task(persist_result=True)
def weather_default_persisted(city: str, key: str) -> dict:
    return get_weather(city, key)


@task(cache_policy=NO_CACHE)
def weather_no_cache(city: str, key: str) -> dict:
    return get_weather(city, key)


@task(cache_policy=INPUTS)
def weather_inputs(city: str, key: str) -> dict:
    return get_weather(city, key)


@task(cache_key_fn=lambda context, parameters: f"weather-{parameters['key']}")
def weather_key_without_city(city: str, key: str) -> dict:
    return get_weather(city, key)


@task(cache_policy=INPUTS, cache_expiration=timedelta(minutes=10))
def weather_expires_too_late(city: str, key: str) -> dict:
    return get_weather(city, key)


@task(cache_policy=INPUTS, cache_expiration=timedelta(0))
def weather_expires_at_once(city: str, key: str) -> dict:
    return get_weather(city, key)


@pytest.mark.parametrize(
    ("number", "wrong", "expected_message"),
    [
        (1, plain_function, "should be a Prefect task"),
        (1, weather_default, "second flow run's task run ended Completed"),
        (1, weather_default_persisted, "second flow run's task run ended Completed"),
        (2, weather_default, "The default policy only caches when the result is persisted"),
        (2, weather_inputs, "the cache should be per flow run"),
        (3, weather_inputs, "Normalise the city"),
        (3, weather_key_without_city, "Put the city in the cache key"),
        (4, weather_inputs, "should have expired"),
        (4, weather_expires_too_late, "should have expired"),
        (4, weather_expires_at_once, "right after the first"),
        (5, weather_default, "the flow retry called the service again"),
        (5, weather_no_cache, "the flow retry called the service again"),
        (5, weather_inputs, "a new flow run reused"),
    ],
    ids=lambda value: getattr(value, "__name__", getattr(value, "name", str(value)))[:30],
)
def test_wrong_answers_are_rejected(demo_api, number, wrong, expected_message):
    outcome = EX.evaluate(number, wrong)
    assert outcome.status == "failed"
    assert expected_message in outcome.message
