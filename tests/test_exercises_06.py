"""Pair 06's checks pass right answers written unlike the reference and fail near misses, the same way twice.

Right answers use other policies, key functions or async tasks; each check keeps its cache records in a folder of
its own, so a record the first evaluation wrote cannot change the second verdict.
"""

from datetime import timedelta

import pytest
from prefect import task
from prefect.cache_policies import DEFAULT, INPUTS, NO_CACHE, RUN_ID, TASK_SOURCE
from prefect.tasks import task_input_hash

from lessons_src.checks import TODO
from lessons_src.exercises import exercises
from lessons_src.pairs.p06_caching_and_results import get_weather

EX = exercises("06")


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


# ---- right answers written differently from the reference ----


@task(cache_policy=INPUTS + TASK_SOURCE)
def weather_inputs_and_source(city: str, key: str) -> dict:
    return get_weather(city, key)


@task(cache_key_fn=task_input_hash)
def weather_task_input_hash(city: str, key: str) -> dict:
    return get_weather(city, key)


@task(cache_policy=INPUTS)
async def weather_inputs_async(city: str, key: str) -> dict:
    return get_weather(city, key)


@task(cache_policy=DEFAULT)
def weather_default_named(city: str, key: str) -> dict:
    return get_weather(city, key)


@task(cache_policy=RUN_ID + INPUTS)
def weather_run_id_and_inputs(city: str, key: str) -> dict:
    return get_weather(city, key)


def key_with_helper(context, parameters: dict) -> str:
    return f"{parameters['key']}:{normalised(parameters['city'])}"


def normalised(city: str) -> str:
    return city.strip().casefold()


@task(cache_key_fn=key_with_helper)
async def weather_key_with_helper_async(city: str, key: str) -> dict:
    return get_weather(city, key)


@task(
    cache_key_fn=lambda context,
    parameters: f"{context.task.name}-{parameters['city'].strip().lower()}-{parameters['key']}"
)
def weather_key_lambda_with_context(city: str, key: str) -> dict:
    return get_weather(city, key)


@task(cache_policy=INPUTS, cache_expiration=timedelta(milliseconds=1000))
def weather_expires_in_1000_ms(city: str, key: str) -> dict:
    return get_weather(city, key)


@task(cache_key_fn=task_input_hash, cache_expiration=timedelta(seconds=1.0))
async def weather_expiring_input_hash_async(city: str, key: str) -> dict:
    return get_weather(city, key)


@task(cache_policy=INPUTS + TASK_SOURCE, cache_expiration=timedelta(0, 1))
def weather_expiring_with_source(city: str, key: str) -> dict:
    return get_weather(city, key)


@task(persist_result=True)
def forecast_default_persisted(city: str, key: str) -> dict:
    return get_weather(city, key, delay=0.2)


@task(
    cache_key_fn=lambda context, parameters: f"{context.task_run.flow_run_id}/{parameters['city']}/{parameters['key']}"
)
def forecast_keyed_on_flow_run(city: str, key: str) -> dict:
    return get_weather(city, key, delay=0.2)


@pytest.mark.parametrize(
    ("number", "right"),
    [
        (1, weather_inputs_and_source),
        (1, weather_task_input_hash),
        (1, weather_inputs_async),
        (2, weather_default_named),
        (2, weather_run_id_and_inputs),
        (3, weather_key_with_helper_async),
        (3, weather_key_lambda_with_context),
        (4, weather_expires_in_1000_ms),
        (4, weather_expiring_input_hash_async),
        (4, weather_expiring_with_source),
        (5, forecast_default_persisted),
        (5, forecast_keyed_on_flow_run),
    ],
    ids=lambda value: getattr(value, "name", str(value))[:40],
)
def test_right_answers_written_differently_pass_twice(graded, demo_api, number, right):
    outcome = graded(EX, number, right)
    assert outcome.status == "passed", outcome


# ---- wrong answers ----


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


@task(cache_policy=TASK_SOURCE)
def weather_source_only(city: str, key: str) -> dict:
    return get_weather(city, key)


@task(cache_policy=RUN_ID)
def weather_run_id_only(city: str, key: str) -> dict:
    return get_weather(city, key)


@task(cache_policy="INPUTS")
def weather_policy_as_string(city: str, key: str) -> dict:
    return get_weather(city, key)


@task(cache_policy=INPUTS)
def weather_returning_a_float(city: str, key: str) -> dict:
    return get_weather(city, key)["temperature_c"]


@task(persist_result="True")
def weather_persist_as_string(city: str, key: str) -> dict:
    return get_weather(city, key)


@task(cache_policy=INPUTS, persist_result=False)
def weather_persist_false(city: str, key: str) -> dict:
    return get_weather(city, key)


@task(cache_key_fn=lambda context, parameters: f"weather-{parameters['key']}")
def weather_key_without_city(city: str, key: str) -> dict:
    return get_weather(city, key)


@task(cache_key_fn=lambda context, parameters: f"weather-{parameters['city'].strip().lower()}")
def weather_key_without_key(city: str, key: str) -> dict:
    return get_weather(city, key)


@task(cache_key_fn=lambda context, parameters: f"weather-{parameters['city'].lower()}-{parameters['key']}")
def weather_key_not_stripped(city: str, key: str) -> dict:
    return get_weather(city, key)


@task(cache_key_fn=lambda context, parameters: (parameters["city"].strip().lower(), parameters["key"]))
def weather_key_as_tuple(city: str, key: str) -> dict:
    return get_weather(city, key)


@task(cache_key_fn=lambda context, parameters: f"{parameters['City'].strip().lower()}-{parameters['key']}")
def weather_key_with_a_typo(city: str, key: str) -> dict:
    return get_weather(city, key)


@task(cache_policy=INPUTS, cache_expiration=timedelta(minutes=10))
def weather_expires_too_late(city: str, key: str) -> dict:
    return get_weather(city, key)


@task(cache_policy=INPUTS, cache_expiration=timedelta(0))
def weather_expires_at_once(city: str, key: str) -> dict:
    return get_weather(city, key)


@task(cache_policy=INPUTS, cache_expiration=timedelta(milliseconds=300))
def weather_expires_too_soon(city: str, key: str) -> dict:
    return get_weather(city, key)


@task(cache_policy=TASK_SOURCE, cache_expiration=timedelta(seconds=1))
def weather_expiring_source_only(city: str, key: str) -> dict:
    return get_weather(city, key)


@task(cache_policy=INPUTS, cache_expiration=1)
def weather_expiration_as_int(city: str, key: str) -> dict:
    return get_weather(city, key)


@task(cache_policy=INPUTS)
def weather_without_key(city: str) -> dict:
    return get_weather(city, "fixed")


def key_of_parameters_only(parameters: dict) -> str:
    return parameters["city"].strip().lower() + parameters["key"]


@task(cache_key_fn=key_of_parameters_only)
def weather_key_fn_one_argument(city: str, key: str) -> dict:
    return get_weather(city, key)


@pytest.mark.parametrize(
    ("number", "wrong", "expected_message"),
    [
        (1, plain_function, "should be a Prefect task"),
        (1, weather_without_key, "should take two arguments, (city: str, key: str)"),
        (3, weather_key_fn_one_argument, "cache_key_fn should take two arguments, (context, parameters)"),
        (1, weather_default, "'oslo' ended Completed in flow run 1 and Completed in flow run 2"),
        (1, weather_default_persisted, "a new flow run never hits it"),
        (1, weather_source_only, "'cairo' ended Cached and returned Oslo's weather"),
        (1, weather_policy_as_string, "got str 'INPUTS'"),
        (1, weather_returning_a_float, "should be dict"),
        (1, weather_persist_false, "persist_result=False turns caching off"),
        (2, weather_default, "The default policy only caches when the result is persisted"),
        (2, weather_inputs, "the cache should be per flow run"),
        (2, weather_run_id_only, "'cairo' ended Cached and returned Oslo's weather"),
        (2, weather_persist_as_string, "persist_result should be True or False; got str 'True'"),
        (2, weather_no_cache, "NO_CACHE computes no key"),
        (3, weather_inputs, "has no cache_key_fn"),
        (3, weather_key_without_city, "Put the city in the cache key"),
        (3, weather_key_without_key, "Include parameters['key']"),
        (3, weather_key_not_stripped, "normalise the city"),
        (3, weather_key_as_tuple, "a cache key must be a str"),
        (3, weather_key_with_a_typo, "your code raised KeyError: 'City'"),
        (4, weather_inputs, "should have expired"),
        (4, weather_expires_too_late, "should have expired"),
        (4, weather_expires_too_late, "Your cache_expiration of 600 s keeps it longer"),
        (4, weather_inputs, "without it an entry never expires"),
        (4, weather_expires_at_once, "right after the first"),
        (4, weather_expires_too_soon, "the exercise asks for 1 second"),
        (4, weather_expiring_source_only, "'cairo' ended Cached"),
        (4, weather_expiration_as_int, "cache_expiration should be timedelta"),
        (5, weather_default, "the flow retry called the service again"),
        (5, weather_no_cache, "the flow retry called the service again"),
        (5, weather_inputs, "a new flow run reused"),
        (5, weather_run_id_only, "your cache key ignores the city"),
    ],
    ids=lambda value: getattr(value, "name", getattr(value, "__name__", str(value)))[:30],
)
def test_wrong_answers_are_rejected_twice_alike(graded, demo_api, number, wrong, expected_message):
    outcome = graded(EX, number, wrong)
    assert outcome.status == "failed" and expected_message in outcome.message, outcome


@task(cache_key_fn=lambda context, parameters: f"{parameters['city'].strip().lower()}/{parameters['key']}")
def weather_key_as_a_path(city: str, key: str) -> dict:
    return get_weather(city, key)


def test_exercise_3_lists_each_key_it_wrote_even_a_key_with_a_slash(graded, demo_api):
    outcome = graded(EX, 3, weather_key_as_a_path)
    assert outcome.status == "passed" and "'cairo/ex06-" in outcome.message, outcome
