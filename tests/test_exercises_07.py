"""Pair 07's checks pass right answers written unlike the reference and fail near misses, the same way twice.

Right answers are async flows, `.submit` instead of `.map`, no `unmapped` for a str argument; each wrong answer's
message must name what the check saw.
"""

import math

import httpx
import pytest
from prefect import flow, task, unmapped
from prefect.futures import wait

from lessons_src.exercises import exercises
from lessons_src.exercises.e07_composing_workflows import add_up, clear_cache, get_page, warm

EX = exercises("07")
http = httpx.Client(timeout=5.0)


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


@flow
def nightly_calling_twice(url: str) -> str:
    order_count(url)
    return f"{order_count(url)} orders"


@flow
def fetch_total_slow_retry(url: str) -> int:
    return _total(url)


@flow
def report_with_a_delayed_retry(url: str) -> int:
    return fetch_total_slow_retry.with_options(retries=1, retry_delay_seconds=1)(url)


@flow
def report_looping_over_subflows(url: str) -> int:
    for _ in range(2):
        try:
            return fetch_total_no_retries(url)
        except httpx.HTTPStatusError:
            pass
    return -1


@flow
def safe_report_catching_the_wrong_error(url: str) -> int:
    try:
        return strict_total(url)
    except ValueError:
        return -1


@flow
def safe_report_with_a_name_error(url: str) -> int:
    state = strict_total(url, return_state=True)
    return -1 if state.is_failed() else sate.result()  # noqa: F821 (the learner's typo)


@flow
def revenue_with_floor_division(url: str, page_size: int) -> float:
    first = get_page(url, 1, page_size)
    n_pages = first["total"] // page_size
    return add_up([first, *get_page.map(url, range(2, n_pages + 1), page_size)])


@flow
def revenue_with_one_page_too_many(url: str, page_size: int) -> float:
    first = get_page(url, 1, page_size)
    n_pages = first["total"] // page_size + 1  # right for 95 / 25, one too many when page_size divides 95
    return add_up([first, *get_page.map(url, range(2, n_pages + 1), page_size)])


@flow
def refresh_returning_futures(cities: list[str], url: str) -> list[str]:
    cleared = clear_cache.submit()
    return warm.map(cities, url, wait_for=[cleared])


@flow
def refresh_sorted(cities: list[str], url: str) -> list[str]:
    cleared = clear_cache.submit()
    return sorted(warm.map(cities, url, wait_for=[cleared]).result())


@flow
def refresh_mapping_nothing(cities: list[str], url: str) -> list[str]:
    cleared = clear_cache.submit()
    return warm.map(unmapped(cities), url, wait_for=[cleared]).result()


@flow
def nightly_without_url() -> str:
    return f"{order_count('http://unused')} orders"


@flow
def revenue_without_page_size(url: str) -> float:
    return 0.0


@task(retries=1)
def fetch_total_as_a_task(url: str) -> int:
    return _total(url)


@flow
def report_with_a_retrying_task(url: str) -> int:
    return fetch_total_as_a_task(url)


@flow
async def order_count_async_child(url: str) -> int:
    return _total(url)


@flow
async def nightly_not_awaiting(url: str) -> str:
    return f"{order_count_async_child(url)} orders"  # the learner forgot await


@flow
def refresh_returning_states(cities: list[str], url: str) -> list[str]:
    cleared = clear_cache.submit()
    return [future.state for future in warm.map(cities, url, wait_for=[cleared])]


@pytest.mark.parametrize(
    ("number", "wrong", "expected_message"),
    [
        (1, nightly_with_a_task, "recorded 0 subflow runs"),
        (1, nightly_calling_fn, "recorded 0 subflow runs"),
        (2, report_without_retries, "Give fetch_total its own retries"),
        (2, report_with_retries_on_parent, "the retry belongs on the subflow"),
        (3, safe_report_unguarded, "when the subflow failed"),
        (3, safe_report_hiding_failure, "expected one Failed subflow run"),
        (3, safe_report_always_minus_one, "with a working API safe_report returned -1"),
        (4, revenue_in_the_flow, "0 get_page task runs"),
        (4, revenue_fetching_page_one_twice, "fetch each page once"),
        (4, revenue_one_page_at_a_time, "one after another"),
        (5, refresh_without_wait_for, "started before clear_cache ended"),
        (5, refresh_one_by_one, "one after another"),
        (1, nightly_calling_twice, "recorded 2 subflow runs"),
        (1, nightly_without_url, "nightly should take one argument, (url: str)"),
        (4, revenue_without_page_size, "revenue should take two arguments"),
        (2, report_with_a_delayed_retry, "waits 1 s before a retry"),
        (2, report_looping_over_subflows, "recorded 2 subflow runs under report"),
        (3, safe_report_catching_the_wrong_error, "when the subflow failed"),
        (3, safe_report_with_a_name_error, "your code raised NameError"),
        (4, revenue_with_floor_division, "the sum over 4 pages (the demo API served 3 requests)"),
        (4, revenue_with_one_page_too_many, "with page_size=19 the demo API served 6 requests for 5 pages"),
        (5, refresh_returning_futures, "not the city names"),
        (5, refresh_sorted, "in the order of cities"),
        (5, refresh_mapping_nothing, "your code raised MappingMissingIterable"),
        (2, report_with_a_retrying_task, "recorded 0 subflow runs under report; expected 1: make fetch_total a @flow"),
        (1, nightly_not_awaiting, "an async subflow returns a coroutine; make nightly async and await it"),
        (5, refresh_returning_states, "Prefect states or futures, not the city names"),
    ],
    ids=lambda value: getattr(value, "__name__", str(value))[:30],
)
def test_wrong_answers_are_rejected_twice_alike(graded, fresh_demo_api, number, wrong, expected_message):
    outcome = graded(EX, number, wrong)
    assert outcome.status == "failed" and expected_message in outcome.message, outcome


# ---- right answers written differently from the reference ----


@flow
async def order_count_async(url: str) -> int:
    return _total(url)


@flow
async def nightly_async(url: str) -> str:
    return f"{await order_count_async(url)} orders"


@flow(retries=1)  # a flow's retry_delay_seconds defaults to 0
def fetch_total_default_delay(url: str) -> int:
    return _total(url)


@flow
def report_reading_the_state(url: str) -> int:
    return fetch_total_default_delay(url, return_state=True).result()


@flow
async def strict_total_async(url: str) -> int:
    return _total(url)


@flow
async def safe_report_async(url: str) -> int:
    state = await strict_total_async(url, return_state=True)
    return -1 if state.is_failed() else await state.result()


@flow
def safe_report_catching(url: str) -> int:
    try:
        return strict_total(url)
    except httpx.HTTPStatusError:
        return -1


@flow
def revenue_with_submit(url: str, page_size: int) -> float:
    first = get_page(url, 1, page_size)
    n_pages = -(-first["total"] // page_size)
    return add_up([first, *[get_page.submit(url, page, page_size) for page in range(2, n_pages + 1)]])


@flow
async def revenue_async_with_unmapped(url: str, page_size: int) -> float:
    first = get_page(url, 1, page_size)
    n_pages = math.ceil(first["total"] / page_size)
    rest = get_page.map(unmapped(url), range(2, n_pages + 1), unmapped(page_size)).result()
    return add_up([first, *rest])


@flow
def refresh_with_submit(cities: list[str], url: str) -> list[str]:
    cleared = clear_cache.submit()
    futures = [warm.submit(city, url, wait_for=[cleared]) for city in cities]
    wait(futures)
    return [future.result() for future in futures]


@flow
async def refresh_async_keywords(cities: list[str], url: str) -> list[str]:
    cleared = clear_cache.submit()
    return warm.map(city=cities, url=url, wait_for=[cleared]).result()


@flow
def report_with_two_retries(url: str) -> int:
    return fetch_total_no_retries.with_options(retries=2)(url)


@flow
def refresh_waiting_for_one_future(cities: list[str], url: str) -> list[str]:
    cleared = clear_cache.submit()
    return warm.map(cities, url, wait_for=cleared).result()  # wait_for also takes a single future


@flow
def refresh_clearing_first(cities: list[str], url: str) -> list[str]:
    clear_cache()  # a plain call returns once the task has ended: order without wait_for
    return list(warm.map(cities, url).result())


@pytest.mark.parametrize(
    ("number", "right"),
    [
        (1, nightly_async),
        (2, report_reading_the_state),
        (3, safe_report_async),
        (3, safe_report_catching),
        (4, revenue_with_submit),
        (4, revenue_async_with_unmapped),
        (5, refresh_with_submit),
        (5, refresh_async_keywords),
        (2, report_with_two_retries),
        (5, refresh_waiting_for_one_future),
        (5, refresh_clearing_first),
    ],
    ids=lambda value: getattr(value, "__name__", str(value))[:30],
)
def test_right_answers_written_differently_pass_twice(graded, fresh_demo_api, number, right):
    outcome = graded(EX, number, right)
    assert outcome.status == "passed", outcome
