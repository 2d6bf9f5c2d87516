"""Exercises for pair 14 (testing flows, transactions and background tasks): graders run the learner's tests with
pytest (subprocesses) against the right code and against planted bugs, and read what the server, the disk and the
demo API recorded (a run's stored hook lines, files a rollback removed, charges made, background task runs)."""

from __future__ import annotations

import threading
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from prefect import flow, task
from prefect.filesystems import LocalFileSystem
from prefect.futures import PrefectDistributedFuture
from prefect.locking.memory import MemoryLockManager
from prefect.results import ResultStore
from prefect.transactions import IsolationLevel, Transaction, get_transaction, transaction

from lessons_src.checks import (
    CheckFailed,
    CourseProblem,
    Exercise,
    ExerciseSet,
    call_answer,
    describe,
    expect,
    require_flow,
    require_signature,
    require_type,
    run_coroutine,
    run_flow,
    short,
)
from lessons_src.demo_api import get_demo_api
from lessons_src.pairs.p14_testing_and_transactions import (
    PLANTED_BUGS,
    PytestRun,
    fresh_folder,
    remove_folders,
    run_pytest,
    run_variants,
    write_project,
)
from lessons_src.runs import flow_run_logs
from lessons_src.task_workers import (
    TaskWorkerProcess,
    active_task_workers,
    background_run,
    load_tasks,
    running_task_workers,
    start_task_worker,
    wait_for_background_runs,
)

PREFIX = "ex14-"
TOTAL_BUGS = ("discount added", "no rounding", "any discount accepted")
CALL_BUGS = ("no retries", "errors not raised", "wrong deployment", "total not passed")
SLOW_TEST_S = 5.0  # a test of fetch_order's retries with their 10-s delays takes 30 s; without them, well under 1 s
LOAD_ROWS = [{"id": 1, "amount": 10.0}, {"id": 2, "amount": 20.0}, {"id": 3, "amount": 30.0}]
RECEIPT_ORDERS = [11, 12, 13, 14]
RECEIPT_WORKER = "ex14-receipts"
BACKGROUND_TIMEOUT_S = 30.0
[send_receipt] = load_tasks("background_jobs.py", "send_receipt")

# ---- reference solutions (shown by ex.solution(n)) ----


def total_tests() -> str:
    return """\
import pytest
from prefect.logging import disable_run_logger

import orders


def test_discount_is_taken_off():
    with disable_run_logger():
        assert orders.order_total.fn({"id": 1, "amount": 50.0}, discount=0.2) == 40.0


def test_total_is_rounded_to_cents():
    with disable_run_logger():
        assert orders.order_total.fn({"id": 2, "amount": 10.0}, discount=1 / 3) == 6.67


@pytest.mark.parametrize("discount", [1.0, 1.5, -0.1])
def test_discount_outside_zero_to_one_is_refused(discount):
    with pytest.raises(ValueError):
        orders.order_total.fn({"id": 3, "amount": 10.0}, discount=discount)
"""


def call_tests() -> str:
    return """\
import httpx

import orders


def test_fetch_order_retries_until_the_service_answers(monkeypatch):
    calls = []

    def flaky_get(url, **kwargs):
        calls.append(url)
        status = 503 if len(calls) < 3 else 200
        return httpx.Response(status, json={"id": 7, "amount": 5.0}, request=httpx.Request("GET", url))

    monkeypatch.setattr(orders.httpx, "get", flaky_get)
    fetch = orders.fetch_order.with_options(retry_delay_seconds=0)
    assert fetch(7, "http://orders.test") == {"id": 7, "amount": 5.0}
    assert len(calls) == 3


def test_request_report_triggers_the_nightly_report(monkeypatch):
    calls = []

    class Run:
        id = "run-1"

    def fake_run_deployment(name, **kwargs):
        calls.append((name, kwargs))
        return Run()

    monkeypatch.setattr(orders, "run_deployment", fake_run_deployment)
    assert orders.request_report(12.5) == "run-1"
    assert calls == [("report/nightly", {"parameters": {"total": 12.5}, "timeout": 0})]
"""


@task
def write_rows(rows: list[dict], path: str) -> str:
    Path(path).write_text("id,amount\n" + "".join(f"{row['id']},{row['amount']}\n" for row in rows))
    get_transaction().set("path", path)
    return path


@write_rows.on_rollback
def remove_written_file(txn: Transaction) -> None:
    Path(txn.get("path")).unlink(missing_ok=True)


@task
def count_rows(path: str, expected: int) -> int:
    found = len(Path(path).read_text().splitlines()) - 1
    if found != expected:
        raise ValueError(f"{found} rows written, {expected} expected")
    return found


@flow
def load_orders(rows: list[dict], path: str, expected: int) -> int:
    with transaction():
        written = write_rows(rows, path)
        return count_rows(written, expected)


def charge_once(order_id: int, payments_url: str, store: ResultStore) -> dict:
    key = f"ex14-charge-{order_id}"
    with transaction(key=key, store=store, isolation_level=IsolationLevel.SERIALIZABLE) as txn:
        if txn.is_committed():
            return txn.read().result
        response = httpx.post(payments_url, json={"order_id": order_id, "amount": 9.99}, timeout=10)
        response.raise_for_status()
        charge = response.json()
        txn.stage(charge)
        return charge


def send_receipts(order_ids: list[int]) -> list:
    return [send_receipt.delay(order_id) for order_id in order_ids]


# ---- shared by the graders ----


def _demo_api() -> Any:
    """Return the demo API, or stop the check as the course's problem when it is not running."""
    try:
        return get_demo_api()
    except Exception as error:  # DemoAPINotRunning: the notebook's first cell starts it
        raise CourseProblem(f"{error}") from None


def _test_source(answer: Any) -> str:
    """Return the learner's test file source, or fail saying what a test file needs."""
    source = require_type(answer, str, "your answer", "a test file's source in a string: '''import orders ...'''")
    try:
        compile(source, "test_orders.py", "exec")
    except SyntaxError as error:
        raise CheckFailed(f"your test file does not compile: {error.msg} (line {error.lineno})") from None
    expect("def test" in source, "your file has no test: pytest runs the functions whose names start with test_")
    return source


def _what_failed(run: PytestRun) -> str:
    """Describe a pytest run that did not pass: the tests that failed and what they saw, or its collection error."""
    seen = run.failure_lines(3)
    if run.failed_tests:
        return f"{', '.join(run.failed_tests)} failed" + (
            f": {' / '.join(s[2:].strip() for s in seen)}" if seen else ""
        )
    if run.exit_code == 5:
        return "pytest collected no test (name them test_... at the top level of the file)"
    lines = [line for line in run.output.splitlines() if line.startswith(("E ", "ERROR"))][:3]
    return f"pytest exited {run.exit_code}: {' / '.join(lines) or run.summary()}"


def _grade_tests(number: int, answer: Any, bugs: tuple[str, ...], slow_limit: float | None = None) -> PytestRun:
    """Run the learner's tests on the right module, then on each planted bug; fail unless they pass, then catch all."""
    source = _test_source(answer)
    correct = write_project(fresh_folder(f"{PREFIX}{number}-correct"), {"test_orders.py": source})
    on_correct = run_pytest(correct)
    expect(on_correct.passed, f"your tests fail on the correct code: {_what_failed(on_correct)}")
    if slow_limit is not None:
        slow = {name: seconds for name, seconds in on_correct.durations.items() if seconds > slow_limit}
        expect(
            not slow,
            f"your tests pass but take long: {short(slow)} seconds. fetch_order waits retry_delay_seconds=10 "
            "between retries; test it with fetch_order.with_options(retry_delay_seconds=0)",
        )
    try:
        outcomes = run_variants(fresh_folder(f"{PREFIX}{number}-bugs"), {"test_orders.py": source}, bugs)
    except RuntimeError as error:
        raise CourseProblem(str(error)) from None
    survived = [bug for bug in bugs if outcomes[bug] and all(outcome == "passed" for outcome in outcomes[bug])]
    if survived:
        shown = "; ".join(f"'{bug}' ({' -> '.join(PLANTED_BUGS[bug])})" for bug in survived)
        raise CheckFailed(
            f"your tests pass on the correct code, and also on {len(survived)} of {len(bugs)} planted bugs, so they "
            f"would miss them: {shown}. Add an assertion that this change breaks"
        )
    return on_correct


# ---- exercise 1: tests of a task's logic ----


def _grade_total_tests(answer: Any) -> str:
    run = _grade_tests(1, answer, TOTAL_BUGS)
    return (
        f"{run.summary()} on the correct code, and each of the {len(TOTAL_BUGS)} planted bugs "
        f"({', '.join(TOTAL_BUGS)}) made at least one of your tests fail."
    )


# ---- exercise 2: instant retries, a replaced HTTP call and a replaced deployment call ----


def _grade_call_tests(answer: Any) -> str:
    run = _grade_tests(2, answer, CALL_BUGS, slow_limit=SLOW_TEST_S)
    slowest = max(run.durations.values(), default=0.0)
    return (
        f"{run.summary()} on the correct code (slowest test {slowest:.2f} s), and each planted bug "
        f"({', '.join(CALL_BUGS)}) made at least one test fail."
    )


# ---- exercise 3: roll back a partial load ----


def _stored_lines(state: Any, contains: str) -> list[str]:
    """Return the log lines the server stored for the run that ended in `state`, once one contains `contains`."""
    from prefect.logging.handlers import APILogHandler

    run_coroutine(APILogHandler.aflush())
    return flow_run_logs(state, contains=contains, timeout=5)


def _grade_load_orders(answer: Any) -> str:
    require_flow(answer, "load_orders")
    require_signature(answer, ([], "file.csv", 0), "load_orders", "three arguments: rows, path, expected")
    folder = fresh_folder(f"{PREFIX}load")
    good, short_file = folder / "complete.csv", folder / "short.csv"
    result, state = run_flow(answer, LOAD_ROWS, str(good), len(LOAD_ROWS))
    expect(state.is_completed(), f"with 3 rows and expected=3 the run ended {state.name}: {describe(result)}")
    expect(good.is_file(), f"after a successful run there is no file at the path given ({good.name}): write the rows")
    written = good.read_text()
    expect(
        all(str(row["id"]) in written for row in LOAD_ROWS),
        f"the file of a successful run holds {short(written)}; expected a line per row",
    )
    result, state = run_flow(answer, LOAD_ROWS[:2], str(short_file), len(LOAD_ROWS))
    expect(
        not state.is_completed(),
        f"with 2 rows and expected=3 the run ended {state.name}: the count check must fail the run. A flow that "
        "catches the exception lets the transaction commit, so nothing rolls back",
    )
    hooks = [line for line in _stored_lines(state, "rollback hook") if "rollback hook" in line]
    expect(
        not short_file.exists(),
        f"the run ended {state.name}, yet its 2-row file is still there: nothing undid the write. Put both tasks in "
        "`with transaction():` and attach an on_rollback hook to the writing task that deletes the file"
        + (f" (the server stored: {hooks[0]!r})" if hooks else ""),
    )
    expect(
        any(line.startswith("Running rollback hook") for line in hooks),
        "the file is gone, but the server stored no 'Running rollback hook' line for the run: delete it in an "
        "on_rollback hook of the writing task (@write_rows.on_rollback), which Prefect runs and records",
    )
    return (
        f"The complete load committed ({good.name} kept); the short one ended {state.name} and the server stored "
        f"{hooks[0]!r}: its file is gone."
    )


# ---- exercise 4: a step that runs once ----


def _payments_url(api: Any, counter: str) -> str:
    return api.url_for("/payments", key=counter, delay=0.3)


def _grade_charge_once(answer: Any) -> str:
    expect(
        callable(answer), f"your answer should be a function charge_once(order_id, payments_url, store); got {answer!r}"
    )
    require_signature(answer, (7, "http://x", None), "charge_once", "three arguments: order_id, payments_url, store")
    api = _demo_api()
    label = uuid.uuid4().hex[:8]
    store = ResultStore(
        result_storage=LocalFileSystem(basepath=str(fresh_folder(f"{PREFIX}store") / "records")),
        lock_manager=MemoryLockManager(),
    )
    counter = f"{PREFIX}once-{label}"
    url = _payments_url(api, counter)
    answers = [call_answer(answer, 7, url, store) for _ in range(3)]
    charges = api.stats().attempts(counter, "payments")
    expect(
        charges == 1,
        f"three calls of charge_once(7, ...) made {charges} charges; expected 1. Open a transaction with a key that "
        "names the order and the store you are given; charge only when `txn.is_committed()` is false",
    )
    first = answers[0]
    expect(
        isinstance(first, dict) and first.get("order_id") == 7,
        f"the first call returned {short(first)}; expected the charge the service answered (response.json())",
    )
    expect(
        all(isinstance(a, dict) and a.get("charge_id") == first["charge_id"] for a in answers[1:]),
        f"the later calls returned {short(answers[1:])}; expected the first charge again: stage it "
        "(txn.stage(charge)) and return the stored record's value, txn.read().result",
    )
    other = call_answer(answer, 8, _payments_url(api, f"{PREFIX}other-{label}"), store)
    expect(
        isinstance(other, dict) and other.get("order_id") == 8,
        f"charge_once(8, ...) returned {short(other)}, not a charge of order 8: put the order id in the key",
    )
    race_counter = f"{PREFIX}race-{label}"
    race_url = _payments_url(api, race_counter)
    start = threading.Barrier(2)

    def at_once(_: int) -> Any:
        start.wait()
        return call_answer(answer, 9, race_url, store)

    with ThreadPoolExecutor(2) as pool:
        raced = list(pool.map(at_once, range(2)))
    raced_charges = api.stats().attempts(race_counter, "payments")
    expect(
        raced_charges == 1,
        f"two calls of charge_once(9, ...) at the same moment made {raced_charges} charges: both began before "
        "either committed. Pass isolation_level=IsolationLevel.SERIALIZABLE (the store has a lock manager)",
    )
    expect(
        all(isinstance(r, dict) and r.get("order_id") == 9 for r in raced),
        f"the two concurrent calls returned {short(raced)}; expected order 9's charge from both",
    )
    return (
        "Three calls made 1 charge and returned the same charge; two calls at once made 1 charge: the second "
        "waited for the first's lock, then found its record."
    )


# ---- exercise 5: background runs ----


def _receipt_worker() -> TaskWorkerProcess:
    """Return the exercises' task worker for send_receipt, starting it when none runs."""
    running = [w for w in running_task_workers() if w.name == RECEIPT_WORKER]
    if running:
        return running[0]
    try:
        return start_task_worker("background_jobs.py", ["send_receipt"], RECEIPT_WORKER)
    except (RuntimeError, TimeoutError) as error:
        raise CourseProblem(f"the exercises' task worker did not start: {error}") from None


def _grade_send_receipts(answer: Any) -> str:
    expect(callable(answer), f"your answer should be a function send_receipts(order_ids); got {short(answer)}")
    require_signature(answer, ([1],), "send_receipts", "one argument, order_ids")
    _receipt_worker()
    since = datetime.now(UTC)
    futures = call_answer(answer, list(RECEIPT_ORDERS))
    expect(
        isinstance(futures, (list, tuple)) or hasattr(futures, "__iter__"),
        f"send_receipts returned {short(futures)}; expected the list of futures that .delay() returns",
    )
    futures = list(futures)
    kinds = sorted({type(f).__name__ for f in futures})
    expect(
        futures and all(isinstance(f, PrefectDistributedFuture) for f in futures),
        f"send_receipts returned {short(futures)} ({', '.join(kinds) or 'nothing'}); expected one "
        "PrefectDistributedFuture per order, which send_receipt.delay(order_id) returns (and returns at once). "
        "Calling the task, or waiting for .result() here, runs or waits in this process instead of handing over",
    )
    expect(
        len(futures) == len(RECEIPT_ORDERS),
        f"send_receipts({RECEIPT_ORDERS}) returned {len(futures)} futures; expected one per order",
    )
    keys = {background_run(f.task_run_id).task_key for f in futures}
    expect(
        keys == {send_receipt.task_key},
        f"your runs have the task key {sorted(keys)}, and no task worker serves it (the exercises' worker serves "
        f"{send_receipt.task_key}, from flows/background_jobs.py). Delay the task loaded with load_tasks, not a copy "
        "defined in the notebook: the key hashes the function's code and file",
    )
    try:
        runs = wait_for_background_runs([f.task_run_id for f in futures], timeout=BACKGROUND_TIMEOUT_S)
    except TimeoutError as error:
        served = active_task_workers([send_receipt.task_key])
        raise CourseProblem(f"{error}; task workers serving send_receipt: {len(served)}") from None
    expect(
        all(run.created >= since and run.pending is not None for run in runs),
        "the runs were not received by a task worker (no Pending state): use .delay()",
    )
    results = [f.result(timeout=10) for f in futures]
    expected = [f"receipt for order {order_id} sent" for order_id in RECEIPT_ORDERS]
    expect(
        results == expected,
        f"the runs returned {short(results)}; expected {short(expected)}: one run per order id, in order",
    )
    latency = max(run.seconds(run.created, run.running) or 0.0 for run in runs)
    return (
        f"{len(runs)} background runs of send_receipt, all {runs[0].state}, each started within {latency:.2f} s of "
        "its .delay() by the task worker."
    )


def clean_up() -> list[str]:
    """Stop the exercises' task worker and delete the folders the checks wrote (ex14-...); return what was removed."""
    stopped = [w.name for w in running_task_workers() if w.name.startswith(PREFIX)]
    for worker in running_task_workers():
        if worker.name.startswith(PREFIX):
            worker.stop()
    return [f"task worker {name}" for name in stopped] + remove_folders(PREFIX)


EXERCISES = ExerciseSet(
    pair="14",
    title="Testing flows, transactions and background tasks",
    exercises=[
        Exercise(
            1,
            "tests that catch a wrong total",
            _grade_total_tests,
            hints=[
                "Test order_total's plain function, orders.order_total.fn(order, discount=...), inside "
                "`with disable_run_logger():`. Three behaviours: the discount comes off, the total is rounded to "
                "cents, a discount outside [0, 1) raises ValueError (pytest.raises).",
                "A discount of 1/3 on 10.0 gives 6.67 only when rounded; 0.2 off 50.0 is 40.0 (not 60.0); "
                "order_total.fn({...}, discount=1.0) must raise.",
            ],
            solution=[total_tests],
            answer=total_tests,
        ),
        Exercise(
            2,
            "instant retries, a replaced HTTP call and a replaced deployment",
            _grade_call_tests,
            hints=[
                "monkeypatch.setattr(orders.httpx, 'get', fake) replaces the HTTP call: let the fake answer 503 twice, "
                "then 200, and count its calls. orders.fetch_order.with_options(retry_delay_seconds=0) retries "
                "without waiting. For request_report, patch orders.run_deployment (where it is looked up).",
                "Assert the order came back and that the fake was called 3 times; record the fake run_deployment's "
                "name and keyword arguments and assert ('report/nightly', {'parameters': {'total': 12.5}, "
                "'timeout': 0}).",
            ],
            solution=[call_tests],
            answer=call_tests,
        ),
        Exercise(
            3,
            "roll back a partial load",
            _grade_load_orders,
            hints=[
                "Two tasks inside `with transaction():` in the flow: one writes the file, one counts its rows and "
                "raises when the count is wrong. Attach `@write_rows.on_rollback` to the writing task; the hook "
                "receives the transaction.",
                "In the writing task: get_transaction().set('path', path); in the hook: "
                "Path(txn.get('path')).unlink(missing_ok=True). Do not catch the count's exception in the flow.",
            ],
            solution=[write_rows, remove_written_file, count_rows, load_orders],
            answer=lambda: load_orders,
        ),
        Exercise(
            4,
            "a charge that happens once",
            _grade_charge_once,
            hints=[
                "`with transaction(key=f'ex14-charge-{order_id}', store=store, isolation_level=...) as txn:`; when "
                "txn.is_committed(), an earlier call already charged: return its record instead of charging.",
                "After the POST, txn.stage(response.json()) makes the commit store the charge under the key; "
                "txn.read().result reads it back. IsolationLevel.SERIALIZABLE makes a concurrent call wait for "
                "the lock.",
            ],
            solution=[charge_once],
            answer=lambda: charge_once,
        ),
        Exercise(
            5,
            "receipts sent in the background",
            _grade_send_receipts,
            hints=[
                "send_receipt.delay(order_id) creates a Scheduled task run for a task worker and returns a future "
                "at once; the check's task worker serves send_receipt from flows/background_jobs.py.",
                "return [send_receipt.delay(order_id) for order_id in order_ids], with the send_receipt the "
                "imports cell loaded by load_tasks (a task defined in the notebook has another task key).",
            ],
            solution=[send_receipts],
            answer=lambda: send_receipts,
        ),
    ],
)
