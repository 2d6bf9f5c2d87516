"""Exercises for pair 08 (deployments and schedules): graders read deployments, schedules and flow runs."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

from prefect.deployments import run_deployment
from prefect.schedules import Cron, Interval

from lessons_src.checks import CheckFailed, Exercise, ExerciseSet, expect, short
from lessons_src.serving import (
    DeploymentSpec,
    ServeProcess,
    delete_deployments,
    deployment_flow_runs,
    load_served_flow,
    running_serve_processes,
    serve_deployments,
    stop_all,
)

add_up = load_served_flow("add_up")
say_hello = load_served_flow("say_hello")

# ---- reference solutions (shown by ex.solution(n)) ----


async def nightly_sum():
    return await add_up.to_deployment(
        "ex08-nightly-sum",
        cron="30 2 * * *",  # every day at 02:30
        parameters={"numbers": [1, 2, 3]},
        tags=["course"],
    )


async def greetings():
    return await say_hello.to_deployment(
        "ex08-greetings",
        schedules=[
            Cron("0 9 * * 1-5", timezone="Europe/Paris", parameters={"name": "team"}),
            Interval(timedelta(hours=6), parameters={"name": "on-call"}),
        ],
        paused=True,
    )


async def sum_via_deployment(numbers: list[int]) -> int:
    flow_run = await run_deployment("add-up/ex08-sum", parameters={"numbers": numbers}, poll_interval=0.5, timeout=120)
    return await flow_run.state.result()


def hello_spec():
    return DeploymentSpec(
        "served_pipeline.py:say_hello",
        "ex08-hello-default",
        {"parameters": {"name": "class"}, "tags": ["course"]},
    )


# ---- graders ----

SUM_DEPLOYMENT = "add-up/ex08-sum"
EXERCISE_DEPLOYMENTS = [
    SUM_DEPLOYMENT,
    "say-hello/ex08-hello-default",
    "add-up/ex08-nightly-sum",
    "say-hello/ex08-greetings",
]


def _apply_and_read(deployment: Any, full_name: str) -> Any:
    """Register a learner's deployment on the server, read it back, then delete it (nothing serves it)."""
    from prefect.client.orchestration import get_client

    expect(
        type(deployment).__name__ == "RunnerDeployment",
        f"your function returned {short(deployment)}; return what `flow.to_deployment(...)` gives you",
    )
    expect(
        deployment.full_name == full_name,
        f"the deployment is called '{deployment.full_name}'; expected '{full_name}'",
    )
    delete_deployments(full_name)
    deployment.apply(_sync=True)
    try:
        with get_client(sync_client=True) as client:
            return client.read_deployment_by_name(full_name)
    finally:
        delete_deployments(full_name)


def _deployment_from(answer: Any) -> Any:
    """Call the learner's function (awaiting it if async) and return the deployment it built."""
    deployment = _run_in_thread(answer) if asyncio.iscoroutinefunction(answer) else answer()
    if asyncio.iscoroutine(deployment):
        deployment.close()
        raise CheckFailed(
            "your function returned a coroutine: in a notebook `to_deployment` must be awaited. "
            "Write `async def ...:` and `return await flow.to_deployment(...)`."
        )
    return deployment


def _grade_nightly_sum(answer: Any) -> str:
    record = _apply_and_read(_deployment_from(answer), "add-up/ex08-nightly-sum")
    crons = [getattr(s.schedule, "cron", None) for s in record.schedules]
    expect(len(record.schedules) == 1, f"the server recorded {len(record.schedules)} schedules; expected one cron")
    expect(
        crons == ["30 2 * * *"],
        f"the server recorded the schedule {record.schedules[0].schedule!r}; "
        "expected cron '30 2 * * *' (minute 30, hour 2, every day)",
    )
    expect(record.parameters == {"numbers": [1, 2, 3]}, f"the server recorded parameters {record.parameters!r}")
    expect("course" in record.tags, f"the server recorded tags {record.tags!r}; add the tag 'course'")
    return "The server recorded 'add-up/ex08-nightly-sum' with cron '30 2 * * *', numbers=[1, 2, 3], tag 'course'."


def _grade_greetings(answer: Any) -> str:
    record = _apply_and_read(_deployment_from(answer), "say-hello/ex08-greetings")
    expect(len(record.schedules) == 2, f"the server recorded {len(record.schedules)} schedules; expected 2")
    by_kind = {type(s.schedule).__name__: s for s in record.schedules}
    cron, interval = by_kind.get("CronSchedule"), by_kind.get("IntervalSchedule")
    expect(
        cron is not None and interval is not None,
        f"schedule kinds recorded: {sorted(by_kind)}; expected one Cron and one Interval",
    )
    expect(cron.schedule.cron == "0 9 * * 1-5", f"the cron is '{cron.schedule.cron}'; expected '0 9 * * 1-5'")
    expect(
        cron.schedule.timezone == "Europe/Paris",
        f"the cron's timezone is {cron.schedule.timezone!r}; expected 'Europe/Paris' (Cron's timezone=)",
    )
    expect(cron.parameters == {"name": "team"}, f"the cron schedule's parameters are {cron.parameters!r}")
    expect(interval.schedule.interval == timedelta(hours=6), f"the interval is {interval.schedule.interval}")
    expect(
        interval.parameters == {"name": "on-call"}, f"the interval schedule's parameters are {interval.parameters!r}"
    )
    expect(record.paused, "the deployment is not paused: pass paused=True so nothing runs until you resume it")
    return "Two schedules recorded (weekdays 09:00 Paris for 'team', every 6 h for 'on-call'), deployment paused."


@contextmanager
def _served(spec: DeploymentSpec) -> Iterator[ServeProcess]:
    """Serve `spec` from a background process for the duration of one check; then stop it and delete the deployment."""
    serving = serve_deployments(spec, limit=2)
    try:
        yield serving
    finally:
        serving.stop()
        delete_deployments(*serving.deployment_names)


def _run_in_thread(function: Any, *args: Any) -> Any:
    """Run an async function to completion on a fresh event loop in a thread (a notebook's loop is busy)."""
    outcome: dict[str, Any] = {}

    def target() -> None:
        try:
            outcome["value"] = asyncio.run(function(*args))
        except BaseException as error:  # handed back to the caller below
            outcome["error"] = error

    thread = threading.Thread(target=target)
    thread.start()
    thread.join()
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]


def _grade_sum_via_deployment(answer: Any) -> str:
    expect(asyncio.iscoroutinefunction(answer), "write `async def sum_via_deployment(...)` and `await` inside it")
    numbers = [4, 5, 6]
    with _served(DeploymentSpec("served_pipeline.py:add_up", "ex08-sum")):
        since = datetime.now(UTC) - timedelta(seconds=1)
        value = _run_in_thread(answer, numbers)
        runs = [r for r in deployment_flow_runs(SUM_DEPLOYMENT) if r.created and r.created >= since]
    expect(runs, f"no run of '{SUM_DEPLOYMENT}' was created; call run_deployment with that deployment's name")
    run = runs[-1]
    expect(run.parameters == {"numbers": numbers}, f"the run got parameters {run.parameters!r}; pass numbers=...")
    expect(
        run.state_name == "Completed",
        f"your function returned while the run was {run.state_name}: let run_deployment wait (timeout=None or "
        "long enough), with a small poll_interval",
    )
    expect(
        value == 15,
        f"your function returned {short(value)}; expected 15. Return `await flow_run.state.result()`, "
        "the flow's result, not the FlowRun or a coroutine",
    )
    return f"Flow run '{run.name}' of {SUM_DEPLOYMENT} ran with numbers={numbers} and you read back its result 15."


def _grade_hello_spec(answer: Any) -> str:
    spec = answer()
    expect(isinstance(spec, DeploymentSpec), f"return a DeploymentSpec, not {short(spec)}")
    flow = load_served_flow(spec.flow_function)
    full_name = f"{flow.name}/{spec.name}"
    expect(
        full_name == "say-hello/ex08-hello-default",
        f"the deployment would be '{full_name}'; expected 'say-hello/ex08-hello-default'",
    )
    with _served(spec) as serving:
        since = datetime.now(UTC) - timedelta(seconds=1)
        flow_run = run_deployment(full_name, timeout=120, poll_interval=0.5, _sync=True)
        runs = [r for r in deployment_flow_runs(full_name) if r.created and r.created >= since]
        log = serving.log(5)
    expect(runs and runs[-1].id == flow_run.id, "the triggered run was not found on the server")
    record = runs[-1]
    expect(
        record.state_name == "Completed",
        f"the triggered run ended {record.state_name}; the serve process said:\n{log}",
    )
    expect(
        record.parameters == {"name": "class"},
        f"a run triggered without parameters got {record.parameters!r}; "
        "give the deployment default parameters {'name': 'class'}",
    )
    expect("course" in record.tags, f"the run's tags are {record.tags!r}; tag the deployment 'course'")
    return (
        f"A run triggered with no parameters used the deployment's defaults: {record.parameters}, tags {record.tags}."
    )


def clean_up() -> int:
    """Stop any serve process still running here and delete the exercise deployments; return how many were running."""
    left = len(running_serve_processes())
    stop_all()
    delete_deployments(*EXERCISE_DEPLOYMENTS)
    return left


EXERCISES = ExerciseSet(
    pair="08",
    title="Deployments and schedules",
    exercises=[
        Exercise(
            1,
            "a deployment with a cron schedule",
            _grade_nightly_sum,
            hints=[
                "`flow.to_deployment(name, cron=..., parameters=..., tags=...)` describes a deployment; nothing runs. "
                "In a notebook it returns a coroutine: `return await add_up.to_deployment(...)`.",
                "Cron fields are minute hour day-of-month month day-of-week: '30 2 * * *' is 02:30 every day.",
            ],
            solution=[nightly_sum],
            answer=lambda: nightly_sum,
        ),
        Exercise(
            2,
            "two schedules, each with its own parameters",
            _grade_greetings,
            hints=[
                "`schedules=[...]` takes several schedules; build them with `Cron(...)` and `Interval(...)` from "
                "`prefect.schedules`.",
                "Each schedule takes `parameters={...}`; Cron takes `timezone=`; `paused=True` on to_deployment.",
            ],
            solution=[greetings],
            answer=lambda: greetings,
        ),
        Exercise(
            3,
            "trigger a deployment run and read its result",
            _grade_sum_via_deployment,
            hints=[
                "In a notebook, `run_deployment` returns a coroutine: write an `async def` and `await` it.",
                "`flow_run = await run_deployment(name, parameters={...}, poll_interval=0.5, timeout=120)`, then "
                "`return await flow_run.state.result()`.",
            ],
            solution=[sum_via_deployment],
            answer=lambda: sum_via_deployment,
        ),
        Exercise(
            4,
            "default parameters for a served deployment",
            _grade_hello_spec,
            hints=[
                "A DeploymentSpec is (entrypoint 'file.py:function', deployment name, options for to_deployment).",
                "options={'parameters': {'name': 'class'}, 'tags': ['course']}",
            ],
            solution=[hello_spec],
            answer=lambda: hello_spec,
        ),
    ],
)
