"""Exercises for pair 08 (deployments and schedules): graders read deployments, schedules and flow runs."""

from __future__ import annotations

import inspect
import re
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from typing import Any

from prefect.client.schemas.schedules import CronSchedule
from prefect.deployments import run_deployment
from prefect.deployments.runner import DeploymentApplyError
from prefect.exceptions import MissingFlowError, ObjectNotFound, PrefectHTTPStatusError
from prefect.schedules import Cron, Interval

from lessons_src.checks import (
    CheckFailed,
    Exercise,
    ExerciseSet,
    call_answer,
    call_in_thread,
    expect,
    require_type,
    short,
)
from lessons_src.schedule_times import fire_times
from lessons_src.serving import (
    DeploymentSpec,
    ServeProcess,
    delete_deployments,
    deployment_flow_runs,
    flows_dir,
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


# ---- schedules compared by what they do ----

PARIS = "Europe/Paris"


def _timezone(schedule: Any) -> str:
    return getattr(schedule, "timezone", None) or "UTC"


def _first(times: list[datetime], timezone: str, count: int = 3) -> str:
    """Return the first few fire times as local times in `timezone`, e.g. 'Mon 03 Jan 09:00, ...'."""
    from zoneinfo import ZoneInfo

    shown = ", ".join(t.astimezone(ZoneInfo(timezone)).strftime("%a %d %b %H:%M") for t in times[:count])
    return f"{shown} ... ({timezone})" if times else "never"


def _gaps(times: list[datetime]) -> list[timedelta]:
    return sorted({later - earlier for earlier, later in pairwise(times)})


def _describe(schedule: Any) -> str:
    """Return a schedule as the server recorded it, without its anchor date's microseconds."""
    fields = {k: v for k, v in schedule.model_dump().items() if k not in ("anchor_date", "day_or") and v is not None}
    shown = (f"{k}={v}" if isinstance(v, timedelta) else f"{k}={v!r}" for k, v in fields.items())
    return f"{type(schedule).__name__}({', '.join(shown)})"


# ---- graders ----

SUM_DEPLOYMENT = "add-up/ex08-sum"
EXERCISE_DEPLOYMENTS = [
    SUM_DEPLOYMENT,
    "say-hello/ex08-hello-default",
    "add-up/ex08-nightly-sum",
    "say-hello/ex08-greetings",
]


def _server_reason(error: BaseException) -> str:
    """Return the one line of a server's refusal that says what was wrong (not the request it echoes back)."""
    text = str(error)
    match = re.search(r"(Validation failed.*?)[\"'][,}]", text)
    if match:
        return match.group(1)
    return short(text.splitlines()[0] if text else type(error).__name__)


def _expect_tag(tags: list[str], whose: str) -> None:
    """Fail unless `tags` holds 'course'; say so when a string was given where a list belongs."""
    if "course" in tags:
        return
    letters = all(len(tag) == 1 for tag in tags) and sorted(tags) == sorted(set("course"))
    expect(
        not letters,
        f"{whose} {sorted(tags)!r}: the letters of 'course', because tags= was given the string 'course'. "
        "tags takes a list: tags=['course']",
    )
    raise CheckFailed(f"{whose} {tags!r}; add the tag 'course' (tags=['course'])")


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
    try:
        deployment.apply(_sync=True)
    except (DeploymentApplyError, PrefectHTTPStatusError) as error:  # refused what the answer put in the deployment
        raise CheckFailed(f"the server refused the deployment: {_server_reason(error)}") from None
    try:
        with get_client(sync_client=True) as client:
            return client.read_deployment_by_name(full_name)
    finally:
        delete_deployments(full_name)


def _deployment_from(answer: Any) -> Any:
    """Call the learner's function (awaiting it if async) and return the deployment it built."""
    expect(callable(answer), f"your answer should be a function that returns a deployment; got {short(answer)}")
    deployment = call_in_thread(answer) if inspect.iscoroutinefunction(answer) else answer()
    if inspect.iscoroutine(deployment):
        deployment.close()
        raise CheckFailed(
            "your function returned a coroutine: in a notebook `to_deployment` must be awaited. "
            "Write `async def ...:` and `return await flow.to_deployment(...)`."
        )
    return deployment


def _grade_nightly_sum(answer: Any) -> str:
    record = _apply_and_read(_deployment_from(answer), "add-up/ex08-nightly-sum")
    expect(len(record.schedules) == 1, f"the server recorded {len(record.schedules)} schedules; expected one cron")
    schedule = record.schedules[0]
    timezone = _timezone(schedule.schedule)
    times = fire_times(schedule.schedule)
    expected = fire_times(CronSchedule(cron="30 2 * * *", timezone=timezone))
    expect(
        times == expected,
        f"the server recorded {_describe(schedule.schedule)}, which fires {_first(times, timezone)}; expected every "
        f"day at 02:30: {_first(expected, timezone)}. Cron fields are minute, hour, day of month, month, weekday.",
    )
    parameters = {**record.parameters, **schedule.parameters}
    expect(
        parameters == {"numbers": [1, 2, 3]},
        f"the nightly runs would get parameters {parameters!r}; expected {{'numbers': [1, 2, 3]}} "
        "(parameters= on to_deployment, or on the Cron)",
    )
    _expect_tag(record.tags, "the server recorded the tags")
    return (
        f"The server recorded 'add-up/ex08-nightly-sum' firing daily at 02:30 {timezone} "
        f"({_first(times, timezone, 2)}) with numbers=[1, 2, 3] and the tag 'course'."
    )


def _grade_greetings(answer: Any) -> str:
    record = _apply_and_read(_deployment_from(answer), "say-hello/ex08-greetings")
    schedules = record.schedules
    expect(len(schedules) == 2, f"the server recorded {len(schedules)} schedule(s); expected 2")
    weekdays = fire_times(CronSchedule(cron="0 9 * * 1-5", timezone=PARIS))
    times = {id(s): fire_times(s.schedule) for s in schedules}
    team = next((s for s in schedules if times[id(s)] == weekdays), None)
    if team is None:
        for s in schedules:
            timezone = _timezone(s.schedule)
            local = fire_times(CronSchedule(cron="0 9 * * 1-5", timezone=timezone))
            expect(
                times[id(s)] != local,
                f"{_describe(s.schedule)} fires on weekdays at 09:00 in {timezone}; expected 09:00 Paris time: "
                "give it timezone='Europe/Paris'",
            )
        seen = "; ".join(f"{_describe(s.schedule)} fires {_first(times[id(s)], PARIS)}" for s in schedules)
        raise CheckFailed(f"neither schedule fires on weekdays at 09:00 Paris time ({_first(weekdays, PARIS)}): {seen}")
    other = next(s for s in schedules if s is not team)
    gaps = _gaps(times[id(other)])
    expect(
        gaps == [timedelta(hours=6)],
        f"the second schedule, {_describe(other.schedule)}, fires {_first(times[id(other)], 'UTC')} (gaps "
        f"{', '.join(map(str, gaps)) or 'none'}); expected every 6 hours",
    )
    for schedule, name in ((team, "team"), (other, "on-call")):
        parameters = {**record.parameters, **schedule.parameters}
        expect(
            parameters == {"name": name},
            f"the runs of {_describe(schedule.schedule)} would get parameters {parameters!r}; expected "
            f"{{'name': {name!r}}} (each schedule takes parameters=)",
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


def _close_coroutines(error: BaseException) -> None:
    """Close the never-awaited coroutines left in the learner's frames, so Python does not warn about them later."""
    frame = error.__traceback__
    while frame is not None:
        for value in frame.tb_frame.f_locals.values():
            if inspect.iscoroutine(value):
                value.close()
        frame = frame.tb_next


def _trigger(answer: Any, numbers: list[int]) -> Any:
    """Call the learner's function as a notebook would (async on an event loop, sync right here); return its value."""
    try:
        value = call_in_thread(answer, numbers) if inspect.iscoroutinefunction(answer) else answer(numbers)
    except ObjectNotFound:
        raise CheckFailed(
            f"run_deployment found no deployment by the name you gave; the check serves '{SUM_DEPLOYMENT}' "
            "(flow name, a slash, deployment name)"
        ) from None
    except PrefectHTTPStatusError as error:
        raise CheckFailed(f"the server refused to create the run: {_server_reason(error)}") from None
    except AttributeError as error:
        if "'coroutine' object" not in str(error):
            raise
        _close_coroutines(error)
        raise CheckFailed(
            f"your code used a coroutine as if it were a value ({error}): in a notebook run_deployment and "
            "state.result() return coroutines. Write `async def` and `await` them (or pass _sync=True)."
        ) from None
    if inspect.iscoroutine(value):
        value.close()
        raise CheckFailed(
            "your function returned a coroutine: write `async def sum_via_deployment(...)` and return "
            "`await flow_run.state.result()`"
        )
    return value


def _grade_sum_via_deployment(answer: Any) -> str:
    expect(callable(answer), f"your answer should be a function of numbers; got {short(answer)}")
    numbers = [4, 5, 6]
    with _served(DeploymentSpec("served_pipeline.py:add_up", "ex08-sum")):
        since = datetime.now(UTC) - timedelta(seconds=1)
        value = _trigger(answer, numbers)
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
        type(value).__name__ != "FlowRun",
        f"your function returned the FlowRun itself (run '{getattr(value, 'name', '?')}'); expected its result, 15: "
        "return `await flow_run.state.result()`",
    )
    expect(value == 15, f"your function returned {short(value)}; expected 15, the sum the run computed")
    return f"Flow run '{run.name}' of {SUM_DEPLOYMENT} ran with numbers={numbers} and you read back its result 15."


def _checked_spec(answer: Any) -> tuple[DeploymentSpec, str]:
    """Return the learner's DeploymentSpec and its deployment's full name, once its parts are known to be valid."""
    expect(callable(answer), f"your answer should be a function that returns a DeploymentSpec; got {short(answer)}")
    example = "DeploymentSpec('served_pipeline.py:say_hello', 'ex08-hello-default', {...})"
    spec = require_type(call_answer(answer), DeploymentSpec, "your function's value", example)
    require_type(spec.entrypoint, str, "the entrypoint", "'served_pipeline.py:say_hello'")
    file, _, function = spec.entrypoint.partition(":")
    expect(
        file.endswith(".py") and (flows_dir() / file).is_file() and function.isidentifier(),
        f"the entrypoint {spec.entrypoint!r} names no flow file under flows/; write 'file.py:function' with the file's "
        "path inside flows/, here 'served_pipeline.py:say_hello'",
    )
    try:
        flow = load_served_flow(function, file)
    except MissingFlowError:
        raise CheckFailed(f"flows/{file} has no flow called {function!r}; the greeting flow is say_hello") from None
    require_type(spec.name, str, "the deployment name", "'ex08-hello-default'")
    require_type(spec.options, dict, "the options", "{'parameters': {'name': 'class'}, 'tags': ['course']}")
    if "tags" in spec.options:
        require_type(spec.options["tags"], (list, tuple), "options['tags']", "['course']")
    if "parameters" in spec.options:
        require_type(spec.options["parameters"], dict, "options['parameters']", "{'name': 'class'}")
    full_name = f"{flow.name}/{spec.name}"
    expect(
        full_name == "say-hello/ex08-hello-default",
        f"the deployment would be '{full_name}'; expected 'say-hello/ex08-hello-default'",
    )
    try:  # build it here first, so a wrong option is reported from here and not from a serve process that dies
        deployment = flow.to_deployment(spec.name, **spec.options, _sync=True)
    except (TypeError, ValueError) as error:  # an unknown option, or a value of the wrong kind (pydantic)
        first_line = str(error).splitlines()[0] if str(error) else ""
        raise CheckFailed(f"to_deployment refused the options {short(spec.options)}: {first_line}") from None
    _apply_and_read(deployment, full_name)
    return spec, full_name


def _grade_hello_spec(answer: Any) -> str:
    from prefect.client.orchestration import get_client

    spec, full_name = _checked_spec(answer)
    with _served(spec):
        flow_run = run_deployment(full_name, timeout=120, poll_interval=0.5, _sync=True)
        with get_client(sync_client=True) as client:
            record = client.read_flow_run(flow_run.id)
    expect(
        record.parameters == {"name": "class"},
        f"a run triggered without parameters got {record.parameters!r}; "
        "give the deployment default parameters {'name': 'class'}",
    )
    expect(
        record.state_name == "Completed",
        f"the triggered run ended {record.state_name}: {record.state.message if record.state else 'no state'}",
    )
    _expect_tag(record.tags, "the run's tags are")
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
                "Cron fields are minute hour day-of-month month day-of-week: '30 2 * * *' is 02:30 every day. "
                "tags takes a list: tags=['course'].",
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
                "Each schedule takes `parameters={...}`; Cron takes `timezone=`; `paused=True` on to_deployment. "
                "Weekdays in cron: '1-5' or 'MON-FRI'.",
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
