"""Exercises for pair 05 (concurrency limits): graders read the demo API's own counts and Prefect's limits and runs."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
from prefect import flow, task, unmapped
from prefect.client.orchestration import get_client
from prefect.concurrency.sync import concurrency, rate_limit
from prefect.exceptions import ObjectAlreadyExists
from prefect.task_runners import ThreadPoolTaskRunner
from prefect.variables import Variable

from lessons_src.checks import (
    CheckFailed,
    Exercise,
    ExerciseSet,
    expect,
    require_flow,
    require_rate_limit,
    require_solved,
    require_task,
    run_flow,
    short,
)
from lessons_src.demo_api import DemoAPI, DemoStats, start_demo_api
from lessons_src.limits import delete_limit, ensure_limit, max_in_window, read_limit
from lessons_src.logs import quiet_console
from lessons_src.runs import task_runs

PREFIX = "course-05x-"
ORDERS_LIMIT = PREFIX + "orders"
RATE_LIMIT = PREFIX + "rate"
STUCK_LIMIT = PREFIX + "stuck"
LIMITS_VARIABLE = PREFIX + "orders-limits"
DELAY = 0.6
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


def free_slots(name: str) -> None:
    from prefect.client.schemas.actions import GlobalConcurrencyLimitUpdate

    with get_client(sync_client=True) as client:
        client.update_global_concurrency_limit(name, GlobalConcurrencyLimitUpdate(active_slots=0))


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


def _describe(stats: DemoStats) -> str:
    return f"{stats.total} requests, peak {stats.peak_in_flight} in flight, {stats.rejected} answered 429"


def _all_ok(value: Any, count: int) -> bool:
    return isinstance(value, list) and len(value) == count and all(status == 200 for status in value)


def _grade_fetch_capped(answer: Any) -> str:
    require_flow(answer, "fetch_capped")
    service = _fresh_service(max_in_flight=2)
    with quiet_console():
        value, state = run_flow(answer, [1, 2, 3, 4])
    stats = service.stats()
    expect(state.is_completed(), f"the flow run ended {state.name}: {short(value)}")
    expect(
        stats.rejected == 0,
        f"the service recorded {_describe(stats)}: it allows 2 at once. "
        "Give the flow a task runner with max_workers=2.",
    )
    expect(_all_ok(value, 4), f"fetch_capped([1, 2, 3, 4]) returned {short(value)}; expected four 200s")
    expect(
        stats.peak_in_flight == 2,
        f"the service recorded {_describe(stats)}: one request at a time is safe but twice as slow as allowed. "
        "Submit or map the tasks, with max_workers=2.",
    )
    return f"The service recorded {_describe(stats)}."


def _grade_ensure_orders_limit(answer: Any) -> str:
    expect(callable(answer), f"ensure_orders_limit should be a function, got {type(answer).__name__}")
    name = PREFIX + "exercise-2"
    delete_limit(name)
    answer(name, 3)
    first = read_limit(name)
    expect(first is not None, f"after ensure_orders_limit({name!r}, 3) the server has no limit named {name!r}")
    expect(first.limit == 3, f"the server's limit {name!r} allows {first.limit}; expected 3")
    expect(first.active, f"the limit {name!r} was created inactive, so it limits nothing; create it active")
    try:
        answer(name, 2)
    except ObjectAlreadyExists:
        raise CheckFailed(
            "the second call raised ObjectAlreadyExists: the limit was there already. "
            "Update it when it exists (or use client.upsert_global_concurrency_limit_by_name)."
        ) from None
    second = read_limit(name)
    expect(
        second is not None and second.limit == 2,
        f"after ensure_orders_limit({name!r}, 2) the server's limit allows {second.limit if second else 'nothing'}; "
        "expected 2: an existing limit must be updated to the new size.",
    )
    delete_limit(name)
    return "Called twice: created with limit 3, then updated to 2, active both times."


def _grade_get_order_limited(answer: Any) -> str:
    require_task(answer, "get_order_limited")
    ensure_limit(ORDERS_LIMIT, 2)
    start_line = threading.Barrier(2)

    @flow(name="ex05-3-fan-out")
    def fan_out(ids: list[int]) -> list[int]:
        start_line.wait(timeout=60)
        return answer.map(ids).result()

    service = _fresh_service(max_in_flight=2)
    with quiet_console(), ThreadPoolExecutor(max_workers=2) as pool:
        runs = [future.result() for future in [pool.submit(run_flow, fan_out, [1, 2, 3]) for _ in range(2)]]
    stats = service.stats()
    for value, state in runs:
        expect(state.is_completed(), f"a flow run ended {state.name}: {short(value)}")
    expect(
        stats.rejected == 0,
        f"with two flow runs at once the service recorded {_describe(stats)}. Hold a slot of the limit "
        f"{ORDERS_LIMIT!r} around the request with concurrency(..., strict=True); strict=True also catches a typo.",
    )
    expect(all(_all_ok(value, 3) for value, _ in runs), f"the runs returned {[short(v) for v, _ in runs]}")
    left = read_limit(ORDERS_LIMIT)
    expect(left is not None and left.active_slots == 0, f"slots still occupied after the runs: {short(left)}")
    counted = sum(len(task_runs(state, expected=3)) for _, state in runs)
    return f"Two flow runs, {counted} task runs: the service recorded {_describe(stats)}; every slot was given back."


def _grade_rate(answer: Any) -> str:
    expect(
        isinstance(answer, tuple) and len(answer) == 2,
        f"pass a pair: ex.check(4, (create_rate_limit, get_order_paced)), not {short(answer)}",
    )
    create, paced_task = require_solved(answer[0]), require_solved(answer[1])
    require_task(paced_task, "get_order_paced")
    made = require_rate_limit(create, RATE_LIMIT)
    calls, budget = 5, 3.0
    needed = max(0, calls - made.limit) / made.slot_decay_per_second
    expect(
        needed <= budget,
        f"with limit={made.limit} and slot_decay_per_second={made.slot_decay_per_second:g}, {calls} calls need "
        f"{needed:.1f} s, over the {budget:g} s budget. slot_decay_per_second counts slots freed each second, "
        "not seconds between calls.",
    )

    @flow(name="ex05-4-paced")
    def paced(ids: list[int]) -> list[int]:
        return paced_task.map(ids).result()

    service = _fresh_service(max_per_second=4)
    with quiet_console():
        value, state = run_flow(paced, list(range(1, calls + 1)))
    stats = service.stats()
    arrivals = sorted(r["arrived"] for r in stats.requests)
    expect(state.is_completed(), f"the flow run ended {state.name}: {short(value)}")
    expect(
        stats.rejected == 0,
        f"the service (4 per second) recorded {_describe(stats)}, up to {max_in_window(arrivals, 1.0)} in one "
        f"second. Call rate_limit({RATE_LIMIT!r}, strict=True) before each request, and free fewer slots per second.",
    )
    expect(_all_ok(value, calls), f"the run returned {short(value)}; expected {calls} 200s")
    span = arrivals[-1] - arrivals[0]
    return f"{calls} calls over {span:.2f} s, at most {max_in_window(arrivals, 1.0)} in any second, no 429."


def _occupy_like_a_crashed_run(name: str, slots: int) -> None:
    """Take `slots` slots of `name` with a lease and never release them, as a killed process would."""
    with get_client(sync_client=True) as client:
        client.increment_concurrency_slots_with_lease(names=[name], slots=slots, mode="concurrency", lease_duration=60)


def _grade_free_slots(answer: Any) -> str:
    expect(callable(answer), f"free_slots should be a function, got {type(answer).__name__}")
    before = ensure_limit(STUCK_LIMIT, 2)
    _occupy_like_a_crashed_run(STUCK_LIMIT, 2)
    answer(STUCK_LIMIT)
    after = read_limit(STUCK_LIMIT)
    expect(after is not None, f"the limit {STUCK_LIMIT!r} is gone: free its slots, keep the limit")
    expect(after.id == before.id, "the limit was deleted and created again; free the slots of the one that exists")
    expect(after.active, "the limit is now inactive, so it limits nothing at all; keep it active")
    expect(after.limit == 2, f"the limit now allows {after.limit}; keep it at 2 and free the occupied slots")
    expect(after.active_slots == 0, f"{after.active_slots} of 2 slots are still occupied by the dead holder")
    with concurrency(STUCK_LIMIT, occupy=2, timeout_seconds=5, strict=True):
        pass
    return "Both slots are free again, and the same limit still allows 2, active."


def _grade_fetch_in(answer: Any) -> str:
    require_flow(answer, "fetch_in")
    Variable.set(LIMITS_VARIABLE, {"dev": 1, "prod": 3}, overwrite=True, _sync=True)
    service = _fresh_service(max_in_flight=3)
    with quiet_console():
        dev_value, dev_state = run_flow(answer, "dev", [1, 2])
    dev = service.stats()
    expect(dev_state.is_completed(), f"fetch_in('dev', ...) ended {dev_state.name}: {short(dev_value)}")
    dev_limit = read_limit(f"{PREFIX}orders-dev")
    expect(
        dev_limit is not None and dev_limit.limit == 1,
        f"after the dev run the server's limit {PREFIX}orders-dev is {short(dev_limit)}; the variable says dev "
        "allows 1. Read Variable.get(...)['dev'] inside the flow and set the limit to it.",
    )
    expect(dev.peak_in_flight <= 1 and dev.rejected == 0, f"in dev the service recorded {_describe(dev)}; dev allows 1")
    Variable.set(LIMITS_VARIABLE, {"dev": 1, "prod": 2}, overwrite=True, _sync=True)  # an operator changes prod
    service.reset()
    service.configure(max_in_flight=2)
    with quiet_console():
        prod_value, prod_state = run_flow(answer, "prod", [1, 2, 3])
    prod = service.stats()
    expect(prod_state.is_completed(), f"fetch_in('prod', ...) ended {prod_state.name}: {short(prod_value)}")
    prod_limit = read_limit(f"{PREFIX}orders-prod")
    expect(
        prod_limit is not None and prod_limit.limit == 2,
        f"the variable was changed to prod=2 before this run, but the server's limit {PREFIX}orders-prod is "
        f"{short(prod_limit)}. Read the variable inside the flow, at run time.",
    )
    expect(prod.rejected == 0, f"in prod the service recorded {_describe(prod)}")
    expect(
        _all_ok(dev_value, 2) and _all_ok(prod_value, 3), f"the runs returned {short(dev_value)}, {short(prod_value)}"
    )
    return f"dev ran with limit 1 ({_describe(dev)}); prod, changed to 2 in the variable, ran with limit 2."


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
                "With limit=1, calls start 1 / slot_decay_per_second s apart: pick a rate under 4 and over 4/3.",
                "client.upsert_global_concurrency_limit_by_name(name, limit=1, slot_decay_per_second=3.0), and "
                "rate_limit(name, strict=True) as the task's first line.",
            ],
            solution=[create_rate_limit, get_order_paced],
            answer=lambda: (create_rate_limit, get_order_paced),
        ),
        Exercise(
            5,
            "free the slots of a crashed run",
            _grade_free_slots,
            hints=[
                "The slots are counted in the limit's active_slots; you can update that number.",
                "client.update_global_concurrency_limit(name, GlobalConcurrencyLimitUpdate(active_slots=0))",
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
