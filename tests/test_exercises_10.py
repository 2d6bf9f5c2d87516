"""Each check of pair 10 rejects the given bug and other near misses with a clear message, and accepts other fixes.

Right answers written unlike the reference (async ones too) are evaluated twice: caches and limits that a first check
leaves on the server must not change the second verdict.
"""

import httpx
import pytest
from prefect import flow, task
from prefect.cache_policies import DEFAULT, INPUTS, NO_CACHE, RUN_ID, TASK_SOURCE
from prefect.client.orchestration import get_client
from prefect.concurrency.asyncio import concurrency as async_concurrency
from prefect.concurrency.sync import concurrency
from prefect.futures import wait

from lessons_src.demo_api import get_demo_api, start_demo_api
from lessons_src.exercises import exercises
from lessons_src.exercises.e10_pitfall_lab import (
    LIMITED_DELAY,
    ORDERS_LIMIT,
    PREFIX,
    city_name,
    fetch_order,
    flaky_publish,
    get_json,
)
from lessons_src.pairs.p05_concurrency_limits import ensure_limit, remove_course_objects

EX = exercises("10")


@pytest.fixture
def demo_api(course_server):
    """The demo API with fresh counters; the limits the checks made are removed afterwards."""
    api = start_demo_api()
    api.reset()
    yield api
    remove_course_objects(PREFIX)


# ---- exercise 1: a failed task must fail the flow (the given bug: wait() alone) ----


@flow
def count_orders_only_waits(order_ids: list[int]) -> int:
    futures = fetch_order.map(order_ids)
    wait(futures)
    return len(futures)


@flow
def count_orders_counts_successes(order_ids: list[int]) -> int:
    futures = fetch_order.map(order_ids)
    wait(futures)
    return sum(future.state.is_completed() for future in futures)


@flow
def count_orders_without_tasks(order_ids: list[int]) -> int:
    return len([fetch_order.fn(order_id) for order_id in order_ids])


@flow
def count_orders_returns_orders(order_ids: list[int]) -> list:
    return fetch_order.map(order_ids).result()


@flow
def count_orders_one_by_one(order_ids: list[int]) -> int:
    return len([fetch_order(order_id) for order_id in order_ids])


@flow
def count_orders_returns_futures(order_ids: list[int]):
    return fetch_order.map(order_ids)


@flow
async def count_orders_async(order_ids: list[int]) -> int:
    futures = [fetch_order.submit(order_id) for order_id in order_ids]
    return sum(1 for future in futures if future.result())


# ---- exercise 2: a concurrency limit that really limits (the given bug: a typo, not strict) ----


def _get(order_id: int) -> httpx.Response:
    return httpx.get(get_demo_api().url_for(f"/orders/{order_id}", delay=LIMITED_DELAY), timeout=10)


@task
def limited_with_typo(order_id: int) -> int:
    with concurrency(PREFIX + "order"):
        response = _get(order_id)
    return response.status_code


@task
def limited_with_typo_strict(order_id: int) -> int:
    with concurrency(PREFIX + "order", strict=True):
        response = _get(order_id)
    return response.status_code


@task
def limited_not_strict(order_id: int) -> int:
    with concurrency(ORDERS_LIMIT):
        response = _get(order_id)
    return response.status_code


@task
def limited_slot_given_back_too_soon(order_id: int) -> int:
    with concurrency(ORDERS_LIMIT, strict=True):
        url = get_demo_api().url_for(f"/orders/{order_id}", delay=LIMITED_DELAY)
    return httpx.get(url, timeout=10).status_code


@task
async def limited_async(order_id: int) -> int:
    async with async_concurrency([ORDERS_LIMIT], occupy=1, strict=True):
        async with httpx.AsyncClient(timeout=10) as client:
            response = await client.get(get_demo_api().url_for(f"/orders/{order_id}", delay=LIMITED_DELAY))
    return response.status_code


@task
def limited_catching_the_missing_limit(order_id: int) -> int:
    try:
        with concurrency(ORDERS_LIMIT, strict=True):
            return _get(order_id).status_code
    except Exception:  # the strict error is caught: the request goes out unlimited
        return _get(order_id).status_code


def _limited_status(url: str) -> int:
    with concurrency("course-10x-orders", strict=True), httpx.Client(timeout=10) as client:
        return client.get(url).status_code


@task
def limited_through_a_helper(order_id: int) -> int:
    return _limited_status(get_demo_api().url_for(f"/orders/{order_id}", delay=LIMITED_DELAY))


# ---- exercise 3: factory-made tasks with their own cache (the given bug: INPUTS + TASK_SOURCE) ----


def factory_sharing_a_cache(city: str):
    @task(cache_policy=INPUTS + TASK_SOURCE)
    def city_weather(key: str) -> str:
        return city_name(city, key)

    return city_weather


def factory_without_cache(city: str):
    @task(cache_policy=NO_CACHE)
    def city_weather(key: str) -> str:
        return city_name(city, key)

    return city_weather


def factory_keyed_on_city_only(city: str):
    def city_key(context, parameters: dict) -> str:
        return f"weather-{city}"

    @task(cache_key_fn=city_key)
    def city_weather(key: str) -> str:
        return city_name(city, key)

    return city_weather


def factory_with_city_as_default_argument(city: str):
    @task(cache_policy=INPUTS + TASK_SOURCE)
    def city_weather(key: str, city: str = city) -> str:
        return city_name(city, key)

    return city_weather


def factory_by_function_call(city: str):
    def city_weather(key: str) -> str:
        return city_name(city, key)

    return task(city_weather, cache_key_fn=lambda context, parameters: f"{city}|{parameters['key']}")


# ---- exercise 4: a flow retry that reuses the expensive step ----


@task
def forecast_not_persisted(city: str, key: str) -> dict:
    return get_json(get_demo_api().url_for(f"/weather/{city}", key=key))


@task(cache_policy=INPUTS)
def forecast_by_inputs(city: str, key: str) -> dict:
    return get_json(get_demo_api().url_for(f"/weather/{city}", key=key))


@task(persist_result=True)
def forecast_persisted(city: str, key: str) -> dict:
    return get_json(get_demo_api().url_for(f"/weather/{city}", key=key))


@task(persist_result=True, cache_policy=NO_CACHE)
def forecast_persisted_without_a_cache(city: str, key: str) -> dict:
    return get_json(get_demo_api().url_for(f"/weather/{city}", key=key))


@flow(retries=1)
def forecast_persisted_not_cached(city: str, key: str) -> dict:
    forecast = forecast_persisted_without_a_cache(city, key)
    flaky_publish(key)
    return forecast


@flow(retries=1)
def forecast_as_given(city: str, key: str) -> dict:
    forecast = forecast_not_persisted(city, key)
    flaky_publish(key)
    return forecast


@flow(retries=1)
def forecast_cached_forever(city: str, key: str) -> dict:
    forecast = forecast_by_inputs(city, key)
    flaky_publish(key)
    return forecast


@flow
def forecast_retries_the_step(city: str, key: str) -> dict:
    forecast = forecast_persisted(city, key)
    flaky_publish.with_options(retries=1)(key)
    return forecast


@flow
def forecast_without_retries(city: str, key: str) -> dict:
    forecast = forecast_persisted(city, key)
    flaky_publish(key)
    return forecast


@task(cache_policy=DEFAULT)
def forecast_explicit_default_policy(city: str, key: str) -> dict:
    return get_json(get_demo_api().url_for(f"/weather/{city}", key=key))


@flow(retries=1)
def forecast_with_default_policy(city: str, key: str) -> dict:
    forecast = forecast_explicit_default_policy(city, key)
    flaky_publish(key)
    return forecast


@flow(retries=1)
async def forecast_async_run_id_policy(city: str, key: str) -> dict:
    forecast = forecast_not_persisted.with_options(cache_policy=INPUTS + RUN_ID)(city, key)
    flaky_publish(key)
    return forecast


# ---- exercise 5: two calls per second ----


def pacing(limit: int, slot_decay_per_second: float):
    def create_pacing_limit(name: str) -> None:
        with get_client(sync_client=True) as client:
            client.upsert_global_concurrency_limit_by_name(name, limit, slot_decay_per_second)

    return create_pacing_limit


def pacing_with_ensure_limit(name: str) -> None:
    ensure_limit(name, limit=1, slot_decay_per_second=1 / 0.5)


async def pacing_async(name: str) -> None:
    async with get_client() as client:
        await client.upsert_global_concurrency_limit_by_name(name, limit=1, slot_decay_per_second=2.0)


def pacing_inactive(name: str) -> None:
    ensure_limit(name, limit=1, slot_decay_per_second=2, active=False)


@pytest.mark.parametrize(
    ("number", "wrong", "expected_message"),
    [
        (1, count_orders_only_waits, "The flow must depend on its futures"),
        (1, count_orders_counts_successes, "The flow must depend on its futures"),
        (1, count_orders_without_tasks, "expected 3 fetch_order runs"),
        (1, count_orders_returns_orders, "expected 3, the number of orders"),
        (1, count_orders_one_by_one, "every order must be fetched, even after one fails"),
        (1, count_orders_returns_futures, "task-run states, not a count"),
        (2, limited_with_typo, "so your task holds no slot of that limit"),
        (2, limited_with_typo_strict, "Compare the name in concurrency(...)"),
        (2, limited_not_strict, "Pass strict=True"),
        (2, limited_slot_given_back_too_soon, "had already given its slot back"),
        (2, limited_catching_the_missing_limit, "let its error fail the task (do not catch it)"),
        (3, factory_sharing_a_cache, "served from the Oslo task's cache entry"),
        (3, factory_without_cache, "the repeat call should still be a hit"),
        (3, factory_keyed_on_city_only, "Include the key parameter"),
        (4, forecast_as_given, "Persist the task's result"),
        (4, forecast_persisted_not_cached, "not NO_CACHE"),
        (4, forecast_cached_forever, "INPUTS alone is shared by all runs"),
        (4, forecast_retries_the_step, "should be retried once"),
        (4, forecast_without_retries, "keep retries=1 on the flow"),
        (5, pacing(1, 0.5), "about 0.5 calls per second, not 2"),
        (5, pacing(1, 120), "more than the partner allows"),
        (5, pacing(1, 2.5), "about 2.5 calls per second, not 2, more than the partner allows"),
        (5, pacing(1, 1), "calls wait longer than they need to"),
        (5, pacing_inactive, "inactive"),
        (5, pacing(2, 2), "lets 2 calls through together"),
        (5, pacing(1, 0), "without slot_decay_per_second"),
    ],
    ids=lambda value: getattr(value, "__qualname__", str(value)).split(".")[0][:30],
)
def test_wrong_answers_are_rejected_twice_alike(graded, demo_api, number, wrong, expected_message):
    outcome = graded(EX, number, wrong)
    assert outcome.status == "failed" and expected_message in outcome.message, outcome


@pytest.mark.parametrize(
    ("number", "right"),
    [
        (1, count_orders_async),
        (2, limited_async),
        (2, limited_through_a_helper),
        (3, factory_with_city_as_default_argument),
        (3, factory_by_function_call),
        (4, forecast_with_default_policy),
        (4, forecast_async_run_id_policy),
        (5, pacing_with_ensure_limit),
        (5, pacing_async),
    ],
    ids=lambda value: getattr(value, "__name__", str(value))[:30],
)
def test_right_answers_written_differently_pass_twice(graded, demo_api, number, right):
    outcome = graded(EX, number, right)
    assert outcome.status == "passed", outcome


def test_factory_returning_a_plain_function_is_explained(demo_api):
    outcome = EX.evaluate(3, lambda city: (lambda key: city))
    assert outcome.status == "failed" and "@task" in outcome.message


@task(persist_result=True)
def weather_forecast(city: str, key: str) -> dict:
    return get_json(get_demo_api().url_for(f"/weather/{city}", key=key))


@flow(retries=1)
def forecast_with_a_renamed_task(city: str, key: str) -> dict:
    forecast = weather_forecast(city, key)
    flaky_publish(key)
    return forecast


def test_a_renamed_forecast_task_is_still_reported(graded, demo_api):
    outcome = graded(EX, 4, forecast_with_a_renamed_task)
    assert outcome.status == "passed" and "forecast task runs ['Completed', 'Cached']" in outcome.message, outcome
