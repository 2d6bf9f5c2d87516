"""Exercises for pair 10 (the pitfall lab): spot the bug; graders read final states, task runs and API counters."""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable, Coroutine, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any

import httpx
from prefect import Task, flow, task
from prefect.client.orchestration import get_client
from prefect.concurrency.sync import concurrency, rate_limit
from prefect.states import State

from lessons_src.checks import (
    CheckFailed,
    CourseProblem,
    Exercise,
    ExerciseSet,
    call_answer,
    expect,
    require_flow,
    require_task,
    run_coroutine,
    run_flow,
    short,
)
from lessons_src.demo_api import get_demo_api, start_demo_api
from lessons_src.logs import quiet_console
from lessons_src.pairs.p05_concurrency_limits import delete_limit, ensure_limit, read_limit
from lessons_src.runs import read_flow_run, settled_task_runs, task_runs

PREFIX = "course-10x-"
ORDERS_LIMIT = PREFIX + "orders"
PACING_LIMIT = PREFIX + "pacing"
LIMITED_DELAY = 0.5  # seconds per limited request
HOLD_S = 3.0  # how long a check keeps every slot of ORDERS_LIMIT taken while the task should wait for one
RETAKE_TIMEOUT_S = 30.0  # how long the check waits to take back a slot the learner's task holds
PARTNER_RATE = 2.0  # calls per second the partner's weather feed allows (exercise 5)
RECORDS_WAIT_S = 5.0  # how long a check waits for the task runs it expects to be recorded on the server

# ---- the helpers and tasks the exercise notebook gives (the same code as its "given" cell) ----


def get_json(url: str) -> dict:
    response = httpx.get(url, timeout=10)
    response.raise_for_status()
    return response.json()


@task
def fetch_order(order_id: int) -> dict:
    return get_json(get_demo_api().url_for(f"/orders/{order_id}"))


def city_name(city: str, key: str) -> str:
    return get_json(get_demo_api().url_for(f"/weather/{city}", key=key))["city"]


@task
def flaky_publish(key: str) -> None:
    get_json(get_demo_api().url_for("/weather/paris", fail_first=1, key=f"{key}-publish"))  # 503 once per key


# ---- reference solutions (shown by ex.solution(n)) ----


@flow
def count_orders(order_ids: list[int]) -> int:
    futures = fetch_order.map(order_ids)
    return len(futures.result())  # .result() raises if any task failed, so the flow fails too


@task
def get_order_limited(order_id: int) -> int:
    with concurrency(ORDERS_LIMIT, strict=True):
        response = httpx.get(get_demo_api().url_for(f"/orders/{order_id}", delay=LIMITED_DELAY), timeout=10)
    return response.status_code


def make_weather_task(city: str) -> Task:
    def city_key(context, parameters: dict) -> str:
        return f"weather-{city}-{parameters['key']}"

    @task(cache_key_fn=city_key)
    def city_weather(key: str) -> str:
        return city_name(city, key)

    return city_weather


@task(persist_result=True)
def expensive_forecast(city: str, key: str) -> dict:
    return get_json(get_demo_api().url_for(f"/weather/{city}", key=key))


@flow(retries=1)
def forecast_and_publish(city: str, key: str) -> dict:
    forecast = expensive_forecast(city, key)
    flaky_publish(key)
    return forecast


def create_pacing_limit(name: str) -> None:
    with get_client(sync_client=True) as client:  # one slot, freed at 2 per second: calls 0.5 s apart
        client.upsert_global_concurrency_limit_by_name(name, limit=1, slot_decay_per_second=2)


# ---- graders ----


class _BelowError(logging.Filter):
    """Let Prefect's console show what is below ERROR: its warnings stay, its error tracebacks go."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno < logging.ERROR


@contextmanager
def _warnings_only() -> Iterator[None]:
    """Show Prefect's console warnings (a missing limit's 'skipping acquisition') but no errors or tracebacks."""
    from prefect.logging.handlers import PrefectConsoleHandler

    below_error = _BelowError()
    with quiet_console(logging.WARNING):
        handlers = [h for h in logging.getLogger().handlers if isinstance(h, PrefectConsoleHandler)]
        for handler in handlers:
            handler.addFilter(below_error)
        try:
            yield
        finally:
            for handler in handlers:
                handler.removeFilter(below_error)


def _run(flow_call: Coroutine[Any, Any, State], show_warnings: bool = True) -> State:
    """Run an async grader flow to its final state from sync code, also where a notebook's event loop runs."""
    with _warnings_only() if show_warnings else quiet_console(logging.CRITICAL):
        return run_coroutine(flow_call)


@flow(name="check-10-limited")
async def _limited_calls(fetch: Task, order_ids: list[int]) -> list[int]:
    """Run the learner's task once per order id, all at once."""
    return fetch.map(order_ids).result()


@flow(name="check-10-cities")
async def _call_each(tasks: list[Task], key: str) -> list[Any]:
    """Call each of the learner's tasks with `key`, one after another."""
    return [each(key) for each in tasks]


def _fresh_key() -> str:
    return f"ex10-{uuid.uuid4().hex[:10]}"


def _task_states(state: State, expected: int) -> list[str]:
    """Return a flow run's task-run states once `expected` are recorded, or those there after RECORDS_WAIT_S seconds.

    Task runs reach the server as events, a moment after they end; a wrong answer may make fewer than `expected`.
    """
    return sorted(r.state for r in task_runs(state, expected=expected, timeout=RECORDS_WAIT_S, or_fewer=True))


def _grade_count_orders(answer: Any) -> str:
    require_flow(answer, "count_orders")
    with quiet_console(100):
        value, state = run_flow(answer, [1, 999, 2])
    states = _task_states(state, expected=3)
    expect(
        bool(states),
        "the server recorded no task runs for 3 order ids; expected 3 fetch_order runs. "
        "Call the fetch_order task with .map (or .submit), not its .fn or plain httpx.",
    )
    expect(
        len(states) == 3,
        f"the server recorded {len(states)} fetch_order runs ({states}) for 3 order ids; expected 3: every order "
        "must be fetched, even after one fails. Submit or map them all before you ask for any result.",
    )
    expect(
        state.is_failed(),
        f"with order 999 missing (the API answers 404) the flow run ended {state.name}, although the server recorded "
        f"task runs {states}. The flow must depend on its futures: return len(futures.result()).",
    )
    expect("Failed" in states, f"the server recorded task runs {states}; the 404 for order 999 should be Failed")
    failed_as = state.name
    with quiet_console(100):
        value, state = run_flow(answer, [1, 2, 3])
    expect(state.is_completed(), f"count_orders([1, 2, 3]) ended {state.name}: {short(value)}")
    if isinstance(value, list) and value and all(isinstance(item, State) for item in value):
        raise CheckFailed(
            f"count_orders([1, 2, 3]) returned {len(value)} task-run states, not a count: a flow that returns its "
            "futures makes Prefect hand its caller their final states. Return len(futures.result())."
        )
    expect(value == 3, f"count_orders([1, 2, 3]) returned {short(value)}; expected 3, the number of orders fetched")
    return f"with a missing order the flow run ended {failed_as}; with three good ones it returned 3."


def _limited_run(answer: Task, order_ids: list[int], show_warnings: bool) -> tuple[State, list[Any]]:
    state = _run(_limited_calls(answer, order_ids, return_state=True), show_warnings)
    return state, settled_task_runs(state, expected=len(order_ids))


def _until_request_or_done(running: Any, timeout: float) -> None:
    """Wait until the demo API has received a request, the learner's flow has ended, or `timeout` s have passed."""
    api, deadline = get_demo_api(), time.monotonic() + timeout
    while not (running.done() or api.stats().total or time.monotonic() > deadline):
        time.sleep(0.05)


def _take_a_slot_back() -> float:
    """Wait for a free slot of ORDERS_LIMIT, take it and give it back at once; return when it was taken."""
    try:
        with concurrency(ORDERS_LIMIT, occupy=1, timeout_seconds=RETAKE_TIMEOUT_S, strict=True):
            return time.time()
    except TimeoutError:
        raise CheckFailed(
            f"your task held its slot of {ORDERS_LIMIT!r} for over {RETAKE_TIMEOUT_S:g} s after one 0.5 s request: "
            "leave the `with concurrency(...)` block once the request has its answer."
        ) from None


def _run_while_slots_taken(answer: Task) -> tuple[State, list[dict[str, Any]], float, float]:
    """Run the task once while both slots of ORDERS_LIMIT are taken; free one; once its request is sent, take it back.

    Returns the flow's state, the requests the demo API logged, when the check freed a slot, and when it got one
    back: a task that holds its slot around its request frees it only after the API has answered.
    """
    api = start_demo_api()
    api.reset()
    with get_client(sync_client=True) as client, ThreadPoolExecutor(max_workers=1) as pool:
        leases = [
            client.increment_concurrency_slots_with_lease(
                names=[ORDERS_LIMIT], slots=1, mode="concurrency", lease_duration=60
            ).json()["lease_id"]
            for _ in range(2)
        ]
        running = pool.submit(_run, _limited_calls(answer, [1], return_state=True))
        try:
            _until_request_or_done(running, HOLD_S)
            freed = time.time()
            client.release_concurrency_slots_with_lease(uuid.UUID(leases.pop(0)))
            _until_request_or_done(running, HOLD_S)
            retaken = _take_a_slot_back()
        finally:
            for lease in leases:
                client.release_concurrency_slots_with_lease(uuid.UUID(lease))
        state = running.result()
    return state, api.stats().requests, freed, retaken


def _grade_limited(answer: Any) -> str:
    require_task(answer, "get_order_limited")
    ensure_limit(ORDERS_LIMIT, limit=2)
    state, requests, freed, retaken = _run_while_slots_taken(answer)
    arrivals = [r["arrived"] for r in requests]
    expect(
        "must be created before acquiring slots" not in (state.message or ""),
        f"your task asks for a limit the server does not have ({short(state.message)}). "
        f"Compare the name in concurrency(...) with {ORDERS_LIMIT!r}, the limit of 2 the server holds.",
    )
    expect(state.is_completed(), f"the flow running your task once ended {state.name}: {short(state.message)}")
    expect(
        bool(arrivals) and min(arrivals) >= freed,
        f"while both slots of {ORDERS_LIMIT!r} were taken, your request still reached the API, so your task holds "
        "no slot of that limit. With a misspelled name Prefect only logs a warning: '... do not exist - skipping "
        "acquisition'.",
    )
    in_flight = [r for r in requests if r["arrived"] <= retaken < (r["finished"] or float("inf"))]
    expect(
        not in_flight,
        f"while your request was still waiting for its answer, the check took a slot of {ORDERS_LIMIT!r}: your task "
        "had already given its slot back. Send the request inside the `with concurrency(...)` block.",
    )
    api = start_demo_api()
    api.reset()
    state, runs = _limited_run(answer, [1, 2, 3], show_warnings=True)
    stats = api.stats()
    expect(state.is_completed(), f"the flow running your task 3 times ended {state.name}: {short(state.message)}")
    expect(
        stats.peak_in_flight <= 2,
        f"the demo API served {stats.peak_in_flight} of your requests at once; the limit {ORDERS_LIMIT!r} allows 2",
    )
    left = read_limit(ORDERS_LIMIT)
    expect(left is not None and left.active_slots == 0, f"slots are still occupied after the run: {short(left)}")
    peak = stats.peak_in_flight
    delete_limit(ORDERS_LIMIT)  # now the limit is missing: a strict task must fail, not run unlimited
    try:
        state, runs = _limited_run(answer, [4], show_warnings=False)
    finally:
        ensure_limit(ORDERS_LIMIT, limit=2)
    expect(
        [r.state.name for r in runs] == ["Failed"],
        f"with no limit named {ORDERS_LIMIT!r} on the server your task run ended {runs[0].state.name if runs else '-'}"
        ": it ran with no limit at all (Prefect only logs a warning). Pass strict=True to concurrency(...) and let "
        "its error fail the task (do not catch it), so a missing or misspelled limit is never passed silently.",
    )
    return f"it waited for a free slot; 3 requests, at most {peak} at once; with the limit deleted it failed loudly."


def _grade_weather_factory(answer: Any) -> str:
    expect(callable(answer), f"make_weather_task should be a function, got {type(answer).__name__}")
    oslo, cairo = require_task(answer("oslo"), "make_weather_task('oslo')"), require_task(answer("cairo"))
    key = _fresh_key()
    state = _run(_call_each([oslo, cairo, cairo], key, return_state=True), show_warnings=False)
    values = state.result(raise_on_failure=False, _sync=True)
    expect(state.is_completed(), f"the flow calling your tasks ended {state.name}: {short(values)}")
    states = [r.state for r in task_runs(state, expected=3)]
    calls = get_demo_api().stats().attempts(key)
    expect(
        states[0] == "Completed",
        f"the very first call ended {states[0]}: it was served an entry written by an earlier run with another key. "
        "Include the key parameter in the cache key.",
    )
    expect(
        values[1] == "Cairo",
        f"the Cairo task returned {short(values[1])}, served from the Oslo task's cache entry ({states[1]}): both "
        "tasks have the same source and the same inputs. Put the city into the cache key.",
    )
    expect(
        states == ["Completed", "Completed", "Cached"] and calls == 2,
        f"the three calls ended {states} and the demo API received {calls} requests; expected "
        "['Completed', 'Completed', 'Cached'] and 2. Keep a cache: the repeat call should still be a hit.",
    )
    other_key = _fresh_key()
    state = _run(_call_each([oslo], other_key, return_state=True), show_warnings=False)
    (fresh,) = [r.state for r in task_runs(state, expected=1)]
    expect(
        fresh == "Completed" and get_demo_api().stats().attempts(other_key) == 1,
        f"called with another key, the Oslo task ended {fresh}: it was served an entry written for a different "
        "key. Include the key parameter in the cache key.",
    )
    return f"Oslo and Cairo each got their own value; the repeat call was {states[2]} ({calls} requests)."


def _forecast_runs(state: State) -> list[str]:
    """Return the states of a flow run's task runs other than the publishing step (the forecast, however named)."""
    return [r.state for r in task_runs(state) if "publish" not in r.name]


def _grade_forecast(answer: Any) -> str:
    require_flow(answer, "forecast_and_publish")
    key = _fresh_key()
    with quiet_console(100):
        value, state = run_flow(answer, "oslo", key)
    attempts = read_flow_run(state).run_count
    expect(
        state.is_completed(),
        f"the flow run ended {state.name}: {short(value)}. flaky_publish fails once by design; keep retries=1 on the "
        "flow so its retry succeeds.",
    )
    expect(
        attempts == 2,
        f"the flow run was attempted {attempts} time(s); flaky_publish fails on its first call, so the flow should "
        "be retried once. Leave flaky_publish and the flow's retries=1 as given; change the expensive task.",
    )
    calls, forecasts = get_demo_api().stats().attempts(key), _forecast_runs(state)
    expect(
        calls == 1,
        f"the flow's retry called the forecast service again: {calls} calls, forecast task runs {forecasts}. "
        "Persist the task's result (persist_result=True) so the retry of the same flow run finds it; keep a cache "
        "policy (the default one: not NO_CACHE) and no refresh_cache=True, or the retry never looks it up.",
    )
    expect(
        isinstance(value, dict) and value.get("city") == "Oslo",
        f"the flow returned {short(value)}; expected Oslo's forecast (a dict whose 'city' is 'Oslo'), as given",
    )
    with quiet_console(100):
        run_flow(answer, "oslo", key)
    again = get_demo_api().stats().attempts(key)
    expect(
        again == 2,
        f"a new flow run reused the first run's forecast (the service still has {again} call): a forecast is fresh "
        "per flow run. Keep RUN_ID in the cache key (the default policy has it); INPUTS alone is shared by all runs.",
    )
    return f"retried flow run: forecast task runs {forecasts}, 1 call; a new flow run fetched a new forecast."


def _paced_arrivals(name: str, calls: int) -> list[float]:
    """Make `calls` requests, each after rate_limit(name); return their arrival times at the demo API."""
    key = _fresh_key()
    api = get_demo_api()
    for order_id in range(1, calls + 1):
        rate_limit(name, strict=True)
        httpx.get(api.url_for(f"/orders/{order_id}", key=key), timeout=10)
    return sorted(r["arrived"] for r in api.stats().requests if r["key"] == key)


def _created_pacing_limit(answer: Any) -> Any:
    """Delete PACING_LIMIT, let the learner's function (sync or async) create it again; return the server's limit."""
    expect(callable(answer), f"create_pacing_limit should be a function that creates the limit, got {short(answer)}")
    name = getattr(answer, "__name__", "your function")
    delete_limit(PACING_LIMIT)
    call_answer(answer, PACING_LIMIT)
    made = read_limit(PACING_LIMIT)
    expect(made is not None, f"{name}({PACING_LIMIT!r}) left no limit of that name: create the one its argument names")
    expect(
        made.active,
        f"{name} created {PACING_LIMIT!r} inactive: rate_limit() lets every call through an inactive limit. "
        "Leave it active (the default).",
    )
    return made


def _grade_pacing(answer: Callable[[str], None]) -> str:
    made = _created_pacing_limit(answer)
    decay = made.slot_decay_per_second
    expect(
        decay > 0,
        f"the server's limit has limit={made.limit} and slot_decay_per_second={decay:g}: without "
        "slot_decay_per_second its slots never free by themselves, and rate_limit() refuses it.",
    )
    expect(
        made.limit == 1,
        f"limit={made.limit} lets {made.limit} calls through together, and the partner wants them one at a time. "
        "Use limit=1, so each call waits for the previous one's slot to decay.",
    )
    expect(
        abs(decay - PARTNER_RATE) < 1e-6,
        f"with limit=1 and slot_decay_per_second={decay:g}, calls start {1 / decay:.2g} s apart: about {decay:g} "
        f"calls per second, not {PARTNER_RATE:g}"
        + (", more than the partner allows. " if decay > PARTNER_RATE else ": calls wait longer than they need to. ")
        + "slot_decay_per_second is the number of slots freed per second, not the seconds between calls.",
    )
    calls = 4
    arrivals = _paced_arrivals(PACING_LIMIT, calls)
    gaps = [later - earlier for earlier, later in zip(arrivals, arrivals[1:], strict=False)]
    shown = [round(gap, 2) for gap in gaps]
    if not (min(gaps) >= 0.2 and sum(gaps) / len(gaps) >= 0.4):  # the limit is right: a slow or shared server
        raise CourseProblem(
            f"your limit is right (limit=1, slot_decay_per_second=2), but 4 calls through it arrived {shown} s apart "
            "instead of about 0.5 s: something else took or freed its slots. Run the check again; if it repeats, run "
            "`python -m lessons_src doctor`."
        )
    return f"limit=1, 2 slots freed per second: {calls} calls arrived {shown} s apart, 2 per second at most."


EXERCISES = ExerciseSet(
    pair="10",
    title="The pitfall lab",
    exercises=[
        Exercise(
            1,
            "a failed task must fail the flow",
            _grade_count_orders,
            hints=[
                "wait(futures) only waits: nothing raises in the flow function, so the flow is Completed.",
                "The list .map returns has .result(), which raises if any task failed: return len(futures.result()).",
            ],
            solution=[count_orders],
            answer=lambda: count_orders,
        ),
        Exercise(
            2,
            "a concurrency limit that really limits",
            _grade_limited,
            hints=[
                "Read Prefect's warning under the check: the limit your task asks for does not exist.",
                f"with concurrency({ORDERS_LIMIT!r}, strict=True): strict=True turns a missing limit into an error.",
            ],
            solution=[get_order_limited],
            answer=lambda: get_order_limited,
        ),
        Exercise(
            3,
            "factory-made tasks with their own cache",
            _grade_weather_factory,
            hints=[
                "Both tasks have the same source text and the same argument, so INPUTS + TASK_SOURCE gives one key.",
                "Give it a cache_key_fn(context, parameters) that returns f'weather-{city}-{parameters[\"key\"]}'.",
            ],
            solution=[make_weather_task],
            answer=lambda: make_weather_task,
        ),
        Exercise(
            4,
            "a flow retry that reuses the expensive step",
            _grade_forecast,
            hints=[
                "A flow retry is the same flow run; the default cache policy includes its RUN_ID.",
                "Nothing is cached unless the result is written: @task(persist_result=True) on expensive_forecast.",
            ],
            solution=[expensive_forecast, forecast_and_publish],
            answer=lambda: forecast_and_publish,
        ),
        Exercise(
            5,
            "two calls per second",
            _grade_pacing,
            hints=[
                "With limit=1, calls start 1 / slot_decay_per_second seconds apart.",
                "client.upsert_global_concurrency_limit_by_name(name, limit=1, slot_decay_per_second=2)",
            ],
            solution=[create_pacing_limit],
            answer=lambda: create_pacing_limit,
        ),
    ],
)
