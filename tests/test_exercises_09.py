"""Each check of pair 09 accepts the reference solution and rejects plausible wrong answers."""

from pathlib import Path

import httpx
import pandas as pd
import pytest
from prefect import flow, task

from lessons_src.demo_api import start_demo_api
from lessons_src.exercises import exercises

EX = exercises("09")


@pytest.fixture
def demo_api(course_server):
    """The demo API, started or reused and reset; the checks use fresh keys."""
    api = start_demo_api()
    api.reset()
    return api


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
        (3, monthly_without_climate, "missing ['precipitation_mm']"),
        (3, monthly_mean_amount, "differs from the expected"),
        (4, save_appending, "never append"),
        (4, save_as_csv, "could not be read as Parquet"),
        (4, save_leaving_partial, "also holds"),
        (5, extract_pages_failing, "the flow run ended Failed"),
        (5, extract_pages_swallowed, "do not catch the error"),
        (5, extract_pages_forgets_failures, "reported failed=[]"),
    ],
    ids=lambda value: getattr(value, "__name__", str(value))[:30],
)
def test_wrong_answers_are_rejected(demo_api, number, wrong, expected_message):
    outcome = EX.evaluate(number, wrong)
    assert outcome.status == "failed"
    assert expected_message in outcome.message
