"""Exercises for pair 05 (concurrency limits): graders read the demo API's own counts and Prefect's limits and runs."""

from __future__ import annotations

import inspect
import logging
import math
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import httpx
from prefect import flow, task, unmapped
from prefect.client.orchestration import get_client
from prefect.concurrency.sync import concurrency, rate_limit
from prefect.exceptions import MissingResult, ObjectAlreadyExists, ObjectNotFound
from prefect.task_runners import ThreadPoolTaskRunner
from prefect.variables import Variable

from lessons_src.checks import (
    CheckFailed,
    Exercise,
    ExerciseSet,
    call_answer,
    describe,
    expect,
    require_flow,
    require_rate_limit,
    require_signature,
    require_solved,
    require_task,
    short,
)
from lessons_src.demo_api import DemoAPI, DemoStats, start_demo_api
from lessons_src.logs import quiet_console
from lessons_src.pairs.p05_concurrency_limits import delete_limit, ensure_limit, lease_exists, max_in_window, read_limit
from lessons_src.runs import recorded_events, task_runs

PREFIX = "course-05x-"
ORDERS_LIMIT = PREFIX + "orders"
RATE_LIMIT = PREFIX + "rate"
STUCK_LIMIT = PREFIX + "stuck"
LIMITS_VARIABLE = PREFIX + "orders-limits"
DELAY = 0.6
SERVICE_PER_SECOND = 4  # exercise 4: the service's rate limit
EVENTS_WAIT_S = 10.0  # at most, for slot events (runs.recorded_events stops sooner once their count stays put)
LOST = "(a return value the server did not hand back)"
api = start_demo_api()

# ---- reference solutions (shown by ex.solution(n)) ----


@task
def get_order(order_id: int) -> int:
    return httpx.get(api.url_for(f"/orders/{order_id}", delay=DELAY), timeout=10).status_code


@flow(task_runner=ThreadPoolTaskRunner(max_workers=2))
def fetch_capped(ids: list[int]) -> list[int]:
    return get_order.map(ids).result()


def ensure_orders_limit(name: str, size: int) -> None:
    with get_client(sync_client=True) as client:
        client.upsert_global_concurrency_limit_by_name(name, size)


@task
def get_order_limited(order_id: int) -> int:
    with concurrency(ORDERS_LIMIT, occupy=1, strict=True):
        response = httpx.get(api.url_for(f"/orders/{order_id}", delay=DELAY), timeout=10)
    return response.status_code


def create_rate_limit(name: str) -> None:
    with get_client(sync_client=True) as client:  # one slot, freed at 3 per second: under the service's 4
        client.upsert_global_concurrency_limit_by_name(name, limit=1, slot_decay_per_second=3.0)


@task
def get_order_paced(order_id: int) -> int:
    rate_limit(RATE_LIMIT, strict=True)
    return httpx.get(api.url_for(f"/orders/{order_id}", delay=0.1), timeout=10).status_code


def free_slots(lease_id: str) -> None:
    with get_client(sync_client=True) as client:  # gives back the lease's slots and deletes the lease
        client.release_concurrency_slots_with_lease(lease_id)


@task
def get_order_within(order_id: int, limit_name: str) -> int:
    with concurrency(limit_name, strict=True):
        return httpx.get(api.url_for(f"/orders/{order_id}", delay=DELAY), timeout=10).status_code


@flow
def fetch_in(environment: str, ids: list[int]) -> list[int]:
    allowed = Variable.get(LIMITS_VARIABLE)[environment]  # read when the run starts, not when the code was written
    limit_name = f"{PREFIX}orders-{environment}"
    with get_client(sync_client=True) as client:
        client.upsert_global_concurrency_limit_by_name(limit_name, allowed)
    return get_order_within.map(ids, limit_name=unmapped(limit_name)).result()


# ---- graders ----


def _fresh_service(**limits: Any) -> DemoAPI:
    """Reset the demo API's records and set its limits for one check."""
    service = start_demo_api()
    service.reset()
    service.configure(**limits)
    return service


def _describe_limit(limit: Any) -> str:
    """Describe a limit read back from the server (or its absence) for a check's message."""
    if limit is None:
        return "missing"
    return f"limit={limit.limit}, active={limit.active}, {limit.active_slots} slots taken"


def _describe(stats: DemoStats) -> str:
    return f"{stats.total} requests, peak {stats.peak_in_flight} in flight, {stats.rejected} answered 429"


def _all_ok(value: Any, count: int) -> bool:
    """Return whether `value` is `count` statuses of 200 (or was lost on the way: the service's records then decide)."""
    return value is LOST or (isinstance(value, list) and len(value) == count and all(status == 200 for status in value))


def _expect_statuses(value: Any, count: int, call: str) -> None:
    """Fail unless `value` is `count` HTTP statuses of 200, saying what arrived instead."""
    if isinstance(value, list) and not all(isinstance(status, int) for status in value):
        kinds = sorted({type(status).__name__ for status in value})
        raise CheckFailed(
            f"{call} returned a list of {', '.join(kinds)}, not the statuses: return the tasks' results, "
            "e.g. get_order.map(ids).result()"
        )
    expect(_all_ok(value, count), f"{call} returned {short(value)}; expected {count} statuses of 200")


def _run_quietly(checked_flow: Any, *args: Any) -> tuple[Any, Any]:
    """Run a sync or async flow with Prefect's console silenced; return (its result or exception, its final state).

    When the SQLite server answers busy as a run ends, the client may read the final state back without its value;
    the value is then LOST and the graders go by the service's records, which hold every status.
    """
    with quiet_console(logging.CRITICAL):  # a failure is reported in the check's message, not as a traceback
        state = call_answer(checked_flow, *args, return_state=True)
    try:
        return require_solved(state.result(raise_on_failure=False, _sync=True)), state
    except MissingResult:
        return LOST, state


def _grade_fetch_capped(answer: Any) -> str:
    require_flow(answer, "fetch_capped")
    require_signature(answer, ([1, 2, 3, 4],), "fetch_capped", "one argument, the list of order ids")
    service = _fresh_service(max_in_flight=2)
    value, state = _run_quietly(answer, [1, 2, 3, 4])
    stats = service.stats()
    expect(state.is_completed(), f"the flow run ended {state.name}: {describe(value)}")
    expect(
        stats.rejected == 0,
        f"the service recorded {_describe(stats)}: it allows 2 at once. "
        "Give the flow a task runner with max_workers=2.",
    )
    _expect_statuses(value, 4, "fetch_capped([1, 2, 3, 4])")
    expect(
        stats.peak_in_flight == 2,
        f"the service recorded {_describe(stats)}: one request at a time is safe but twice as slow as allowed. "
        "Submit or map the tasks, with max_workers=2.",
    )
    return f"The service recorded {_describe(stats)}."


def _grade_ensure_orders_limit(answer: Any) -> str:
    expect(callable(answer), f"ensure_orders_limit should be a function, got {type(answer).__name__}")
    name = PREFIX + "exercise-2"
    require_signature(answer, (name, 3), "ensure_orders_limit", "two arguments, the limit's name and its size")
    delete_limit(name)
    try:
        try:
            call_answer(answer, name, 3)
        except ObjectNotFound:
            raise CheckFailed(
                f"the first call, with no limit named {name!r} on the server yet, raised ObjectNotFound: expected it "
                "to create the limit. Create it when it is missing and update it when it exists (or use "
                "client.upsert_global_concurrency_limit_by_name)."
            ) from None
        first = read_limit(name)
        expect(first is not None, f"after ensure_orders_limit({name!r}, 3) the server has no limit named {name!r}")
        expect(first.limit == 3, f"after ensure_orders_limit({name!r}, 3) the server's limit allows {first.limit}")
        expect(first.active, f"the limit {name!r} was created inactive, so it limits nothing; create it active")
        try:
            call_answer(answer, name, 2)
        except ObjectAlreadyExists:
            raise CheckFailed(
                "the second call raised ObjectAlreadyExists: the limit was there already. "
                "Update it when it exists (or use client.upsert_global_concurrency_limit_by_name)."
            ) from None
        second = read_limit(name)
        expect(
            second is not None and second.limit == 2,
            f"after ensure_orders_limit({name!r}, 2) the server's limit allows "
            f"{second.limit if second else 'nothing'}; expected 2: an existing limit must be updated to the new size.",
        )
        expect(
            second.id == first.id,
            "the second call deleted the limit and created a new one: update the one that exists, so the slots "
            "its holders hold stay counted",
        )
        expect(second.active, "after the second call the limit is inactive, so it limits nothing; keep it active")
    finally:
        delete_limit(name)
    return "Called twice: created with limit 3, then the same limit updated to 2, active both times."


def _slot_events(limit: Any, since: datetime, expected: int) -> list[Any]:
    """Return the slot acquisitions of `limit` the server recorded since `since` (an event per slot taken)."""
    return recorded_events(
        "prefect.concurrency-limit.acquired", f"prefect.concurrency-limit.{limit.id}", since, expected, EVENTS_WAIT_S
    )


def _fan_out_twice(answer: Any, ids: list[int]) -> list[tuple[Any, Any]]:
    """Run a flow that maps `answer` over `ids`, twice at the same time; return both (result, state)."""
    start_line = threading.Barrier(2)

    @flow(name="ex05-3-fan-out")
    def fan_out(ids: list[int]) -> list[int]:
        start_line.wait(timeout=60)
        return answer.map(ids).result()

    with ThreadPoolExecutor(max_workers=2) as pool:
        return [future.result() for future in [pool.submit(_run_quietly, fan_out, ids) for _ in range(2)]]


def _grade_get_order_limited(answer: Any) -> str:
    require_task(answer, "get_order_limited")
    require_signature(answer, (1,), "get_order_limited", "one argument, the order id")
    limit = ensure_limit(ORDERS_LIMIT, 2)
    service = _fresh_service(max_in_flight=2)
    started = datetime.now(UTC)
    runs = _fan_out_twice(answer, [1, 2, 3])
    stats = service.stats()
    for value, state in runs:
        expect(state.is_completed(), f"a flow run ended {state.name}: {describe(value)}")
    # each slot taken is an event on the server: requests that took none were kept apart by luck (a slow machine)
    taken = _slot_events(limit, started, 6)
    expect(
        len(taken) >= 6,
        f"the server recorded {len(taken)} slot(s) taken from {ORDERS_LIMIT!r} for 6 requests: hold a slot of that "
        f"limit around each request with concurrency({ORDERS_LIMIT!r}, strict=True) (with strict=True a misspelled "
        "name is an error instead of no limit at all).",
    )
    expect(
        stats.rejected == 0,
        f"with two flow runs at once the service recorded {_describe(stats)}. Hold a slot of the limit "
        f"{ORDERS_LIMIT!r} around the request with concurrency({ORDERS_LIMIT!r}, ...).",
    )
    expect(
        all(_all_ok(value, 3) for value, _ in runs),
        f"the runs returned {[short(v) for v, _ in runs]}; expected 3 statuses of 200 each: return the response's "
        "status_code, a number",
    )
    expect(
        stats.peak_in_flight >= 2,
        f"the service recorded {_describe(stats)}: safe, but one at a time although the limit has 2 slots. "
        "A request weighs one slot: occupy=1 (the default), not the whole limit.",
    )
    left = read_limit(ORDERS_LIMIT)
    expect(
        left is not None and left.active_slots == 0,
        f"after the runs the limit is {_describe_limit(left)}: every slot should be given back "
        "(`with concurrency(...):` gives it back when the block ends)",
    )
    counted = sum(len(task_runs(state, expected=3)) for _, state in runs)
    missing = _run_with_the_limit_missing(answer)
    return (
        f"Two flow runs, {counted} task runs: the service recorded {_describe(stats)}; every slot was given back. "
        f"With the limit deleted, your task stopped before its request: {missing}."
    )


def _run_with_the_limit_missing(answer: Any) -> str:
    """Run the task once with ORDERS_LIMIT deleted; fail unless it stops with an error before sending a request."""

    @flow(name="ex05-3-limit-missing")
    async def one_order() -> int:  # async: the run does not wait for a heartbeat thread to stop
        value = answer(1)
        return await value if inspect.isawaitable(value) else value

    delete_limit(ORDERS_LIMIT)
    service = _fresh_service()
    try:
        value, state = _run_quietly(one_order)
    finally:
        ensure_limit(ORDERS_LIMIT, 2)
    sent = service.stats().total
    expect(
        sent == 0 and not state.is_completed(),
        f"with the limit {ORDERS_LIMIT!r} deleted, your task still sent {sent} request(s) and its run ended "
        f"{state.name}: concurrency() on a missing limit only logs a warning and runs unlimited. "
        "Pass strict=True, so a missing limit (a typo, a deleted limit) is an error.",
    )
    return describe(value)


def _grade_rate(answer: Any) -> str:
    expect(
        isinstance(answer, tuple) and len(answer) == 2,
        f"pass a pair: ex.check(4, (create_rate_limit, get_order_paced)), not {short(answer)}",
    )
    create, paced_task = require_solved(answer[0]), require_solved(answer[1])
    require_task(paced_task, "get_order_paced")
    require_signature(paced_task, (1,), "get_order_paced", "one argument, the order id")
    expect(callable(create), f"create_rate_limit should be a function, got {type(create).__name__}")
    require_signature(create, (RATE_LIMIT,), "create_rate_limit", "one argument, the limit's name")
    made = require_rate_limit(create, RATE_LIMIT)
    calls, budget = 5, 3.0
    needed = max(0, calls - made.limit) / made.slot_decay_per_second
    expect(
        needed <= budget,
        f"with limit={made.limit} and slot_decay_per_second={made.slot_decay_per_second:g}, {calls} calls need "
        f"{needed:.1f} s, over the {budget:g} s budget. slot_decay_per_second counts slots freed each second, "
        "not seconds between calls.",
    )
    at_once, rate = made.limit, made.slot_decay_per_second
    expect(
        at_once + rate <= SERVICE_PER_SECOND + 0.5,
        f"with limit={at_once} and slot_decay_per_second={rate:g}, {at_once} calls can start at once and {rate:g} "
        f"more each second: {at_once + math.ceil(rate) - 1} within one second when every call is on time, more when "
        f"one is a few milliseconds early, and the service answers 429 above {SERVICE_PER_SECOND}. Keep "
        f"limit + slot_decay_per_second at most {SERVICE_PER_SECOND + 0.5:g}, e.g. limit=1 and a rate of 3.",
    )

    @flow(name="ex05-4-paced")
    def paced(ids: list[int]) -> list[int]:
        return paced_task.map(ids).result()

    service = _fresh_service(max_per_second=SERVICE_PER_SECOND)
    started = datetime.now(UTC)
    value, state = _run_quietly(paced, list(range(1, calls + 1)))
    stats = service.stats()
    arrivals = sorted(r["arrived"] for r in stats.requests)
    expect(state.is_completed(), f"the flow run ended {state.name}: {describe(value)}")
    # each slot taken is an event on the server: calls that never took one were paced by luck (a slow machine)
    taken = _slot_events(made, started, calls)
    expect(
        len(taken) >= calls,
        f"the server recorded {len(taken)} slot(s) taken from {RATE_LIMIT!r} for {calls} calls: take one before each "
        f"request, with rate_limit({RATE_LIMIT!r}, strict=True) as the task's first line.",
    )
    expect(
        stats.rejected == 0,
        f"the service ({SERVICE_PER_SECOND} per second) recorded {_describe(stats)}, up to "
        f"{max_in_window(arrivals, 1.0)} in one second. Call rate_limit({RATE_LIMIT!r}, strict=True) before each "
        "request, and free fewer slots per second.",
    )
    _expect_statuses(value, calls, "the paced run")
    span = arrivals[-1] - arrivals[0]
    return f"{calls} calls over {span:.2f} s, at most {max_in_window(arrivals, 1.0)} in any second, no 429."


def _occupy_like_a_crashed_run(name: str, slots: int) -> str:
    """Take `slots` slots of `name` with a 60 s lease, never released (as a killed process would); return its id."""
    with get_client(sync_client=True) as client:
        response = client.increment_concurrency_slots_with_lease(
            names=[name], slots=slots, mode="concurrency", lease_duration=60
        )
    return response.json()["lease_id"]


def _release_quietly(lease_id: str) -> None:
    """Release a lease the check made, whatever the answer did (releasing one already gone does nothing)."""
    with get_client(sync_client=True) as client:
        client.release_concurrency_slots_with_lease(lease_id)


def _grade_free_slots(answer: Any) -> str:
    expect(callable(answer), f"free_slots should be a function, got {type(answer).__name__}")
    require_signature(answer, ("lease-id",), "free_slots", "one argument, the dead worker's lease id")
    before = ensure_limit(STUCK_LIMIT, 2)
    lease_id = _occupy_like_a_crashed_run(STUCK_LIMIT, 2)
    try:
        call_answer(answer, lease_id)
        after = read_limit(STUCK_LIMIT)
        expect(after is not None, f"the limit {STUCK_LIMIT!r} is gone: free its slots, keep the limit")
        expect(after.id == before.id, "the limit was deleted and created again; free the slots of the one that exists")
        expect(after.active, "the limit is now inactive, so it limits nothing at all; keep it active")
        expect(after.limit == 2, f"the limit now allows {after.limit}; keep it at 2 and free the occupied slots")
        expect(
            after.active_slots == 0,
            f"{after.active_slots} of 2 slots are still occupied: the dead worker's lease {lease_id} still holds "
            "them. Release that lease: its id is the argument your function gets.",
        )
        expect(
            not lease_exists(lease_id),
            f"the count says 0 of 2 slots taken, but the dead worker's lease {lease_id} is still on the server. When "
            "it expires (60 s after the crash, then up to 15 s until the repossessor looks) the server takes its 2 "
            "slots back a second time, from runs that hold them by then, and the limit admits up to 4 at once. "
            "Release the lease itself instead of editing the count.",
        )
        with concurrency(STUCK_LIMIT, occupy=2, timeout_seconds=5, strict=True):
            pass
    finally:
        _release_quietly(lease_id)
        ensure_limit(STUCK_LIMIT, 2)
    return (
        "The lease is gone, both slots are free, and the same limit still allows 2, active: nothing to take back later."
    )


@contextmanager
def _slots_taken(name: str) -> Iterator[list[int]]:
    """Read limit `name` every 0.05 s inside the block; yield the list of active_slots seen (a missing limit: none)."""
    seen: list[int] = []
    stop = threading.Event()

    def sample() -> None:
        with get_client(sync_client=True) as client:
            while not stop.is_set():
                try:
                    seen.append(client.read_global_concurrency_limit_by_name(name).active_slots)
                except ObjectNotFound:
                    pass
                time.sleep(0.05)

    sampler = threading.Thread(target=sample, name=f"slots-of-{name}", daemon=True)
    sampler.start()
    try:
        yield seen
    finally:
        stop.set()
        sampler.join(timeout=10)


def _run_in(answer: Any, environment: str, ids: list[int], service_allows: int) -> tuple[Any, DemoStats, Any, int]:
    """Run `answer(environment, ids)` from a clean slate; return (result, service stats, the limit, most slots seen)."""
    limit_name = f"{PREFIX}orders-{environment}"
    delete_limit(limit_name)  # what an earlier check left must not count
    service = _fresh_service(max_in_flight=service_allows)
    with _slots_taken(limit_name) as seen:
        value, state = _run_quietly(answer, environment, ids)
    missing = " Create or update the limit, from the variable, before fetching." if "created" in str(value) else ""
    if "coroutine" in str(value):
        missing = " In an async flow, await Variable.get(...) and the async client's calls."
    expect(state.is_completed(), f"fetch_in({environment!r}, {ids}) ended {state.name}: {describe(value)}.{missing}")
    return value, service.stats(), read_limit(limit_name), max(seen, default=0)


def _grade_fetch_in(answer: Any) -> str:
    require_flow(answer, "fetch_in")
    require_signature(answer, ("dev", [1, 2]), "fetch_in", "two arguments, the environment and the list of order ids")
    Variable.set(LIMITS_VARIABLE, {"dev": 1, "prod": 3}, overwrite=True, _sync=True)
    dev_value, dev, dev_limit, dev_taken = _run_in(answer, "dev", [1, 2], service_allows=3)
    expect(
        dev_limit is not None and dev_limit.limit == 1,
        f"after the dev run the server's limit {PREFIX}orders-dev is {_describe_limit(dev_limit)}; the variable "
        "says dev allows 1. Read Variable.get(...)['dev'] inside the flow and create or update the limit named "
        f"f'{PREFIX}orders-{{environment}}' to it.",
    )
    expect(
        dev_taken >= 1,
        f"while fetch_in('dev', ...) ran, no slot of {PREFIX}orders-dev was ever taken (the check read the limit "
        "every 0.05 s): fetch each order with get_order_within(..., limit_name=...) so it holds a slot of that limit.",
    )
    expect(dev.peak_in_flight <= 1 and dev.rejected == 0, f"in dev the service recorded {_describe(dev)}; dev allows 1")
    Variable.set(LIMITS_VARIABLE, {"dev": 1, "prod": 2}, overwrite=True, _sync=True)  # an operator changes prod
    prod_value, prod, prod_limit, prod_taken = _run_in(answer, "prod", [1, 2, 3], service_allows=2)
    expect(
        prod_limit is not None and prod_limit.limit == 2,
        f"the variable was changed to prod=2 before this run, but the server's limit {PREFIX}orders-prod is "
        f"{_describe_limit(prod_limit)}. Read the variable inside the flow, at run time.",
    )
    expect(
        prod_taken >= 1,
        f"while fetch_in('prod', ...) ran, no slot of {PREFIX}orders-prod was ever taken: fetch under that limit.",
    )
    expect(prod.rejected == 0, f"in prod the service recorded {_describe(prod)}; prod allows 2")
    expect(
        _all_ok(dev_value, 2) and _all_ok(prod_value, 3),
        f"the runs returned {short(dev_value)}, {short(prod_value)}; expected 2 and 3 statuses of 200: return the "
        "tasks' results, e.g. get_order_within.map(...).result()",
    )
    return (
        f"dev ran under a limit of 1 ({_describe(dev)}); prod, changed to 2 in the variable, ran under a limit of 2 "
        f"({_describe(prod)}), up to {prod_taken} slot(s) taken at once."
    )


EXERCISES = ExerciseSet(
    pair="05",
    title="Concurrency limits",
    exercises=[
        Exercise(
            1,
            "cap one flow with max_workers",
            _grade_fetch_capped,
            hints=[
                "A flow's task runner decides how many submitted or mapped tasks run at once.",
                "@flow(task_runner=ThreadPoolTaskRunner(max_workers=2)), then get_order.map(ids).result().",
            ],
            solution=[fetch_capped],
            answer=lambda: fetch_capped,
        ),
        Exercise(
            2,
            "create a global limit, idempotently",
            _grade_ensure_orders_limit,
            hints=[
                "create_global_concurrency_limit raises ObjectAlreadyExists the second time; something must update.",
                "In a `with get_client(sync_client=True) as client:` block, "
                "client.upsert_global_concurrency_limit_by_name(name, size) creates or updates.",
            ],
            solution=[ensure_orders_limit],
            answer=lambda: ensure_orders_limit,
        ),
        Exercise(
            3,
            "protect the service across flow runs",
            _grade_get_order_limited,
            hints=[
                "max_workers only counts one flow run's tasks; the limit must live on the server.",
                "Without strict=True, concurrency() on a missing limit logs a warning and runs the block unlimited.",
                f"Wrap only the request: with concurrency({ORDERS_LIMIT!r}, occupy=1, strict=True): ...",
            ],
            solution=[get_order_limited],
            answer=lambda: get_order_limited,
        ),
        Exercise(
            4,
            "pace calls with a rate limit",
            _grade_rate,
            hints=[
                "rate_limit(name) takes a slot and returns; the slot decays at slot_decay_per_second slots per second.",
                "With limit=1, calls start 1 / slot_decay_per_second s apart: over 4/3 per second fits 5 calls in "
                "3 s; at most 3.5 leaves a margin under the service's 4.",
                "client.upsert_global_concurrency_limit_by_name(name, limit=1, slot_decay_per_second=3.0), and "
                "rate_limit(name, strict=True) as the task's first line.",
            ],
            solution=[create_rate_limit, get_order_paced],
            answer=lambda: (create_rate_limit, get_order_paced),
        ),
        Exercise(
            5,
            "release the lease of a crashed run",
            _grade_free_slots,
            hints=[
                "Setting active_slots to 0 frees the count but leaves the lease: when it expires, the repossessor "
                "takes its 2 slots back again, from whichever runs hold them then.",
                "Release the lease itself: the server gives back exactly its slots and deletes it, as concurrency() "
                "does on exit.",
                "with get_client(sync_client=True) as client: client.release_concurrency_slots_with_lease(lease_id)",
            ],
            solution=[free_slots],
            answer=lambda: free_slots,
        ),
        Exercise(
            6,
            "a limit per environment, from a Variable",
            _grade_fetch_in,
            hints=[
                "In a sync flow, Variable.get(name) returns the value (a dict here); index it with the environment.",
                "client.upsert_global_concurrency_limit_by_name(f'course-05x-orders-{environment}', allowed), "
                "then get_order_within.map(ids, limit_name=unmapped(limit_name)).result()",
            ],
            solution=[fetch_in],
            answer=lambda: fetch_in,
        ),
    ],
)
