"""Pair 08's checks reject near misses with a message naming what arrived, and accept right answers written otherwise.

Right answers in other forms pass: a cron written `MON-FRI` or `1-5`, `02` or `2`, an RRule, parameters on the
deployment or on the schedule, an interval in seconds or as a timedelta, sync or async functions. Every answer is
graded twice with the same verdict (deployments and runs the first grading left must not decide the second), and no
serve process stays behind.
"""

from datetime import timedelta

import pytest
from prefect.client.schemas.schedules import CronSchedule
from prefect.deployments import run_deployment
from prefect.schedules import Cron, Interval, RRule

from lessons_src.exercises import exercises
from lessons_src.exercises.e08_deployments_and_schedules import add_up, clean_up, say_hello
from lessons_src.schedule_times import fire_times
from lessons_src.serving import DeploymentSpec, running_serve_processes

EX = exercises("08")


@pytest.fixture(scope="module", autouse=True)
def stop_serving_after_the_module():
    """Stop every serve process the checks started, then prove none is left."""
    from lessons_src import setup

    setup(quiet=True)  # the clean-up talks to the course server, also when only tests that need none were selected
    yield
    assert clean_up() == 0
    assert running_serve_processes() == []


# ---- wrong answers ----


def nightly_at_two_thirty_pm():
    return add_up.to_deployment(
        "ex08-nightly-sum", cron="30 14 * * *", parameters={"numbers": [1, 2, 3]}, tags=["course"]
    )


def nightly_on_weekdays_only():
    return add_up.to_deployment(
        "ex08-nightly-sum", cron="30 2 * * 1-5", parameters={"numbers": [1, 2, 3]}, tags=["course"]
    )


def nightly_every_24_hours():
    return add_up.to_deployment(
        "ex08-nightly-sum", interval=timedelta(days=1), parameters={"numbers": [1, 2, 3]}, tags=["course"]
    )


def nightly_without_parameters():
    return add_up.to_deployment("ex08-nightly-sum", cron="30 2 * * *", tags=["course"])


def nightly_numbers_as_text():
    return add_up.to_deployment("ex08-nightly-sum", cron="30 2 * * *", parameters={"numbers": "1,2,3"}, tags=["course"])


def nightly_tag_as_a_string():
    return add_up.to_deployment("ex08-nightly-sum", cron="30 2 * * *", parameters={"numbers": [1, 2, 3]}, tags="course")


def nightly_not_awaited():
    return add_up.to_deployment(  # what a plain `def` gets in a notebook: a coroutine
        "ex08-nightly-sum", cron="30 2 * * *", parameters={"numbers": [1, 2, 3]}, tags=["course"], _sync=False
    )


def nightly_wrong_name():
    return add_up.to_deployment("nightly", cron="30 2 * * *", parameters={"numbers": [1, 2, 3]}, tags=["course"])


def greetings_not_paused():
    return say_hello.to_deployment(
        "ex08-greetings",
        schedules=[
            Cron("0 9 * * 1-5", timezone="Europe/Paris", parameters={"name": "team"}),
            Interval(timedelta(hours=6), parameters={"name": "on-call"}),
        ],
    )


def greetings_in_utc():
    return say_hello.to_deployment(
        "ex08-greetings",
        schedules=[
            Cron("0 9 * * 1-5", parameters={"name": "team"}),
            Interval(timedelta(hours=6), parameters={"name": "on-call"}),
        ],
        paused=True,
    )


def greetings_sunday_to_thursday():
    return say_hello.to_deployment(
        "ex08-greetings",
        schedules=[
            Cron("0 9 * * 0-4", timezone="Europe/Paris", parameters={"name": "team"}),
            Interval(timedelta(hours=6), parameters={"name": "on-call"}),
        ],
        paused=True,
    )


def greetings_every_6_minutes():
    return say_hello.to_deployment(
        "ex08-greetings",
        schedules=[
            Cron("0 9 * * 1-5", timezone="Europe/Paris", parameters={"name": "team"}),
            Interval(360, parameters={"name": "on-call"}),
        ],
        paused=True,
    )


def greetings_same_parameters_for_both():
    return say_hello.to_deployment(
        "ex08-greetings",
        parameters={"name": "team"},
        schedules=[Cron("0 9 * * 1-5", timezone="Europe/Paris"), Interval(timedelta(hours=6))],
        paused=True,
    )


def greetings_one_schedule():
    return say_hello.to_deployment("ex08-greetings", cron="0 9 * * 1-5", parameters={"name": "team"}, paused=True)


def sum_without_a_deployment(numbers: list[int]) -> int:
    return sum(numbers)


async def sum_returns_the_flow_run(numbers: list[int]):
    return await run_deployment("add-up/ex08-sum", parameters={"numbers": numbers}, poll_interval=0.5, timeout=120)


async def sum_without_parameters(numbers: list[int]) -> int:
    flow_run = await run_deployment("add-up/ex08-sum", poll_interval=0.5, timeout=120)
    return await flow_run.state.result()


async def sum_wrong_deployment_name(numbers: list[int]) -> int:
    flow_run = await run_deployment("add_up/ex08-sum", parameters={"numbers": numbers}, poll_interval=0.5)
    return await flow_run.state.result()


def sum_not_awaited(numbers: list[int]):
    # what a plain `def` gets in a notebook, where an event loop runs: run_deployment returns a coroutine
    flow_run = run_deployment("add-up/ex08-sum", parameters={"numbers": numbers}, _sync=False)
    return flow_run.state.result()


def spec_without_defaults():
    return DeploymentSpec("served_pipeline.py:say_hello", "ex08-hello-default", {"tags": ["course"]})


def spec_wrong_flow():
    return DeploymentSpec("served_pipeline.py:add_up", "ex08-hello-default", {"parameters": {"numbers": [1]}})


def spec_tag_as_a_string():
    return DeploymentSpec(
        "served_pipeline.py:say_hello", "ex08-hello-default", {"parameters": {"name": "class"}, "tags": "course"}
    )


def spec_unknown_option():
    options = {"default_parameters": {"name": "class"}, "tags": ["course"]}
    return DeploymentSpec("served_pipeline.py:say_hello", "ex08-hello-default", options)


def spec_module_entrypoint():
    return DeploymentSpec("served_pipeline:say_hello", "ex08-hello-default", {"parameters": {"name": "class"}})


def spec_name_as_a_list():
    options = {"parameters": {"name": ["class"]}, "tags": ["course"]}
    return DeploymentSpec("served_pipeline.py:say_hello", "ex08-hello-default", options)


def spec_path_from_the_repository():
    options = {"parameters": {"name": "class"}, "tags": ["course"]}
    return DeploymentSpec("flows/served_pipeline.py:say_hello", "ex08-hello-default", options)


def spec_as_a_tuple():
    return ("served_pipeline.py:say_hello", "ex08-hello-default", {"parameters": {"name": "class"}})


@pytest.mark.parametrize(
    ("number", "wrong", "expected_message"),
    [
        (1, nightly_at_two_thirty_pm, "expected every day at 02:30"),
        (1, nightly_on_weekdays_only, "fires Mon 03 Jan 02:30"),
        (1, nightly_every_24_hours, "IntervalSchedule(interval=1 day, 0:00:00"),
        (1, nightly_without_parameters, "would get parameters {}"),
        (1, nightly_numbers_as_text, "the server refused the deployment: Validation failed for field 'numbers'"),
        (1, nightly_tag_as_a_string, "the letters of 'course'"),
        (1, nightly_not_awaited, "returned a coroutine"),
        (1, nightly_wrong_name, "expected 'add-up/ex08-nightly-sum'"),
        (2, greetings_not_paused, "not paused"),
        (2, greetings_in_utc, "at 09:00 in UTC; expected 09:00 Paris time"),
        (2, greetings_sunday_to_thursday, "neither schedule fires on weekdays at 09:00 Paris time"),
        (2, greetings_every_6_minutes, "(gaps 0:06:00); expected every 6 hours"),
        (2, greetings_same_parameters_for_both, "would get parameters {'name': 'team'}; expected {'name': 'on-call'}"),
        (2, greetings_one_schedule, "recorded 1 schedule(s)"),
        (3, sum_without_a_deployment, "no run of 'add-up/ex08-sum' was created"),
        (3, sum_returns_the_flow_run, "returned the FlowRun itself"),
        (3, sum_without_parameters, "refused to create the run: Validation failed. Failure reason: 'numbers'"),
        (3, sum_wrong_deployment_name, "found no deployment by the name you gave"),
        (3, sum_not_awaited, "used a coroutine as if it were a value"),
        (4, spec_wrong_flow, "expected 'say-hello/ex08-hello-default'"),
        (4, spec_without_defaults, "got {}"),
        (4, spec_tag_as_a_string, "options['tags'] should be list or tuple, for example ['course']; got str"),
        (4, spec_unknown_option, "unexpected keyword argument 'default_parameters'"),
        (4, spec_module_entrypoint, "names no flow file under flows/"),
        (4, spec_name_as_a_list, "Failure reason: ['class'] is not of type 'string'"),
        (4, spec_as_a_tuple, "should be DeploymentSpec"),
        (4, spec_path_from_the_repository, "with the file's path inside flows/, here 'served_pipeline.py:say_hello'"),
    ],
    ids=lambda value: getattr(value, "__name__", str(value))[:30],
)
def test_wrong_answers_are_rejected_twice_alike(graded, number, wrong, expected_message):
    outcome = graded(EX, number, wrong)
    assert outcome.status == "failed" and expected_message in outcome.message, outcome


# ---- right answers, written differently from the reference ----


def nightly_with_a_leading_zero():
    return add_up.to_deployment(
        "ex08-nightly-sum", cron="30 02 * * *", parameters={"numbers": [1, 2, 3]}, tags=["course"], _sync=True
    )


async def nightly_parameters_on_the_schedule():
    schedule = Cron("30 2 */1 * 0-6", parameters={"numbers": [1, 2, 3]})
    return await add_up.ato_deployment("ex08-nightly-sum", schedules=[schedule], tags=("course", "nightly"))


async def greetings_by_day_names():
    return await say_hello.to_deployment(
        "ex08-greetings",
        schedules=[
            Cron("00 09 * * MON-FRI", timezone="Europe/Paris", parameters={"name": "team"}),
            Interval(21600, parameters={"name": "on-call"}),
        ],
        paused=True,
    )


async def greetings_rrule_and_deployment_default():
    return await say_hello.to_deployment(
        "ex08-greetings",
        parameters={"name": "team"},
        schedules=[
            Cron("0 */6 * * *", parameters={"name": "on-call"}),
            RRule("FREQ=WEEKLY;BYDAY=MO,TU,WE,TH,FR;BYHOUR=9;BYMINUTE=0;BYSECOND=0", timezone="Europe/Paris"),
        ],
        paused=True,
    )


def sum_synchronously(numbers: list[int]) -> int:
    flow_run = run_deployment(name="add-up/ex08-sum", parameters=dict(numbers=numbers), poll_interval=0.25, _sync=True)
    return flow_run.state.result(_sync=True)


async def spec_from_an_async_function():
    options = {"parameters": dict(name="class"), "tags": ("course", "ex08"), "interval": timedelta(hours=1)}
    return DeploymentSpec(entrypoint="served_pipeline.py:say_hello", name="ex08-hello-default", options=options)


@pytest.mark.parametrize(
    ("number", "right"),
    [
        (1, nightly_with_a_leading_zero),
        (1, nightly_parameters_on_the_schedule),
        (2, greetings_by_day_names),
        (2, greetings_rrule_and_deployment_default),
        (3, sum_synchronously),
        (4, spec_from_an_async_function),
    ],
    ids=lambda value: getattr(value, "__name__", str(value))[:30],
)
def test_right_answers_written_differently_pass_twice(graded, number, right):
    outcome = graded(EX, number, right)
    assert outcome.status == "passed", outcome


def test_schedules_are_compared_by_their_fire_times():
    weekdays = fire_times(CronSchedule(cron="0 9 * * 1-5", timezone="Europe/Paris"))
    assert weekdays == fire_times(CronSchedule(cron="0 9 * * MON-FRI", timezone="Europe/Paris"))
    assert weekdays != fire_times(CronSchedule(cron="0 9 * * 1-5"))  # 09:00 UTC is not 09:00 in Paris
    assert len(weekdays) == 260 and weekdays[0].isoformat() == "2028-01-03T08:00:00+00:00"
    summer = [t for t in weekdays if t.month == 7]
    assert summer[0].hour == 7  # CEST: 09:00 in Paris is 07:00 UTC
