"""Pair 14's checks run the learner's tests against the right code and planted bugs, and read what the server, the
disk and the demo API recorded: near misses (a test without the assertion that catches a bug, `.fn` without
`disable_run_logger`, a patch of `prefect.deployments.run_deployment`, waiting retries, steps outside the transaction,
an `on_failure` hook, a key that changes, no isolation, `.submit` or a task copied into the notebook) are rejected
with a message naming what happened, and right answers written otherwise pass. Every answer is graded twice with the
same verdict.
"""

import uuid
from pathlib import Path

import httpx
import pytest
from prefect import flow, task
from prefect.results import ResultStore
from prefect.transactions import IsolationLevel, Transaction, get_transaction, transaction

from lessons_src.exercises import exercises
from lessons_src.exercises.e14_testing_and_transactions import clean_up
from lessons_src.task_workers import load_tasks

EX = exercises("14")
[send_receipt] = load_tasks("background_jobs.py", "send_receipt")


@pytest.fixture(scope="module", autouse=True)
def demo_api_and_clean_up():
    """Start the demo API the checks call; stop the task worker and delete the ex14-... folders afterwards."""
    from lessons_src import setup
    from lessons_src.demo_api import start_demo_api

    setup(quiet=True)
    start_demo_api()
    yield
    clean_up()
    assert clean_up() == []


@pytest.mark.parametrize("number", [e.number for e in EX.exercises])
def test_every_reference_solution_passes(graded, number):
    outcome = graded(EX, number, EX.get(number).answer())
    assert outcome.status == "passed", outcome


# ---- exercise 1 ----

TOTALS_BY_CALLING_THE_TASK = """\
import pytest

import orders


def test_totals():
    assert orders.order_total({"id": 1, "amount": 20.0}, discount=0.25) == 15.0
    assert orders.order_total({"id": 2, "amount": 1.0}, discount=0.333) == 0.67


def test_refused():
    for discount in (1, 2):
        with pytest.raises(ValueError):
            orders.order_total({"id": 3, "amount": 1.0}, discount=discount)
"""

TOTALS_WITHOUT_ROUNDING = """\
import pytest
from prefect.logging import disable_run_logger

import orders


def test_discount():
    with disable_run_logger():
        assert orders.order_total.fn({"id": 1, "amount": 20.0}, discount=0.5) == 10.0


def test_refused():
    with pytest.raises(ValueError):
        orders.order_total.fn({"id": 3, "amount": 1.0}, discount=1.0)
"""

TOTALS_WITHOUT_DISABLING_THE_LOGGER = """\
import orders


def test_discount():
    assert orders.order_total.fn({"id": 1, "amount": 20.0}, discount=0.1) == 18.0
"""

TOTALS_PREFECT_1_RUN = """\
import orders


def test_discount():
    assert orders.order_total.run({"id": 1, "amount": 20.0}, discount=0.1) == 18.0
"""

TOTALS_EXPECTING_THE_DISCOUNT_ADDED = """\
from prefect.logging import disable_run_logger

import orders


def test_discount():
    with disable_run_logger():
        assert orders.order_total.fn({"id": 1, "amount": 20.0}, discount=0.1) == 22.0
"""


def test_1_accepts_tests_that_call_the_task_itself(graded):
    assert graded(EX, 1, TOTALS_BY_CALLING_THE_TASK).status == "passed"


@pytest.mark.parametrize(
    ("answer", "fragment"),
    [
        (TOTALS_WITHOUT_ROUNDING, "'no rounding'"),
        (TOTALS_WITHOUT_DISABLING_THE_LOGGER, "MissingContextError"),
        (TOTALS_PREFECT_1_RUN, "has no attribute 'run'"),
        (TOTALS_EXPECTING_THE_DISCOUNT_ADDED, "fail on the correct code"),
        ("def test_nothing():\n    assert True\n", "planted bugs"),
        ("import orders\n", "no test"),
        ("def test_broken(:\n    pass\n", "does not compile"),
    ],
)
def test_1_rejects(graded, answer, fragment):
    outcome = graded(EX, 1, answer)
    assert outcome.status == "failed" and fragment in outcome.message, outcome


def test_1_rejects_a_function_instead_of_the_file(graded):
    def test_discount():
        pass

    outcome = graded(EX, 1, test_discount)
    assert outcome.status == "failed" and "should be str" in outcome.message, outcome


# ---- exercise 2 ----

CALLS_PATCHED_BY_NAME = """\
import httpx
import pytest

import orders


@pytest.fixture
def replies(monkeypatch):
    answers = [503, 500, 200]
    seen = []

    def get(url, timeout=None):
        seen.append(url)
        return httpx.Response(answers[len(seen) - 1], json={"id": 9, "amount": 1.5}, request=httpx.Request("GET", url))

    monkeypatch.setattr(httpx, "get", get)
    return seen


def test_retries(replies):
    assert orders.fetch_order.with_options(retry_delay_seconds=0)(9, "http://x") == {"id": 9, "amount": 1.5}
    assert replies == ["http://x/orders/9"] * 3


def test_report(monkeypatch):
    seen = {}
    monkeypatch.setattr("orders.run_deployment", lambda *args, **kwargs: seen.update(args=args, kwargs=kwargs) or
                        type("Run", (), {"id": 7})())
    assert orders.request_report(3.0) == "7"
    assert seen == {"args": ("report/nightly",), "kwargs": {"parameters": {"total": 3.0}, "timeout": 0}}
"""

FAKE_REPORT = """

def test_report(monkeypatch):
    seen = {}

    class Run:
        id = "r"

    def fake(name, parameters, timeout):
        seen.update(name=name, parameters=parameters, timeout=timeout)
        return Run()

    monkeypatch.setattr(orders, "run_deployment", fake)
    assert orders.request_report(2.0) == "r"
    assert seen == {"name": "report/nightly", "parameters": {"total": 2.0}, "timeout": 0}
"""

RETRIES_SET_BY_THE_TEST = CALLS_PATCHED_BY_NAME.replace("with_options(", "with_options(retries=3, ")

RETRIES_WITHOUT_COUNTING = (
    """\
import httpx

import orders


def test_retries(monkeypatch):
    statuses = iter([503, 503, 200])
    monkeypatch.setattr(orders.httpx, "get", lambda url, **kw: httpx.Response(
        next(statuses), json={"id": 7, "amount": 5.0}, request=httpx.Request("GET", url)))
    assert orders.fetch_order.with_options(retry_delay_seconds=0)(7, "http://x") == {"id": 7, "amount": 5.0}
"""
    + FAKE_REPORT
)

PATCHING_PREFECTS_RUN_DEPLOYMENT = """\
import prefect.deployments

import orders


def test_report(monkeypatch):
    class Run:
        id = "r"

    monkeypatch.setattr(prefect.deployments, "run_deployment", lambda *a, **k: Run())
    assert orders.request_report(2.0) == "r"
"""

REPORT_WITHOUT_CHECKING_THE_CALL = """\
import httpx

import orders


def test_retries(monkeypatch):
    calls = []

    def get(url, **kw):
        calls.append(url)
        return httpx.Response(503 if len(calls) < 3 else 200, json={"id": 7}, request=httpx.Request("GET", url))

    monkeypatch.setattr(orders.httpx, "get", get)
    assert orders.fetch_order.with_options(retry_delay_seconds=0)(7, "http://x") == {"id": 7}
    assert len(calls) == 3


def test_report(monkeypatch):
    class Run:
        id = "r"

    monkeypatch.setattr(orders, "run_deployment", lambda *a, **k: Run())
    assert orders.request_report(2.0) == "r"
"""

RETRIES_THAT_WAIT = (
    """\
import httpx

import orders


def test_retries(monkeypatch):
    calls = []

    def get(url, **kw):
        calls.append(url)
        return httpx.Response(503 if len(calls) < 3 else 200, json={"id": 7}, request=httpx.Request("GET", url))

    monkeypatch.setattr(orders.httpx, "get", get)
    assert orders.fetch_order(7, "http://x") == {"id": 7}
    assert len(calls) == 3
"""
    + FAKE_REPORT
)


def test_2_accepts_fixtures_a_patched_module_and_a_patch_by_name(graded):
    assert graded(EX, 2, CALLS_PATCHED_BY_NAME).status == "passed"


@pytest.mark.parametrize(
    ("answer", "fragment"),
    [
        (RETRIES_WITHOUT_COUNTING, "'errors not raised'"),
        (RETRIES_SET_BY_THE_TEST, "'no retries'"),
        (PATCHING_PREFECTS_RUN_DEPLOYMENT, "fail on the correct code"),
        (REPORT_WITHOUT_CHECKING_THE_CALL, "'wrong deployment'"),
        (RETRIES_THAT_WAIT, "retry_delay_seconds=0"),
    ],
)
def test_2_rejects(graded, answer, fragment):
    outcome = graded(EX, 2, answer)
    assert outcome.status == "failed" and fragment in outcome.message, outcome


# ---- exercise 3 ----


@flow
def load_with_the_hook_attached_by_a_call(rows: list[dict], path: str, expected: int) -> int:
    with transaction() as txn:
        txn.set("file", path)  # the hook reads it from the flow's transaction (a child reads its parent's values)
        return count_lines(write_lines(rows, path), expected)


def forget_file(txn: Transaction) -> None:
    Path(txn.get("file")).unlink()


@task
def write_lines(rows: list[dict], path: str) -> str:
    with open(path, "w") as out:
        out.write("id,amount\n")
        out.writelines(f"{r['id']},{r['amount']}\n" for r in rows)
    return path


write_lines.on_rollback(forget_file)  # the method, called instead of used as a decorator


@task
def count_lines(path: str, expected: int) -> int:
    lines = Path(path).read_text().splitlines()[1:]
    assert len(lines) == expected, f"{len(lines)} != {expected}"
    return len(lines)


@task
def write_file(rows: list[dict], path: str) -> str:
    Path(path).write_text("id,amount\n" + "".join(f"{r['id']},{r['amount']}\n" for r in rows))
    get_transaction().set("path", path)
    return path


@write_file.on_rollback
def delete_file(txn: Transaction) -> None:
    Path(txn.get("path")).unlink(missing_ok=True)


@flow
def load_without_a_transaction(rows: list[dict], path: str, expected: int) -> int:
    return count_lines(write_file(rows, path), expected)


@flow
def load_catching_the_failure(rows: list[dict], path: str, expected: int) -> int:
    with transaction():
        written = write_file(rows, path)
        try:
            return count_lines(written, expected)
        except AssertionError:
            return -1


def delete_on_failure(task, task_run, state) -> None:
    Path(task_run.parameters.get("path", "")).unlink(missing_ok=True)


@task(on_failure=[delete_on_failure])
def write_file_with_a_failure_hook(rows: list[dict], path: str) -> str:
    Path(path).write_text("id,amount\n" + "".join(f"{r['id']},{r['amount']}\n" for r in rows))
    return path


@flow
def load_with_an_on_failure_hook(rows: list[dict], path: str, expected: int) -> int:
    with transaction():
        return count_lines(write_file_with_a_failure_hook(rows, path), expected)


@flow
def load_deleting_in_the_flow(rows: list[dict], path: str, expected: int) -> int:
    written = write_file_with_a_failure_hook(rows, path)
    try:
        return count_lines(written, expected)
    except AssertionError:
        Path(path).unlink()
        raise


def test_3_accepts_a_hook_attached_by_a_call_reading_the_flows_transaction(graded):
    assert graded(EX, 3, load_with_the_hook_attached_by_a_call).status == "passed"


@pytest.mark.parametrize(
    ("answer", "fragment"),
    [
        (load_without_a_transaction, "still there"),
        (load_catching_the_failure, "ended Completed"),
        (load_with_an_on_failure_hook, "still there"),
        (load_deleting_in_the_flow, "no 'Running rollback hook'"),
        (write_file, "should be a Prefect flow"),
    ],
)
def test_3_rejects(graded, answer, fragment):
    outcome = graded(EX, 3, answer)
    assert outcome.status == "failed" and fragment in outcome.message, outcome


# ---- exercise 4 ----


def charge_reading_the_store(order_id: int, payments_url: str, store: ResultStore) -> dict:
    key = f"payment/{order_id}"
    with transaction(key=key, store=store, isolation_level=IsolationLevel.SERIALIZABLE) as txn:
        if not txn.is_committed():
            with httpx.Client(timeout=10) as client:
                txn.stage(client.post(payments_url, json={"order_id": order_id, "amount": 9.99}).json())
    return store.read(key).result


def charge_without_a_transaction(order_id: int, payments_url: str, store: ResultStore) -> dict:
    return httpx.post(payments_url, json={"order_id": order_id, "amount": 9.99}, timeout=10).json()


def charge_with_a_new_key_each_time(order_id: int, payments_url: str, store: ResultStore) -> dict:
    with transaction(key=f"charge-{order_id}-{uuid.uuid4()}", store=store) as txn:
        charge = httpx.post(payments_url, json={"order_id": order_id, "amount": 9.99}, timeout=10).json()
        txn.stage(charge)
        return charge


def charge_without_isolation(order_id: int, payments_url: str, store: ResultStore) -> dict:
    with transaction(key=f"charge-{order_id}", store=store) as txn:
        if txn.is_committed():
            return txn.read().result
        charge = httpx.post(payments_url, json={"order_id": order_id, "amount": 9.99}, timeout=10).json()
        txn.stage(charge)
        return charge


def charge_returning_nothing_the_second_time(order_id: int, payments_url: str, store: ResultStore) -> dict:
    with transaction(key=f"charge-{order_id}", store=store, isolation_level=IsolationLevel.SERIALIZABLE) as txn:
        if txn.is_committed():
            return None
        charge = httpx.post(payments_url, json={"order_id": order_id, "amount": 9.99}, timeout=10).json()
        txn.stage(charge)
        return charge


def charge_with_one_key_for_every_order(order_id: int, payments_url: str, store: ResultStore) -> dict:
    with transaction(key="the-charge", store=store, isolation_level=IsolationLevel.SERIALIZABLE) as txn:
        if txn.is_committed():
            return txn.read().result
        charge = httpx.post(payments_url, json={"order_id": order_id, "amount": 9.99}, timeout=10).json()
        txn.stage(charge)
        return charge


def test_4_accepts_reading_the_record_from_the_store(graded):
    assert graded(EX, 4, charge_reading_the_store).status == "passed"


@pytest.mark.parametrize(
    ("answer", "fragment"),
    [
        (charge_without_a_transaction, "made 3 charges"),
        (charge_with_a_new_key_each_time, "made 3 charges"),
        (charge_without_isolation, "SERIALIZABLE"),
        (charge_returning_nothing_the_second_time, "later calls returned"),
        (charge_with_one_key_for_every_order, "put the order id in the key"),
    ],
)
def test_4_rejects(graded, answer, fragment):
    outcome = graded(EX, 4, answer)
    assert outcome.status == "failed" and fragment in outcome.message, outcome


# ---- exercise 5 ----


def send_with_apply_async(order_ids: list[int]) -> list:
    return [send_receipt.apply_async((order_id,)) for order_id in order_ids]


def send_in_this_process(order_ids: list[int]) -> list:
    return [send_receipt.submit(order_id) for order_id in order_ids]


def send_and_wait(order_ids: list[int]) -> list:
    return [send_receipt.delay(order_id).result() for order_id in order_ids]


@task
def send_receipt_copy(order_id: int) -> str:
    return f"receipt for order {order_id} sent"


def send_a_copy_of_the_task(order_ids: list[int]) -> list:
    return [send_receipt_copy.delay(order_id) for order_id in order_ids]


def send_one_run_for_all(order_ids: list[int]) -> list:
    return [send_receipt.delay(order_ids)]


def test_5_accepts_apply_async(graded):
    assert graded(EX, 5, send_with_apply_async).status == "passed"


@pytest.mark.parametrize(
    ("answer", "fragment"),
    [
        (send_in_this_process, "Unable to determine task runner"),  # .submit needs a flow
        (send_and_wait, "PrefectDistributedFuture"),
        (send_a_copy_of_the_task, "task key"),
        (send_one_run_for_all, "one per order"),
    ],
)
def test_5_rejects(graded, answer, fragment):
    outcome = graded(EX, 5, answer)
    assert outcome.status == "failed" and fragment in outcome.message, outcome


def test_unsolved_answers_are_not_graded(graded):
    from lessons_src.exercises import TODO

    for number in (1, 2):
        assert graded(EX, number, TODO).status == "unsolved"
