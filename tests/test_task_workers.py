"""lessons_src.task_workers: the command line, loading tasks by path, and a real task worker process that subscribes,
runs a `.delay()`ed task, is read back from the server's records and stops with everything it started."""

import sys

import pytest
from prefect import Task

from lessons_src import task_workers
from lessons_src.runs import poll_until


def test_the_command_serves_the_named_tasks_of_a_flows_file_with_a_limit():
    command = task_workers.task_worker_command("background_jobs.py", ["make_thumbnail", "send_receipt"], limit=2)
    assert command == [
        sys.executable,
        "-m",
        "lessons_src.task_workers",
        "background_jobs.py",
        "make_thumbnail",
        "send_receipt",
        "--limit",
        "2",
    ]
    assert task_workers.task_worker_command("background_jobs.py", ["send_receipt"], limit=None)[-1] == "0"


def test_loading_a_file_twice_gives_tasks_with_the_same_key():
    [first] = task_workers.load_tasks("background_jobs.py", "send_receipt")
    [again] = task_workers.load_tasks("background_jobs.py", "send_receipt")
    assert isinstance(first, Task) and first is not again
    assert first.task_key == again.task_key and first.task_key.startswith("send_receipt-")


def test_loading_a_name_that_is_not_a_task_says_so():
    with pytest.raises(ValueError, match="no task named 'os'"):
        task_workers.load_tasks("background_jobs.py", "os")


def test_the_entry_point_refuses_a_missing_file(capsys):
    with pytest.raises(SystemExit):
        task_workers.main(["no_such_file.py", "some_task"])
    assert "no file flows/no_such_file.py" in capsys.readouterr().err


def test_a_task_worker_that_exits_is_reported_with_its_log(course_server):
    worker = task_workers.TaskWorkerProcess("background_jobs.py", ["no_such_task"], "test-broken")
    worker.start()
    try:
        with pytest.raises(RuntimeError, match="exited") as raised:
            worker.wait_until_ready(timeout=60)
        assert "no task named 'no_such_task'" in str(raised.value)
    finally:
        worker.stop()


def test_a_task_worker_runs_delayed_tasks_and_stops(course_server):
    [send_receipt] = task_workers.load_tasks("background_jobs.py", "send_receipt")
    with task_workers.start_task_worker("background_jobs.py", ["send_receipt"], "test-receipts", limit=3) as worker:
        assert worker in task_workers.running_task_workers()
        served = task_workers.active_task_workers([send_receipt.task_key])
        assert worker.client_id in {w["identifier"] for w in served}, served
        futures = [send_receipt.delay(order_id) for order_id in (1, 2)]
        runs = task_workers.wait_for_background_runs([f.task_run_id for f in futures], timeout=60)
        assert [run.state for run in runs] == ["Completed", "Completed"]
        assert all(run.task_key == send_receipt.task_key for run in runs)
        assert all(run.created <= run.pending <= run.running <= run.end for run in runs)
        assert [f.result(timeout=10) for f in futures] == ["receipt for order 1 sent", "receipt for order 2 sent"]
        assert "TaskWorkerProcess 'test-receipts'" in repr(worker) and "running" in repr(worker)
    assert worker not in task_workers.running_task_workers()
    poll_until(
        lambda: task_workers.active_task_workers([send_receipt.task_key]),
        lambda workers: worker.client_id not in {w["identifier"] for w in workers},
        30,
        lambda workers: f"the server still lists {workers} after the task worker stopped",
    )


def test_stop_task_workers_stops_every_one_started_here(course_server):
    worker = task_workers.start_task_worker("background_jobs.py", ["send_receipt"], "test-stop-all", wait=False)
    assert worker.running
    task_workers.stop_task_workers()
    assert not worker.running and task_workers.running_task_workers() == []


def test_seconds_between_states_that_did_not_happen_is_none():
    from datetime import UTC, datetime, timedelta
    from uuid import uuid4

    now = datetime.now(UTC)
    run = task_workers.BackgroundRun(uuid4(), "t", "t-1", "Scheduled", now, None, None, None)
    assert run.seconds(run.created, run.running) is None and run.start is None
    later = task_workers.BackgroundRun(uuid4(), "t", "t-1", "Completed", now, now, now, now + timedelta(seconds=2))
    assert later.seconds(later.created, later.end) == 2.0
