"""Each check of pair 03 accepts the reference solution and rejects plausible wrong answers."""

import pytest
from prefect import flow
from prefect.futures import wait
from prefect.states import Failed

from lessons_src.checks import TODO
from lessons_src.demo_api import start_demo_api
from lessons_src.exercises import exercises
from lessons_src.exercises.e03_error_handling_and_states import fetch_json, fetch_order, get_weather

EX = exercises("03")


@pytest.fixture
def demo_api(course_server):
    """The demo API with fresh counters."""
    api = start_demo_api()
    api.reset()
    return api


# ---- exercise 1: route on a task's state ----


@flow
def weather_unhandled(city: str) -> str:
    return get_weather(city)["condition"]


@flow
def weather_without_task(city: str) -> str:
    try:
        return get_weather.fn(city)["condition"]
    except Exception:
        return "unavailable"


# ---- exercise 2: don't let a failed task hide ----


@flow
def fetch_all_forgets(urls: list[str]) -> None:
    for url in urls:
        fetch_json.submit(url)


@flow
def fetch_all_only_waits(urls: list[str]) -> list:
    futures = [fetch_json.submit(url) for url in urls]
    wait(futures)
    return [future.result(raise_on_failure=False) for future in futures]


@flow
def fetch_all_returns_ids(urls: list[str]) -> list:
    futures = [fetch_json.submit(url) for url in urls]
    return [future.result()["customer"] for future in futures]


# ---- exercise 3: a partial result and a failure report ----


@flow
def orders_all_or_nothing(order_ids: list[int]) -> dict:
    futures = [fetch_order.submit(order_id) for order_id in order_ids]
    return {"orders": [future.result() for future in futures], "failed": {}}


@flow
def orders_without_report(order_ids: list[int]) -> dict:
    futures = [fetch_order.submit(order_id) for order_id in order_ids]
    wait(futures)
    return {"orders": [f.result() for f in futures if f.state.is_completed()], "failed": {}}


@flow
def orders_swallowed_in_flow(order_ids: list[int]) -> dict:
    orders, failed = [], {}
    for order_id in order_ids:
        try:
            orders.append(fetch_order.fn(order_id))
        except Exception as error:
            failed[order_id] = str(error)
    return {"orders": orders, "failed": failed}


# ---- exercise 4: an on_failure hook that records failures ----

WRONG_FAILURES: list[dict] = []


def record_everything(flow, flow_run, state) -> None:
    WRONG_FAILURES.append({"flow_run": flow_run.name, "state": state.name, "message": state.message})


def record_with_wrong_signature(state) -> None:
    WRONG_FAILURES.append({"state": state.name})


def record_flow_name(flow, flow_run, state) -> None:
    WRONG_FAILURES.append({"flow_run": flow.name, "state": state.name, "message": state.message})


@flow(on_failure=[record_everything], on_completion=[record_everything])
def nightly_records_everything(order_ids: list[int]) -> list[dict]:
    return [fetch_order(order_id) for order_id in order_ids]


@flow(on_failure=[record_with_wrong_signature])
def nightly_wrong_signature(order_ids: list[int]) -> list[dict]:
    return [fetch_order(order_id) for order_id in order_ids]


@flow
def nightly_no_hook(order_ids: list[int]) -> list[dict]:
    return [fetch_order(order_id) for order_id in order_ids]


@flow(on_failure=[record_flow_name])
def nightly_records_flow_name(order_ids: list[int]) -> list[dict]:
    return [fetch_order(order_id) for order_id in order_ids]


# ---- exercise 5: degrade, but fail above a threshold ----


@flow
def batch_all_or_nothing(order_ids: list[int], max_failures: int = 1) -> list[dict]:
    futures = [fetch_order.submit(order_id) for order_id in order_ids]
    return [future.result() for future in futures]


@flow
def batch_always_graceful(order_ids: list[int], max_failures: int = 1) -> list[dict]:
    futures = [fetch_order.submit(order_id) for order_id in order_ids]
    wait(futures)
    return [future.result() for future in futures if future.state.is_completed()]


@flow
def batch_off_by_one(order_ids: list[int], max_failures: int = 1):
    futures = [fetch_order.submit(order_id) for order_id in order_ids]
    wait(futures)
    failed = [f for f in futures if not f.state.is_completed()]
    if len(failed) >= max_failures:
        return Failed(message=f"{len(failed)} of {len(order_ids)} orders failed")
    return [future.result() for future in futures if future.state.is_completed()]


@flow
def batch_stops_at_first_failure(order_ids: list[int], max_failures: int = 1):
    orders, failed = [], 0
    for order_id in order_ids:
        state = fetch_order(order_id, return_state=True)
        if state.is_completed():
            orders.append(state.result())
        else:
            failed += 1
            if failed > max_failures:
                return Failed(
                    message=f"{failed + len(order_ids) - len(orders) - failed} of {len(order_ids)} orders failed"
                )
    return orders


@pytest.mark.parametrize(
    ("number", "wrong", "expected_message"),
    [
        (1, weather_unhandled, "failed the whole flow"),
        (1, weather_without_task, "expected one Failed get_weather run"),
        (2, fetch_all_forgets, "were never waited for or returned"),
        (2, fetch_all_only_waits, "were never waited for or returned"),
        (2, fetch_all_returns_ids, "expected the three orders"),
        (3, orders_all_or_nothing, "finish anyway"),
        (3, orders_without_report, "expected a dict with keys 998 and 999"),
        (3, orders_swallowed_in_flow, "so the failures stay visible"),
        (4, (nightly_records_everything, WRONG_FAILURES), "not on_completion"),
        (4, (nightly_wrong_signature, WRONG_FAILURES), "hook(flow, flow_run, state)"),
        (4, (nightly_no_hook, WRONG_FAILURES), "No hook ran"),
        (4, (nightly_records_flow_name, WRONG_FAILURES), "use flow_run.name"),
        (4, nightly_no_hook, "pass a pair"),
        (5, batch_all_or_nothing, "expected Completed"),
        (5, batch_always_graceful, "expected Failed"),
        (5, batch_off_by_one, "expected Completed"),
        (5, batch_stops_at_first_failure, "expected it to say '3 of 5 orders failed'"),
    ],
    ids=lambda value: getattr(
        value, "__name__", getattr(value[0], "__name__", str(value)) if isinstance(value, tuple) else str(value)
    )[:30],
)
def test_wrong_answers_are_rejected(demo_api, number, wrong, expected_message):
    outcome = EX.evaluate(number, wrong)
    assert outcome.status == "failed"
    assert expected_message in outcome.message, outcome.message


TEMPLATE_FAILURES: list[dict] = []


def record_failure_left_as_todo(flow, flow_run, state) -> None:
    TEMPLATE_FAILURES.append(TODO)


@flow(on_failure=[record_failure_left_as_todo])
def nightly_template(order_ids: list[int]) -> list[dict]:
    return [fetch_order(order_id) for order_id in order_ids]


def test_hook_left_as_todo_is_unsolved():
    assert EX.evaluate(4, (nightly_template, TEMPLATE_FAILURES)).status == "unsolved"
