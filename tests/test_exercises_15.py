"""Pair 15's checks grade what was recorded: the database file the server's own code opened, the Variable a fresh
client created on the password-protected exercise server, the requests the proxy forwarded, and the worker the Dask
scheduler says ran each task. Near misses (Prefect 2's `PREFECT_ORION_*` names, the server's setting on a client,
Cloud's key, a sync driver, a relative path, the proxy without the prefix, a temporary cluster, the hostname) are
rejected with a message naming what arrived; right answers written otherwise pass. Each is graded twice alike.
"""

import socket
from pathlib import Path

import pytest
from distributed import get_worker
from prefect import flow, task
from prefect.task_runners import ThreadPoolTaskRunner
from prefect_dask import DaskTaskRunner

from lessons_src.exercises import e15_self_hosting_and_scaling_out as e15
from lessons_src.exercises import exercises

EX = exercises("15")


@pytest.fixture(scope="module", autouse=True)
def exercise_services():
    """Start the exercise server, proxy and Dask cluster once for the module; stop them and check they are gone."""
    from lessons_src import setup

    setup(quiet=True)
    started = e15.start_services()
    yield started
    e15.clean_up()
    assert not any(process.running for process in started.services.processes)
    assert e15.clean_up() == []


# ---- exercise 1 ----


def prefect_2_name(folder: Path) -> dict[str, str]:
    return {"PREFECT_ORION_DATABASE_CONNECTION_URL": f"sqlite+aiosqlite:///{folder}/team.db"}


def a_sync_driver(folder: Path) -> dict[str, str]:
    return {"PREFECT_API_DATABASE_CONNECTION_URL": f"sqlite:///{folder}/team.db"}


def a_relative_path(folder: Path) -> dict[str, str]:
    return {"PREFECT_API_DATABASE_CONNECTION_URL": "sqlite+aiosqlite:///team.db"}


def only_the_home(folder: Path) -> dict[str, str]:
    return {"PREFECT_HOME": str(folder)}


def a_made_up_name(folder: Path) -> dict[str, str]:
    return {"PREFECT_DATABASE_URL": f"sqlite+aiosqlite:///{folder}/team.db"}


def the_alias_and_a_posix_path(folder: Path) -> dict[str, str]:
    return {"PREFECT_SERVER_DATABASE_CONNECTION_URL": "sqlite+aiosqlite:///" + (folder / "team.db").as_posix()}


# ---- exercise 2 ----


def the_servers_setting(api_url: str, auth_string: str) -> dict[str, str]:
    return {"PREFECT_API_URL": api_url, "PREFECT_SERVER_API_AUTH_STRING": auth_string}


def clouds_key(api_url: str, auth_string: str) -> dict[str, str]:
    return {"PREFECT_API_URL": api_url, "PREFECT_API_KEY": auth_string}


def encoded_by_hand(api_url: str, auth_string: str) -> dict[str, str]:
    import base64

    return {"PREFECT_API_URL": api_url, "PREFECT_API_AUTH_STRING": base64.b64encode(auth_string.encode()).decode()}


def orion_url(api_url: str, auth_string: str) -> dict[str, str]:
    return {"PREFECT_ORION_API_URL": api_url, "PREFECT_API_AUTH_STRING": auth_string}


def no_api_url(api_url: str, auth_string: str) -> dict[str, str]:
    return {"PREFECT_API_AUTH_STRING": auth_string}


def both_settings_and_a_timeout(api_url: str, auth_string: str) -> dict[str, str]:
    return {
        "PREFECT_API_URL": api_url.rstrip("/"),
        "PREFECT_API_AUTH_STRING": auth_string,
        "PREFECT_SERVER_API_AUTH_STRING": auth_string,
        "PREFECT_API_REQUEST_TIMEOUT": "30",
    }


# ---- exercise 3 ----


def without_the_prefix(proxy_url: str, auth_string: str) -> dict[str, str]:
    return {"PREFECT_API_URL": f"{proxy_url}/api", "PREFECT_API_AUTH_STRING": auth_string}


def the_ui_address(proxy_url: str, auth_string: str) -> dict[str, str]:
    return {"PREFECT_API_URL": f"{proxy_url}/ex15", "PREFECT_API_AUTH_STRING": auth_string}


def around_the_proxy(proxy_url: str, auth_string: str) -> dict[str, str]:
    return {"PREFECT_API_URL": e15.start_services().server.api_url, "PREFECT_API_AUTH_STRING": auth_string}


def the_ui_setting(proxy_url: str, auth_string: str) -> dict[str, str]:
    return {"PREFECT_UI_API_URL": f"{proxy_url}/ex15/api", "PREFECT_API_AUTH_STRING": auth_string}


def through_the_proxy_with_a_slash(proxy_url: str, auth_string: str) -> dict[str, str]:
    return dict(PREFECT_API_URL=proxy_url + "/ex15/api/", PREFECT_API_AUTH_STRING=auth_string)


# ---- exercise 4 ----


@task
def hostname(job: int) -> str:
    return socket.gethostname()


@task
def name_of_my_worker(job: int) -> str:
    return get_worker().name


def names_from_the_hostname(address: str, jobs: int) -> list[str]:
    @flow(task_runner=DaskTaskRunner(address=address))
    def spread(jobs: int) -> list[str]:
        return [future.result() for future in hostname.map(range(jobs))]

    return spread(jobs)


def threads_not_dask(address: str, jobs: int) -> list[str]:
    @flow(task_runner=ThreadPoolTaskRunner())
    def spread(jobs: int) -> list[str]:
        return [future.result() for future in name_of_my_worker.map(range(jobs))]

    return spread(jobs)


def a_prefect_2_import(address: str, jobs: int) -> list[str]:
    from prefect.task_runners import DaskTaskRunner as Prefect2Runner  # gone in Prefect 3: prefect_dask has it

    return Prefect2Runner(address=address)


def a_temporary_cluster(address: str, jobs: int) -> list[str]:
    runner = DaskTaskRunner(cluster_kwargs={"n_workers": 1, "processes": False, "dashboard_address": None})

    @flow(task_runner=runner)
    def spread(jobs: int) -> list[str]:
        return [future.result() for future in name_of_my_worker.map(range(jobs))]

    return spread(jobs)


@flow
def submitted_one_by_one(jobs: int) -> list[str]:
    return [name_of_my_worker.submit(job).result() for job in range(jobs)]


def with_options_and_submit(address: str, jobs: int) -> list[str]:
    return submitted_one_by_one.with_options(task_runner=DaskTaskRunner(address=address))(jobs)


@pytest.mark.parametrize(
    ("number", "wrong", "expected_message"),
    [
        (1, prefect_2_name, "PREFECT_ORION_* are Prefect 2's names"),
        (1, a_sync_driver, "needs an async driver: sqlite+aiosqlite"),
        (1, a_relative_path, "a relative path counts from the process's current folder"),
        (1, only_the_home, "prefect.db in PREFECT_HOME is the default"),
        (1, a_made_up_name, "PREFECT_DATABASE_URL is not a setting of Prefect 3"),
        (2, the_servers_setting, "PREFECT_SERVER_API_AUTH_STRING is the server's setting"),
        (2, clouds_key, "PREFECT_API_KEY is Prefect Cloud's key"),
        (2, encoded_by_hand, "give 'user:password' exactly as you were given it"),
        (2, orion_url, "PREFECT_ORION_* are Prefect 2's names"),
        (2, no_api_url, "your environment has no PREFECT_API_URL"),
        (3, without_the_prefix, "routes only /ex15/...: put the prefix in PREFECT_API_URL"),
        (3, the_ui_address, "/ex15 is the UI; the API is at /ex15/api"),
        (3, around_the_proxy, "the proxy received none of its requests: it went to the server directly"),
        (3, the_ui_setting, "your environment has no PREFECT_API_URL"),
        (4, names_from_the_hostname, "Return each task's Dask worker name"),
        (4, threads_not_dask, "your code raised ValueError"),
        (4, a_prefect_2_import, "your code raised ImportError"),
        (4, a_temporary_cluster, "your tasks ran elsewhere"),
    ],
    ids=lambda value: getattr(value, "__name__", str(value))[:30],
)
def test_wrong_answers_are_rejected_twice_alike(graded, number, wrong, expected_message):
    outcome = graded(EX, number, wrong)
    assert outcome.status == "failed" and expected_message in outcome.message, outcome


@pytest.mark.parametrize(
    ("number", "right"),
    [
        (1, the_alias_and_a_posix_path),
        (2, both_settings_and_a_timeout),
        (3, through_the_proxy_with_a_slash),
        (4, with_options_and_submit),
    ],
    ids=lambda value: getattr(value, "__name__", str(value))[:30],
)
def test_right_answers_written_differently_pass_twice(graded, number, right):
    outcome = graded(EX, number, right)
    assert outcome.status == "passed", outcome


def test_every_reference_solution_passes(graded):
    for exercise in EX.exercises:
        outcome = graded(EX, exercise.number, exercise.answer())
        assert outcome.status == "passed", (exercise.number, outcome)


def test_an_unsolved_answer_is_graded_unsolved_without_starting_anything(graded):
    from lessons_src.exercises import TODO

    def todo(folder: Path) -> dict[str, str]:
        return TODO

    assert graded(EX, 1, todo).status == "unsolved"


def test_exercise_services_that_cannot_start_are_the_courses_problem(graded, monkeypatch):
    def broken() -> None:
        raise RuntimeError("The Prefect server exited (code 1)")

    monkeypatch.setattr(e15.ExerciseServices, "wait_until_ready", lambda self: broken())
    outcome = graded(EX, 2, e15.client_env)
    assert outcome.status == "course-problem" and "the exercise services did not start" in outcome.message, outcome
