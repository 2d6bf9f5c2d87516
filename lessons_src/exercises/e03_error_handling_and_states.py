"""Exercises for pair 03 (error handling and states): graders read final states, task runs, logs and API counters."""

from __future__ import annotations

import re
import uuid
from typing import Any

import httpx
from prefect import flow, task
from prefect.futures import wait
from prefect.states import Failed, State

from lessons_src.checks import (
    CheckFailed,
    Exercise,
    ExerciseSet,
    expect,
    require_flow,
    require_solved,
    run_flow,
    short,
    without_traceback,
)
from lessons_src.demo_api import DemoAPI, get_demo_api, start_demo_api
from lessons_src.demo_api.app import WEATHER
from lessons_src.runs import flow_run_logs, read_flow_run, task_runs

RECORDS_WAIT_S = 5.0  # how long a check waits for the task runs it expects to be recorded on the server

# ---- the tasks the exercise notebook gives (the same code as its "given" cell) ----


@task
def fetch_json(url: str) -> dict:
    response = httpx.get(url, timeout=10)
    response.raise_for_status()
    return response.json()


@task
def get_weather(city: str) -> dict:
    return fetch_json.fn(get_demo_api().url_for(f"/weather/{city}"))


@task
def fetch_order(order_id: int) -> dict:
    return fetch_json.fn(get_demo_api().url_for(f"/orders/{order_id}"))


# ---- reference solutions (shown by ex.solution(n)) ----


@flow
def weather_condition(city: str) -> str:
    state = get_weather(city, return_state=True)
    if state.is_failed():
        return "unavailable"
    return state.result()["condition"]


@flow
def fetch_all(urls: list[str]) -> list[dict]:
    futures = [fetch_json.submit(url) for url in urls]
    return [future.result() for future in futures]


@flow
def orders_with_report(order_ids: list[int]) -> dict:
    futures = [fetch_order.submit(order_id) for order_id in order_ids]
    wait(futures)
    orders, failed = [], {}
    for order_id, future in zip(order_ids, futures, strict=True):
        if future.state.is_completed():
            orders.append(future.result())
        else:
            failed[order_id] = str(future.result(raise_on_failure=False))
    return {"orders": orders, "failed": failed}


FAILURES: list[dict] = []


def record_failure(flow, flow_run, state) -> None:
    FAILURES.append({"flow_run": flow_run.name, "state": state.name, "message": state.message})


@flow(on_failure=[record_failure])
def nightly_orders(order_ids: list[int]) -> list[dict]:
    return [fetch_order(order_id) for order_id in order_ids]


@flow
def checked_batch(order_ids: list[int], max_failures: int = 1):
    futures = [fetch_order.submit(order_id) for order_id in order_ids]
    wait(futures)
    orders = [future.result() for future in futures if future.state.is_completed()]
    failed = [order_id for order_id, future in zip(order_ids, futures, strict=True) if not future.state.is_completed()]
    if len(failed) > max_failures:
        return Failed(message=f"{len(failed)} of {len(order_ids)} orders failed: {failed}")
    return orders


# ---- graders ----


def _requests_since(api: DemoAPI, count_before: int, path_prefix: str) -> list[dict[str, Any]]:
    """Return the requests the demo API logged after the first `count_before`, whose path starts with the prefix."""
    return [r for r in api.stats().requests[count_before:] if r["path"].startswith(path_prefix)]


def _order_ids(value: Any) -> list[Any] | None:
    """Return the 'id' of each order in a list of dicts, or None when `value` is not a list of dicts only."""
    if isinstance(value, list) and all(isinstance(item, dict) for item in value):
        return [item.get("id") for item in value]
    return None


def _is_state_list(value: Any) -> bool:
    return isinstance(value, list) and bool(value) and all(isinstance(item, State) for item in value)


def _grade_weather_condition(answer: Any) -> str:
    require_flow(answer, "weather_condition")
    for city in ("oslo", "cairo"):  # two conditions, so only a value read from the task's result passes
        expected = WEATHER[city][3]
        value, state = run_flow(answer, city)
        coroutine = "coroutine" in str(value)
        expect(
            state.is_completed(),
            f"weather_condition({city!r}) ended {state.name}: {short(value)}"
            + (". In an async flow state.result() is a coroutine: use await state.aresult()." if coroutine else ""),
        )
        expect(
            value == expected,
            f"weather_condition({city!r}) returned {short(value)}; expected {expected!r}, the 'condition' field of "
            "the weather the get_weather task fetched",
        )
    value, state = run_flow(answer, "atlantis")
    expect(
        state.is_completed(),
        f"weather_condition('atlantis') ended {state.name}: the 404 from the API failed the whole flow. "
        "Get the task's state with return_state=True and route on state.is_failed().",
    )
    expect(value == "unavailable", f"weather_condition('atlantis') returned {short(value)}; expected 'unavailable'")
    runs = task_runs(state, expected=1, timeout=RECORDS_WAIT_S, or_fewer=True)
    expect(
        [r.state for r in runs] == ["Failed"],
        f"for 'atlantis' the server recorded task runs {[r.state for r in runs]}; expected one Failed get_weather "
        "run. Call the get_weather task (not plain httpx) so the failure stays visible in Prefect.",
    )
    return "'oslo' gave 'snow', 'cairo' 'sunny'; for 'atlantis' the task run is Failed and the flow Completed."


def _grade_fetch_all(answer: Any) -> str:
    require_flow(answer, "fetch_all")
    api = start_demo_api()
    tag = uuid.uuid4().hex[:8]
    failing = [
        api.url_for(f"/orders/{i}", key=f"ex2-{tag}-fail-{i}", status=500 if i == 2 else None) for i in (1, 2, 3)
    ]
    value, state = run_flow(answer, failing)
    if not state.is_failed():
        failed_runs = sum(
            r.state == "Failed" for r in task_runs(state, expected=3, timeout=RECORDS_WAIT_S, or_fewer=True)
        )
        raise CheckFailed(
            f"with one URL answering 500 the flow ended {state.name} although the server recorded {failed_runs} "
            "Failed task run(s): nothing in the flow raised the failure or returned it (dropping the futures, "
            "wait() alone, or .result(raise_on_failure=False) all hide it). Call .result() on each future."
        )
    repeated = {i: n for i in (1, 2, 3) if (n := api.stats().attempts(f"ex2-{tag}-fail-{i}")) > 1}
    expect(not repeated, f"with one URL answering 500 the demo API saw repeated calls {repeated}; expected 1 per URL")
    state_name = state.name
    healthy = [api.url_for(f"/orders/{i}", key=f"ex2-{tag}-ok-{i}") for i in (1, 2, 3)]
    value, state = run_flow(answer, healthy)
    expect(state.is_completed(), f"with three healthy URLs the flow ended {state.name}: {short(value)}")
    if _is_state_list(value):
        raise CheckFailed(
            f"fetch_all returned {len(value)} task-run states ({', '.join(s.name for s in value)}), not the JSON "
            "bodies: a flow that returns its futures makes Prefect hand its caller their final states. Return "
            "[future.result() for future in futures]: the values, and a failed one still raises in the flow."
        )
    expect(
        _order_ids(value) == [1, 2, 3],
        f"fetch_all returned {short(value)}; expected the three JSON bodies themselves (dicts with ids 1, 2, 3), in "
        "order",
    )
    attempts = {i: api.stats().attempts(f"ex2-{tag}-ok-{i}") for i in (1, 2, 3)}
    expect(all(n == 1 for n in attempts.values()), f"the demo API saw these calls per URL: {attempts}; expected 1 each")
    return f"one URL answering 500 made the flow {state_name}; three healthy URLs returned the 3 orders."


def _grade_orders_with_report(answer: Any) -> str:
    require_flow(answer, "orders_with_report")
    api = start_demo_api()
    before = api.stats().total
    value, state = run_flow(answer, [1, 2, 998, 3, 999])
    expect(
        state.is_completed(),
        f"the flow ended {state.name}: {short(value)}. Two orders do not exist; finish anyway with what arrived.",
    )
    expect(isinstance(value, dict), f"the flow returned {short(value)}; expected a dict with 'orders' and 'failed'")
    orders, failed = value.get("orders"), value.get("failed")
    expect(
        _order_ids(orders) == [1, 2, 3],
        f"value['orders'] is {short(orders)}; expected only the orders that arrived (dicts with ids 1, 2, 3), in "
        "that order",
    )
    keys = sorted(failed, key=str) if isinstance(failed, dict) else None
    expect(
        keys != ["998", "999"],
        f"value['failed'] has the keys {keys} (text); expected the order ids themselves, the ints 998 and 999",
    )
    expect(
        isinstance(failed, dict) and set(failed) == {998, 999},
        f"value['failed'] is {short(failed)}; expected a dict with keys 998 and 999 (the ids that failed)",
    )
    for order_id, reason in failed.items():
        expect(
            "404" in str(reason) and f"/orders/{order_id}" in str(reason),
            f"value['failed'][{order_id}] is {short(reason)}; expected the text of that task's exception, which "
            f"names the 404 and the URL /orders/{order_id}: str(future.result(raise_on_failure=False))",
        )
    runs = task_runs(state, expected=5, timeout=RECORDS_WAIT_S, or_fewer=True)
    states = sorted(r.state for r in runs)
    expect(
        states == ["Completed"] * 3 + ["Failed"] * 2,
        f"the server recorded task runs {states}; expected 3 Completed and 2 Failed fetch_order runs, so the "
        "failures stay visible in the UI",
    )
    fetched = len(_requests_since(api, before, "/orders/"))
    expect(fetched == 5, f"the demo API received {fetched} order requests; expected 5, one per id")
    return "Completed with 3 orders and a report naming 998 and 999; their task runs stay Failed on the server."


def _grade_nightly_orders(answer: Any) -> str:
    expect(
        isinstance(answer, tuple) and len(answer) == 2,
        f"pass a pair: ex.check(4, (nightly_orders, FAILURES)); got {short(answer)}",
    )
    nightly, failures = answer
    require_flow(nightly, "nightly_orders")
    for hook in [*nightly.on_failure_hooks, *nightly.on_completion_hooks]:
        require_solved(hook)
    expect(isinstance(failures, list), f"FAILURES should be a list, but it is {type(failures).__name__}")
    before = len(failures)
    value, state = run_flow(nightly, [1, 2])
    expect(state.is_completed(), f"nightly_orders([1, 2]) ended {state.name}: {short(value)}")
    expect(
        len(failures) == before,
        f"after a Completed run FAILURES grew by {len(failures) - before}: {short(failures[before:])}. "
        "Attach the hook with on_failure=, not on_completion=.",
    )
    value, state = run_flow(nightly, [1, 999])
    expect(state.is_failed(), f"nightly_orders([1, 999]) ended {state.name}; expected Failed (order 999 is a 404)")
    if len(failures) == before:
        logs = flow_run_logs(state, contains="while running hook", timeout=3.0)
        hook_errors = [m for m in logs if "error was encountered while running hook" in m]
        hooks_ran = [m for m in logs if "finished running successfully" in m]
        if hook_errors:
            reason = (
                f"Prefect logged: '{without_traceback(hook_errors[0])}'. A flow hook is called as hook(flow, flow_run, "
                "state)."
            )
        elif hooks_ran:
            reason = (
                f"Prefect logged '{hooks_ran[0]}', so your hook ran, but it did not append to the list you passed "
                "to ex.check: append to that same FAILURES list."
            )
        else:
            reason = "No hook ran: pass it as @flow(on_failure=[record_failure])."
        raise CheckFailed("the run ended Failed but FAILURES is unchanged. " + reason)
    expect(len(failures) == before + 1, f"one failed run added {len(failures) - before} entries; expected 1")
    entry, recorded = failures[-1], read_flow_run(state)
    expect(isinstance(entry, dict), f"the new entry is {short(entry)}; expected a dict")
    expect(
        entry.get("flow_run") == recorded.name,
        f"entry['flow_run'] is {short(entry.get('flow_run'))}; the server calls this run '{recorded.name}' "
        "(use flow_run.name)",
    )
    expect(
        entry.get("state") == recorded.state_name,
        f"entry['state'] is {short(entry.get('state'))}; expected {recorded.state_name!r}, the state's name "
        "(use state.name)",
    )
    expect(
        entry.get("message") == recorded.state.message,
        f"entry['message'] is {short(entry.get('message'))}; expected the state's message as the server has it, "
        f"{short(recorded.state.message)} (use state.message)",
    )
    return f"one entry for the failed run '{recorded.name}', none for the completed one."


def _grade_checked_batch(answer: Any) -> str:
    require_flow(answer, "checked_batch")
    api = start_demo_api()
    value, state = run_flow(answer, [1, 2, 999, 3], max_failures=1)
    expect(
        state.is_completed(),
        f"with 1 failure out of 4 (max_failures=1) the flow ended {state.name} ({short(state.message)}); expected "
        "Completed: up to max_failures failures are allowed",
    )
    expect(
        _order_ids(value) == [1, 2, 3],
        f"with 1 failure the flow returned {short(value)}; expected only the 3 orders that arrived (dicts with ids "
        "1, 2, 3)",
    )
    before = api.stats().total
    value, state = run_flow(answer, [1, 997, 998, 999, 2], max_failures=1)
    expect(
        state.is_failed(),
        f"with 3 failures out of 5 (max_failures=1) the flow ended {state.name}; expected Failed. "
        "Return Failed(message=...) when more than max_failures orders failed.",
    )
    message = state.message or ""
    expect(
        re.search(r"\b3 of 5 orders failed", message) is not None,
        f"the Failed state's message is {short(message)}; expected it to say '3 of 5 orders failed' (3 of the 5 ids "
        "do not exist: try every order, then count)",
    )
    fetched = len(_requests_since(api, before, "/orders/"))
    expect(fetched == 5, f"the demo API received {fetched} order requests; expected all 5 to be tried")
    value, state = run_flow(answer, [1, 997, 998, 999, 2], max_failures=3)
    expect(
        state.is_completed(),
        f"with the same 3 failures and max_failures=3 the flow ended {state.name}: {short(state.message)}; expected "
        "Completed. Compare the failures with the max_failures argument, not with a fixed number.",
    )
    expect(
        _order_ids(value) == [1, 2],
        f"with max_failures=3 the flow returned {short(value)}; expected only the 2 orders that arrived (dicts with "
        "ids 1, 2)",
    )
    return f"Completed under the threshold; Failed above it with {short(message)}; max_failures is obeyed."


EXERCISES = ExerciseSet(
    pair="03",
    title="Error handling and states",
    exercises=[
        Exercise(
            1,
            "route on a task's state",
            _grade_weather_condition,
            hints=[
                "`get_weather(city, return_state=True)` runs the task and returns its final state instead of raising.",
                "if state.is_failed(): return 'unavailable'; else return state.result()['condition'] "
                "(in an async flow, state.result() is a coroutine: use await state.aresult()).",
            ],
            solution=[weather_condition],
            answer=lambda: weather_condition,
        ),
        Exercise(
            2,
            "don't let a failed task hide",
            _grade_fetch_all,
            hints=[
                "A flow that drops its futures ends Completed even when a task failed. Keep them in a list.",
                "return [future.result() for future in futures]: a failed one raises inside the flow. (Returning the "
                "futures fails the flow too, but its caller then gets their states, not the JSON.)",
            ],
            solution=[fetch_all],
            answer=lambda: fetch_all,
        ),
        Exercise(
            3,
            "a partial result and a failure report",
            _grade_orders_with_report,
            hints=[
                "Submit every fetch, then `wait(futures)` (from prefect.futures) so every one is finished.",
                "future.state.is_completed() tells the good from the bad; future.result(raise_on_failure=False) "
                "gives a failed one's exception without raising.",
            ],
            solution=[orders_with_report],
            answer=lambda: orders_with_report,
        ),
        Exercise(
            4,
            "an on_failure hook that records failures",
            _grade_nightly_orders,
            hints=[
                "A flow hook is a plain function called as hook(flow, flow_run, state); attach it with "
                "@flow(on_failure=[record_failure]).",
                "Inside it: FAILURES.append({'flow_run': flow_run.name, 'state': state.name, "
                "'message': state.message})",
            ],
            solution=[record_failure, nightly_orders],
            answer=lambda: (nightly_orders, FAILURES),
        ),
        Exercise(
            5,
            "degrade, but fail above a threshold",
            _grade_checked_batch,
            hints=[
                "Start from exercise 3: submit all, wait, split the futures by future.state.is_completed(); compare "
                "the number that failed with the max_failures argument.",
                "from prefect.states import Failed; if len(failed) > max_failures: "
                "return Failed(message=f'{len(failed)} of {len(order_ids)} orders failed: {failed}')",
            ],
            solution=[checked_batch],
            answer=lambda: checked_batch,
        ),
    ],
)
