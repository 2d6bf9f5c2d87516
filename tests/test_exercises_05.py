"""Each check of pair 05 accepts the reference solution and rejects plausible wrong answers."""

import httpx
import pytest
from prefect import flow, task, unmapped
from prefect.client.orchestration import get_client
from prefect.client.schemas.actions import GlobalConcurrencyLimitCreate, GlobalConcurrencyLimitUpdate
from prefect.concurrency.sync import concurrency
from prefect.task_runners import ThreadPoolTaskRunner

from lessons_src.checks import TODO
from lessons_src.demo_api import start_demo_api
from lessons_src.exercises import exercises
from lessons_src.exercises.e05_concurrency_limits import (
    DELAY,
    ORDERS_LIMIT,
    PREFIX,
    get_order,
    get_order_paced,
    get_order_within,
)
from lessons_src.limits import remove_course_objects

EX = exercises("05")


@pytest.fixture
def course(course_server):
    """The course server and a reset demo API; every limit and variable the checks made is removed afterwards."""
    api = start_demo_api()
    api.reset()
    yield course_server
    remove_course_objects(PREFIX)
    api.reset()


def test_todo_in_a_pair_is_unsolved():
    assert EX.evaluate(4, (TODO, get_order_paced)).status == "unsolved"


# ---- exercise 1: max_workers ----


@flow
def fetch_uncapped(ids: list[int]) -> list[int]:
    return get_order.map(ids).result()


@flow(task_runner=ThreadPoolTaskRunner(max_workers=1))
def fetch_one_at_a_time(ids: list[int]) -> list[int]:
    return get_order.map(ids).result()


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


# ---- exercise 3: concurrency() across flow runs ----


@task
def get_order_unlimited(order_id: int) -> int:
    return httpx.get(start_demo_api().url_for(f"/orders/{order_id}", delay=DELAY), timeout=10).status_code


@task
def get_order_typo(order_id: int) -> int:
    with concurrency(ORDERS_LIMIT + "s"):  # a typo, and strict=False: a warning, then no limit at all
        return httpx.get(start_demo_api().url_for(f"/orders/{order_id}", delay=DELAY), timeout=10).status_code


def get_order_plain(order_id: int) -> int:
    with concurrency(ORDERS_LIMIT, strict=True):
        return httpx.get(start_demo_api().url_for(f"/orders/{order_id}", delay=DELAY), timeout=10).status_code


# ---- exercise 4: rate limit ----


def rate_as_seconds(name: str) -> None:
    with get_client(sync_client=True) as client:  # "one call every 4 seconds" misread as a decay of 0.25
        client.upsert_global_concurrency_limit_by_name(name, limit=1, slot_decay_per_second=0.25)


def rate_without_decay(name: str) -> None:
    with get_client(sync_client=True) as client:
        client.upsert_global_concurrency_limit_by_name(name, limit=1)


def good_rate(name: str) -> None:
    with get_client(sync_client=True) as client:
        client.upsert_global_concurrency_limit_by_name(name, limit=1, slot_decay_per_second=3.0)


@task
def get_order_unpaced(order_id: int) -> int:
    return httpx.get(start_demo_api().url_for(f"/orders/{order_id}", delay=0.1), timeout=10).status_code


# ---- exercise 5: free the slots of a crashed run ----


def raise_the_limit(name: str) -> None:
    with get_client(sync_client=True) as client:
        client.update_global_concurrency_limit(name, GlobalConcurrencyLimitUpdate(limit=4))


def switch_it_off(name: str) -> None:
    with get_client(sync_client=True) as client:
        client.update_global_concurrency_limit(name, GlobalConcurrencyLimitUpdate(active=False))


def delete_and_recreate(name: str) -> None:
    with get_client(sync_client=True) as client:
        client.delete_global_concurrency_limit_by_name(name)
        client.create_global_concurrency_limit(GlobalConcurrencyLimitCreate(name=name, limit=2))


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


@pytest.mark.parametrize(
    ("number", "wrong", "expected_message"),
    [
        (1, fetch_uncapped, "it allows 2 at once"),
        (1, fetch_one_at_a_time, "one request at a time"),
        (2, create_only, "raised ObjectAlreadyExists"),
        (2, create_inactive, "created inactive"),
        (2, create_if_missing_only, "expected 2"),
        (3, get_order_unlimited, "answered 429"),
        (3, get_order_typo, "answered 429"),
        (3, get_order_plain, "should be a Prefect task"),
        (4, (rate_as_seconds, get_order_paced), "not seconds between calls"),
        (4, (rate_without_decay, get_order_paced), "without slot_decay_per_second"),
        (4, (good_rate, get_order_unpaced), "answered 429"),
        (4, get_order_paced, "pass a pair"),
        (5, raise_the_limit, "keep it at 2"),
        (5, switch_it_off, "inactive"),
        (5, delete_and_recreate, "deleted and created again"),
        (6, fetch_in_hard_coded, "the variable says dev allows 1"),
        (6, fetch_in_stale, "Read the variable inside the flow, at run time"),
    ],
    ids=lambda value: getattr(value, "__name__", None) or getattr(value[0], "__name__", str(value))[:30]
    if isinstance(value, tuple)
    else getattr(value, "__name__", str(value))[:30],
)
def test_wrong_answers_are_rejected(course, number, wrong, expected_message):
    outcome = EX.evaluate(number, wrong)
    assert outcome.status == "failed"
    assert expected_message in outcome.message
