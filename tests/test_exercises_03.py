"""Each check of pair 03 accepts right answers written unlike the reference (sync and async) and rejects near misses."""

import logging

import pytest
from prefect import flow
from prefect.futures import wait
from prefect.states import Completed, Failed

from lessons_src.checks import TODO
from lessons_src.exercises import exercises
from lessons_src.exercises.e03_error_handling_and_states import fetch_json, fetch_order, get_weather
from lessons_src.logs import quiet_console

EX = exercises("03")


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


@flow
def weather_hardcoded(city: str) -> str:
    state = get_weather(city, return_state=True)
    return "unavailable" if state.is_failed() else "snow"


@flow
def weather_try_except(city: str) -> str:
    try:
        return get_weather(city)["condition"]
    except Exception:
        return "unavailable"


@flow
async def weather_async(city: str) -> str:
    state = get_weather(city, return_state=True)
    if state.is_failed():
        return "unavailable"
    return (await state.aresult())["condition"]


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


@flow
def fetch_all_returns_futures(urls: list[str]) -> list:
    return [fetch_json.submit(url) for url in urls]


@flow
def fetch_all_fetches_twice(urls: list[str]) -> list:
    futures = [fetch_json.submit(url) for url in urls]
    wait(futures)
    return [fetch_json(url) for url in urls]


@flow
def fetch_all_mapped(urls: list[str]) -> list[dict]:
    return fetch_json.map(urls).result()


@flow
def fetch_all_one_by_one(urls: list[str]) -> list[dict]:
    return [fetch_json(url) for url in urls]


@flow
async def fetch_all_async(urls: list[str]) -> list[dict]:
    futures = [fetch_json.submit(url) for url in urls]
    return [future.result() for future in futures]


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


@flow
def orders_with_text_keys(order_ids: list[int]) -> dict:
    futures = [fetch_order.submit(order_id) for order_id in order_ids]
    wait(futures)
    failed = {str(i): str(f.result(raise_on_failure=False)) for i, f in zip(order_ids, futures, strict=True)}
    return {
        "orders": [f.result() for f in futures if f.state.is_completed()],
        "failed": {i: reason for (i, reason), f in zip(failed.items(), futures, strict=True) if f.state.is_failed()},
    }


@flow
def orders_with_vague_reasons(order_ids: list[int]) -> dict:
    futures = [fetch_order.submit(order_id) for order_id in order_ids]
    wait(futures)
    failed_ids = [i for i, f in zip(order_ids, futures, strict=True) if f.state.is_failed()]
    return {
        "orders": [f.result() for f in futures if f.state.is_completed()],
        "failed": {i: f"order {i} could not be fetched" for i in failed_ids},
    }


@flow
def orders_try_except(order_ids: list[int]) -> dict:
    futures = fetch_order.map(order_ids)
    orders, failed = [], {}
    for order_id, future in zip(order_ids, futures, strict=True):
        try:
            orders.append(future.result())
        except Exception as error:
            failed[order_id] = repr(error)
    return {"orders": orders, "failed": failed}


@flow
async def orders_async_one_by_one(order_ids: list[int]) -> dict:
    orders, failed = [], {}
    for order_id in order_ids:
        state = fetch_order(order_id, return_state=True)
        if state.is_completed():
            orders.append(await state.aresult())
        else:
            failed[order_id] = str(await state.aresult(raise_on_failure=False))
    return {"orders": orders, "failed": failed}


# ---- exercise 4: an on_failure hook that records failures ----

WRONG_FAILURES: list[dict] = []


def record_everything(flow, flow_run, state) -> None:
    WRONG_FAILURES.append({"flow_run": flow_run.name, "state": state.name, "message": state.message})


def record_with_wrong_signature(state) -> None:
    WRONG_FAILURES.append({"state": state.name})


def record_flow_name(flow, flow_run, state) -> None:
    WRONG_FAILURES.append({"flow_run": flow.name, "state": state.name, "message": state.message})


def record_whole_state(flow, flow_run, state) -> None:
    WRONG_FAILURES.append({"flow_run": flow_run.name, "state": state.name, "message": str(state)})


def record_state_type(flow, flow_run, state) -> None:
    WRONG_FAILURES.append({"flow_run": flow_run.name, "state": state.type.value, "message": state.message})


@flow(on_failure=[record_whole_state])
def nightly_records_whole_state(order_ids: list[int]) -> list[dict]:
    return [fetch_order(order_id) for order_id in order_ids]


@flow(on_failure=[record_state_type])
def nightly_records_state_type(order_ids: list[int]) -> list[dict]:
    return [fetch_order(order_id) for order_id in order_ids]


RIGHT_FAILURES: list[dict] = []


async def record_failure_async(fl, run, st) -> None:
    RIGHT_FAILURES.append(dict(message=st.message, state=st.name, flow_run=run.name))


@flow(on_failure=[record_failure_async])
async def nightly_async(order_ids: list[int]) -> list[dict]:
    return [fetch_order(order_id) for order_id in order_ids]


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


@flow
def batch_fixed_threshold(order_ids: list[int], max_failures: int = 1):
    futures = [fetch_order.submit(order_id) for order_id in order_ids]
    wait(futures)
    failed = [i for i, f in zip(order_ids, futures, strict=True) if not f.state.is_completed()]
    if len(failed) > 1:
        return Failed(message=f"{len(failed)} of {len(order_ids)} orders failed: {failed}")
    return [f.result() for f in futures if f.state.is_completed()]


@flow
def batch_raises(order_ids: list[int], max_failures: int = 1) -> list[dict]:
    futures = fetch_order.map(order_ids)
    wait(futures)
    failed = [i for i, f in zip(order_ids, futures, strict=True) if f.state.is_failed()]
    if len(failed) > max_failures:
        raise RuntimeError(f"{len(failed)} of {len(order_ids)} orders failed: {failed}")
    return [f.result() for f in futures if f.state.is_completed()]


@flow
async def batch_async_one_by_one(order_ids: list[int], max_failures: int = 1):
    states = [fetch_order(order_id, return_state=True) for order_id in order_ids]
    failed = [i for i, s in zip(order_ids, states, strict=True) if s.is_failed()]
    if len(failed) > max_failures:
        return Failed(message=f"{len(failed)} of {len(order_ids)} orders failed")
    return [await s.aresult() for s in states if s.is_completed()]


# ---- found by the second audit: lists that hold more than the orders, and a hook that appends elsewhere ----


@flow
def fetch_all_returns_order_ids(urls: list[str]) -> list[int]:
    return [future.result()["id"] for future in [fetch_json.submit(url) for url in urls]]


@flow
def fetch_all_fails_on_purpose(urls: list[str]):
    futures = [fetch_json.submit(url) for url in urls]
    wait(futures)
    if any(future.state.is_failed() for future in futures):
        return Failed(message="a fetch failed")
    return [future.result() for future in futures]


@flow
def orders_with_placeholders(order_ids: list[int]) -> dict:
    values = [future.result(raise_on_failure=False) for future in [fetch_order.submit(i) for i in order_ids]]
    return {
        "orders": [None if isinstance(value, Exception) else value for value in values],
        "failed": {i: str(value) for i, value in zip(order_ids, values, strict=True) if isinstance(value, Exception)},
    }


@flow
def orders_from_states(order_ids: list[int]) -> dict:
    report: dict = {"orders": [], "failed": {}}
    for order_id in order_ids:
        state = fetch_order(order_id, return_state=True)
        if state.is_failed():
            report["failed"][order_id] = f"{state.result(raise_on_failure=False)}"
        else:
            report["orders"].append(state.result())
    return report


ELSEWHERE: list[dict] = []


def record_elsewhere(flow, flow_run, state) -> None:
    ELSEWHERE.append({"flow_run": flow_run.name, "state": state.name, "message": state.message})


@flow(on_failure=[record_elsewhere])
def nightly_appends_elsewhere(order_ids: list[int]) -> list[dict]:
    return [fetch_order(order_id) for order_id in order_ids]


@flow
def batch_keeps_exceptions(order_ids: list[int], max_failures: int = 1):
    values = [future.result(raise_on_failure=False) for future in fetch_order.map(order_ids)]
    failed = [value for value in values if isinstance(value, Exception)]
    if len(failed) > max_failures:
        return Failed(message=f"{len(failed)} of {len(order_ids)} orders failed")
    return values


@flow
def batch_completed_with_data(order_ids: list[int], max_failures: int = 1):
    futures = [fetch_order.submit(order_id) for order_id in order_ids]
    wait(futures)
    failed = [i for i, f in zip(order_ids, futures, strict=True) if not f.state.is_completed()]
    if len(failed) > max_failures:
        return Failed(message=f"Too many: {len(failed)} of {len(order_ids)} orders failed ({failed})")
    return Completed(message="ok", data=[f.result() for f in futures if f.state.is_completed()])


@pytest.mark.parametrize(
    ("number", "wrong", "expected_message"),
    [
        (1, weather_unhandled, "failed the whole flow"),
        (1, weather_without_task, "expected one Failed get_weather run"),
        (1, weather_hardcoded, "expected 'sunny'"),
        (2, fetch_all_forgets, "nothing in the flow raised the failure or returned it"),
        (2, fetch_all_only_waits, "nothing in the flow raised the failure or returned it"),
        (2, fetch_all_returns_ids, "expected the three JSON bodies"),
        (2, fetch_all_returns_order_ids, "expected the three JSON bodies"),
        (3, orders_with_placeholders, "expected only the orders that arrived"),
        (4, (nightly_appends_elsewhere, WRONG_FAILURES), "your hook ran"),
        (5, batch_keeps_exceptions, "expected only the 3 orders that arrived"),
        (2, fetch_all_returns_futures, "hand its caller their final states"),
        (2, fetch_all_fetches_twice, "expected 1 per URL"),
        (3, orders_all_or_nothing, "finish anyway"),
        (3, orders_without_report, "expected a dict with keys 998 and 999"),
        (3, orders_swallowed_in_flow, "so the failures stay visible"),
        (3, orders_with_text_keys, "the ints 998 and 999"),
        (3, orders_with_vague_reasons, "names the 404 and the URL /orders/998"),
        (4, (nightly_records_everything, WRONG_FAILURES), "not on_completion"),
        (4, (nightly_wrong_signature, WRONG_FAILURES), "hook(flow, flow_run, state)"),
        (4, (nightly_no_hook, WRONG_FAILURES), "No hook ran"),
        (4, (nightly_records_flow_name, WRONG_FAILURES), "use flow_run.name"),
        (4, (nightly_records_whole_state, WRONG_FAILURES), "use state.message"),
        (4, (nightly_records_state_type, WRONG_FAILURES), "use state.name"),
        (4, nightly_no_hook, "pass a pair"),
        (5, batch_all_or_nothing, "expected Completed"),
        (5, batch_always_graceful, "expected Failed"),
        (5, batch_off_by_one, "expected Completed"),
        (5, batch_stops_at_first_failure, "expected it to say '3 of 5 orders failed'"),
        (5, batch_fixed_threshold, "max_failures=3"),
    ],
    ids=lambda value: getattr(
        value, "__name__", getattr(value[0], "__name__", str(value)) if isinstance(value, tuple) else str(value)
    )[:30],
)
def test_wrong_answers_are_rejected_twice_alike(graded, fresh_demo_api, number, wrong, expected_message):
    outcome = graded(EX, number, wrong)
    assert outcome.status == "failed" and expected_message in outcome.message, outcome


@pytest.mark.parametrize(
    ("number", "right"),
    [
        (1, weather_try_except),
        (1, weather_async),
        (2, fetch_all_mapped),
        (2, fetch_all_one_by_one),
        (2, fetch_all_async),
        (2, fetch_all_fails_on_purpose),
        (3, orders_from_states),
        (5, batch_completed_with_data),
        (3, orders_try_except),
        (3, orders_async_one_by_one),
        (5, batch_raises),
        (5, batch_async_one_by_one),
    ],
    ids=lambda value: getattr(value, "__name__", str(value))[:30],
)
def test_right_answers_written_differently_pass_twice(graded, fresh_demo_api, number, right):
    outcome = graded(EX, number, right)
    assert outcome.status == "passed", outcome


def test_an_async_hook_on_an_async_flow_passes_twice(fresh_demo_api):
    """The hook's list grows run after run: the verdict must not depend on what an earlier check left in it."""
    with quiet_console(logging.CRITICAL):
        outcomes = [EX.evaluate(4, (nightly_async, RIGHT_FAILURES)) for _ in range(2)]
    assert [o.status for o in outcomes] == ["passed", "passed"], [o.message for o in outcomes]
    assert len(RIGHT_FAILURES) == 2


TEMPLATE_FAILURES: list[dict] = []


def record_failure_left_as_todo(flow, flow_run, state) -> None:
    TEMPLATE_FAILURES.append(TODO)


@flow(on_failure=[record_failure_left_as_todo])
def nightly_template(order_ids: list[int]) -> list[dict]:
    return [fetch_order(order_id) for order_id in order_ids]


def test_hook_left_as_todo_is_unsolved():
    assert EX.evaluate(4, (nightly_template, TEMPLATE_FAILURES)).status == "unsolved"
