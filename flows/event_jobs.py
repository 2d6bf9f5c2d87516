"""Flows that pair 12 serves: a clean-up an automation starts, two jobs chained by a trigger, a long job to stop."""

import time

import httpx
from prefect import flow
from prefect.concurrency.sync import concurrency


@flow(log_prints=True)
def clean_up(failed_run: str = "unknown") -> str:
    """Clean up after a failed run, named by the automation that started this one."""
    print(f"cleaning up after {failed_run}")
    return failed_run


@flow(log_prints=True)
def extract(rows: int = 3) -> int:
    """Extract some rows (an upstream job)."""
    print(f"extracted {rows} rows")
    return rows


@flow(log_prints=True)
def report(source: str = "nobody") -> str:
    """Report on what an upstream run produced; a deployment trigger names that run in `source`."""
    print(f"report on {source}")
    return source


def tell_the_webhook(flow, flow_run, state) -> None:
    """An on_cancellation hook: POST to the run's `hook_url` parameter (if any), so the caller sees it ran, and when."""
    url = flow_run.parameters.get("hook_url")
    if url:
        httpx.post(url, json={"hook": "on_cancellation", "run": flow_run.name, "state": state.name}, timeout=5)


@flow(on_cancellation=[tell_the_webhook])
def long_job(seconds: float = 60.0, hook_url: str = "", limit: str = "") -> float:
    """Sleep `seconds` while holding one slot of global concurrency limit `limit` (if given)."""
    if limit:
        with concurrency(limit, occupy=1, strict=True):
            time.sleep(seconds)
    else:
        time.sleep(seconds)
    return seconds
