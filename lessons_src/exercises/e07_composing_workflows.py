"""Exercises for pair 07 (composing workflows): graders read subflow runs, task-run times and the demo API's counts."""

from __future__ import annotations

import math
import time
from typing import Any
from uuid import uuid4

import httpx
from prefect import flow, task
from prefect.futures import PrefectFuture
from prefect.states import State

from lessons_src.checks import (
    CheckFailed,
    Exercise,
    ExerciseSet,
    expect,
    require_flow,
    require_signature,
    run_flow,
    short,
)
from lessons_src.demo_api import DemoAPI, start_demo_api
from lessons_src.demo_api.app import ORDERS
from lessons_src.pairs.p07_composing_workflows import subflow_runs
from lessons_src.runs import peak_overlap, read_flow_run, task_runs

http = httpx.Client(timeout=5.0)

# ---- tasks the exercises give you (the notebook defines the same ones) ----


@task
def get_page(url: str, page: int, page_size: int) -> dict:
    response = http.get(url, params={"page": page, "page_size": page_size, "delay": 0.1})  # 0.1 s per page
    response.raise_for_status()
    return response.json()


@task
def add_up(pages: list[dict]) -> float:
    return round(sum(order["amount"] for page in pages for order in page["items"]), 2)


@task
def clear_cache() -> None:
    time.sleep(0.3)


@task
def warm(city: str, url: str) -> str:
    response = http.get(f"{url}/weather/{city}", params={"delay": 0.2})
    response.raise_for_status()
    return response.json()["city"]


# ---- reference solutions (shown by ex.solution(n)) ----


@flow
def order_count(url: str) -> int:
    response = http.get(url)
    response.raise_for_status()
    return response.json()["total"]


@flow
def nightly(url: str) -> str:
    total = order_count(url)
    return f"{total} orders"


@flow(retries=1, retry_delay_seconds=0)
def fetch_total(url: str) -> int:
    response = http.get(url)
    response.raise_for_status()
    return response.json()["total"]


@flow
def report(url: str) -> int:
    return fetch_total(url)


@flow
def strict_total(url: str) -> int:
    response = http.get(url)
    response.raise_for_status()
    return response.json()["total"]


@flow
def safe_report(url: str) -> int:
    state = strict_total(url, return_state=True)
    if state.is_failed():
        return -1
    return state.result()


@flow
def revenue(url: str, page_size: int) -> float:
    first = get_page(url, 1, page_size)
    n_pages = math.ceil(first["total"] / page_size)
    rest = get_page.map(url, range(2, n_pages + 1), page_size)  # a str or an int goes whole to every call
    return add_up([first, *rest])


@flow
def refresh(cities: list[str], url: str) -> list[str]:
    cleared = clear_cache.submit()
    return warm.map(cities, url, wait_for=[cleared]).result()


# ---- graders ----


def _api() -> DemoAPI:
    api = start_demo_api()
    api.reset()
    return api


def _require_completed(value: Any, state: State, what: str) -> None:
    """Fail unless the learner's flow run completed; re-raise the error its code raised, so its line is reported."""
    if state.is_completed():
        return
    if isinstance(value, Exception):
        raise value  # the framework says whose code raised it, at which line
    raise CheckFailed(f"{what} ended {state.name}: {short(value)}")


def _unless_own_error(value: Any, state: State) -> None:
    """Re-raise an error the learner's flow raised that is not the demo API's planned HTTP failure."""
    if not state.is_completed() and isinstance(value, Exception) and not isinstance(value, httpx.HTTPStatusError):
        raise value


def _grade_nightly(answer: Any) -> str:
    require_flow(answer, "nightly")
    require_signature(answer, ("http://x",), "nightly", "one argument, (url: str)")
    api = _api()
    value, state = run_flow(answer, api.url_for("/orders", page_size=1))
    _require_completed(value, state, "the flow run of nightly")
    unawaited = isinstance(value, str) and "<coroutine" in value
    expect(
        value == f"{len(ORDERS)} orders",
        f"nightly returned {short(value)}; expected '{len(ORDERS)} orders'"
        + (": an async subflow returns a coroutine; make nightly async and await it" if unawaited else ""),
    )
    subflows = subflow_runs(state)
    expect(
        len(subflows) == 1,
        f"the server recorded {len(subflows)} subflow runs under nightly; expected 1. Make order_count a @flow "
        "and call it once (not .fn) from nightly.",
    )
    child = subflows[0]
    expect(child.state == "Completed", f"the subflow run ended {child.state}")
    expect(child.tracking_task_run is not None, "the subflow run has no task run in the parent pointing at it")
    requests = api.stats().endpoints["orders"]["requests"]
    expect(requests == 1, f"the demo API served {requests} requests to /orders; expected 1")
    return (
        f"subflow run '{child.name}' of flow {child.flow_name} Completed; its parent_task_run_id points at "
        f"the parent's task run {child.tracking_task_run}."
    )


def _grade_report(answer: Any) -> str:
    require_flow(answer, "report")
    require_signature(answer, ("http://x",), "report", "one argument, (url: str)")
    api = _api()
    key = f"ex07-2-{uuid4().hex[:8]}"
    value, state = run_flow(answer, api.url_for("/orders", page_size=1, fail_first=1, key=key))
    _unless_own_error(value, state)
    parent = read_flow_run(state)
    subflows = subflow_runs(state)
    attempts = api.stats().attempts(key)
    expect(
        parent.run_count == 1,
        f"the parent flow run ran {parent.run_count} times; the retry belongs on the subflow, not on report",
    )
    advice = (
        "call fetch_total once and let its own retries repeat it (a loop in report makes a new subflow run per call)"
        if subflows
        else "make fetch_total a @flow and call it from report (a task, or .fn, makes no subflow run)"
    )
    expect(len(subflows) == 1, f"the server recorded {len(subflows)} subflow runs under report; expected 1: {advice}")
    expect(
        state.is_completed(),
        f"report ended {state.name}: {short(value)}. Give fetch_total its own retries, @flow(retries=1).",
    )
    expect(value == len(ORDERS), f"report returned {short(value)}; expected {len(ORDERS)}")
    child = subflows[0]
    expect(
        child.run_count == 2,
        f"the subflow run ran {child.run_count} time(s); expected 2 (one failure, one retry in the same run)",
    )
    expect(
        not child.retry_delay,
        f"the server's record of the subflow run says it waits {child.retry_delay} s before a retry; the exercise "
        "asks for no delay (retry_delay_seconds=0, the default for flows)",
    )
    expect(attempts == 2, f"the demo API saw {attempts} calls with this key; expected 2")
    return "one subflow run with run_count 2 (its own retry, no delay), the parent ran once, 2 calls reached the API."


def _grade_safe_report(answer: Any) -> str:
    require_flow(answer, "safe_report")
    require_signature(answer, ("http://x",), "safe_report", "one argument, (url: str)")
    api = _api()
    value, state = run_flow(answer, api.url_for("/orders", page_size=1, status=503))
    _unless_own_error(value, state)
    expect(
        state.is_completed(),
        f"safe_report ended {state.name} when the subflow failed: {short(value)}. Call the subflow with "
        "return_state=True (or catch its exception) and return -1.",
    )
    expect(value == -1, f"safe_report returned {short(value)} when the API failed; expected -1")
    subflows = subflow_runs(state)
    expect(
        len(subflows) == 1 and subflows[0].state == "Failed",
        f"the server recorded subflow runs {[s.state for s in subflows]}; expected one Failed subflow run "
        "(call strict_total as a subflow; do not avoid or hide its failure inside it)",
    )
    good, good_state = run_flow(answer, api.url_for("/orders", page_size=1))
    _require_completed(good, good_state, "with a working API, safe_report")
    expect(good == len(ORDERS), f"with a working API safe_report returned {short(good)}; expected {len(ORDERS)}")
    good_subflows = [s.state for s in subflow_runs(good_state)]
    expect(
        good_subflows == ["Completed"],
        f"with a working API the server recorded subflow runs {good_subflows}; expected one Completed strict_total",
    )
    return "with the API down the subflow run is recorded Failed and the parent Completed with -1; up, the total."


def _revenue_run(answer: Any, api: DemoAPI, page_size: int) -> tuple[int, int, str]:
    """Run the learner's revenue with `page_size`; check its value and records; return pages, requests, peak."""
    n_pages = math.ceil(len(ORDERS) / page_size)
    api.reset()
    value, state = run_flow(answer, api.url_for("/orders"), page_size)
    _require_completed(value, state, f"revenue(url, page_size={page_size})")
    expected = round(sum(order["amount"] for order in ORDERS), 2)
    requests = api.stats().endpoints["orders"]["requests"]
    expect(
        value == expected,
        f"revenue(url, page_size={page_size}) returned {short(value)}; expected {expected}, the sum over "
        f"{n_pages} pages (the demo API served {requests} requests)",
    )
    expect(
        requests == n_pages,
        f"with page_size={page_size} the demo API served {requests} requests for {n_pages} pages; fetch each page "
        "once (page 1 only at the start), and compute the page count with math.ceil(total / page_size)",
    )
    runs = task_runs(state, expected=n_pages + 1, timeout=3.0, or_fewer=True)
    pages = [r for r in runs if r.name.startswith("get_page")]
    reducers = [r for r in runs if r.name.startswith("add_up")]
    expect(
        len(pages) == n_pages,
        f"with page_size={page_size} the server recorded {len(pages)} get_page task runs; expected {n_pages}, one "
        "per page",
    )
    expect(len(reducers) == 1, f"the server recorded {len(reducers)} add_up task runs; expected 1")
    expect(all(reducers[0].start >= page.end for page in pages), "add_up started before a get_page task ended")
    peak = peak_overlap(pages[1:])
    expect(
        peak >= 2,
        "the server's times show pages 2 and on fetched one after another; use get_page.map(...) to fan out",
    )
    return n_pages, requests, f"up to {peak} at once"


def _grade_revenue(answer: Any) -> str:
    require_flow(answer, "revenue")
    require_signature(answer, ("http://x", 25), "revenue", "two arguments, (url: str, page_size: int)")
    api = _api()
    runs = [_revenue_run(answer, api, page_size) for page_size in (25, 19)]  # 95 orders: 3.8 pages, then 5 exactly
    return (
        "; ".join(
            f"page_size {size}: {pages} pages, {requests} requests, {peak}"
            for size, (pages, requests, peak) in zip((25, 19), runs, strict=True)
        )
        + "; add_up started after every page ended."
    )


def _grade_refresh(answer: Any) -> str:
    require_flow(answer, "refresh")
    require_signature(answer, (["oslo"], "http://x"), "refresh", "two arguments, (cities: list[str], url: str)")
    api = _api()
    cities = ["tokyo", "oslo", "cairo", "paris"]
    value, state = run_flow(answer, cities, api.url)
    expect(  # before the state: a list of unfinished states returned from a flow also fails its run
        not (isinstance(value, list) and any(isinstance(v, (State, PrefectFuture)) for v in value)),
        f"refresh returned {short(value)}: Prefect states or futures, not the city names; return the values, "
        "e.g. warm.map(...).result()",
    )
    _require_completed(value, state, "the flow run of refresh")
    expect(
        value == ["Tokyo", "Oslo", "Cairo", "Paris"],
        f"refresh({cities}) returned {short(value)}; expected the names warm returned, in the order of cities",
    )
    runs = task_runs(state, expected=len(cities) + 1, timeout=3.0, or_fewer=True)
    cleared = [r for r in runs if r.name.startswith("clear_cache")]
    warms = [r for r in runs if r.name.startswith("warm")]
    expect(len(cleared) == 1, f"the server recorded {len(cleared)} clear_cache task runs; expected 1")
    expect(len(warms) == len(cities), f"the server recorded {len(warms)} warm task runs; expected {len(cities)}")
    early = [r.name for r in warms if r.start < cleared[0].end]
    expect(not early, f"{short(early)} started before clear_cache ended; pass wait_for=[...] to warm")
    peak = peak_overlap(warms)
    expect(peak >= 2, "the warm task runs ran one after another; map them so they run at once")
    requests = api.stats().endpoints["weather"]["requests"]
    expect(requests == len(cities), f"the demo API served {requests} weather requests; expected {len(cities)}")
    return f"every warm task started after clear_cache ended, up to {peak} at once."


EXERCISES = ExerciseSet(
    pair="07",
    title="Composing workflows",
    exercises=[
        Exercise(
            1,
            "a flow that calls a flow",
            _grade_nightly,
            hints=[
                "Put @flow on order_count too; calling one flow from another makes a subflow run.",
                "nightly calls order_count(url) and returns f'{total} orders'.",
            ],
            solution=[order_count, nightly],
            answer=lambda: nightly,
        ),
        Exercise(
            2,
            "a subflow with its own retries",
            _grade_report,
            hints=[
                "Retries go on the flow that fails: the subflow fetch_total, not the parent report.",
                "@flow(retries=1) on fetch_total (a flow's retry_delay_seconds defaults to 0).",
            ],
            solution=[fetch_total, report],
            answer=lambda: report,
        ),
        Exercise(
            3,
            "survive a failed subflow",
            _grade_safe_report,
            hints=[
                "A failed subflow raises in the parent, like a function call. You can ask for its state instead.",
                "state = strict_total(url, return_state=True); if state.is_failed(): return -1",
            ],
            solution=[strict_total, safe_report],
            answer=lambda: safe_report,
        ),
        Exercise(
            4,
            "fan out over pages, then reduce",
            _grade_revenue,
            hints=[
                "Fetch page 1 first: its 'total' tells you how many pages there are (math.ceil(total / page_size)).",
                "get_page.map(url, range(2, n_pages + 1), page_size) fans out the rest: .map iterates the range "
                "and passes a str or an int whole to every call (unmapped is for a list or dict argument).",
                "Pass page 1 and the futures to add_up in one list: add_up([first, *rest]).",
            ],
            solution=[revenue],
            answer=lambda: revenue,
        ),
        Exercise(
            5,
            "order without data: wait_for",
            _grade_refresh,
            hints=[
                "clear_cache returns nothing, so no future carries data to warm: the order must be stated.",
                "cleared = clear_cache.submit(); warm.map(cities, url, wait_for=[cleared]).result()",
            ],
            solution=[refresh],
            answer=lambda: refresh,
        ),
    ],
)
