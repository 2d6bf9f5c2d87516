"""Exercises for pair 11 (work pools and workers): graders read pools, queues, workers, deployments and their runs.

Each check first deletes or re-creates what it needs on the course server, calls the learner's function, and grades
what the server recorded. A check that needs a worker starts a real `prefect worker start` process and always stops
it; pools and deployments whose runs are the evidence stay until the next check or `clean_up()`.
"""

from __future__ import annotations

import shutil
import tempfile
import textwrap
import time
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import yaml
from prefect import flow
from prefect.client.orchestration import get_client
from prefect.client.schemas.actions import WorkPoolCreate, WorkPoolUpdate
from prefect.client.schemas.filters import WorkPoolFilter, WorkPoolFilterName
from prefect.client.schemas.objects import ConcurrencyLimitConfig, WorkerStatus, WorkPoolStatus
from prefect.client.schemas.schedules import CronSchedule
from prefect.exceptions import ObjectNotFound
from prefect.states import Running, Scheduled
from prefect.workers.process import ProcessWorker

from lessons_src import workers
from lessons_src.checks import (
    CheckFailed,
    CourseProblem,
    Exercise,
    ExerciseSet,
    call_in_thread,
    expect,
    require_signature,
    require_type,
    short,
)
from lessons_src.runs import flow_run_logs, read_flow_run
from lessons_src.schedule_times import fire_times
from lessons_src.serving import delete_deployments, flows_dir, read_deployment

FLOW = "where-am-i"  # the flow `where_am_i` in flows/pool_project/jobs.py
PROJECT = "pool_project"
TEAM_POOL = "ex11-team"  # exercise 1: the learner creates it
CODE_POOL, CODE_DEPLOYMENT, CODE_WORKER = "ex11-code", "ex11-code", "ex11-code-worker"  # exercise 2
WHY_POOL, IDLE_POOL, GONE_POOL = "ex11-why", "ex11-why-idle", "ex11-why-gone"  # exercise 3
WHY_WORKER, GONE_WORKER = "ex11-why-worker", "ex11-night-shift"
ONE_POOL, ONE_DEPLOYMENT, ONE_WORKER = "ex11-single", "ex11-one-at-a-time", "ex11-single-worker"  # exercise 4
YAML_POOL, YAML_DEPLOYMENT = "ex11-team-yaml", "ex11-yaml"  # exercise 5
EXERCISE_POOLS = [TEAM_POOL, CODE_POOL, WHY_POOL, IDLE_POOL, GONE_POOL, ONE_POOL, YAML_POOL]
EXERCISE_DEPLOYMENTS = [f"{FLOW}/{name}" for name in (CODE_DEPLOYMENT, ONE_DEPLOYMENT, YAML_DEPLOYMENT)] + [
    f"{FLOW}/{pool}" for pool in (WHY_POOL, IDLE_POOL, GONE_POOL)
]
DIAGNOSES = ("pool paused", "queue paused", "pool limit reached", "no worker", "ok")
SET_WORKING_DIRECTORY = "prefect.deployments.steps.set_working_directory"

# A run from trigger to its final state took 8-13 s here (2 cores, another notebook running): up to 1 s until the
# worker's poll, 5-8 s for its new Python process to import Prefect and the flow, then the flow's own 0-2 s.
RUN_TIMEOUT_S = 90.0
# The server marks a worker OFFLINE in its foreman loop (every 15 s by default) once its last heartbeat is older than
# 3 heartbeat intervals: 3-18 s after a last heartbeat sent with a 1-s interval, 13 and 15 s measured here.
FOREMAN_TIMEOUT_S = 45.0
# Exercise 4: a run put back to wait (ENQUEUE) retries after PREFECT_SERVER_DEPLOYMENTS_CONCURRENCY_SLOT_WAIT_SECONDS
# (30 s by default); the check follows it to its end only when that retry comes within this many seconds.
ENQUEUE_FOLLOW_S = 10.0

# ---- reference solutions (shown by ex.solution(n)) ----


async def create_team_pool() -> None:
    async with get_client() as client:
        await client.create_work_pool(
            WorkPoolCreate(
                name="ex11-team",
                type="process",
                base_job_template=ProcessWorker.get_default_base_job_template(),  # what the CLI fills in
                concurrency_limit=3,
            )
        )
        # urgent first: a queue created at a priority another queue holds pushes that queue down by one
        await client.create_work_queue(name="urgent", priority=1, work_pool_name="ex11-team")
        await client.create_work_queue(name="bulk", priority=2, work_pool_name="ex11-team")


async def deploy_where_am_i(pool: str) -> None:
    where_am_i = await flow.from_source(str(flows_dir() / "pool_project"), entrypoint="jobs.py:where_am_i")
    await where_am_i.deploy(
        "ex11-code",
        work_pool_name=pool,
        work_queue_name="urgent",
        job_variables={"env": {"GREETING": "bonjour"}},  # a process worker puts `env` in the run's environment
        parameters={"label": "ex11"},
        print_next_steps=False,
        ignore_warnings=True,
    )


async def why_not_started(flow_run_id: UUID) -> str:
    async with get_client() as client:
        run = await client.read_flow_run(flow_run_id)
        pool = await client.read_work_pool(run.work_pool_name)
        queue = await client.read_work_queue_by_name(run.work_queue_name, work_pool_name=pool.name)
        if pool.is_paused:
            return "pool paused"
        if queue.is_paused:
            return "queue paused"
        if pool.concurrency_limit is not None and pool.active_slots >= pool.concurrency_limit:  # a limit may be 0
            return "pool limit reached"
        pool_workers = await client.read_workers_for_work_pool(pool.name)
        if not any(worker.status == WorkerStatus.ONLINE for worker in pool_workers):  # a stopped one stays listed
            return "no worker"
        return "ok"


async def deploy_one_at_a_time(pool: str) -> None:
    where_am_i = await flow.from_source(str(flows_dir() / "pool_project"), entrypoint="jobs.py:where_am_i")
    await where_am_i.deploy(
        "ex11-one-at-a-time",
        work_pool_name=pool,
        concurrency_limit=ConcurrencyLimitConfig(limit=1, collision_strategy="CANCEL_NEW"),
        print_next_steps=False,
        ignore_warnings=True,
    )


def nightly_yaml() -> str:
    return """\
pull:
  - prefect.deployments.steps.set_working_directory:
      directory: "{{ $PWD }}"

deployments:
  - name: ex11-yaml
    entrypoint: jobs.py:where_am_i
    parameters:
      label: nightly
    work_pool:
      name: ex11-team-yaml
      work_queue_name: bulk
      job_variables:
        env:
          GREETING: guten tag
    schedules:
      - cron: "0 6 * * 1-5"
        timezone: Europe/Berlin
"""


# ---- calling the learner's code, workers, deployments ----


def _call(answer: Callable[..., Any], *args: Any) -> Any:
    """Call a learner's function, sync or `async def`, in a thread of its own; return its value."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message='install "ipywidgets"')  # deploy's progress display, in Jupyter
        return call_in_thread(answer, *args)


def _expect_function(answer: Any, name: str, args: tuple[Any, ...], takes: str) -> None:
    """Fail unless the answer is a function taking `args`."""
    expect(callable(answer), f"your answer should be the function {name}; got {short(answer)}")
    require_signature(answer, args, name, takes)


@contextmanager
def _worker(pool: str, name: str, queues: tuple[str, ...] = ()) -> Iterator[workers.WorkerProcess]:
    """Start a worker of `pool` for one check (not yet heard from: see `_ready`); always stop it at the end."""
    worker = workers.start_worker(pool, name, queues=queues, wait=False)
    try:
        yield worker
    finally:
        worker.wait_for_flow_runs()  # a run is Completed a moment before its process exits; a stop then cancels it
        worker.stop()


def _ready(worker: workers.WorkerProcess) -> None:
    """Wait for the worker's first heartbeat; a worker that does not start is the course's problem."""
    try:
        worker.wait_until_ready()
    except (RuntimeError, TimeoutError) as error:
        raise CourseProblem(f"the check's worker {worker.name!r} did not start: {error}") from None


def _wait_for_runs(run_ids: list[UUID], worker: workers.WorkerProcess) -> list[workers.PoolRun]:
    """Wait until the runs are final; runs that a verified deployment never finishes are the course's problem."""
    try:
        return workers.wait_for_runs(run_ids, timeout=RUN_TIMEOUT_S)
    except TimeoutError as error:
        raise CourseProblem(f"{error}. The check's worker printed:\n{worker.log()}") from None


def _deployment_names_on(pool: str) -> dict[str, UUID]:
    """Return the names and ids of the deployments on `pool`."""
    with get_client(sync_client=True) as client:
        found = client.read_deployments(work_pool_filter=WorkPoolFilter(name=WorkPoolFilterName(any_=[pool])))
    return {deployment.name: deployment.id for deployment in found}


def _deployment(name: str, pool: str, how: str) -> Any:
    """Return the server's record of deployment `where-am-i/name`, or fail naming what is on the pool instead."""
    record = read_deployment(f"{FLOW}/{name}")
    if record is None:
        others = sorted(_deployment_names_on(pool))
        seen = f"; pool {pool!r} has the deployment(s) {others}" if others else ""
        raise CheckFailed(f"the server has no deployment '{FLOW}/{name}'{seen}. {how}")
    expect(
        record.work_pool_name == pool,
        f"the deployment '{FLOW}/{name}' sends its runs to the pool {record.work_pool_name!r}; expected {pool!r}, "
        "the pool the check hands over",
    )
    return record


def _expect_greeting(job_variables: dict[str, Any], greeting: str, fix: str) -> None:
    """Fail unless the job variables set the environment variable GREETING to `greeting`."""
    env = job_variables.get("env") or {}
    expect(
        "GREETING" in env or "GREETING" not in job_variables,
        f"the deployment's job variables are {short(job_variables)}: GREETING is a job variable of its own, which a "
        f"process worker ignores; environment variables go under 'env'. {fix}",
    )
    expect(
        env.get("GREETING") == greeting,
        f"the deployment's job variables are {short(job_variables)}; expected the environment variable "
        f"GREETING={greeting!r} under 'env'. {fix}",
    )


def _expect_pull_into(record: Any, folder: Path, fix: str) -> None:
    """Fail unless the deployment's pull steps end in the folder `folder`."""
    steps = record.pull_steps or []
    folders = [step[SET_WORKING_DIRECTORY]["directory"] for step in steps if SET_WORKING_DIRECTORY in step]
    expect(
        bool(folders) and Path(folders[-1]).resolve() == folder.resolve(),
        f"the deployment's pull steps are {steps}: a worker would start the flow in "
        f"{folders[-1] if folders else 'its own working folder'}, not in {folder}. {fix}",
    )


def _clock(moment: datetime | None) -> str:
    """Return a moment as 'HH:MM:SS.s UTC' for a check's message."""
    return "never" if moment is None else f"{moment.astimezone(UTC):%H:%M:%S}.{moment.microsecond // 100_000} UTC"


# ---- exercise 1: a pool for the team ----


def _grade_team_pool(answer: Any) -> str:
    _expect_function(answer, "create_team_pool", (), "no arguments")
    workers.delete_work_pool(TEAM_POOL)
    _call(answer)
    with get_client(sync_client=True) as client:
        try:
            pool = client.read_work_pool(TEAM_POOL)
        except ObjectNotFound:
            pools = sorted(p.name for p in client.read_work_pools() if "team" in p.name or p.name.startswith("ex11"))
            raise CheckFailed(
                f"after your function ran the server has no work pool named {TEAM_POOL!r}"
                + (f" (it has {pools})" if pools else "")
            ) from None
        queues = {queue.name: queue for queue in client.read_work_queues(work_pool_name=TEAM_POOL)}
    expect(
        pool.type == "process",
        f"the pool's type is {pool.type!r}; expected 'process': a process worker runs each flow run as a new process",
    )
    variables = pool.base_job_template.get("variables", {}).get("properties", {})
    expect(
        bool(variables),
        f"the pool's base job template is {short(pool.base_job_template)}: until a process worker starts on it and "
        "fills in its default, the pool offers deployments no job variables (env, working_dir, command...): the UI "
        "and `prefect work-pool inspect` show none, and the server checks none a deployment sets. Pass "
        "base_job_template=ProcessWorker.get_default_base_job_template() to WorkPoolCreate, or create the pool with "
        "`prefect work-pool create ex11-team --type process`, which fills in that default",
    )
    queue_limits = {name: queue.concurrency_limit for name, queue in queues.items() if queue.concurrency_limit}
    expect(
        pool.concurrency_limit == 3,
        f"the pool's concurrency limit is {pool.concurrency_limit}; expected 3 on the pool itself"
        + (f" (you limited the queues: {queue_limits})" if queue_limits else "")
        + ": WorkPoolCreate(..., concurrency_limit=3), or `prefect work-pool set-concurrency-limit ex11-team 3`",
    )
    priorities = {name: queue.priority for name, queue in sorted(queues.items(), key=lambda item: item[1].priority)}
    expect(
        {"urgent", "bulk"} <= set(queues),
        f"the pool's queues and their priorities are {priorities}; expected 'urgent' and 'bulk' besides 'default'",
    )
    expect(
        priorities["urgent"] == 1 and priorities["bulk"] == 2,
        f"the server recorded the priorities {priorities}; expected urgent 1 and bulk 2. A queue created at a "
        "priority another queue holds pushes that queue (and any it then meets) down by one: create urgent (1) "
        "before bulk (2), or set them afterwards with client.update_work_queue(id, priority=...)",
    )
    shown = ", ".join(f"{name} {priority}" for name, priority in priorities.items())
    return (
        f"Pool {TEAM_POOL!r}: type process with Prefect's job template (variables {', '.join(sorted(variables))}), "
        f"concurrency limit 3; queues by priority: {shown}."
    )


# ---- exercise 2: code to the worker ----


def _grade_deploy_where_am_i(answer: Any) -> str:
    _expect_function(answer, "deploy_where_am_i", (CODE_POOL,), "one argument, the pool's name")
    delete_deployments(f"{FLOW}/{CODE_DEPLOYMENT}")
    workers.create_process_pool(CODE_POOL, queues={"urgent": 1})
    _call(answer, CODE_POOL)
    project = flows_dir() / PROJECT
    record = _deployment(CODE_DEPLOYMENT, CODE_POOL, f"Deploy where_am_i as {CODE_DEPLOYMENT!r}.")
    expect(
        record.work_queue_name == "urgent",
        f"the deployment sends its runs to the queue {record.work_queue_name!r}; expected 'urgent' "
        "(work_queue_name='urgent')",
    )
    _expect_greeting(record.job_variables, "bonjour", "job_variables={'env': {'GREETING': 'bonjour'}}")
    expect(
        record.parameters.get("label") == "ex11",
        f"the deployment's default parameters are {record.parameters}; expected label='ex11' (parameters=...)",
    )
    _expect_pull_into(
        record, project, "Load the flow with flow.from_source(str(flows_dir() / 'pool_project'), 'jobs.py:where_am_i')"
    )
    with _worker(CODE_POOL, CODE_WORKER, queues=("urgent",)) as worker:
        _ready(worker)
        with get_client(sync_client=True) as client:
            flow_run = client.create_flow_run_from_deployment(record.id)
        [run] = _wait_for_runs([flow_run.id], worker)
    if run.state != "Completed":
        errors = [line for line in flow_run_logs(run.id) if "Error" in line]
        raise CheckFailed(
            f"the run {run.name!r} ended {run.state}: {run.message}"
            + (f"; its logs say: {errors[-1].splitlines()[-1]}" if errors else "")
        )
    seen = read_flow_run(run.id).state.result(_sync=True)
    expect(
        seen["GREETING"] == "bonjour" and seen["folder"] == PROJECT,
        f"the run saw {seen}; expected GREETING 'bonjour' in its environment, in the folder {PROJECT!r}",
    )
    expect(
        run.worker == CODE_WORKER and run.queue == "urgent",
        f"the run came through queue {run.queue!r} to worker {run.worker!r}; expected 'urgent' and {CODE_WORKER!r}",
    )
    return (
        f"Run {run.name!r} went through queue 'urgent' to worker {CODE_WORKER!r}, which ran it "
        f"{run.seconds(run.created, run.running):.1f} s after the trigger in a new process (pid {seen['pid']}) in "
        f"folder {PROJECT!r}, with GREETING={seen['GREETING']!r} and label={seen['label']!r}."
    )


# ---- exercise 3: why does it not start? ----


def _records(run_id: UUID) -> str:
    """Describe what the server records about a run's pool, queue and workers, as a learner's function reads them."""
    now = datetime.now(UTC)
    with get_client(sync_client=True) as client:
        run = client.read_flow_run(run_id)
        pool = client.read_work_pool(run.work_pool_name)
        queue = client.read_work_queue_by_name(run.work_queue_name, work_pool_name=pool.name)
        pool_workers = client.read_workers_for_work_pool(pool.name)
    seen = [
        f"{w.name} {w.status.value} (last heartbeat {(now - w.last_heartbeat_time).total_seconds():.0f} s ago, "
        f"every {w.heartbeat_interval_seconds} s)"
        for w in pool_workers
    ]
    return (
        f"pool {pool.name!r} is_paused={pool.is_paused}, concurrency_limit={pool.concurrency_limit}, "
        f"active_slots={pool.active_slots}; queue {queue.name!r} is_paused={queue.is_paused}; "
        f"workers: {', '.join(seen) or 'none'}"
    )


def _situation_deployments(pools: list[str], client: Any) -> dict[str, UUID]:
    """Create one deployment of where_am_i on each pool, named after it; return their ids."""
    flow_id = client.create_flow_from_name(FLOW)
    project = str(flows_dir() / PROJECT)
    return {
        pool: client.create_deployment(
            flow_id,
            pool,
            work_pool_name=pool,
            entrypoint="jobs.py:where_am_i",
            pull_steps=[{SET_WORKING_DIRECTORY: {"directory": project}}],
        )
        for pool in pools
    }


def _in_an_hour() -> Any:
    """Return a Scheduled state an hour ahead: a run in it is never due while a check runs."""
    return Scheduled(scheduled_time=datetime.now(UTC) + timedelta(hours=1))


def _pool_whose_worker_left() -> None:
    """Make sure GONE_POOL has one worker record, whose heartbeats stopped: sent now, or marked OFFLINE earlier."""
    with get_client(sync_client=True) as client:
        try:
            pool = client.read_work_pool(GONE_POOL)
            records = client.read_workers_for_work_pool(GONE_POOL)
        except ObjectNotFound:
            pool, records = None, []
        if (
            pool is not None
            and not pool.is_paused
            and pool.concurrency_limit is None
            and [r.status for r in records] == [WorkerStatus.OFFLINE]
        ):
            return  # an earlier check left it: the same situation, already settled
        workers.create_process_pool(GONE_POOL)
        # the heartbeat a worker sends (prefect/workers/_worker_channel/_sync.py), once, as one that then stopped
        client.send_worker_heartbeat(GONE_POOL, GONE_WORKER, heartbeat_interval_seconds=1)


def _until_worker_offline() -> None:
    """Wait until the server has marked GONE_POOL's worker OFFLINE and the pool NOT_READY (its foreman's next pass)."""
    deadline = time.monotonic() + FOREMAN_TIMEOUT_S
    with get_client(sync_client=True) as client:
        while True:
            statuses = [r.status for r in client.read_workers_for_work_pool(GONE_POOL)]
            if (
                statuses == [WorkerStatus.OFFLINE]
                and client.read_work_pool(GONE_POOL).status == WorkPoolStatus.NOT_READY
            ):
                return
            if time.monotonic() > deadline:
                raise CourseProblem(
                    f"after {FOREMAN_TIMEOUT_S:.0f} s the server still lists the stopped worker of {GONE_POOL!r} as "
                    f"{statuses}: its foreman service did not run. Restart the course server (python -m lessons_src "
                    "server stop, then setup())"
                )
            time.sleep(0.25)


def _diagnose(answer: Any, run_id: UUID, situation: str, expected: str, wrong: list[str]) -> None:
    """Ask the learner's function about one run; note a wrong diagnosis in `wrong` with the records behind it."""
    records = _records(run_id)
    said = _call(answer, run_id)
    expect(
        said in DIAGNOSES,
        f"for a run {situation}, your function returned {short(said)}; it should return one of "
        f"{', '.join(repr(d) for d in DIAGNOSES)}",
    )
    if said != expected:
        wrong.append(f"a run {situation}: you said {said!r}, expected {expected!r} (the server: {records})")


def _grade_why_not_started(answer: Any) -> str:
    _expect_function(answer, "why_not_started", (uuid4(),), "one argument, the flow run's id")
    situations = [f"{FLOW}/{pool}" for pool in (WHY_POOL, IDLE_POOL, GONE_POOL)]
    delete_deployments(*situations)
    _pool_whose_worker_left()
    workers.create_process_pool(WHY_POOL, concurrency_limit=2, queues={"held": 2})
    workers.create_process_pool(IDLE_POOL)
    run_ids: list[UUID] = []
    wrong: list[str] = []
    try:
        with _worker(WHY_POOL, WHY_WORKER) as worker, get_client(sync_client=True) as client:
            held = client.read_work_queue_by_name("held", work_pool_name=WHY_POOL)
            client.update_work_queue(held.id, is_paused=True)
            deployments = _situation_deployments([WHY_POOL, IDLE_POOL, GONE_POOL], client)
            on_why, on_idle, on_gone = (deployments[pool] for pool in (WHY_POOL, IDLE_POOL, GONE_POOL))
            ok = client.create_flow_run_from_deployment(on_why, state=_in_an_hour()).id
            in_held = client.create_flow_run_from_deployment(on_why, work_queue_name="held").id
            busy = client.create_flow_run_from_deployment(on_why, state=_in_an_hour()).id
            idle = client.create_flow_run_from_deployment(on_idle).id
            gone = client.create_flow_run_from_deployment(on_gone).id
            run_ids = [ok, in_held, busy, idle, gone]
            _ready(worker)
            live = f"on {WHY_POOL!r} (a live worker"
            _diagnose(answer, ok, f"{live}, pool concurrency limit 2, no run busy)", "ok", wrong)
            _diagnose(answer, in_held, f"in the paused queue 'held' of {WHY_POOL!r}", "queue paused", wrong)
            client.update_work_pool(WHY_POOL, WorkPoolUpdate(concurrency_limit=0))
            _diagnose(answer, ok, f"{live}, pool concurrency limit 0)", "pool limit reached", wrong)
            client.set_flow_run_state(busy, Running(), force=True)  # a run holding the pool's one slot
            client.update_work_pool(WHY_POOL, WorkPoolUpdate(concurrency_limit=1))
            _diagnose(answer, ok, f"{live}, pool concurrency limit 1, one run Running)", "pool limit reached", wrong)
            client.update_work_pool(WHY_POOL, WorkPoolUpdate(is_paused=True, concurrency_limit=None))
            _diagnose(answer, ok, f"{live}, the pool paused)", "pool paused", wrong)
            _diagnose(answer, idle, f"on {IDLE_POOL!r}, which no worker ever polled", "no worker", wrong)
            _until_worker_offline()
            left = f"on {GONE_POOL!r}, whose only worker stopped sending heartbeats (it is still listed)"
            _diagnose(answer, gone, left, "no worker", wrong)
    finally:
        with get_client(sync_client=True) as client:
            for run_id in run_ids:
                try:
                    client.delete_flow_run(run_id)
                except ObjectNotFound:
                    pass
        delete_deployments(*situations)
        workers.delete_work_pool(WHY_POOL)
        workers.delete_work_pool(IDLE_POOL)
    expect(not wrong, f"{len(wrong)} of 7 diagnoses were wrong:\n- " + "\n- ".join(wrong))
    return (
        "All 7 situations diagnosed from the server's records: ok; queue paused; pool limit reached (limit 0, then "
        "1 of 1 slot taken); pool paused; no worker (never polled, and a stopped worker still listed)."
    )


# ---- exercise 4: one at a time ----


def _awaiting_retry(state: Any) -> datetime | None:
    """Return when a run put back to wait for a concurrency slot tries again, or None if it is not waiting."""
    if state.name == "AwaitingConcurrencySlot" and state.state_details.scheduled_time is not None:
        return state.state_details.scheduled_time
    return None


def _settle_pair(run_ids: list[UUID], worker: workers.WorkerProcess) -> tuple[list[workers.PoolRun], list[Any]]:
    """Wait until both runs are final, or one is and the other waits for a slot longer than ENQUEUE_FOLLOW_S."""
    deadline = time.monotonic() + RUN_TIMEOUT_S
    with get_client(sync_client=True) as client:
        while True:
            states = [client.read_flow_run(run_id).state for run_id in run_ids]
            retries = [_awaiting_retry(state) for state in states]
            far = any(r is not None and (r - datetime.now(UTC)).total_seconds() > ENQUEUE_FOLLOW_S for r in retries)
            if all(state.is_final() for state in states) or (far and any(state.is_final() for state in states)):
                return [workers.pool_run(run_id) for run_id in run_ids], states
            if time.monotonic() > deadline:
                raise CourseProblem(
                    f"after {RUN_TIMEOUT_S:.0f} s the two runs are {[s.name for s in states]}. The check's worker "
                    f"printed:\n{worker.log()}"
                )
            time.sleep(0.3)


def _grade_one_at_a_time(answer: Any) -> str:
    _expect_function(answer, "deploy_one_at_a_time", (ONE_POOL,), "one argument, the pool's name")
    delete_deployments(f"{FLOW}/{ONE_DEPLOYMENT}")
    workers.create_process_pool(ONE_POOL)
    _call(answer, ONE_POOL)
    record = _deployment(ONE_DEPLOYMENT, ONE_POOL, f"Deploy where_am_i as {ONE_DEPLOYMENT!r}.")
    limit = record.global_concurrency_limit
    expect(
        limit is not None,
        "the deployment has no concurrency limit: any number of its runs may run at once. Pass concurrency_limit= to "
        "deploy",
    )
    expect(limit.limit == 1, f"the deployment's concurrency limit is {limit.limit}; expected 1 run at a time")
    with _worker(ONE_POOL, ONE_WORKER) as worker:
        _ready(worker)
        with get_client(sync_client=True) as client:
            run_ids = [client.create_flow_run_from_deployment(record.id, parameters={"seconds": 2}).id for _ in (1, 2)]
            try:
                runs, states = _settle_pair(run_ids, worker)
            finally:  # a run still waiting for a slot would go Late on a pool nobody polls any more
                for run_id in run_ids:
                    if not client.read_flow_run(run_id).state.is_final():
                        client.delete_flow_run(run_id)
    retries = {run.id: _awaiting_retry(state) for run, state in zip(runs, states, strict=True)}
    return one_at_a_time_verdict(runs, retries, record.concurrency_options)


def one_at_a_time_verdict(runs: list[workers.PoolRun], retries: dict[UUID, datetime | None], options: Any) -> str:
    """Grade two runs triggered together: one Completed, the other Cancelled without starting; else say what happened.

    `retries` maps a run put back to wait for a slot (AwaitingConcurrencySlot) to its next try; `options` are the
    deployment's concurrency options as the server recorded them (None for a plain limit).
    """
    completed = [run for run in runs if run.state == "Completed"]
    cancelled = [run for run in runs if run.state == "Cancelled"]
    if len(completed) == 1 and len(cancelled) == 1 and cancelled[0].running is None:
        ran, dropped = completed[0], cancelled[0]
        return (
            f"Of two runs triggered together, {ran.name!r} ran ({_clock(ran.running)} to {_clock(ran.end)}) and "
            f"{dropped.name!r} was Cancelled at {_clock(dropped.end)} without starting: {dropped.message!r}"
        )
    why = (
        "the deployment has a limit of 1 but no collision strategy, so the server used its default, ENQUEUE "
        "(SecureFlowConcurrencySlots in prefect/server/orchestration/core_policy.py)"
        if options is None
        else f"the deployment's collision strategy is {options.collision_strategy.value}"
    )
    fix = "A newcomer should be dropped: collision_strategy='CANCEL_NEW' in ConcurrencyLimitConfig."
    waiting = [run for run in runs if retries.get(run.id) is not None]
    if len(completed) == 1 and waiting:
        first, second = completed[0], waiting[0]
        raise CheckFailed(
            f"{why}: {first.name!r} ran ({_clock(first.running)} to {_clock(first.end)}) while {second.name!r}, "
            "triggered at the same moment, was not cancelled: the server put it back to wait, as "
            f"'AwaitingConcurrencySlot', to try again at {_clock(retries[second.id])}, and it would then run after "
            f"the first. {fix}"
        )
    if len(completed) == 2:
        first, second = sorted(completed, key=lambda run: run.running)
        expect(
            second.running < first.end,
            f"{why}: both runs Completed, one after the other: {first.name!r} ran {_clock(first.running)} to "
            f"{_clock(first.end)}, and {second.name!r} waited (AwaitingConcurrencySlot) and started at "
            f"{_clock(second.running)}, after the first had ended. {fix}",
        )
    raise CheckFailed(
        f"the two runs ended {[(run.name, run.state, run.message) for run in runs]}; expected one Completed and the "
        "other Cancelled before it started"
    )


# ---- exercise 5: prefect.yaml ----


def _deploy_output(done: Any) -> str:
    """Return the last lines `prefect deploy` printed, with any Python traceback cut down to its final line."""
    lines = (done.stdout + done.stderr).splitlines()
    if any(line.lstrip().startswith("Traceback (most recent call last)") for line in lines):
        start = next(i for i, line in enumerate(lines) if line.lstrip().startswith("Traceback (most recent call"))
        last = next(line for line in reversed(lines) if line.strip() and not line.startswith(" "))
        lines = [*lines[:start], last]
    kept = [line.rstrip() for line in lines if line.strip() and line.strip() != "An exception occurred."]
    return "\n".join(kept[-8:])


def _yaml_text(answer: Any) -> str:
    """Return the learner's prefect.yaml text (a string, or a function returning one), once it parses as a mapping."""
    if callable(answer):
        require_signature(answer, (), "nightly_yaml", "no arguments")
    text = _call(answer) if callable(answer) else answer
    text = textwrap.dedent(require_type(text, str, "your prefect.yaml", 'a string such as """deployments: ..."""'))
    try:
        parsed = yaml.safe_load(text)
    except yaml.YAMLError as error:
        raise CheckFailed(f"your text is not valid YAML: {' '.join(str(error).split())}") from None
    expect(
        isinstance(parsed, dict) and isinstance(parsed.get("deployments"), list),
        f"a prefect.yaml is a mapping with a 'deployments:' list; yours reads as {short(parsed)}",
    )
    return text


def _grade_nightly_yaml(answer: Any) -> str:
    text = _yaml_text(answer)
    full_name = f"{FLOW}/{YAML_DEPLOYMENT}"
    delete_deployments(full_name)
    workers.create_process_pool(YAML_POOL, queues={"bulk": 1})
    folder = Path(tempfile.mkdtemp(prefix="ex11-yaml-"))
    try:
        shutil.copytree(flows_dir() / PROJECT, folder, dirs_exist_ok=True, ignore=shutil.ignore_patterns("__pyc*"))
        (folder / "prefect.yaml").write_text(text)
        done = workers.prefect_deploy(folder)
        expect(
            done.returncode == 0,
            f"prefect deploy failed (exit status {done.returncode}); the last lines it printed:\n"
            + _deploy_output(done),
        )
        record = _deployment(YAML_DEPLOYMENT, YAML_POOL, "Name the deployment ex11-yaml under 'deployments:'.")
        return _grade_yaml_record(record, folder)
    finally:
        delete_deployments(full_name)  # also when it went to another pool
        with get_client(sync_client=True) as client:
            for deployment_id in _deployment_names_on(YAML_POOL).values():
                client.delete_deployment(deployment_id)
        workers.delete_work_pool(YAML_POOL)
        shutil.rmtree(folder, ignore_errors=True)


def _grade_yaml_record(record: Any, folder: Path) -> str:
    """Grade the deployment `prefect deploy` made from the learner's yaml in `folder`."""
    expect(
        record.work_queue_name == "bulk",
        f"the deployment sends its runs to the queue {record.work_queue_name!r}; expected 'bulk' "
        "(work_queue_name under work_pool)",
    )
    expect(
        record.parameters == {"label": "nightly"},
        f"the deployment's default parameters are {record.parameters}; expected {{'label': 'nightly'}}",
    )
    _expect_greeting(record.job_variables, "guten tag", "Under work_pool: job_variables: env: GREETING: guten tag.")
    expect(len(record.schedules) == 1, f"the server recorded {len(record.schedules)} schedules; expected one cron")
    schedule = record.schedules[0].schedule
    expected = fire_times(CronSchedule(cron="0 6 * * 1-5", timezone="Europe/Berlin"))
    times = fire_times(schedule)
    shown = (
        f"cron {schedule.cron!r} in {schedule.timezone or 'UTC'}"
        if isinstance(schedule, CronSchedule)
        else short(schedule)
    )
    expect(
        times == expected,
        f"the server recorded the schedule {shown}, which fires {_fires(times)}; expected weekdays at 06:00 "
        f"Berlin time ({_fires(expected)}): cron '0 6 * * 1-5' with timezone Europe/Berlin",
    )
    _expect_pull_into(
        record,
        folder,
        'Give the pull step set_working_directory the folder prefect deploy runs in: directory: "{{ $PWD }}".',
    )
    return (
        f"prefect deploy made '{FLOW}/{YAML_DEPLOYMENT}' on {YAML_POOL}/bulk: label 'nightly', GREETING 'guten tag', "
        f"weekdays at 06:00 Berlin time ({_fires(times, 2)}), and a pull step into the folder it ran in."
    )


def _fires(times: list[datetime], count: int = 3) -> str:
    """Return the first fire times in Berlin time, e.g. 'Mon 03 Jan 2028 06:00, ...'."""
    from zoneinfo import ZoneInfo

    shown = ", ".join(t.astimezone(ZoneInfo("Europe/Berlin")).strftime("%a %d %b %Y %H:%M") for t in times[:count])
    return f"{shown} ... Berlin time" if times else "never"


def clean_up() -> int:
    """Stop any worker still running here, delete the exercise pools and deployments; return how many workers ran."""
    left = len(workers.running_workers())
    workers.stop_workers()
    delete_deployments(*EXERCISE_DEPLOYMENTS)
    for pool in EXERCISE_POOLS:
        workers.delete_work_pool(pool)
    return left


EXERCISES = ExerciseSet(
    pair="11",
    title="Work pools and workers",
    exercises=[
        Exercise(
            1,
            "a pool for the team",
            _grade_team_pool,
            hints=[
                "Inside `async with get_client() as client:`, `await client.create_work_pool(WorkPoolCreate(name=..., "
                "type='process', concurrency_limit=...))`, then `await client.create_work_queue(name=..., "
                "priority=..., work_pool_name=...)` for each queue.",
                "Give the pool its worker type's job template from the start: base_job_template="
                "ProcessWorker.get_default_base_job_template() (the CLI `prefect work-pool create ex11-team --type "
                "process` fills it in). Priority 1 is the highest, and a queue created at a priority another queue "
                "holds pushes that one down: create urgent (1) before bulk (2).",
            ],
            solution=[create_team_pool],
            answer=lambda: create_team_pool,
        ),
        Exercise(
            2,
            "code to the worker",
            _grade_deploy_where_am_i,
            hints=[
                "`await flow.from_source(str(PROJECT), entrypoint='jobs.py:where_am_i')` loads the flow and remembers "
                "its folder (the deployment's pull step); then `await that_flow.deploy('ex11-code', "
                "work_pool_name=pool, ...)`.",
                "work_queue_name='urgent', parameters={'label': 'ex11'}, and environment variables go under 'env' in "
                "the job variables: job_variables={'env': {'GREETING': 'bonjour'}}. print_next_steps=False and "
                "ignore_warnings=True keep deploy short.",
            ],
            solution=[deploy_where_am_i],
            answer=lambda: deploy_where_am_i,
        ),
        Exercise(
            3,
            "why does a run not start?",
            _grade_why_not_started,
            hints=[
                "`run = await client.read_flow_run(flow_run_id)` names its pool and queue (run.work_pool_name, "
                "run.work_queue_name); then read_work_pool, read_work_queue_by_name(name, work_pool_name=...) and "
                "read_workers_for_work_pool(pool_name).",
                "A limit can be 0, which is falsy: compare with None. pool.active_slots counts the pool's Pending and "
                "Running runs. A worker that stopped stays in the pool's list: read its status (WorkerStatus.ONLINE "
                "or OFFLINE), which the server sets from its heartbeats.",
            ],
            solution=[why_not_started],
            answer=lambda: why_not_started,
        ),
        Exercise(
            4,
            "one at a time",
            _grade_one_at_a_time,
            hints=[
                "deploy(..., concurrency_limit=ConcurrencyLimitConfig(limit=1, collision_strategy=...)); a plain "
                "concurrency_limit=1 keeps the default strategy.",
                "The two strategies: ENQUEUE (the default: a newcomer waits, AwaitingConcurrencySlot, and runs later) "
                "and CANCEL_NEW (a newcomer is Cancelled at once).",
            ],
            solution=[deploy_one_at_a_time],
            answer=lambda: deploy_one_at_a_time,
        ),
        Exercise(
            5,
            "a prefect.yaml",
            _grade_nightly_yaml,
            hints=[
                "Start from the project's own file, `print((PROJECT / 'prefect.yaml').read_text())`: each entry under "
                "`deployments:` has name, entrypoint, parameters, work_pool (name, work_queue_name, job_variables) "
                "and schedules.",
                "The pull step: `pull:` then `- prefect.deployments.steps.set_working_directory:` with `directory: "
                '"{{ $PWD }}"`. A schedule: `- cron: "0 6 * * 1-5"` with `timezone: Europe/Berlin`.',
            ],
            solution=[nightly_yaml],
            answer=lambda: nightly_yaml,
        ),
    ],
)
