"""The demo API over real loopback HTTP, in temporary COURSE_HOMEs so a learner's running instance is never touched."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time

import httpx
import pytest

from lessons_src.demo_api import (
    DemoAPINotRunning,
    demo_api_status,
    get_demo_api,
    start_demo_api,
    stop_demo_api,
)
from lessons_src.demo_api.app import ORDERS, WEATHER, fails_by_rate, make_orders

DATA_PATHS = ["/orders", "/orders/7", "/weather/paris"]
http = httpx.Client(timeout=10)  # one client for the module: creating an httpx client costs ~40 ms


@pytest.fixture(scope="module", autouse=True)
def close_http_client():
    yield
    http.close()


def call_concurrently(urls: list[str], method: str = "GET", **kwargs) -> list[httpx.Response]:
    """Send all requests at once from one event loop and return the responses in order."""

    async def main() -> list[httpx.Response]:
        async with httpx.AsyncClient(timeout=30) as client:
            return await asyncio.gather(*(client.request(method, url, **kwargs) for url in urls))

    return asyncio.run(main())


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with open(f"/proc/{pid}/status") as status:
        return "\nState:\tZ" not in status.read()


@pytest.fixture(scope="module")
def api(tmp_path_factory):
    """One instance shared by the behaviour tests, in its own COURSE_HOME; stopped at the end of the module."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("COURSE_HOME", str(tmp_path_factory.mktemp("demo_api_home")))
        handle = start_demo_api()
        yield handle
        stop_demo_api()
    assert not pid_alive(handle.pid)


@pytest.fixture
def fresh(api):
    api.reset()
    return api


@pytest.fixture
def own_home(tmp_path, monkeypatch):
    """A COURSE_HOME of this test's own, for start/stop tests; whatever they leave running is stopped."""
    monkeypatch.setenv("COURSE_HOME", str(tmp_path))
    yield tmp_path
    stop_demo_api()


# --- lifecycle ----------------------------------------------------------------------------------------------------


def test_start_answers_within_three_seconds_writes_the_state_file_and_is_reused(own_home):
    started = time.perf_counter()
    api = start_demo_api()
    assert http.get(api.url_for("/orders")).status_code == 200
    elapsed = time.perf_counter() - started
    print(f"\ndemo API: start to first answered request {elapsed:.3f} s")
    assert elapsed < 3.0, f"{elapsed:.2f} s from start to the first answer; ~0.3 s measured on a quiet machine"

    state = json.loads((own_home / "demo_api.json").read_text())
    assert state == {"pid": api.pid, "port": api.port, "url": f"http://127.0.0.1:{api.port}"}
    assert api.url == state["url"] and not api.url.endswith("/")
    assert http.get(api.url + "/health").json() == {"status": "ok"}
    assert (own_home / "demo_api.log").exists()

    assert start_demo_api() == api
    assert get_demo_api() == api
    assert demo_api_status() == f"running at {api.url} (pid {api.pid})"
    other_kernel = subprocess.run(
        [sys.executable, "-c", "from lessons_src.demo_api import start_demo_api; print(start_demo_api().pid)"],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "COURSE_HOME": str(own_home)},
    )
    assert int(other_kernel.stdout) == api.pid


def test_stop_is_idempotent_and_get_demo_api_says_how_to_start(own_home):
    api = start_demo_api()
    assert stop_demo_api() is True
    assert not pid_alive(api.pid)
    assert not (own_home / "demo_api.json").exists()
    assert stop_demo_api() is False
    assert demo_api_status().startswith("not running")
    with pytest.raises(DemoAPINotRunning) as raised:
        get_demo_api()
    assert "api = start_demo_api()" in str(raised.value)
    assert "python -m lessons_src demo-api start" in str(raised.value)
    with pytest.raises(DemoAPINotRunning, match="did not answer"):
        api.stats()


def test_a_stale_state_file_is_replaced_without_killing_its_pid(own_home):
    state = own_home / "demo_api.json"
    finished = subprocess.Popen([sys.executable, "-c", "pass"])
    finished.wait()
    state.write_text(json.dumps({"pid": finished.pid, "port": 9, "url": "http://127.0.0.1:9"}))
    with pytest.raises(DemoAPINotRunning):
        get_demo_api()
    first = start_demo_api()
    assert json.loads(state.read_text())["pid"] == first.pid
    first.stop()
    assert not state.exists()

    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        state.write_text(json.dumps({"pid": sleeper.pid, "port": 9, "url": "http://127.0.0.1:9"}))
        second = start_demo_api()
        assert second.pid not in (first.pid, sleeper.pid)
        assert get_demo_api() == second
        assert sleeper.poll() is None  # an unrelated live process named in a stale file is left alone
        state.write_text(json.dumps({"pid": sleeper.pid, "port": 9, "url": "http://127.0.0.1:9"}))
        assert stop_demo_api() is False and sleeper.poll() is None, "stop ended a process that is not the demo API"
    finally:
        sleeper.kill()
        sleeper.wait()
    second.stop()
    state.write_text("not json")
    assert demo_api_status().startswith("not running")


def test_fail_rate_replays_identically_on_two_fresh_instances(own_home):
    def statuses() -> list[int]:
        api = start_demo_api()
        url = api.url_for("/weather/oslo", fail_rate=0.5, seed=11, key="replay")
        result = [http.get(url).status_code for _ in range(12)]
        api.stop()
        return result

    expected = [503 if fails_by_rate(0.5, 11, "replay", attempt) else 200 for attempt in range(1, 13)]
    assert 200 in expected and 503 in expected
    assert statuses() == expected
    assert statuses() == expected


# --- endpoints ----------------------------------------------------------------------------------------------------


def test_health_is_not_counted_and_never_limited(fresh):
    fresh.configure(max_in_flight=1, max_per_second=1)
    for _ in range(3):
        assert http.get(fresh.url_for("/health")).json() == {"status": "ok"}
    assert fresh.stats().total == 0


def test_orders_are_paginated_and_the_same_every_time(fresh):
    seen, page, pages = [], 1, 0
    while page is not None:
        body = http.get(fresh.url_for("/orders", page=page)).json()
        assert body["page"] == page and body["page_size"] == 20 and body["total"] == 95
        seen += body["items"]
        page, pages = body["next_page"], pages + 1
    assert pages == 5 and len(body["items"]) == 15
    assert [order["id"] for order in seen] == list(range(1, 96))
    assert seen == make_orders() == ORDERS
    assert set(seen[0]) == {"id", "customer", "amount", "currency", "created", "status"}
    beyond = http.get(fresh.url_for("/orders", page=6)).json()
    assert beyond["items"] == [] and beyond["next_page"] is None
    assert len(http.get(fresh.url_for("/orders", page_size=100)).json()["items"]) == 95


def test_one_order_and_an_unknown_order(fresh):
    assert http.get(fresh.url_for("/orders/7")).json() == ORDERS[6]
    for unknown in ("/orders/96", "/orders/abc"):
        response = http.get(fresh.url_for(unknown))
        assert response.status_code == 404
        assert response.json()["error"] == "Not Found" and "1 to 95" in response.json()["detail"]


def test_weather_for_a_known_city_and_an_unknown_one(fresh):
    body = http.get(fresh.url_for("/weather/new york")).json()
    assert body == {"city": "New York", "temperature_c": 15.5, "wind_kph": 17.0, "condition": "clear"}
    assert http.get(fresh.url_for("/weather/Paris")).json()["city"] == "Paris"
    response = http.get(fresh.url_for("/weather/atlantis"))
    assert response.status_code == 404
    assert all(city in response.json()["detail"] for city in WEATHER)


def test_unknown_paths_and_methods_answer_json_errors(fresh):
    missing = http.get(fresh.url + "/nowhere")
    assert missing.status_code == 404 and "GET /orders" in missing.json()["detail"]
    wrong = http.post(fresh.url + "/orders")
    assert wrong.status_code == 405 and wrong.json()["error"] == "Method Not Allowed"


def test_payments_charge_once_per_idempotency_key(fresh):
    url = fresh.url_for("/payments")
    plain = [http.post(url, json={"order_id": 3, "amount": 19.99}) for _ in range(2)]
    assert [r.status_code for r in plain] == [201, 201]
    assert plain[0].json()["charge_id"] != plain[1].json()["charge_id"]

    keyed = [http.post(url, json={"order_id": 4, "amount": 5}, headers={"Idempotency-Key": "k-1"}) for _ in range(3)]
    assert [r.status_code for r in keyed] == [201, 200, 200]
    assert {r.json()["charge_id"] for r in keyed} == {"ch_0003"}
    assert [r.json()["replayed"] for r in keyed] == [False, True, True]
    stats = fresh.stats()
    assert (stats.charged, stats.duplicates_avoided) == (3, 2)
    assert [charge["order_id"] for charge in stats.charges] == [3, 3, 4]


def test_payment_bodies_are_checked(fresh):
    url = fresh.url_for("/payments")
    assert http.post(url, json={"order_id": 3}).status_code == 422
    assert http.post(url, json={"order_id": "3", "amount": 1}).status_code == 422
    assert http.post(url, content=b"not json").status_code == 422
    assert http.post(url, json={"order_id": 999, "amount": 1}).status_code == 404
    assert fresh.stats().charged == 0


@pytest.mark.parametrize(
    "idempotency_key, charged, duplicates, statuses", [(None, 2, 0, {201: 2}), ("order-5", 1, 1, {200: 1, 201: 1})]
)
def test_a_timed_out_payment_still_charges_so_only_a_keyed_retry_is_safe(
    fresh, idempotency_key, charged, duplicates, statuses
):
    headers = {"Idempotency-Key": idempotency_key} if idempotency_key else {}
    body = {"order_id": 5, "amount": 42.0}
    with pytest.raises(httpx.ReadTimeout):
        http.post(fresh.url_for("/payments", delay=0.6), json=body, headers=headers, timeout=0.2)
    assert http.post(fresh.url_for("/payments"), json=body, headers=headers).status_code in (200, 201)
    deadline = time.monotonic() + 5
    while fresh.stats().in_flight and time.monotonic() < deadline:  # the abandoned first call is still being served
        time.sleep(0.05)
    stats = fresh.stats()
    assert (stats.charged, stats.duplicates_avoided) == (charged, duplicates)
    assert stats.status_counts == statuses


# --- behaviours ---------------------------------------------------------------------------------------------------


def test_delay_answers_after_that_latency(fresh):
    started = time.perf_counter()
    assert http.get(fresh.url_for("/orders/1", delay=0.3)).status_code == 200
    assert time.perf_counter() - started >= 0.29
    record = fresh.stats().requests[0]
    assert record["finished"] - record["arrived"] >= 0.29
    assert abs(record["arrived"] - time.time()) < 60  # epoch seconds, comparable with Prefect's timestamps


@pytest.mark.parametrize("path", [*DATA_PATHS, "/payments"])
def test_every_data_endpoint_accepts_status_and_malformed(fresh, path):
    method = "POST" if path == "/payments" else "GET"
    body = {"order_id": 1, "amount": 1.5} if method == "POST" else None
    failed = http.request(method, fresh.url_for(path, status=502), json=body)
    assert failed.status_code == 502
    assert failed.json() == {"error": "Bad Gateway", "detail": "simulated failure: status=502"}
    garbled = http.request(method, fresh.url_for(path, malformed=True), json=body)
    assert garbled.status_code == (201 if method == "POST" else 200)
    with pytest.raises(json.JSONDecodeError):
        json.loads(garbled.text)
    assert fresh.stats().charged == (1 if method == "POST" else 0)  # a malformed answer still did the work


def test_fail_first_counts_calls_per_endpoint_and_key(fresh):
    def status(path: str, key: str) -> int:
        return http.get(fresh.url_for(path, fail_first=2, key=key)).status_code

    assert [status("/orders/1", "a") for _ in range(4)] == [503, 503, 200, 200]
    assert [status("/orders/1", "b") for _ in range(3)] == [503, 503, 200]
    assert [status("/weather/oslo", "a") for _ in range(3)] == [503, 503, 200]
    stats = fresh.stats()
    assert stats.attempts("a") == 7
    assert stats.attempts("a", endpoint="order") == 4
    assert stats.attempts("b") == 3
    assert [r["attempt"] for r in stats.requests if r["key"] == "b"] == [1, 2, 3]


def test_fail_status_sets_the_status_of_simulated_failures(fresh):
    url = fresh.url_for("/orders", fail_first=1, fail_status=500, key="s")
    assert [http.get(url).status_code for _ in range(2)] == [500, 200]


def test_fail_rate_replays_identically_after_a_reset_and_under_concurrency(fresh):
    url = fresh.url_for("/orders/2", fail_rate=0.3, seed=42, key="k")
    expected = [503 if fails_by_rate(0.3, 42, "k", attempt) else 200 for attempt in range(1, 21)]
    assert 200 in expected and 503 in expected
    assert [http.get(url).status_code for _ in range(20)] == expected
    fresh.reset()
    assert [http.get(url).status_code for _ in range(20)] == expected
    fresh.reset()
    call_concurrently([url] * 20)
    by_attempt = sorted((r["attempt"], r["status"]) for r in fresh.stats().requests)
    assert by_attempt == list(enumerate(expected, start=1))


# --- validation ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "query, named",
    [
        ("fail_frist=2", "Valid parameters: delay"),
        ("delay=31", "0 to 30"),
        ("delay=soon", "0 to 30"),
        ("fail_rate=1.5", "probability 0 to 1"),
        ("fail_first=2", "need key"),
        ("fail_first=-1&key=a", "N >= 0"),
        ("status=418", "400, 404, 500, 502, 503"),
        ("fail_status=200&fail_first=1&key=a", "400, 404, 500, 502, 503"),
        ("malformed=maybe", "true or false"),
        ("seed=1.5", "whole number"),
        ("page=0", "page number"),
        ("page_size=500", "1 to 100"),
    ],
)
def test_invalid_query_parameters_get_422_naming_the_valid_values(fresh, query, named):
    response = http.get(f"{fresh.url}/orders?{query}")
    assert response.status_code == 422
    assert response.json()["error"] == "Unprocessable Content"  # RFC 9110's name, on every Python
    assert named in response.json()["detail"]


def test_page_is_only_valid_on_the_orders_list(fresh):
    assert http.get(f"{fresh.url}/weather/oslo?page=2").status_code == 422
    with pytest.raises(ValueError, match="unknown query parameter"):
        fresh.url_for("/weather/oslo", page=2)


def test_url_for_checks_behaviours_before_sending(api):
    assert (
        api.url_for("orders", page=2, delay=0.5, malformed=False)
        == f"{api.url}/orders?page=2&delay=0.5&malformed=false"
    )
    assert api.url_for("/weather/oslo", delay=None) == f"{api.url}/weather/oslo"
    with pytest.raises(ValueError, match="Valid parameters"):
        api.url_for("/orders", fail_frist=2)
    with pytest.raises(ValueError, match="400, 404, 500, 502, 503"):
        api.url_for("/orders/1", status=418)
    with pytest.raises(ValueError, match="need key"):
        api.url_for("/orders/1", fail_rate=0.5)
    with pytest.raises(ValueError, match="not a data endpoint"):
        api.url_for("/health", delay=1)
    with pytest.raises(ValueError, match="keyword arguments"):
        api.url_for("/orders?page=2")


def test_configure_checks_limits_on_both_sides(fresh):
    with pytest.raises(ValueError, match="max_in_flight"):
        fresh.configure(max_in_flight=0)
    with pytest.raises(ValueError, match="max_per_second"):
        fresh.configure(max_per_second=-1)
    assert http.post(fresh.url + "/admin/config", json={"max_in_flight": "3"}).status_code == 422
    assert http.post(fresh.url + "/admin/config", json={"limit": 3}).status_code == 422
    assert fresh.configure(max_in_flight=3) == {"max_in_flight": 3, "max_per_second": None}


# --- limits and concurrency ---------------------------------------------------------------------------------------


def test_max_in_flight_rejects_the_excess_at_once_with_retry_after(fresh):
    fresh.configure(max_in_flight=3)
    responses = call_concurrently([fresh.url_for("/orders/1", delay=1.0)] * 8)
    assert sorted(r.status_code for r in responses) == [200] * 3 + [429] * 5
    for rejected in (r for r in responses if r.status_code == 429):
        assert rejected.headers["Retry-After"] == "1"
        body = rejected.json()
        assert body["limit"] == "max_in_flight" and 0 < body["retry_after"] <= 1.0
    stats = fresh.stats()
    assert (stats.peak_in_flight, stats.rejected, stats.in_flight) == (3, 5, 0)
    assert all(r["finished"] - r["arrived"] < 0.5 for r in stats.requests if r["status"] == 429)
    assert max(stats.in_flight_series()[1]) == 3


def test_max_per_second_is_a_sliding_one_second_window(fresh):
    fresh.configure(max_per_second=2)
    url = fresh.url_for("/weather/oslo")
    responses = [http.get(url) for _ in range(5)]
    assert [r.status_code for r in responses] == [200, 200, 429, 429, 429]
    body = responses[-1].json()
    assert responses[-1].headers["Retry-After"] == "1"
    assert body["limit"] == "max_per_second" and 0 < body["retry_after"] <= 1.0
    time.sleep(body["retry_after"] + 0.05)
    assert http.get(url).status_code == 200
    fresh.reset()
    fresh.configure(max_per_second=0.5)  # one request per 2-second window
    assert [http.get(url).status_code for _ in range(2)] == [200, 429]
    assert http.get(url).headers["Retry-After"] == "2"
    assert fresh.stats().rejected == 2


def test_peak_in_flight_matches_a_known_concurrent_load(fresh):
    call_concurrently([fresh.url_for("/weather/paris", delay=1.0)] * 10)
    http.get(fresh.url_for("/orders"))
    stats = fresh.stats()
    assert stats.peak_in_flight == 10
    assert stats.endpoints["weather"]["peak_in_flight"] == 10
    assert stats.endpoints["orders"]["peak_in_flight"] == 1
    times, counts = stats.in_flight_series()
    assert max(counts) == 10 and counts[-1] == 0 and times == sorted(times)


def test_fifty_concurrent_requests_are_all_served(fresh):
    urls = [fresh.url_for(DATA_PATHS[i % 3], delay=1.5, key=f"c{i}") for i in range(50)]
    responses = call_concurrently(urls)
    assert [r.status_code for r in responses] == [200] * 50
    stats = fresh.stats()
    assert stats.total == 50 and stats.status_counts == {200: 50}
    assert stats.peak_in_flight == 50


# --- reset and stats ----------------------------------------------------------------------------------------------


def test_reset_clears_records_attempts_charges_and_limits(fresh):
    fresh.configure(max_in_flight=1)
    http.get(fresh.url_for("/orders/1", fail_first=1, key="r"))
    http.post(fresh.url_for("/payments"), json={"order_id": 1, "amount": 1}, headers={"Idempotency-Key": "r"})
    fresh.reset()
    stats = fresh.stats()
    assert (stats.total, stats.peak_in_flight, stats.charged, stats.requests) == (0, 0, 0, [])
    assert stats.config == {"max_in_flight": None, "max_per_second": None}
    assert http.get(fresh.url_for("/orders/1", fail_first=1, key="r")).status_code == 503  # attempt 1 again
    payment = http.post(fresh.url_for("/payments"), json={"order_id": 1, "amount": 1}, headers={"Idempotency-Key": "r"})
    assert payment.status_code == 201


def test_stats_accessors(fresh):
    http.get(fresh.url_for("/orders/1", fail_first=1, key="x"))
    http.get(fresh.url_for("/orders/1", fail_first=1, key="x"))
    http.get(fresh.url_for("/orders", delay=0.1))
    stats = fresh.stats()
    assert (stats.total, stats.status_counts, stats.rejected) == (3, {200: 2, 503: 1}, 0)
    assert stats.endpoints["order"]["requests"] == 2 and stats.endpoints["payments"]["requests"] == 0
    assert stats.attempts("x") == 2 and stats.attempts("nobody") == 0
    with pytest.raises(ValueError, match="endpoints are orders, order, weather, payments"):
        stats.attempts("x", endpoint="ordres")
    frame = stats.to_dataframe()
    assert list(frame["status"]) == [503, 200, 200] and list(frame["attempt"].iloc[:2]) == [1, 2]
    assert frame["attempt"].isna().iloc[2]  # no key, no attempt number
    assert frame["duration"].iloc[2] >= 0.09
    assert "requests=" not in repr(stats) and "peak_in_flight=1" in repr(stats)
    times, counts = stats.in_flight_series()
    assert counts == [1, 0, 1, 0, 1, 0] and len(times) == 6


# --- webhooks -----------------------------------------------------------------------------------------------------


def test_a_webhook_call_is_recorded_with_its_body_and_headers_and_never_counted(fresh):
    before = time.time()
    answer = http.post(fresh.hook_url("on-failure"), json={"flow_run": "r1"}, headers={"X-Source": "prefect"})
    http.post(fresh.hook_url("on-failure"), content=b"plain text", headers={"Content-Type": "text/plain"})
    http.post(fresh.hook_url("other"), json=[1])
    assert answer.status_code == 200 and answer.json() == {"received": 1}
    first, second = fresh.hook_calls("on-failure")
    assert (first["body"], first["headers"]["x-source"], first["id"]) == ({"flow_run": "r1"}, "prefect", 1)
    assert second["body"] == "plain text" and before <= first["received"] <= second["received"] <= time.time()
    assert [call["body"] for call in fresh.hook_calls("other")] == [[1]] and fresh.hook_calls("never") == []
    assert fresh.stats().total == 0, "webhook calls are not data-endpoint requests"
    fresh.reset()
    assert fresh.hook_calls("on-failure") == []


def test_a_webhook_name_is_one_path_segment(api):
    assert api.hook_url("on-failure") == api.url + "/hooks/on-failure"
    for bad in ("", "a/b", "a?b=1"):
        with pytest.raises(ValueError, match="one non-empty path segment"):
            api.hook_url(bad)
