"""Each check of pair 07 accepts the reference solution and rejects plausible wrong answers."""

import math

import httpx
import pytest
from prefect import flow, task, unmapped

from lessons_src.demo_api import start_demo_api
from lessons_src.exercises import exercises
from lessons_src.exercises.e07_composing_workflows import add_up, clear_cache, get_page, warm

EX = exercises("07")
http = httpx.Client(timeout=5.0)


@pytest.fixture
def demo_api():
    api = start_demo_api()
    api.reset()
    return api


def _total(url: str) -> int:
    response = http.get(url)
    response.raise_for_status()
    return response.json()["total"]


@task
def order_count_task(url: str) -> int:
    return _total(url)


@flow
def nightly_with_a_task(url: str) -> str:
    return f"{order_count_task(url)} orders"


@flow
def order_count(url: str) -> int:
    return _total(url)


@flow
def nightly_calling_fn(url: str) -> str:
    return f"{order_count.fn(url)} orders"


@flow
def fetch_total_no_retries(url: str) -> int:
    return _total(url)


@flow
def report_without_retries(url: str) -> int:
    return fetch_total_no_retries(url)


@flow(retries=1, retry_delay_seconds=0)
def report_with_retries_on_parent(url: str) -> int:
    return fetch_total_no_retries(url)


@flow
def strict_total(url: str) -> int:
    return _total(url)


@flow
def safe_report_unguarded(url: str) -> int:
    return strict_total(url)


@flow
def swallowing_total(url: str) -> int:
    try:
        return _total(url)
    except httpx.HTTPStatusError:
        return -1


@flow
def safe_report_hiding_failure(url: str) -> int:
    return swallowing_total(url)


@flow
def safe_report_always_minus_one(url: str) -> int:
    strict_total(url, return_state=True)
    return -1


@flow
def revenue_in_the_flow(url: str, page_size: int) -> float:
    pages, page = [], 1
    while page:
        body = http.get(url, params={"page": page, "page_size": page_size}).json()
        pages.append(body)
        page = body["next_page"]
    return round(sum(o["amount"] for p in pages for o in p["items"]), 2)


@flow
def revenue_fetching_page_one_twice(url: str, page_size: int) -> float:
    first = get_page(url, 1, page_size)
    n_pages = math.ceil(first["total"] / page_size)
    return add_up(get_page.map(unmapped(url), range(1, n_pages + 1), unmapped(page_size)))


@flow
def revenue_one_page_at_a_time(url: str, page_size: int) -> float:
    first = get_page(url, 1, page_size)
    n_pages = math.ceil(first["total"] / page_size)
    return add_up([first, *[get_page(url, page, page_size) for page in range(2, n_pages + 1)]])


@flow
def refresh_without_wait_for(cities: list[str], url: str) -> list[str]:
    clear_cache.submit()
    return warm.map(cities, unmapped(url)).result()


@flow
def refresh_one_by_one(cities: list[str], url: str) -> list[str]:
    clear_cache()
    return [warm(city, url) for city in cities]


@pytest.mark.parametrize(
    ("number", "wrong", "expected_message"),
    [
        (1, nightly_with_a_task, "recorded 0 subflow runs"),
        (1, nightly_calling_fn, "recorded 0 subflow runs"),
        (2, report_without_retries, "Give fetch_total its own retries"),
        (2, report_with_retries_on_parent, "the retry belongs on the subflow"),
        (3, safe_report_unguarded, "when the subflow failed"),
        (3, safe_report_hiding_failure, "expected one Failed subflow run"),
        (3, safe_report_always_minus_one, "with a working API it returned -1"),
        (4, revenue_in_the_flow, "0 get_page task runs"),
        (4, revenue_fetching_page_one_twice, "fetch each page once"),
        (4, revenue_one_page_at_a_time, "one after another"),
        (5, refresh_without_wait_for, "started before clear_cache ended"),
        (5, refresh_one_by_one, "one after another"),
    ],
    ids=lambda value: getattr(value, "__name__", str(value))[:30],
)
def test_wrong_answers_are_rejected(course_server, demo_api, number, wrong, expected_message):
    outcome = EX.evaluate(number, wrong)
    assert outcome.status == "failed"
    assert expected_message in outcome.message
