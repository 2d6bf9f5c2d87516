"""Each check of pair 05 rejects plausible wrong answers, saying why, and accepts right answers unlike the reference,
with the same verdict when run twice (limits, leases and variables left by the first run must not count)."""

import time
from uuid import UUID

import httpx
import pytest
from prefect import flow, task, unmapped
from prefect.client.orchestration import get_client
from prefect.client.schemas.actions import GlobalConcurrencyLimitCreate, GlobalConcurrencyLimitUpdate
from prefect.concurrency.asyncio import concurrency as async_concurrency
from prefect.concurrency.asyncio import rate_limit as async_rate_limit
from prefect.concurrency.sync import concurrency
from prefect.exceptions import ObjectAlreadyExists, ObjectNotFound
from prefect.task_runners import ThreadPoolTaskRunner
from prefect.variables import Variable

from lessons_src.checks import TODO
from lessons_src.demo_api import start_demo_api
from lessons_src.exercises import exercises
from lessons_src.exercises.e05_concurrency_limits import (
    DELAY,
    LIMITS_VARIABLE,
    ORDERS_LIMIT,
    PREFIX,
    RATE_LIMIT,
    STUCK_LIMIT,
    get_order,
    get_order_paced,
    get_order_within,
)
from lessons_src.pairs.p05_concurrency_limits import remove_course_objects

EX = exercises("05")


@pytest.fixture
def course(course_server):
    """The course server and a reset demo API; every limit and variable the checks made is removed afterwards."""
    api = start_demo_api()
    api.reset()
    yield course_server
    remove_course_objects(PREFIX)
    api.reset()


def order_url(order_id: int, delay: float = DELAY) -> str:
    return start_demo_api().url_for(f"/orders/{order_id}", delay=delay)


def test_todo_in_a_pair_is_unsolved():
    assert EX.evaluate(4, (TODO, get_order_paced)).status == "unsolved"


# ---- exercise 1: max_workers ----


@flow
def fetch_uncapped(ids: list[int]) -> list[int]:
    return get_order.map(ids).result()


@flow(task_runner=ThreadPoolTaskRunner(max_workers=1))
def fetch_one_at_a_time(ids: list[int]) -> list[int]:
    return get_order.map(ids).result()


@flow(task_runner=ThreadPoolTaskRunner(max_workers=2))
def fetch_futures(ids: list[int]) -> list[int]:
    return get_order.map(ids)


@flow(task_runner=ThreadPoolTaskRunner(max_workers=2))
async def fetch_capped_async(ids: list[int]) -> list[int]:
    futures = [get_order.submit(order_id) for order_id in ids]
    return [future.result() for future in futures]


# ---- exercise 2: create a limit idempotently ----


def create_only(name: str, size: int) -> None:
    with get_client(sync_client=True) as client:
        client.create_global_concurrency_limit(GlobalConcurrencyLimitCreate(name=name, limit=size))


def create_inactive(name: str, size: int) -> None:
    with get_client(sync_client=True) as client:
        client.create_global_concurrency_limit(GlobalConcurrencyLimitCreate(name=name, limit=size, active=False))


def create_if_missing_only(name: str, size: int) -> None:
    with get_client(sync_client=True) as client:
        if not [limit for limit in client.read_global_concurrency_limits(limit=200) if limit.name == name]:
            client.create_global_concurrency_limit(GlobalConcurrencyLimitCreate(name=name, limit=size))


def delete_and_create(name: str, size: int) -> None:
    with get_client(sync_client=True) as client:
        try:
            client.delete_global_concurrency_limit_by_name(name)
        except ObjectNotFound:
            pass
        client.create_global_concurrency_limit(GlobalConcurrencyLimitCreate(name=name, limit=size))


async def ensure_async(name: str, size: int) -> None:
    async with get_client() as client:
        await client.upsert_global_concurrency_limit_by_name(name, size)


def read_then_create_or_update(name: str, size: int) -> None:
    with get_client(sync_client=True) as client:
        try:
            client.read_global_concurrency_limit_by_name(name)
        except ObjectNotFound:
            client.create_global_concurrency_limit(GlobalConcurrencyLimitCreate(name=name, limit=size))
        else:
            client.update_global_concurrency_limit(name, GlobalConcurrencyLimitUpdate(limit=size))


def update_only(name: str, size: int) -> None:
    with get_client(sync_client=True) as client:
        client.update_global_concurrency_limit(name, GlobalConcurrencyLimitUpdate(limit=size))


def create_or_update_on_conflict(name: str, size: int) -> None:
    with get_client(sync_client=True) as client:
        try:
            client.create_global_concurrency_limit(GlobalConcurrencyLimitCreate(name=name, limit=size))
        except ObjectAlreadyExists:
            client.update_global_concurrency_limit(name, GlobalConcurrencyLimitUpdate(limit=size))


# ---- exercise 3: concurrency() across flow runs ----


@task
def get_order_unlimited(order_id: int) -> int:
    return httpx.get(order_url(order_id), timeout=10).status_code


@task
def get_order_typo(order_id: int) -> int:
    with concurrency(ORDERS_LIMIT + "s"):  # a typo, and strict=False: a warning, then no limit at all
        return httpx.get(order_url(order_id), timeout=10).status_code


@task
def get_order_response(order_id: int) -> httpx.Response:
    with concurrency(ORDERS_LIMIT, strict=True):
        return httpx.get(order_url(order_id), timeout=10)


@task
def get_order_limited_by_list(order_id: int) -> int:
    with concurrency(names=[ORDERS_LIMIT], strict=True, timeout_seconds=30):
        response = httpx.get(order_url(order_id), timeout=10)
    return response.status_code


@task
def get_order_not_strict(order_id: int) -> int:
    with concurrency(ORDERS_LIMIT, occupy=1):  # right while the limit exists; a silent no-op once it is gone
        return httpx.get(order_url(order_id), timeout=10).status_code


@task
def get_order_whole_limit(order_id: int) -> int:
    with concurrency(ORDERS_LIMIT, occupy=2, strict=True):  # safe, but one request at a time
        return httpx.get(order_url(order_id), timeout=10).status_code


def get_order_plain(order_id: int) -> int:
    with concurrency(ORDERS_LIMIT, strict=True):
        return httpx.get(order_url(order_id), timeout=10).status_code


@task
async def get_order_limited_async(order_id: int) -> int:
    async with async_concurrency([ORDERS_LIMIT], strict=True):
        async with httpx.AsyncClient(timeout=10) as client:
            return (await client.get(order_url(order_id))).status_code


# ---- exercise 4: rate limit ----


def rate_as_seconds(name: str) -> None:
    with get_client(sync_client=True) as client:  # "one call every 4 seconds" misread as a decay of 0.25
        client.upsert_global_concurrency_limit_by_name(name, limit=1, slot_decay_per_second=0.25)


def rate_without_decay(name: str) -> None:
    with get_client(sync_client=True) as client:
        client.upsert_global_concurrency_limit_by_name(name, limit=1)


def rate_in_a_burst(name: str) -> None:
    with get_client(sync_client=True) as client:  # 4 per second on average, but 4 at once first
        client.upsert_global_concurrency_limit_by_name(name, limit=4, slot_decay_per_second=4)


def good_rate(name: str) -> None:
    with get_client(sync_client=True) as client:
        client.upsert_global_concurrency_limit_by_name(name, limit=1, slot_decay_per_second=3.0)


async def good_rate_async(name: str) -> None:
    async with get_client() as client:
        await client.upsert_global_concurrency_limit_by_name(name, limit=1, slot_decay_per_second=2)


@task
def get_order_unpaced(order_id: int) -> int:
    return httpx.get(order_url(order_id, delay=0.1), timeout=10).status_code


@task
def get_order_paced_by_sleeping(order_id: int) -> int:
    time.sleep(0.35 * order_id)  # 5 calls about 0.35 s apart, under the service's 4 per second: paced, but by luck
    return httpx.get(order_url(order_id, delay=0.1), timeout=10).status_code


@task
async def get_order_paced_async(order_id: int) -> int:
    await async_rate_limit(RATE_LIMIT, strict=True)
    async with httpx.AsyncClient(timeout=10) as client:
        return (await client.get(order_url(order_id, delay=0.1))).status_code


# ---- exercise 5: release the lease of a crashed run ----


def set_the_count_to_zero(lease_id: str) -> None:  # the fix this exercise used to teach: the lease stays
    with get_client(sync_client=True) as client:
        client.update_global_concurrency_limit(STUCK_LIMIT, GlobalConcurrencyLimitUpdate(active_slots=0))


def decrement_without_the_lease(lease_id: str) -> None:
    with get_client(sync_client=True) as client:
        client.release_concurrency_slots(names=[STUCK_LIMIT], slots=2, occupancy_seconds=1.0)


def renew_instead(lease_id: str) -> None:
    with get_client(sync_client=True) as client:
        client.renew_concurrency_lease(lease_id, lease_duration=60)


def raise_the_limit(lease_id: str) -> None:
    with get_client(sync_client=True) as client:
        client.update_global_concurrency_limit(STUCK_LIMIT, GlobalConcurrencyLimitUpdate(limit=4))


def switch_it_off(lease_id: str) -> None:
    with get_client(sync_client=True) as client:
        client.update_global_concurrency_limit(STUCK_LIMIT, GlobalConcurrencyLimitUpdate(active=False))


def delete_and_recreate(lease_id: str) -> None:
    with get_client(sync_client=True) as client:
        client.delete_global_concurrency_limit_by_name(STUCK_LIMIT)
        client.create_global_concurrency_limit(GlobalConcurrencyLimitCreate(name=STUCK_LIMIT, limit=2))


def free_slots_old_signature(name: str, lease_id: str) -> None:
    with get_client(sync_client=True) as client:
        client.release_concurrency_slots_with_lease(lease_id)


async def release_async(lease_id: str) -> None:
    async with get_client() as client:
        await client.release_concurrency_slots_with_lease(UUID(lease_id))


def release_with_prefects_own_helper(lease_id):
    from prefect.concurrency._sync import release_concurrency_slots_with_lease

    release_concurrency_slots_with_lease(lease_id)


# ---- exercise 6: a limit per environment from a Variable ----


@flow
def fetch_in_hard_coded(environment: str, ids: list[int]) -> list[int]:
    limit_name = f"{PREFIX}orders-{environment}"
    with get_client(sync_client=True) as client:
        client.upsert_global_concurrency_limit_by_name(limit_name, 3)
    return get_order_within.map(ids, limit_name=unmapped(limit_name)).result()


LIMITS_WHEN_DEFINED = {"dev": 1, "prod": 3}  # read once, when the code was written, not at run time


@flow
def fetch_in_stale(environment: str, ids: list[int]) -> list[int]:
    limit_name = f"{PREFIX}orders-{environment}"
    with get_client(sync_client=True) as client:
        client.upsert_global_concurrency_limit_by_name(limit_name, LIMITS_WHEN_DEFINED[environment])
    return get_order_within.map(ids, limit_name=unmapped(limit_name)).result()


@flow
def fetch_in_without_the_limit(environment: str, ids: list[int]) -> list[int]:
    limit_name = f"{PREFIX}orders-{environment}"
    with get_client(sync_client=True) as client:
        client.upsert_global_concurrency_limit_by_name(limit_name, Variable.get(LIMITS_VARIABLE)[environment])
    return [get_order(order_id) for order_id in ids]  # one by one: safe, but the limit is never used


@flow
def fetch_in_never_creating_it(environment: str, ids: list[int]) -> list[int]:
    return get_order_within.map(ids, limit_name=unmapped(f"{PREFIX}orders-{environment}")).result()


@flow
async def fetch_in_async(environment: str, ids: list[int]) -> list[int]:
    allowed = (await Variable.get(LIMITS_VARIABLE))[environment]
    limit_name = f"{PREFIX}orders-{environment}"
    async with get_client() as client:
        await client.upsert_global_concurrency_limit_by_name(limit_name, allowed)
    return get_order_within.map(ids, limit_name=unmapped(limit_name)).result()


@flow
def fetch_in_one_by_one(environment: str, ids: list[int]) -> list[int]:
    limit_name = "course-05x-orders-" + environment
    with get_client(sync_client=True) as client:
        client.upsert_global_concurrency_limit_by_name(
            name=limit_name, limit=Variable.get(LIMITS_VARIABLE)[environment]
        )
    return [get_order_within(order_id, limit_name) for order_id in ids]


@flow
async def fetch_in_async_without_await(environment: str, ids: list[int]) -> list[int]:
    limit_name = f"course-05x-orders-{environment}"
    allowed = Variable.get(LIMITS_VARIABLE)[environment]  # a coroutine in an async flow: not awaited
    async with get_client() as client:
        await client.upsert_global_concurrency_limit_by_name(limit_name, allowed)
    return get_order_within.map(ids, limit_name=unmapped(limit_name)).result()


def answer_id(value):
    if isinstance(value, tuple):
        return "(" + ", ".join(getattr(v, "__name__", "?") for v in value) + ")"
    return getattr(value, "__name__", str(value))[:30]


@pytest.mark.parametrize(
    ("number", "wrong", "expected_message"),
    [
        (1, fetch_uncapped, "it allows 2 at once"),
        (1, fetch_one_at_a_time, "one request at a time"),
        (1, fetch_futures, "not the statuses"),
        (2, create_only, "raised ObjectAlreadyExists"),
        (2, create_inactive, "created inactive"),
        (2, create_if_missing_only, "expected 2"),
        (2, delete_and_create, "deleted the limit and created a new one"),
        (2, update_only, "raised ObjectNotFound: expected it to create the limit"),
        (3, get_order_unlimited, "slot(s) taken"),
        (3, get_order_typo, "slot(s) taken"),
        (3, get_order_not_strict, "Pass strict=True"),
        (3, get_order_response, "expected 3 statuses of 200 each"),
        (3, get_order_whole_limit, "occupy=1"),
        (3, get_order_plain, "should be a Prefect task"),
        (4, (rate_as_seconds, get_order_paced), "not seconds between calls"),
        (4, (rate_without_decay, get_order_paced), "without slot_decay_per_second"),
        (4, (rate_in_a_burst, get_order_paced), "Keep limit + slot_decay_per_second at most 4.5"),
        (4, (good_rate, get_order_unpaced), "slot(s) taken"),
        (4, (good_rate, get_order_paced_by_sleeping), "slot(s) taken"),
        (4, get_order_paced, "pass a pair"),
        (5, set_the_count_to_zero, "is still on the server"),
        (5, decrement_without_the_lease, "is still on the server"),
        (5, renew_instead, "2 of 2 slots are still occupied"),
        (5, raise_the_limit, "keep it at 2"),
        (5, switch_it_off, "inactive"),
        (5, delete_and_recreate, "deleted and created again"),
        (5, free_slots_old_signature, "free_slots should take one argument, the dead worker's lease id"),
        (6, fetch_in_hard_coded, "the variable says dev allows 1"),
        (6, fetch_in_stale, "Read the variable inside the flow, at run time"),
        (6, fetch_in_without_the_limit, "no slot of course-05x-orders-dev was ever taken"),
        (6, fetch_in_never_creating_it, "must be created before acquiring slots"),
        (6, fetch_in_async_without_await, "In an async flow, await Variable.get"),
    ],
    ids=answer_id,
)
def test_wrong_answers_are_rejected_twice_alike(graded, course, number, wrong, expected_message):
    outcome = graded(EX, number, wrong)
    assert outcome.status == "failed" and expected_message in outcome.message, outcome


@pytest.mark.parametrize(
    ("number", "right"),
    [
        (1, fetch_capped_async),
        (2, ensure_async),
        (2, read_then_create_or_update),
        (2, create_or_update_on_conflict),
        (3, get_order_limited_async),
        (3, get_order_limited_by_list),
        (4, (good_rate_async, get_order_paced_async)),
        (5, release_async),
        (5, release_with_prefects_own_helper),
        (6, fetch_in_async),
        (6, fetch_in_one_by_one),
    ],
    ids=answer_id,
)
def test_right_answers_written_differently_pass_twice(graded, course, number, right):
    outcome = graded(EX, number, right)
    assert outcome.status == "passed", outcome


def test_the_lease_check_leaves_no_lease_behind(course):
    EX.evaluate(5, set_the_count_to_zero)  # a wrong answer leaves the lease; the check releases it anyway
    with get_client(sync_client=True) as client:
        limit = client.read_global_concurrency_limit_by_name(STUCK_LIMIT)
    assert (limit.limit, limit.active, limit.active_slots) == (2, True, 0)
