"""Pair 09's checks reject near misses with a message naming what arrived, and accept right answers written otherwise.

Right answers in other forms pass: async tasks and flows, a status check instead of raise_for_status, pages planned
from `total`, any row order in the transform, a str path, a temporary file moved into place, `map` or
`result(raise_on_failure=False)`. Every answer is graded twice with the same verdict (fresh keys; no counters reset).
"""

import asyncio
import os
import shutil
import tempfile
from pathlib import Path

import httpx
import pandas as pd
import pytest
from prefect import flow, task
from prefect.futures import as_completed, wait

from lessons_src.exercises import exercises

EX = exercises("09")


# ---- wrong answers ----


def fetch_plain(url: str) -> dict:
    return httpx.get(url, timeout=10).json()


@task
def fetch_without_retries(url: str) -> dict:
    response = httpx.get(url, timeout=10)
    response.raise_for_status()
    return response.json()


@task(retries=1, retry_delay_seconds=0.05)
def fetch_too_few_retries(url: str) -> dict:
    response = httpx.get(url, timeout=10)
    response.raise_for_status()
    return response.json()


@task(retries=3, retry_delay_seconds=0.05)
def fetch_without_raise(url: str) -> dict:
    return httpx.get(url, timeout=10).json()


@task(retries=3, retry_delay_seconds=0.05)
def fetch_page(url: str) -> dict:
    response = httpx.get(url, timeout=10)
    response.raise_for_status()
    return response.json()


@flow
def extract_first_page_only(base_url: str, page_size: int) -> list[dict]:
    return fetch_page(f"{base_url}/orders?page=1&page_size={page_size}")["items"]


@flow
def extract_until_empty(base_url: str, page_size: int) -> list[dict]:
    orders, page = [], 1
    while True:
        items = fetch_page(f"{base_url}/orders?page={page}&page_size={page_size}")["items"]
        if not items:
            return orders
        orders += items
        page += 1


@flow
def extract_without_tasks(base_url: str, page_size: int) -> list[dict]:
    orders, page = [], 1
    while page is not None:
        body = httpx.get(f"{base_url}/orders?page={page}&page_size={page_size}", timeout=10).json()
        orders += body["items"]
        page = body["next_page"]
    return orders


@task
def monthly_by_day(orders: list[dict], climate: pd.DataFrame) -> pd.DataFrame:
    frame = pd.DataFrame(orders)
    frame["month"] = pd.to_datetime(frame["created"]).dt.month
    daily = frame.groupby(["created", "month"]).agg(orders=("id", "count"), revenue=("amount", "sum")).reset_index()
    return daily.merge(climate, on="month", how="left")


@task
def monthly_without_climate(orders: list[dict], climate: pd.DataFrame) -> pd.DataFrame:
    frame = pd.DataFrame(orders)
    frame["month"] = pd.to_datetime(frame["created"]).dt.month
    return frame.groupby("month").agg(orders=("id", "count"), revenue=("amount", "sum")).reset_index()


@task
def monthly_mean_amount(orders: list[dict], climate: pd.DataFrame) -> pd.DataFrame:
    frame = pd.DataFrame(orders)
    frame["month"] = pd.to_datetime(frame["created"]).dt.month
    monthly = frame.groupby("month").agg(orders=("id", "count"), revenue=("amount", "mean")).reset_index()
    return monthly.merge(climate, on="month", how="left")


@task
def save_appending(table: pd.DataFrame, path: Path) -> Path:
    if path.exists():
        table = pd.concat([pd.read_parquet(path), table], ignore_index=True)
    table.to_parquet(path, index=False)
    return path


@task
def save_as_csv(table: pd.DataFrame, path: Path) -> Path:
    table.to_csv(path, index=False)
    return path


@task
def save_leaving_partial(table: pd.DataFrame, path: Path) -> Path:
    table.to_parquet(path.with_name(path.name + ".partial"), index=False)
    table.to_parquet(path, index=False)
    return path


@flow
def extract_pages_failing(urls: list[str]) -> dict:
    futures = [fetch_page.submit(url) for url in urls]
    return {"items": [item for f in futures for item in f.result()["items"]], "failed": []}


@task
def fetch_swallowing(url: str) -> dict:
    try:
        response = httpx.get(url, timeout=10)
        response.raise_for_status()
        return response.json()
    except httpx.HTTPStatusError:
        return {"items": [], "error": url}


@flow
def extract_pages_swallowed(urls: list[str]) -> dict:
    bodies = {url: fetch_swallowing.submit(url).result() for url in urls}
    return {
        "items": [item for body in bodies.values() for item in body["items"]],
        "failed": [url for url, body in bodies.items() if "error" in body],
    }


@flow
def extract_pages_forgets_failures(urls: list[str]) -> dict:
    futures = [fetch_page.submit(url) for url in urls]
    items = []
    for future in futures:
        future.wait()
        if future.state.is_completed():
            items += future.result()["items"]
    return {"items": items, "failed": []}


@task
def monthly_rain_only(orders: list[dict], climate: pd.DataFrame) -> pd.DataFrame:
    frame = pd.DataFrame(orders)
    frame["month"] = pd.to_datetime(frame["created"]).dt.month
    monthly = frame.groupby("month").agg(orders=("id", "count"), revenue=("amount", "sum")).reset_index()
    return monthly.merge(climate[["month", "precipitation_mm"]], on="month", how="left")


@task
def save_without_returning(table: pd.DataFrame, path: Path) -> None:
    table.to_parquet(path, index=False)


@task
def save_returning_the_table(table: pd.DataFrame, path: Path) -> pd.DataFrame:
    table.to_parquet(path, index=False)
    return table


@flow
def extract_pages_one_by_one(urls: list[str]) -> dict:
    items, failed = [], []
    for url in urls:
        state = fetch_page(url, return_state=True)
        if state.is_completed():
            items += state.result()["items"]
        else:
            failed.append(url)
    return {"items": items, "failed": failed}


@flow
def extract_pages_submit_then_wait_each(urls: list[str]) -> dict:
    items, failed = [], []
    for url in urls:
        future = fetch_page.submit(url)
        future.wait()
        if future.state.is_completed():
            items += future.result()["items"]
        else:
            failed.append(url)
    return {"items": items, "failed": failed}


@flow
def extract_pages_as_a_list(urls: list[str]) -> list:
    futures = [fetch_page.submit(url) for url in urls]
    return [item for f in futures if f.wait() is None and f.state.is_completed() for item in f.result()["items"]]


@task(retries=3, retry_delay_seconds=0.05)
def fetch_only_the_items(url: str) -> list:
    response = httpx.get(url, timeout=10)
    response.raise_for_status()
    return response.json()["items"]


@flow
def extract_ignoring_page_size(base_url: str, page_size: int) -> list[dict]:
    orders, page = [], 1
    while page is not None:
        body = fetch_page(f"{base_url}/orders?page={page}")  # the API's default page size, not page_size
        orders += body["items"]
        page = body["next_page"]
    return orders


@flow
def extract_page_bodies(base_url: str, page_size: int) -> list[dict]:
    bodies, page = [], 1
    while page is not None:
        bodies.append(fetch_page(f"{base_url}/orders?page={page}&page_size={page_size}"))
        page = bodies[-1]["next_page"]
    return bodies


@flow
def extract_pages_state_after_as_completed(urls: list[str]) -> dict:
    futures = {fetch_page.submit(url): url for url in urls}
    items, failed = [], []
    for future in as_completed(list(futures)):  # yields done futures, but does not set their final state
        if future.state.is_completed():
            items += future.result()["items"]
        else:
            failed.append(futures[future])
    return {"items": items, "failed": sorted(failed, key=urls.index)}


@pytest.mark.parametrize(
    ("number", "wrong", "expected_message"),
    [
        (1, fetch_plain, "should be a Prefect task"),
        (1, fetch_without_retries, "after 1 attempt(s)"),
        (1, fetch_too_few_retries, "after 2 attempt(s)"),
        (1, fetch_without_raise, "raise_for_status"),
        (2, extract_first_page_only, "Follow 'next_page'"),
        (2, extract_until_empty, "instead of asking for pages past the end"),
        (2, extract_without_tasks, "recorded 0 task runs"),
        (3, monthly_by_day, "one per calendar month"),
        (3, monthly_without_climate, "missing ['month_name', 'precipitation_mm'"),
        (3, monthly_mean_amount, "differs from the expected"),
        (4, save_appending, "never append"),
        (4, save_as_csv, "could not be read as Parquet"),
        (4, save_leaving_partial, "also holds"),
        (5, extract_pages_failing, "the flow run ended Failed"),
        (5, extract_pages_swallowed, "do not catch the error"),
        (5, extract_pages_forgets_failures, "reported failed=[]"),
        (3, monthly_rain_only, "missing ['month_name', 'temp_max_c', 'temp_min_c', 'rainy_day_share']"),
        (4, save_without_returning, "save_table returned None; expected the path it saved to"),
        (4, save_returning_the_table, "save_table returned a DataFrame"),
        (5, extract_pages_one_by_one, "served the two good pages one after the other"),
        (5, extract_pages_submit_then_wait_each, "expected them in flight at the same time"),
        (5, extract_pages_as_a_list, "the flow returned a list of 20 items; expected a dict"),
        (1, fetch_only_the_items, "fetch_page returned a list of 10 items; expected the JSON body"),
        (2, extract_ignoring_page_size, "Put page_size in every request's URL"),
        (2, extract_page_bodies, "each a whole page body"),
    ],
    ids=lambda value: getattr(value, "__name__", str(value))[:30],
)
def test_wrong_answers_are_rejected_twice_alike(graded, demo_api, number, wrong, expected_message):
    outcome = graded(EX, number, wrong)
    assert outcome.status == "failed" and expected_message in outcome.message, outcome


def test_reading_the_state_right_after_as_completed_is_graded_by_what_the_flow_reported(course_server, demo_api):
    """That answer races the server (the state is read from it, which may not have recorded the end yet), so it is
    wrong on most runs, not all: CI once graded it passed, then failed. Every verdict must follow what it reported."""
    import logging

    from lessons_src.logs import quiet_console

    with quiet_console(logging.CRITICAL):
        outcomes = [EX.evaluate(5, extract_pages_state_after_as_completed) for _ in range(3)]
    for outcome in outcomes:
        assert "Traceback" not in outcome.message, outcome
        if outcome.status == "failed":
            assert "read future.state only after future.wait()" in outcome.message, outcome
        else:
            assert outcome.status == "passed" and "reported the failing page" in outcome.message, outcome


# ---- right answers, written differently from the reference ----


@task(retries=5, retry_delay_seconds=[0.01, 0.02])
def fetch_checking_the_status(url):
    response = httpx.get(url)
    if response.status_code != 200:
        raise RuntimeError(f"status {response.status_code}")
    return response.json()


@task(retries=2)
async def fetch_async(url: str) -> dict:
    async with httpx.AsyncClient() as client:
        response = await client.get(url, timeout=10)
    return response.raise_for_status().json()


@flow
def extract_planned_from_the_total(base_url: str, page_size: int) -> list[dict]:
    first = fetch_page(f"{base_url}/orders?page=1&page_size={page_size}")
    pages = -(-first["total"] // page_size)
    rest = [fetch_page.submit(f"{base_url}/orders?page_size={page_size}&page={p}") for p in range(2, pages + 1)]
    return first["items"] + [order for future in rest for order in future.result()["items"]]


@flow
async def extract_async(base_url: str, page_size: int) -> list[dict]:
    orders, page = [], 1
    while page:
        body = await fetch_async(f"{base_url}/orders?page={page}&page_size={page_size}")
        orders.extend(body["items"])
        page = body["next_page"]
    return orders


@task
def monthly_climate_first_newest_month_on_top(orders, climate):
    frame = pd.DataFrame(orders).assign(month=lambda d: pd.to_datetime(d["created"]).dt.month)
    monthly = frame.groupby("month").agg(orders=("id", "size"), revenue=("amount", "sum"))
    table = climate.merge(monthly, left_on="month", right_index=True, how="inner")
    return table.sort_values("month", ascending=False)


@task
def save_via_a_temporary_folder(table, path):
    folder = tempfile.mkdtemp()
    temporary = os.path.join(folder, "table.parquet")
    table.to_parquet(temporary, index=False)
    shutil.move(temporary, path)
    os.rmdir(folder)
    return str(path)


@task
async def save_async(table: pd.DataFrame, path: Path) -> Path:
    path.write_bytes(table.to_parquet(index=False))
    return path


@flow
def extract_pages_with_map(urls: list[str]) -> dict:
    futures = fetch_page.map(urls)
    items, failed = [], []
    for url, future in zip(urls, futures, strict=True):
        value = future.result(raise_on_failure=False)
        if isinstance(value, Exception):
            failed.append(url)
        else:
            items += value["items"]
    return {"failed": failed, "items": items}


@flow
async def extract_pages_async(urls: list[str]) -> dict:
    states = await asyncio.gather(*(fetch_async(url, return_state=True) for url in urls))
    items = [item for state in states if state.is_completed() for item in (await state.result())["items"]]
    return {
        "items": items,
        "failed": [url for url, state in zip(urls, states, strict=True) if not state.is_completed()],
    }


@task(retries=2, retry_delay_seconds=0)
def fetch_with_a_client(url: str) -> dict:
    with httpx.Client(timeout=10) as client:
        response = client.get(url)
    assert response.status_code == 200, response.status_code
    return response.json()


@flow
def extract_until_the_last_page(base_url: str, page_size: int) -> list[dict]:
    orders, page = [], 1
    while True:
        body = fetch_page.submit(f"{base_url}/orders?page_size={page_size}&page={page}").result()
        orders.extend(body["items"])
        if body["next_page"] is None:
            return orders
        page = body["next_page"]


@flow
def extract_pages_catching_each_result(urls: list[str]) -> dict:
    futures = [(url, fetch_page.submit(url)) for url in urls]
    wait([future for _, future in futures])
    pages = {"items": [], "failed": []}
    for url, future in futures:
        try:
            pages["items"] += future.result()["items"]
        except httpx.HTTPStatusError:
            pages["failed"].append(url)
    return pages


@pytest.mark.parametrize(
    ("number", "right"),
    [
        (1, fetch_checking_the_status),
        (1, fetch_async),
        (2, extract_planned_from_the_total),
        (2, extract_async),
        (3, monthly_climate_first_newest_month_on_top),
        (4, save_via_a_temporary_folder),
        (4, save_async),
        (5, extract_pages_with_map),
        (5, extract_pages_async),
        (1, fetch_with_a_client),
        (2, extract_until_the_last_page),
        (5, extract_pages_catching_each_result),
    ],
    ids=lambda value: getattr(value, "__name__", str(value))[:30],
)
def test_right_answers_written_differently_pass_twice(graded, demo_api, number, right):
    outcome = graded(EX, number, right)
    assert outcome.status == "passed", outcome
