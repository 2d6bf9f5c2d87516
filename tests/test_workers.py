"""The worker helpers create a real process pool, start a real worker, read back what it ran, and always stop it."""

import signal
import sys
import time

import pytest
from prefect import flow
from prefect.client.orchestration import get_client
from prefect.deployments import run_deployment

from lessons_src import workers
from lessons_src.serving import flows_dir

POOL = "test-workers-pool"


@pytest.fixture
def pool(course_server):
    """A fresh process pool with an extra queue, deleted afterwards with every worker the test started."""
    created = workers.create_process_pool(POOL, queues={"urgent": 1})
    yield created
    workers.stop_workers()
    assert workers.running_workers() == []
    assert workers.delete_work_pool(POOL) and not workers.delete_work_pool(POOL)


def test_a_process_pool_gets_prefects_job_template_and_its_queues(pool):
    assert pool.type == "process" and not pool.is_paused and pool.concurrency_limit is None
    assert {"env", "working_dir", "command"} <= set(pool.base_job_template["variables"]["properties"])
    with get_client(sync_client=True) as client:
        queues = {q.name: q.priority for q in client.read_work_queues(work_pool_name=POOL)}
    assert set(queues) == {"default", "urgent"} and queues["urgent"] == 1, queues
    again = workers.create_process_pool(POOL, concurrency_limit=0, paused=True)  # re-created from scratch
    assert again.concurrency_limit == 0 and again.is_paused and again.id != pool.id


def test_the_worker_command_names_its_pool_queues_and_limit():
    command = workers.worker_command("p", "w", queues=("a", "b"), limit=2)
    assert command[:3] == [sys.executable, "-m", "prefect"]
    queues_and_limit = ["--work-queue", "a", "--work-queue", "b", "--limit", "2"]
    assert command[3:] == ["worker", "start", "--pool", "p", "--name", "w", *queues_and_limit]


def test_a_worker_runs_a_deployment_from_source_and_stops_by_itself(pool):
    worker = workers.start_worker(POOL, "test-worker-a")
    assert worker.running and worker in workers.running_workers()
    source = flow.from_source(str(flows_dir() / "pool_project"), entrypoint="jobs.py:where_am_i")
    source.deploy(
        "test-workers",
        work_pool_name=POOL,
        job_variables={"env": {"GREETING": "hi"}},
        print_next_steps=False,
        ignore_warnings=True,
    )
    run = run_deployment("where-am-i/test-workers", parameters={"label": "t"}, timeout=0)
    [recorded] = workers.wait_for_runs([run.id], timeout=60)
    assert recorded.state == "Completed", f"{recorded.state}: {recorded.message}\n{worker.log()}"
    assert (recorded.pool, recorded.queue, recorded.worker) == (POOL, "default", "test-worker-a")
    assert recorded.created <= recorded.pending <= recorded.running <= recorded.end, recorded
    assert recorded.parameters == {"label": "t"}
    worker.wait_for_flow_runs()
    assert worker.stop() == 0, f"the worker should catch SIGTERM and exit by itself:\n{worker.log()}"
    assert "stopped!" in worker.log()


def test_a_worker_started_with_sigint_ignored_still_stops_on_sigterm(pool):
    """A shell's `&` starts jobs with SIGINT ignored; Prefect's worker turns SIGTERM into SIGINT, so it would hang."""
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        worker = workers.start_worker(POOL, "test-worker-b")
    finally:
        signal.signal(signal.SIGINT, previous)
    started = time.monotonic()
    assert worker.stop(grace=20) == 0, worker.log()
    assert time.monotonic() - started < 15, "the worker took the SIGKILL path"


def test_a_worker_of_a_missing_pool_is_reported_with_its_log(course_server):
    worker = workers.WorkerProcess("no-such-pool-here", "test-worker-c", limit=1)
    # It lives 1 s, so the wait reads the pool (not created: 404) before the exit, the race CI once lost.
    worker.command = [sys.executable, "-c", "import sys, time; print('boom', flush=True); time.sleep(1); sys.exit(3)"]
    worker.start()
    with pytest.raises(RuntimeError, match=r"(?s)exited \(code 3\).*boom"):
        worker.wait_until_ready(timeout=30)
    assert worker.stop() == 3 and not worker.running


def test_runs_are_awaited_until_they_reach_the_states_asked_for(pool):
    with get_client(sync_client=True) as client:
        source = flow.from_source(str(flows_dir() / "pool_project"), entrypoint="jobs.py:where_am_i")
        deployment_id = source.deploy("test-workers-late", work_pool_name=POOL, print_next_steps=False)
        run = client.create_flow_run_from_deployment(deployment_id)
    with pytest.raises(TimeoutError, match=r"\['Scheduled'\]|\['Late'\]"):
        workers.wait_for_runs([run.id], timeout=0.5)  # no worker: it waits for one, Scheduled, then Late
    [late] = workers.wait_for_runs([run.id], timeout=30, states=("Late",))
    assert late.pending is None and late.worker is None


def test_prefect_deploy_reads_the_projects_yaml_and_names_its_folder(pool):
    project = flows_dir() / "pool_project"
    workers.create_process_pool("lesson-11-pool")
    try:
        done = workers.prefect_deploy(project)
        assert done.returncode == 0, done.stdout + done.stderr
        with get_client(sync_client=True) as client:
            deployment = client.read_deployment_by_name("where-am-i/lesson-11-yaml")
        assert deployment.pull_steps == [
            {"prefect.deployments.steps.set_working_directory": {"directory": str(project)}}
        ], deployment.pull_steps
        assert deployment.work_pool_name == "lesson-11-pool" and deployment.parameters == {"label": "from-yaml"}
    finally:
        workers.delete_work_pool("lesson-11-pool")
