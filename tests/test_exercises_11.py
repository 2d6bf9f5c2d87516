"""Pair 11's checks grade what the server recorded, reject near misses saying what arrived, accept other right ones.

Every answer is graded twice with the same verdict (the pools, deployments, workers and runs the first grading left
must not decide the second). Right answers written otherwise pass: the CLI instead of the client, sync instead of
async, `prefect.deploy` instead of `Flow.deploy`, a strategy as an enum, a deployment made with the client, a yaml
without a pull section or written `MON-FRI`. No worker outlives a check, nor the module, and a check whose
worker does not start reports a course problem, not the learner's mistake.
"""

import asyncio
import logging
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from uuid import uuid4

import pytest
from prefect import deploy, flow
from prefect.client.orchestration import get_client
from prefect.client.schemas.actions import WorkPoolCreate, WorkPoolUpdate
from prefect.client.schemas.filters import (
    FlowRunFilter,
    FlowRunFilterState,
    FlowRunFilterStateType,
    WorkPoolFilter,
    WorkPoolFilterName,
)
from prefect.client.schemas.objects import (
    ConcurrencyLimitConfig,
    ConcurrencyLimitStrategy,
    ConcurrencyOptions,
    StateType,
    WorkerStatus,
    WorkPoolStatus,
)
from prefect.flows import load_flow_from_entrypoint
from prefect.workers.process import ProcessWorker
from prefect.workers.utilities import get_default_base_job_template_for_infrastructure_type

from lessons_src import workers
from lessons_src.checks import CheckFailed
from lessons_src.exercises import exercises
from lessons_src.exercises.e11_work_pools_and_workers import clean_up, nightly_yaml, one_at_a_time_verdict
from lessons_src.logs import quiet_console
from lessons_src.paths import repo_root
from lessons_src.serving import flows_dir

EX = exercises("11")
PROJECT = flows_dir() / "pool_project"


@pytest.fixture(scope="module", autouse=True)
def no_worker_outlives_the_module():
    """Delete every exercise pool and deployment after the module, and prove no worker is left running."""
    from lessons_src import setup

    setup(quiet=True)  # the course server, for the clean-up even when only the tests without one ran
    yield
    assert clean_up() == 0
    assert workers.running_workers() == []
    workers.delete_work_pool("ex11_team")  # made by a wrong answer to exercise 1


@pytest.fixture(autouse=True)
def no_worker_outlives_a_check():
    """Each check stops the workers it started, whatever its verdict."""
    yield
    assert workers.running_workers() == [], workers.running_workers()


def _name_of(value: object) -> str:
    """Name a test's answer: a function by its name, a yaml text by the constant that holds it."""
    return next((name for name, known in globals().items() if known is value), str(value))[:30]


def _cli(*arguments: str) -> None:
    subprocess.run([sys.executable, "-m", "prefect", *arguments], check=True, capture_output=True, timeout=120)


# ---- exercise 1: a pool for the team ----


async def pool_without_template() -> None:
    async with get_client() as client:
        await client.create_work_pool(WorkPoolCreate(name="ex11-team", type="process", concurrency_limit=3))
        await client.create_work_queue(name="urgent", priority=1, work_pool_name="ex11-team")
        await client.create_work_queue(name="bulk", priority=2, work_pool_name="ex11-team")


async def bulk_before_urgent() -> None:
    template = ProcessWorker.get_default_base_job_template()
    async with get_client() as client:
        await client.create_work_pool(
            WorkPoolCreate(name="ex11-team", type="process", base_job_template=template, concurrency_limit=3)
        )
        await client.create_work_queue(name="bulk", priority=2, work_pool_name="ex11-team")
        await client.create_work_queue(name="urgent", priority=1, work_pool_name="ex11-team")


async def limit_on_the_queues() -> None:
    template = ProcessWorker.get_default_base_job_template()
    async with get_client() as client:
        await client.create_work_pool(WorkPoolCreate(name="ex11-team", type="process", base_job_template=template))
        for name, priority in (("urgent", 1), ("bulk", 2)):
            await client.create_work_queue(
                name=name, priority=priority, work_pool_name="ex11-team", concurrency_limit=3
            )


async def a_docker_pool() -> None:
    template = ProcessWorker.get_default_base_job_template()
    async with get_client() as client:
        await client.create_work_pool(
            WorkPoolCreate(name="ex11-team", type="docker", base_job_template=template, concurrency_limit=3)
        )
        await client.create_work_queue(name="urgent", priority=1, work_pool_name="ex11-team")
        await client.create_work_queue(name="bulk", priority=2, work_pool_name="ex11-team")


def pool_with_another_name() -> None:
    _cli("work-pool", "create", "ex11_team", "--type", "process", "--overwrite")


# ---- exercise 2: code to the worker ----


async def deploy_to_the_default_queue(pool: str) -> None:
    where_am_i = await flow.from_source(str(PROJECT), entrypoint="jobs.py:where_am_i")
    await where_am_i.deploy(
        "ex11-code",
        work_pool_name=pool,
        job_variables={"env": {"GREETING": "bonjour"}},
        parameters={"label": "ex11"},
        print_next_steps=False,
        ignore_warnings=True,
    )


async def greeting_as_a_job_variable(pool: str) -> None:
    where_am_i = await flow.from_source(str(PROJECT), entrypoint="jobs.py:where_am_i")
    await where_am_i.deploy(
        "ex11-code",
        work_pool_name=pool,
        work_queue_name="urgent",
        job_variables={"GREETING": "bonjour"},
        parameters={"label": "ex11"},
        print_next_steps=False,
        ignore_warnings=True,
    )


async def without_the_label(pool: str) -> None:
    where_am_i = await flow.from_source(str(PROJECT), entrypoint="jobs.py:where_am_i")
    await where_am_i.deploy(
        "ex11-code",
        work_pool_name=pool,
        work_queue_name="urgent",
        job_variables={"env": {"GREETING": "bonjour"}},
        print_next_steps=False,
        ignore_warnings=True,
    )


async def from_the_repository_root(pool: str) -> None:
    where_am_i = await flow.from_source(str(repo_root()), entrypoint="flows/pool_project/jobs.py:where_am_i")
    await where_am_i.deploy(
        "ex11-code",
        work_pool_name=pool,
        work_queue_name="urgent",
        job_variables={"env": {"GREETING": "bonjour"}},
        parameters={"label": "ex11"},
        print_next_steps=False,
        ignore_warnings=True,
    )


async def deploy_the_loaded_flow(pool: str) -> None:
    where_am_i = load_flow_from_entrypoint(f"{PROJECT / 'jobs.py'}:where_am_i")
    await where_am_i.deploy(
        "ex11-code",
        work_pool_name=pool,
        work_queue_name="urgent",
        job_variables={"env": {"GREETING": "bonjour"}},
        parameters={"label": "ex11"},
        print_next_steps=False,
    )


# ---- exercise 3: why does a run not start? ----


def _read(client, flow_run_id):
    run = client.read_flow_run(flow_run_id)
    pool = client.read_work_pool(run.work_pool_name)
    queue = client.read_work_queue_by_name(run.work_queue_name, work_pool_name=pool.name)
    return pool, queue, client.read_workers_for_work_pool(pool.name)


def counts_listed_workers(flow_run_id) -> str:
    with get_client(sync_client=True) as client:
        pool, queue, pool_workers = _read(client, flow_run_id)
    if pool.is_paused:
        return "pool paused"
    if queue.is_paused:
        return "queue paused"
    if pool.concurrency_limit is not None and pool.active_slots >= pool.concurrency_limit:
        return "pool limit reached"
    return "ok" if pool_workers else "no worker"


def limit_when_truthy(flow_run_id) -> str:
    with get_client(sync_client=True) as client:
        pool, queue, pool_workers = _read(client, flow_run_id)
    if pool.is_paused:
        return "pool paused"
    if queue.is_paused:
        return "queue paused"
    if pool.concurrency_limit and pool.active_slots >= pool.concurrency_limit:
        return "pool limit reached"
    return "ok" if any(w.status == WorkerStatus.ONLINE for w in pool_workers) else "no worker"


def any_limit_is_reached(flow_run_id) -> str:
    with get_client(sync_client=True) as client:
        pool, queue, pool_workers = _read(client, flow_run_id)
    if pool.is_paused:
        return "pool paused"
    if queue.is_paused:
        return "queue paused"
    if pool.concurrency_limit is not None:
        return "pool limit reached"
    return "ok" if any(w.status == WorkerStatus.ONLINE for w in pool_workers) else "no worker"


def limit_zero_only(flow_run_id) -> str:
    with get_client(sync_client=True) as client:
        pool, queue, pool_workers = _read(client, flow_run_id)
    if pool.is_paused:
        return "pool paused"
    if queue.is_paused:
        return "queue paused"
    if pool.concurrency_limit == 0:
        return "pool limit reached"
    return "ok" if any(w.status == WorkerStatus.ONLINE for w in pool_workers) else "no worker"


def ignores_the_queue(flow_run_id) -> str:
    with get_client(sync_client=True) as client:
        pool, _, pool_workers = _read(client, flow_run_id)
    if pool.is_paused:
        return "pool paused"
    if pool.concurrency_limit is not None and pool.active_slots >= pool.concurrency_limit:
        return "pool limit reached"
    return "ok" if any(w.status == WorkerStatus.ONLINE for w in pool_workers) else "no worker"


def answers_in_other_words(flow_run_id) -> str:
    with get_client(sync_client=True) as client:
        pool, _, _ = _read(client, flow_run_id)
    return "paused" if pool.is_paused else "fine"


# ---- exercise 4: one at a time ----


async def enqueue_newcomers(pool: str) -> None:
    where_am_i = await flow.from_source(str(PROJECT), entrypoint="jobs.py:where_am_i")
    await where_am_i.deploy(
        "ex11-one-at-a-time",
        work_pool_name=pool,
        concurrency_limit=ConcurrencyLimitConfig(limit=1, collision_strategy="ENQUEUE"),
        print_next_steps=False,
        ignore_warnings=True,
    )


async def a_plain_limit_of_one(pool: str) -> None:
    where_am_i = await flow.from_source(str(PROJECT), entrypoint="jobs.py:where_am_i")
    await where_am_i.deploy(
        "ex11-one-at-a-time", work_pool_name=pool, concurrency_limit=1, print_next_steps=False, ignore_warnings=True
    )


async def no_limit(pool: str) -> None:
    where_am_i = await flow.from_source(str(PROJECT), entrypoint="jobs.py:where_am_i")
    await where_am_i.deploy("ex11-one-at-a-time", work_pool_name=pool, print_next_steps=False, ignore_warnings=True)


async def two_at_a_time(pool: str) -> None:
    where_am_i = await flow.from_source(str(PROJECT), entrypoint="jobs.py:where_am_i")
    await where_am_i.deploy(
        "ex11-one-at-a-time",
        work_pool_name=pool,
        concurrency_limit=ConcurrencyLimitConfig(limit=2, collision_strategy="CANCEL_NEW"),
        print_next_steps=False,
        ignore_warnings=True,
    )


async def config_as_a_dict(pool: str) -> None:
    where_am_i = await flow.from_source(str(PROJECT), entrypoint="jobs.py:where_am_i")
    await where_am_i.deploy(
        "ex11-one-at-a-time",
        work_pool_name=pool,
        concurrency_limit={"limit": 1, "collision_strategy": "CANCEL_NEW"},
        print_next_steps=False,
        ignore_warnings=True,
    )


# ---- exercise 5: prefect.yaml ----


YAML_IN_UTC = nightly_yaml().replace("        timezone: Europe/Berlin\n", "")
YAML_DEFAULT_QUEUE = nightly_yaml().replace("      work_queue_name: bulk\n", "")
YAML_FIXED_FOLDER = nightly_yaml().replace("{{ $PWD }}", str(PROJECT))
YAML_GREETING_OUTSIDE_ENV = nightly_yaml().replace("        env:\n          GREETING", "        GREETING")
YAML_TABS = nightly_yaml().replace("    entrypoint", "\tentrypoint")
YAML_MISSPELLED_FLOW = nightly_yaml().replace("jobs.py:where_am_i", "jobs.py:where_i_am")
YAML_MISSPELLED_PARAMETER = nightly_yaml().replace("label: nightly", "lable: nightly")
YAML_MISSPELLED_POOL = nightly_yaml().replace("name: ex11-team-yaml", "name: ex11-team-yml")
YAML_SUNDAY_TO_THURSDAY = nightly_yaml().replace("0 6 * * 1-5", "0 6 * * 0-4")


WRONG_ANSWERS = [
    (1, pool_without_template, "the pool's base job template is {}"),
    (1, bulk_before_urgent, "{'urgent': 1, 'default': 2, 'bulk': 3}; expected urgent 1 and bulk 2"),
    (1, limit_on_the_queues, "(you limited the queues: {'urgent': 3, 'bulk': 3})"),
    (1, a_docker_pool, "the pool's type is 'docker'; expected 'process'"),
    (1, pool_with_another_name, "no work pool named 'ex11-team'"),
    (2, deploy_to_the_default_queue, "to the queue 'default'; expected 'urgent'"),
    (2, greeting_as_a_job_variable, "GREETING is a job variable of its own, which a process worker ignores"),
    (2, without_the_label, "default parameters are {}; expected label='ex11'"),
    (2, from_the_repository_root, f"a worker would start the flow in {repo_root()}, not in {PROJECT}"),
    (2, deploy_the_loaded_flow, "your code raised ValueError: Either an image or remote storage location"),
    (3, counts_listed_workers, "stopped sending heartbeats (it is still listed): you said 'ok', expected 'no"),
    (3, limit_when_truthy, "pool concurrency limit 0): you said 'ok', expected 'pool limit reached'"),
    (3, any_limit_is_reached, "no run busy): you said 'pool limit reached', expected 'ok'"),
    (3, limit_zero_only, "one run Running): you said 'ok', expected 'pool limit reached'"),
    (3, ignores_the_queue, "paused queue 'held' of 'ex11-why': you said 'ok', expected 'queue paused'"),
    (3, answers_in_other_words, "your function returned 'fine'; it should return one of 'pool paused'"),
    (4, enqueue_newcomers, "collision strategy is ENQUEUE"),
    (4, a_plain_limit_of_one, "no collision strategy, so the server used its default, ENQUEUE"),
    (4, no_limit, "the deployment has no concurrency limit"),
    (4, two_at_a_time, "the deployment's concurrency limit is 2; expected 1"),
    (4, config_as_a_dict, "your code raised ValidationError"),
    (5, YAML_IN_UTC, "expected weekdays at 06:00 Berlin time"),
    (5, YAML_SUNDAY_TO_THURSDAY, "which fires Sun 02 Jan 2028 06:00"),
    (5, YAML_DEFAULT_QUEUE, "to the queue 'default'; expected 'bulk'"),
    (5, YAML_FIXED_FOLDER, f"a worker would start the flow in {PROJECT}, not in"),
    (5, YAML_GREETING_OUTSIDE_ENV, "GREETING is a job variable of its own"),
    (5, YAML_TABS, "your text is not valid YAML"),
    (5, YAML_MISSPELLED_FLOW, "MissingFlowError: Flow function with name 'where_i_am' not found"),
    (5, YAML_MISSPELLED_PARAMETER, "default parameters are {'lable': 'nightly'}"),
    (5, YAML_MISSPELLED_POOL, "references work pool 'ex11-team-yml' which does"),
]


# ---- right answers, written differently from the reference ----


def team_pool_with_the_cli() -> None:
    _cli("work-pool", "create", "ex11-team", "--type", "process")  # the CLI fills in Prefect's job template
    _cli("work-pool", "set-concurrency-limit", "ex11-team", "3")
    _cli("work-queue", "create", "urgent", "--pool", "ex11-team", "--priority", "1")
    _cli("work-queue", "create", "bulk", "--pool", "ex11-team", "--priority", "2")


def team_pool_synchronously_bulk_pushed_down() -> None:
    template = asyncio.run(get_default_base_job_template_for_infrastructure_type("process"))
    with get_client(sync_client=True) as client:
        client.create_work_pool(WorkPoolCreate(name="ex11-team", type="process", base_job_template=template))
        client.update_work_pool("ex11-team", WorkPoolUpdate(concurrency_limit=3))
        client.create_work_queue(name="bulk", priority=1, work_pool_name="ex11-team")
        client.create_work_queue(name="urgent", priority=1, work_pool_name="ex11-team")  # bulk moves down to 2


def where_am_i_synchronously(pool: str) -> None:
    flow.from_source(PROJECT, entrypoint="jobs.py:where_am_i").deploy(
        name="ex11-code",
        work_pool_name=pool,
        work_queue_name="urgent",
        job_variables={"env": {"GREETING": "bonjour", "LANG": "C.UTF-8"}},
        parameters={"label": "ex11", "seconds": 0},
        print_next_steps=False,
        ignore_warnings=True,
    )


async def where_am_i_with_prefect_deploy(pool: str) -> None:
    where_am_i = await flow.from_source(str(PROJECT), entrypoint="jobs.py:where_am_i")
    deployment = await where_am_i.ato_deployment(
        "ex11-code",
        work_queue_name="urgent",
        job_variables={"env": {"GREETING": "bonjour"}},
        parameters={"label": "ex11"},
    )
    await deploy(deployment, work_pool_name=pool, print_next_steps_message=False, ignore_warnings=True)


def diagnosis_from_runs_and_heartbeats(flow_run_id) -> str:
    busy = FlowRunFilter(
        state=FlowRunFilterState(type=FlowRunFilterStateType(any_=[StateType.PENDING, StateType.RUNNING]))
    )
    with get_client(sync_client=True) as client:
        pool, queue, pool_workers = _read(client, flow_run_id)
        in_pool = WorkPoolFilter(name=WorkPoolFilterName(any_=[pool.name]))
        running = client.read_flow_runs(flow_run_filter=busy, work_pool_filter=in_pool)
    now = datetime.now(UTC)
    alive = [
        w for w in pool_workers if (now - w.last_heartbeat_time).total_seconds() < 3 * w.heartbeat_interval_seconds
    ]
    if pool.is_paused:
        return "pool paused"
    if queue.is_paused:
        return "queue paused"
    if pool.concurrency_limit is not None and len(running) >= pool.concurrency_limit:
        return "pool limit reached"
    return "ok" if alive else "no worker"


async def diagnosis_from_the_pool_status(flow_run_id) -> str:
    async with get_client() as client:
        run = await client.read_flow_run(flow_run_id)
        pool = await client.read_work_pool(run.work_pool_name)
        queue = await client.read_work_queue_by_name(run.work_queue_name, work_pool_name=run.work_pool_name)
    if pool.status == WorkPoolStatus.PAUSED:
        return "pool paused"
    if queue.is_paused:
        return "queue paused"
    if pool.concurrency_limit is not None and pool.active_slots >= pool.concurrency_limit:
        return "pool limit reached"
    return "no worker" if pool.status == WorkPoolStatus.NOT_READY else "ok"


def one_at_a_time_with_the_enum(pool: str) -> None:
    where_am_i = flow.from_source(str(PROJECT), entrypoint="jobs.py:where_am_i")
    strategy = ConcurrencyLimitStrategy.CANCEL_NEW
    limit = ConcurrencyLimitConfig(limit=1, collision_strategy=strategy)
    where_am_i.deploy("ex11-one-at-a-time", work_pool_name=pool, concurrency_limit=limit, print_next_steps=False)


def one_at_a_time_with_the_client(pool: str) -> None:
    with get_client(sync_client=True) as client:
        client.create_deployment(
            client.create_flow_from_name("where-am-i"),
            "ex11-one-at-a-time",
            work_pool_name=pool,
            entrypoint="jobs.py:where_am_i",
            pull_steps=[{"prefect.deployments.steps.set_working_directory": {"directory": str(PROJECT)}}],
            concurrency_limit=1,
            concurrency_options=ConcurrencyOptions(collision_strategy="CANCEL_NEW"),
        )


def yaml_without_a_pull_section() -> str:
    # prefect deploy adds a pull step into the folder it runs in when the file has none
    return """
        deployments:
        - name: ex11-yaml
          entrypoint: jobs.py:where_am_i
          parameters: {label: nightly}
          work_pool: {name: ex11-team-yaml, work_queue_name: bulk, job_variables: {env: {GREETING: guten tag}}}
          schedules:
          - {cron: 00 06 * * MON-FRI, timezone: Europe/Berlin, active: false}
    """


YAML_WITH_EVERY_SECTION = """\
name: team-project
prefect-version: 3.9.1

build: null
push: null
pull:
- prefect.deployments.steps.set_working_directory:
    directory: '{{ $PWD }}'

deployments:
- name: ex11-yaml
  description: every weekday morning
  entrypoint: jobs.py:where_am_i
  parameters:
    label: "nightly"
  work_pool:
    name: ex11-team-yaml
    work_queue_name: bulk
    job_variables:
      env:
        GREETING: "guten tag"
        TZ: Europe/Berlin
  schedules:
  - cron: 0 6 * * mon-fri
    timezone: Europe/Berlin
    active: false
"""


RIGHT_ANSWERS = [
    (1, team_pool_with_the_cli),
    (1, team_pool_synchronously_bulk_pushed_down),
    (2, where_am_i_synchronously),
    (2, where_am_i_with_prefect_deploy),
    (3, diagnosis_from_runs_and_heartbeats),
    (3, diagnosis_from_the_pool_status),
    (4, one_at_a_time_with_the_enum),
    (4, one_at_a_time_with_the_client),
    (5, yaml_without_a_pull_section),
    (5, YAML_WITH_EVERY_SECTION),
]


def _answer_id(value: object) -> str:
    return getattr(value, "__name__", None) or _name_of(value)


def pytest_generate_tests(metafunc):
    """Give each exercise's class its own wrong and right answers."""
    number = getattr(metafunc.cls, "number", None)
    if "wrong" in metafunc.fixturenames:
        cases = [(wrong, message) for n, wrong, message in WRONG_ANSWERS if n == number]
        metafunc.parametrize(("wrong", "expected_message"), cases, ids=_answer_id)
    if "right" in metafunc.fixturenames:
        metafunc.parametrize("right", [right for n, right in RIGHT_ANSWERS if n == number], ids=_answer_id)


class _OneExercise:
    """One exercise's near misses and other right answers; a class each, so parallel workers share the exercises."""

    number: int

    def test_wrong_answers_are_rejected_twice_alike(self, graded, wrong, expected_message):
        outcome = graded(EX, self.number, wrong)
        assert outcome.status == "failed" and expected_message in outcome.message, outcome

    def test_right_answers_written_differently_pass_twice(self, graded, right):
        outcome = graded(EX, self.number, right)
        assert outcome.status == "passed", outcome


for _number in sorted({n for n, *_ in WRONG_ANSWERS + RIGHT_ANSWERS}):
    globals()[f"TestExercise{_number}"] = type(f"TestExercise{_number}", (_OneExercise,), {"number": _number})


def _run(name: str, state: str, running: float | None, end: float, message: str | None = None) -> workers.PoolRun:
    """A run as `workers.pool_run` reads it, with its times in seconds after 12:00:00 UTC."""
    at = datetime(2026, 12, 1, 12, tzinfo=UTC)
    started = None if running is None else at + timedelta(seconds=running)
    ended = at + timedelta(seconds=end)
    return workers.PoolRun(uuid4(), name, state, "p", "default", "w", at, started, started, ended, {}, message)


def test_the_verdict_on_two_runs_names_the_strategy_and_shows_when_each_ran():
    """Both endings of ENQUEUE (a long server wait: the newcomer still waiting; a short one: both ran in turn)."""
    first, second = _run("a", "Completed", 1.0, 3.0), _run("b", "Completed", 5.2, 7.0)
    with pytest.raises(CheckFailed, match=r"no collision strategy.*ENQUEUE.*one after the other.*12:00:05\.2 UTC"):
        one_at_a_time_verdict([first, second], {}, None)
    waiting = _run("b", "Scheduled", None, 0.0)
    retry = datetime(2026, 12, 1, 12, 0, 31, tzinfo=UTC)
    options = ConcurrencyOptions(collision_strategy="ENQUEUE")
    with pytest.raises(CheckFailed, match=r"strategy is ENQUEUE: 'a' ran \(12:00:01\.0 UTC.*again at 12:00:31\.0 UTC"):
        one_at_a_time_verdict([first, waiting], {waiting.id: retry}, options)
    together = _run("b", "Completed", 1.5, 3.5)
    with pytest.raises(CheckFailed, match=r"expected one Completed and the other Cancelled"):
        one_at_a_time_verdict([first, together], {}, options)
    dropped = _run("b", "Cancelled", None, 0.4, "Deployment concurrency limit reached.")
    cancel_new = ConcurrencyOptions(collision_strategy="CANCEL_NEW")
    assert "'b' was Cancelled at 12:00:00.4 UTC without starting" in one_at_a_time_verdict(
        [first, dropped], {}, cancel_new
    )


def test_a_worker_that_does_not_start_is_the_courses_problem_not_the_learners(course_server, monkeypatch):
    def failing_command(*args, **kwargs) -> list[str]:
        return [sys.executable, "-c", "import sys; print('no such worker'); sys.exit(3)"]

    monkeypatch.setattr(workers, "worker_command", failing_command)
    with quiet_console(logging.CRITICAL):
        outcome = EX.evaluate(2, EX.get(2).answer())
    assert outcome.status == "course-problem", outcome
    assert (
        "the check's worker 'ex11-code-worker' did not start" in outcome.message and "no such worker" in outcome.message
    )
