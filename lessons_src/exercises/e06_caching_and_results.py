"""Exercises for pair 06 (caching and results): graders read task-run states (Cached or Completed) from the server
and count the requests that reached the demo API; each check keeps its cache records in a folder of its own."""

from __future__ import annotations

import asyncio
import inspect
import logging
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any
from uuid import uuid4

from prefect import Flow, Task, flow, task
from prefect.cache_policies import INPUTS, NO_CACHE, RUN_ID, CachePolicy
from prefect.states import State
from prefect.utilities.annotations import NotSet

from lessons_src.checks import (
    CheckFailed,
    Exercise,
    ExerciseSet,
    expect,
    require_signature,
    require_solved,
    require_task,
    require_type,
    run_coroutine,
    short,
)
from lessons_src.logs import quiet_console
from lessons_src.pairs.p06_caching_and_results import get_weather, weather_calls
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
# Every grader flow keeps the results it persists in a fresh folder of its own (`_own_cache`), so no record an
# earlier check (or the lesson) wrote can turn a miss into a hit: the verdict is the same on every run.


async def _value_of(fetch: Task, city: str, key: str) -> Any:
    """Call the learner's task (sync or async) inside a flow and return its value."""
    value = fetch(city, key)
    return await value if inspect.isawaitable(value) else value


@flow(name="check-06-calls", persist_result=False)
async def _call_each(fetch: Task, calls: list[tuple[str, str]]) -> list[Any]:
    """Call the learner's task once per (city, key), one after another."""
    return [await _value_of(fetch, city, key) for city, key in calls]


@flow(name="check-06-expiry", persist_result=False)
async def _calls_then_wait(fetch: Task, key: str, pause: float) -> list[Any]:
    """Call oslo twice and cairo once, wait `pause` seconds, then call oslo again."""
    values = [await _value_of(fetch, city, key) for city in ("oslo", "oslo", "cairo")]
    await asyncio.sleep(pause)
    return [*values, await _value_of(fetch, "oslo", key)]


@task
def _fails_once(key: str) -> dict:
    """A step that fails on its first call for `key` (503) and succeeds afterwards."""
    return get_weather("paris", key, fail_first=1)


@flow(name="check-06-retry", retries=1, persist_result=False)
async def _fetch_then_fail_once(fetch: Task, key: str) -> list[Any]:
    """Call the learner's task for two cities, then a step that fails once, so the flow run is retried once."""
    values = [await _value_of(fetch, "oslo", key), await _value_of(fetch, "cairo", key)]
    _fails_once(f"{key}-fails-once")
    return values


def _fresh_key() -> str:
    return f"ex06-{uuid4().hex[:10]}"


@contextmanager
def _own_cache() -> Iterator[Path]:
    """Yield an empty folder for the grader flows' result records; it is removed afterwards."""
    with tempfile.TemporaryDirectory(prefix="check-06-cache-") as folder:
        yield Path(folder)


def _require_cache_options(answer: Any, name: str) -> Task:
    """Return the learner's task if its caching options have the types Prefect expects, else say what arrived."""
    require_task(answer, name)
    require_signature(answer, ("oslo", "a-key"), name, "two arguments, (city: str, key: str)")
    policy = getattr(answer, "_user_cache_policy", answer.cache_policy)
    for given in (policy, answer.cache_policy):
        expect(
            given is None or given is NotSet or isinstance(given, CachePolicy),
            f"cache_policy should be a cache policy object from prefect.cache_policies, for example INPUTS "
            f"(`from prefect.cache_policies import INPUTS`, then cache_policy=INPUTS, without quotes); "
            f"got {type(given).__name__} {short(given)}",
        )
    if answer.cache_expiration is not None:
        require_type(answer.cache_expiration, timedelta, "cache_expiration", "timedelta(seconds=1)")
    expect(
        answer.persist_result in (None, True, False),
        f"persist_result should be True or False; got {type(answer.persist_result).__name__} "
        f"{short(answer.persist_result)}",
    )
    expect(
        answer.cache_key_fn is None or callable(answer.cache_key_fn),
        f"cache_key_fn should be a function (context, parameters) -> str; got "
        f"{type(answer.cache_key_fn).__name__} {short(answer.cache_key_fn)}",
    )
    if answer.cache_key_fn is not None:
        require_signature(answer.cache_key_fn, (None, {}), "cache_key_fn", "two arguments, (context, parameters)")
    expect(
        answer.refresh_cache in (None, True, False),
        f"refresh_cache should be True or False; got {short(answer.refresh_cache)}",
    )
    return answer


def _run(grader_flow: Flow, cache: Path, *args: Any) -> tuple[State, Any]:
    """Run a grader flow with its results kept in `cache`; re-raise the learner's error if the run failed."""
    with quiet_console(logging.CRITICAL):  # a failing answer's traceback is reported below, not printed
        state = run_coroutine(grader_flow.with_options(result_storage=cache)(*args, return_state=True))
    value = state.result(raise_on_failure=False, _sync=True)
    if not state.is_completed():
        if isinstance(value, BaseException):
            raise value  # the framework says whose code raised it, with the learner's line
        raise CheckFailed(f"the flow run calling your task ended {state.name}: {short(value)}")
    return state, value


def _states(fetch: Task, calls: list[tuple[str, str]], cache: Path) -> tuple[list[str], list[Any]]:
    """Run `_call_each` once; return the task-run state names the server recorded and the values returned."""
    state, values = _run(_call_each, cache, fetch, calls)
    for (city, _), value in zip(calls, values, strict=True):
        _require_weather(value, city)
    return [r.state for r in task_runs(state, expected=len(calls))], values


def _require_weather(value: Any, city: str) -> None:
    """Fail unless `value` is the demo API's weather dict (any city); say what the task returned instead."""
    require_type(value, dict, f"the value your task returned for {city!r}", "get_weather(city, key)")
    expect("city" in value, f"your task returned {short(value)} for {city!r}; return get_weather(city, key) itself")


def _why_nothing_is_cached(answer: Task, otherwise: str) -> str:
    """Name the setting that stops the learner's task from caching at all, if there is one, else say `otherwise`."""
    if answer.persist_result is False:
        return (
            "Your persist_result=False turns caching off: Prefect then ignores the cache policy (and logs "
            "'Ignoring `cache_policy` because `persist_result` is False')."
        )
    if isinstance(answer.cache_policy, type(NO_CACHE)):
        return "Your cache_policy=NO_CACHE computes no key, so nothing is ever cached."
    return otherwise


def _city(value: dict) -> str:
    return str(value.get("city", "?"))


def _grade_across_runs(answer: Any) -> str:
    _require_cache_options(answer, "weather_across_runs")
    key = _fresh_key()
    with _own_cache() as cache:
        first, _ = _states(answer, [("oslo", key)], cache)
        second, values = _states(answer, [("oslo", key), ("cairo", key)], cache)
    calls = weather_calls(key)
    expect(
        second[1] == "Completed" and _city(values[1]) == "Cairo",
        f"in the second flow run the new city 'cairo' ended {second[1]} and returned {_city(values[1])}'s "
        "weather: the cache key ignores the arguments. Use a policy that hashes the task's inputs.",
    )
    expect(
        first == ["Completed"] and second[0] == "Cached" and calls == 2,
        f"'oslo' ended {first[0]} in flow run 1 and {second[0]} in flow run 2, and the demo API received {calls} "
        "requests for 2 cities; expected Completed, then Cached, and 2 requests. "
        + _why_nothing_is_cached(
            answer,
            "The default policy includes the flow run's id, so a new flow run never hits "
            "it: give the task a policy that hashes only its inputs.",
        ),
    )
    return (
        f"'oslo' {first[0]} in flow run 1, {second[0]} in flow run 2; 'cairo' {second[1]}; "
        f"{calls} requests reached the demo API."
    )


def _grade_per_run(answer: Any) -> str:
    _require_cache_options(answer, "weather_per_run")
    key = _fresh_key()
    with _own_cache() as cache:
        run_a, values = _states(answer, [("oslo", key), ("oslo", key), ("cairo", key)], cache)
        run_b, _ = _states(answer, [("oslo", key)], cache)
    calls = weather_calls(key)
    expect(
        run_a[:2] == ["Completed", "Cached"],
        f"inside one flow run the two identical calls ended {run_a[:2]}; expected ['Completed', 'Cached']. "
        + _why_nothing_is_cached(answer, "The default policy only caches when the result is persisted."),
    )
    expect(
        run_a[2] == "Completed" and _city(values[2]) == "Cairo",
        f"the call for 'cairo' ended {run_a[2]} and returned {_city(values[2])}'s weather; expected Completed "
        "with Cairo's: keep the task's inputs in the cache key (the default policy has them).",
    )
    expect(
        run_b == ["Completed"] and calls == 3,
        f"a new flow run ended {run_b} and the demo API received {calls} requests in all; expected ['Completed'] "
        "and 3: the cache should be per flow run, so keep RUN_ID in the policy (the default has it).",
    )
    return f"flow run A: {run_a}, flow run B: {run_b}; {calls} requests reached the demo API."


def _recording(key_fn: Callable[..., Any]) -> tuple[Callable[..., Any], list[Any], list[BaseException]]:
    """Wrap a learner's cache_key_fn to keep what it returned and what it raised (Prefect only logs the latter)."""
    returned: list[Any] = []
    raised: list[BaseException] = []

    def recorded(context: Any, parameters: dict[str, Any]) -> Any:
        try:
            key = key_fn(context, parameters)
        except Exception as error:
            raised.append(error)
            raise
        returned.append(key)
        return key

    return recorded, returned, raised


def _grade_any_case(answer: Any) -> str:
    _require_cache_options(answer, "weather_any_case")
    require_solved(answer.cache_key_fn)
    expect(
        answer.cache_key_fn is not None,
        "weather_any_case has no cache_key_fn: this exercise asks for your own key, @task(cache_key_fn=city_cache_key)",
    )
    recorded, returned, raised = _recording(answer.cache_key_fn)
    observed = answer.with_options(cache_key_fn=recorded)
    key, other_key = _fresh_key(), _fresh_key()
    calls = [("Oslo", key), ("oslo", key), (" OSLO ", key), ("Cairo", key), ("oslo", other_key)]
    with _own_cache() as cache:
        try:
            states, values = _states(observed, calls, cache)
        finally:  # what the key function did explains a failed run best, so it is reported first
            if raised:
                raise raised[0]  # Prefect only logged it; the framework reports it with the learner's line
            wrong = [k for k in returned if k is not None and not isinstance(k, str)]
            expect(not wrong, f"your cache_key_fn returned {short(wrong[:1])[1:-1]}; a cache key must be a str")
        written = sorted(p.relative_to(cache).as_posix() for p in cache.rglob("*") if p.is_file())
    counts = weather_calls(key), weather_calls(other_key)
    expect(
        states[3] == "Completed" and _city(values[3]) == "Cairo",
        f"'Cairo' ended {states[3]} and returned {_city(values[3])}'s weather: it was served another city's "
        f"entry (your keys: {short(returned[:4])}). Put the city in the cache key.",
    )
    expect(
        states[4] == "Completed",
        f"'oslo' with a different key ended {states[4]}: it shared the entry of the first key (your keys: "
        f"{short(returned)}). Include parameters['key'] in the cache key, so different keys never share.",
    )
    expect(
        states[:4] == ["Completed", "Cached", "Cached", "Completed"] and counts == (2, 1),
        f"'Oslo', 'oslo', ' OSLO ', 'Cairo' ended {states[:4]} and the demo API received {counts[0]} requests; "
        f"expected ['Completed', 'Cached', 'Cached', 'Completed'] and 2. Your cache_key_fn returned "
        f"{short(returned[:4])}: normalise the city (strip, lower) so the three spellings give one key.",
    )
    return f"{states}; {sum(counts)} requests for 5 calls; the check's cache folder held {short(written)}."


def _grade_expiration(answer: Any) -> str:
    _require_cache_options(answer, "fresh_weather")
    key = _fresh_key()
    with _own_cache() as cache:
        state, values = _run(_calls_then_wait, cache, answer, key, 1.5)
    for city, value in zip(("oslo", "oslo", "cairo", "oslo"), values, strict=True):
        _require_weather(value, city)
    states = [r.state for r in task_runs(state, expected=4)]
    calls = weather_calls(key)
    expect(
        states[1] == "Cached",
        f"the second call, right after the first, ended {states[1]}; expected Cached. "
        + _why_nothing_is_cached(
            answer,
            "Keep cache_policy=INPUTS (a policy other than NO_CACHE turns persist_result on; cache_expiration "
            "alone does not) and make the entry live for a second.",
        ),
    )
    expect(
        states[2] == "Completed" and _city(values[2]) == "Cairo",
        f"the call for 'cairo' ended {states[2]} and returned {_city(values[2])}'s weather; expected Completed "
        "with Cairo's: cache by inputs (INPUTS).",
    )
    lifetime = answer.cache_expiration  # Prefect stamps each record with now + cache_expiration (task_engine.py)
    expect(
        states[3] == "Completed" and calls == 3,
        f"the call 1.5 s later ended {states[3]} ({calls} requests in all); expected Completed: the entry should "
        "have expired after 1 second. "
        + (
            "Set cache_expiration=timedelta(seconds=1): without it an entry never expires."
            if lifetime is None
            else f"Your cache_expiration of {lifetime.total_seconds():g} s keeps it longer; set it to 1 second."
        ),
    )
    expect(
        lifetime == timedelta(seconds=1),
        f"cache_expiration is {short(lifetime)} ({lifetime.total_seconds():g} s); the exercise asks for 1 second",
    )
    return f"{states}: the entry was reused at once and had expired 1.5 s later ({calls} requests)."


def _grade_retry(answer: Any) -> str:
    _require_cache_options(answer, "expensive_forecast")
    key = _fresh_key()
    with _own_cache() as cache:
        first, values = _run(_fetch_then_fail_once, cache, answer, key)
        fetches = [r.state for r in task_runs(first) if r.task_key == answer.task_key]
        after_retry = weather_calls(key)
        _run(_fetch_then_fail_once, cache, answer, key)
        after_new_run = weather_calls(key)
    for city, value in zip(("oslo", "cairo"), values, strict=True):
        _require_weather(value, city)
    expect(
        _city(values[1]) == "Cairo",
        f"the call for 'cairo' returned {_city(values[1])}'s forecast: your cache key ignores the city. Key the "
        "cache on the task's inputs too.",
    )
    expect(
        after_retry == 2,
        f"the flow retry called the service again: your task's runs ended {fetches} and the demo API received "
        f"{after_retry} requests for 2 cities; expected 2. "
        + _why_nothing_is_cached(
            answer,
            "Give the task a cache policy other than NO_CACHE (it turns persist_result on when you leave that "
            "unset) so the retry finds the records.",
        ),
    )
    expect(
        after_new_run == 4,
        f"a new flow run reused the first run's forecasts (the demo API has {after_new_run} requests; expected 4)."
        " Add RUN_ID to the cache key: a policy of INPUTS alone is shared by all runs.",
    )
    return f"retry of the same flow run: {fetches} (2 requests); a new flow run called the service again."


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
                "Import INPUTS from prefect.cache_policies and write @task(cache_policy=INPUTS) (no quotes).",
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
                "cache_expiration takes a datetime.timedelta, not a number of seconds.",
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
                "Any cache policy other than NO_CACHE turns persist_result on when you leave it unset.",
            ],
            solution=[expensive_forecast],
            answer=lambda: expensive_forecast,
        ),
    ],
)
