"""Exercises for pair 03 (error handling and states): graders read final states, task runs, logs and API counters."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
from prefect import flow, task
from prefect.futures import wait
from prefect.states import Failed

from lessons_src.checks import (
    CheckFailed,
    Exercise,
    ExerciseSet,
    expect,
    require_flow,
    require_solved,
    run_flow,
    short,
)
from lessons_src.demo_api import DemoAPI, get_demo_api, start_demo_api
from lessons_src.runs import flow_run_logs, read_flow_run, task_runs

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


def _grade_weather_condition(answer: Any) -> str:
    require_flow(answer, "weather_condition")
    value, state = run_flow(answer, "oslo")
    expect(state.is_completed(), f"weather_condition('oslo') ended {state.name}: {short(value)}")
    expect(value == "snow", f"weather_condition('oslo') returned {short(value)}; expected 'snow'")
    value, state = run_flow(answer, "atlantis")
    expect(
        state.is_completed(),
        f"weather_condition('atlantis') ended {state.name}: the 404 from the API failed the whole flow. "
        "Get the task's state with return_state=True and route on state.is_failed().",
    )
    expect(value == "unavailable", f"weather_condition('atlantis') returned {short(value)}; expected 'unavailable'")
    runs = task_runs(state)
    expect(
        [r.state for r in runs] == ["Failed"],
        f"for 'atlantis' the server recorded task runs {[r.state for r in runs]}; expected one Failed get_weather "
        "run. Call the get_weather task (not plain httpx) so the failure stays visible in Prefect.",
    )
    return "'oslo' gave 'snow'; for 'atlantis' the task run is Failed on the server and the flow Completed."


def _grade_fetch_all(answer: Any) -> str:
    require_flow(answer, "fetch_all")
    api = start_demo_api()
    tag = uuid.uuid4().hex[:8]
    failing = [
        api.url_for(f"/orders/{i}", key=f"ex2-{tag}-fail-{i}", status=500 if i == 2 else None) for i in (1, 2, 3)
    ]
    value, state = run_flow(answer, failing)
    runs = task_runs(state)
    failed_runs = sum(r.state == "Failed" for r in runs)
    expect(
        not state.is_completed(),
        f"with one URL answering 500 the flow ended {state.name} although the server recorded {failed_runs} Failed "
        "task run(s): its futures were never waited for or returned. Return the futures or call .result() on each.",
    )
    state_name = state.name
    healthy = [api.url_for(f"/orders/{i}", key=f"ex2-{tag}-ok-{i}") for i in (1, 2, 3)]
    value, state = run_flow(answer, healthy)
    expect(state.is_completed(), f"with three healthy URLs the flow ended {state.name}: {short(value)}")
    expect(
        isinstance(value, list) and [v.get("id") if isinstance(v, dict) else v for v in value] == [1, 2, 3],
        f"fetch_all returned {short(value)}; expected the three orders (dicts with ids 1, 2, 3), in order",
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
        isinstance(orders, list) and [o.get("id") for o in orders if isinstance(o, dict)] == [1, 2, 3],
        f"value['orders'] is {short(orders)}; expected the orders with ids 1, 2, 3",
    )
    expect(
        isinstance(failed, dict) and set(failed) == {998, 999},
        f"value['failed'] is {short(failed)}; expected a dict with keys 998 and 999 (the ids that failed)",
    )
    expect(
        all("404" in str(reason) for reason in failed.values()),
        f"the reasons in value['failed'] are {short(list(failed.values()))}; each should carry the error (a 404)",
    )
    runs = task_runs(state)
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
        raise CheckFailed(
            "the run ended Failed but FAILURES is unchanged. "
            + (
                f"Prefect logged: '{hook_errors[0]}'. A flow hook is called as hook(flow, flow_run, state)."
                if hook_errors
                else "No hook ran: pass it as @flow(on_failure=[record_failure])."
            )
        )
    expect(len(failures) == before + 1, f"one failed run added {len(failures) - before} entries; expected 1")
    entry, recorded = failures[-1], read_flow_run(state)
    expect(isinstance(entry, dict), f"the new entry is {short(entry)}; expected a dict")
    expect(
        entry.get("flow_run") == recorded.name,
        f"entry['flow_run'] is {short(entry.get('flow_run'))}; the server calls this run '{recorded.name}' "
        "(use flow_run.name)",
    )
    expect(entry.get("state") == "Failed", f"entry['state'] is {short(entry.get('state'))}; expected 'Failed'")
    expect(
        "999" in str(entry.get("message")),
        f"entry['message'] is {short(entry.get('message'))}; expected the state's message, which names order 999",
    )
    return f"one entry for the failed run '{recorded.name}', none for the completed one."


def _grade_checked_batch(answer: Any) -> str:
    require_flow(answer, "checked_batch")
    api = start_demo_api()
    value, state = run_flow(answer, [1, 2, 999, 3], max_failures=1)
    expect(
        state.is_completed(),
        f"with 1 failure out of 4 (max_failures=1) the flow ended {state.name}: {short(value)}; expected Completed",
    )
    expect(
        isinstance(value, list) and [o.get("id") for o in value if isinstance(o, dict)] == [1, 2, 3],
        f"with 1 failure the flow returned {short(value)}; expected the 3 orders that arrived (ids 1, 2, 3)",
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
        "3 of 5 orders failed" in message,
        f"the Failed state's message is {short(message)}; expected it to say '3 of 5 orders failed'",
    )
    fetched = len(_requests_since(api, before, "/orders/"))
    expect(fetched == 5, f"the demo API received {fetched} order requests; expected all 5 to be tried")
    return f"Completed with 3 orders under the threshold; Failed above it with '{short(message)[1:60]}...'."


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
                "if state.is_failed(): return 'unavailable'; else return state.result()['condition']",
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
                "return [future.result() for future in futures]: a failed one raises inside the flow.",
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
                "Start from exercise 3: submit all, wait, split the futures by future.state.is_completed().",
                "from prefect.states import Failed; if len(failed) > max_failures: "
                "return Failed(message=f'{len(failed)} of {len(order_ids)} orders failed: {failed}')",
            ],
            solution=[checked_batch],
            answer=lambda: checked_batch,
        ),
    ],
)
