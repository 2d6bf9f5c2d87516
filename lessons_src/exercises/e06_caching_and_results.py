"""Exercises for pair 06 (caching and results): graders read task-run states (Cached or Completed) from the server
and count the requests that reached the demo API."""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta
from typing import Any
from uuid import uuid4

from prefect import Task, flow, task
from prefect.cache_policies import INPUTS, RUN_ID

from lessons_src.caching_demo import get_weather, weather_calls
from lessons_src.checks import Exercise, ExerciseSet, expect, require_solved, require_task, run_coroutine, short
from lessons_src.logs import quiet_console
from lessons_src.runs import task_runs

# ---- reference solutions (shown by ex.solution(n)) ----


@task(cache_policy=INPUTS)
def weather_across_runs(city: str, key: str) -> dict:
    return get_weather(city, key)


@task(persist_result=True)
def weather_per_run(city: str, key: str) -> dict:
    return get_weather(city, key)


def city_cache_key(context, parameters: dict) -> str:
    city = parameters["city"].strip().lower()
    return f"weather-{city}-{parameters['key']}"


@task(cache_key_fn=city_cache_key)
def weather_any_case(city: str, key: str) -> dict:
    return get_weather(city, key)


@task(cache_policy=INPUTS, cache_expiration=timedelta(seconds=1))
def fresh_weather(city: str, key: str) -> dict:
    return get_weather(city, key)


@task(cache_policy=INPUTS + RUN_ID)
def expensive_forecast(city: str, key: str) -> dict:
    return get_weather(city, key, delay=0.2)


# ---- graders ----


@flow(name="check-06-calls")
async def _call_each(fetch: Task, cities: list[str], key: str) -> list[Any]:
    """Call the learner's task once per city, one after another."""
    return [fetch(city, key) for city in cities]


@flow(name="check-06-expiry")
async def _call_twice_wait_call(fetch: Task, key: str, pause: float) -> list[Any]:
    """Call the learner's task twice, wait `pause` seconds, then call it once more."""
    results = [fetch("oslo", key), fetch("oslo", key)]
    await asyncio.sleep(pause)
    return [*results, fetch("oslo", key)]


@task
def _fails_once(key: str) -> dict:
    """A step that fails on its first call for `key` (503) and succeeds afterwards."""
    return get_weather("paris", key, fail_first=1)


@flow(name="check-06-retry", retries=1)
async def _fetch_then_fail_once(fetch: Task, key: str) -> None:
    """Call the learner's task, then a step that fails once, so the flow run is retried once."""
    fetch("oslo", key)
    _fails_once(f"{key}-fails-once")


def _fresh_key() -> str:
    return f"ex06-{uuid4().hex[:10]}"


def _states(fetch: Task, cities: list[str], key: str) -> tuple[list[str], list[Any]]:
    """Run `_call_each` once; return the task-run state names the server recorded and the values returned."""
    with quiet_console():
        state = run_coroutine(_call_each(fetch, cities, key, return_state=True))
    values = state.result(raise_on_failure=False, _sync=True)
    expect(state.is_completed(), f"the flow run calling your task ended {state.name}: {short(values)}")
    return [r.state for r in task_runs(state, expected=len(cities))], values


def _grade_across_runs(answer: Any) -> str:
    require_task(answer, "weather_across_runs")
    key = _fresh_key()
    first, values = _states(answer, ["oslo"], key)
    second, again = _states(answer, ["oslo"], key)
    calls = weather_calls(key)
    expect(values[0].get("city") == "Oslo", f"the task returned {short(values[0])}; return get_weather(city, key)")
    expect(
        second == ["Cached"] and calls == 1,
        f"the second flow run's task run ended {second[0]} and the demo API received {calls} requests; expected "
        "Cached and 1 request. Give the task a cache policy that hashes only its inputs.",
    )
    expect(again == values, f"the cached run returned {short(again)}, not the first run's {short(values)}")
    return f"flow run 1: {first[0]}, flow run 2: {second[0]}; the demo API received {calls} request."


def _grade_per_run(answer: Any) -> str:
    require_task(answer, "weather_per_run")
    key = _fresh_key()
    run_a, _ = _states(answer, ["oslo", "oslo"], key)
    run_b, _ = _states(answer, ["oslo"], key)
    calls = weather_calls(key)
    expect(
        run_a == ["Completed", "Cached"],
        f"inside one flow run the two identical calls ended {run_a}; expected ['Completed', 'Cached']. "
        "The default policy only caches when the result is persisted.",
    )
    expect(
        run_b == ["Completed"] and calls == 2,
        f"a new flow run ended {run_b} and the demo API received {calls} requests in all; expected ['Completed'] "
        "and 2: the cache should be per flow run, so keep RUN_ID in the policy (the default has it).",
    )
    return f"flow run A: {run_a}, flow run B: {run_b}; {calls} requests reached the demo API."


def _grade_any_case(answer: Any) -> str:
    require_task(answer, "weather_any_case")
    require_solved(answer.cache_key_fn)
    key = _fresh_key()
    cities = ["Oslo", "oslo", " OSLO ", "Cairo"]
    states, values = _states(answer, cities, key)
    calls = weather_calls(key)
    expect(
        states[0] == "Completed",
        f"the very first call ended {states[0]}: it reused an entry written by an earlier check. Include "
        "parameters['key'] in your cache key, so different keys never share an entry.",
    )
    expect(
        states[3] == "Completed" and values[3].get("city") == "Cairo",
        f"'Cairo' ended {states[3]} and returned {short(values[3])}: it was served another city's entry. "
        "Put the city in the cache key.",
    )
    expect(
        states == ["Completed", "Cached", "Cached", "Completed"] and calls == 2,
        f"the four calls ended {states} and the demo API received {calls} requests; expected "
        "['Completed', 'Cached', 'Cached', 'Completed'] and 2. Normalise the city (strip, lower) in the key.",
    )
    return f"{states}; only {calls} requests reached the demo API for 4 calls."


def _grade_expiration(answer: Any) -> str:
    require_task(answer, "fresh_weather")
    key = _fresh_key()
    with quiet_console():
        state = run_coroutine(_call_twice_wait_call(answer, key, 1.5, return_state=True))
    expect(state.is_completed(), f"the flow run calling your task ended {state.name}")
    states = [r.state for r in task_runs(state, expected=3)]
    calls = weather_calls(key)
    expect(
        states[1] == "Cached",
        f"the second call, right after the first, ended {states[1]}; expected Cached. Cache by inputs, and make "
        "the entry live for a second.",
    )
    expect(
        states[2] == "Completed" and calls == 2,
        f"the call 1.5 s later ended {states[2]} ({calls} requests in all); expected Completed: the entry should "
        "have expired after 1 second. Set cache_expiration.",
    )
    return f"{states}: the entry was reused at once and had expired 1.5 s later ({calls} requests)."


def _grade_retry(answer: Any) -> str:
    require_task(answer, "expensive_forecast")
    key = _fresh_key()
    with quiet_console(logging.CRITICAL):
        first = run_coroutine(_fetch_then_fail_once(answer, key, return_state=True))
    expect(first.is_completed(), f"the flow run ended {first.name}; the retry should complete it")
    fetches = [r.state for r in task_runs(first) if r.task_key == answer.task_key]
    after_retry = weather_calls(key)
    expect(
        after_retry == 1,
        f"the flow retry called the service again: your task's runs ended {fetches} and the demo API received "
        f"{after_retry} requests; expected 1. Give the task a cache policy (which persists the result) so the "
        "retry finds it.",
    )
    with quiet_console(logging.CRITICAL):
        run_coroutine(_fetch_then_fail_once(answer, key, return_state=True))
    after_new_run = weather_calls(key)
    expect(
        after_new_run == 2,
        f"a new flow run reused the first run's forecast (the demo API still has {after_new_run} request); "
        "expected a fresh call. Add RUN_ID to the cache key: a policy of INPUTS alone is shared by all runs.",
    )
    return f"retry of the same flow run: {fetches} (1 request); a new flow run called the service again."


EXERCISES = ExerciseSet(
    pair="06",
    title="Caching and results",
    exercises=[
        Exercise(
            1,
            "reuse a result across flow runs",
            _grade_across_runs,
            hints=[
                "The default policy includes the flow run's id, so a new flow run never hits it.",
                "Import INPUTS from prefect.cache_policies and write @task(cache_policy=INPUTS).",
            ],
            solution=[weather_across_runs],
            answer=lambda: weather_across_runs,
        ),
        Exercise(
            2,
            "cache within one flow run only",
            _grade_per_run,
            hints=[
                "The default policy (INPUTS + TASK_SOURCE + RUN_ID) is already per flow run, but nothing is "
                "cached unless the result is written somewhere.",
                "@task(persist_result=True) keeps the default policy and writes the result to storage.",
            ],
            solution=[weather_per_run],
            answer=lambda: weather_per_run,
        ),
        Exercise(
            3,
            "your own cache key",
            _grade_any_case,
            hints=[
                "A cache_key_fn receives (context, parameters) and returns a string: equal strings share an entry.",
                "Build the string from parameters['city'].strip().lower() and parameters['key'].",
            ],
            solution=[city_cache_key, weather_any_case],
            answer=lambda: weather_any_case,
        ),
        Exercise(
            4,
            "let cached results expire",
            _grade_expiration,
            hints=[
                "cache_expiration takes a datetime.timedelta.",
                "@task(cache_policy=INPUTS, cache_expiration=timedelta(seconds=1))",
            ],
            solution=[fresh_weather],
            answer=lambda: fresh_weather,
        ),
        Exercise(
            5,
            "skip finished work on a flow retry, not on a new run",
            _grade_retry,
            hints=[
                "A flow retry keeps the same flow run id; a new flow run gets a new one.",
                "Key the cache on the inputs and on the run id: INPUTS + RUN_ID (from prefect.cache_policies). "
                "Naming a cache policy turns persist_result on.",
            ],
            solution=[expensive_forecast],
            answer=lambda: expensive_forecast,
        ),
    ],
)
