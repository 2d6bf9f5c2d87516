"""Pair 13's checks grade what the server stored and what a fresh process used: near misses (the Prefect 2 blocks,
a secret in a Variable or in the logs, settings under the wrong names, an extra logger left at WARNING) are rejected
with a message naming what arrived, and right answers written otherwise pass. Every answer is graded twice with the
same verdict, and no message carries the token or a traceback.
"""

import os
from pathlib import Path

import httpx
import pytest
import yaml
from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.blocks.core import Block
from prefect.blocks.system import Secret
from prefect.variables import Variable
from pydantic import SecretStr

from lessons_src.exercises import exercises
from lessons_src.exercises.e13_configuration_and_observability import clean_up
from lessons_src.pairs.p13_configuration_and_observability import write_logging_config

EX = exercises("13")
FILTER = "lessons_src.pairs.p13_configuration_and_observability.OnlyRequestsTo"


@pytest.fixture(scope="module", autouse=True)
def demo_api_and_clean_up():
    """Start the demo API the checks call; delete every ex13-... object the checks and answers made afterwards."""
    from lessons_src import setup
    from lessons_src.demo_api import start_demo_api

    setup(quiet=True)
    start_demo_api()
    yield
    setup(quiet=True)
    clean_up()
    assert clean_up() == []


# ---- exercise 1: wrong answers ----


async def batch_as_text():
    await Variable.set("ex13-batch-size", "50", overwrite=True)
    await Secret(value=os.environ["EX13_API_TOKEN"]).save("ex13-api-token", overwrite=True)


async def token_in_a_variable():
    await Variable.set("ex13-batch-size", 50, overwrite=True)
    await Variable.set("ex13-api-token", os.environ["EX13_API_TOKEN"], overwrite=True)


async def nothing_awaited():
    Variable.set("ex13-batch-size", 50, overwrite=True)  # a coroutine, never awaited: nothing is stored
    Secret(value=os.environ["EX13_API_TOKEN"]).save("ex13-api-token", overwrite=True)


async def prefect_2_string_block():
    from prefect.blocks.system import String  # Prefect 2

    await String(value="50").save("ex13-batch-size", overwrite=True)


async def prefect_2_json_block():
    import prefect.blocks.system

    await prefect.blocks.system.JSON(value={"batch_size": 50}).save("ex13-batch-size", overwrite=True)


async def secret_name_with_underscores():
    await Variable.set("ex13-batch-size", 50, overwrite=True)
    await Secret(value=os.environ["EX13_API_TOKEN"]).save("ex13_api_token", overwrite=True)


async def secret_of_another_value():
    await Variable.set("ex13-batch-size", 50, overwrite=True)
    await Secret(value="EX13_API_TOKEN").save("ex13-api-token", overwrite=True)


# ---- exercise 2: wrong answers ----


class PlainConnection(Block):
    _block_type_slug = "ex13-api-connection"
    base_url: str
    token: str  # not secret


class UnslugConnection(Block):
    base_url: str
    token: SecretStr


class SecretConnection(Block):
    _block_type_slug = "ex13-api-connection"
    base_url: str
    token: SecretStr


async def connection_with_a_plain_token(base_url: str):
    await PlainConnection(base_url=base_url, token=os.environ["EX13_API_TOKEN"]).save("ex13-demo-api", overwrite=True)


async def connection_without_a_slug(base_url: str):
    await UnslugConnection(base_url=base_url, token=os.environ["EX13_API_TOKEN"]).save("ex13-demo-api", overwrite=True)


async def connection_not_awaited(base_url: str):
    SecretConnection(base_url=base_url, token=os.environ["EX13_API_TOKEN"]).save("ex13-demo-api", overwrite=True)


async def connection_to_a_fixed_address(base_url: str):
    connection = SecretConnection(base_url="http://localhost:8000", token=os.environ["EX13_API_TOKEN"])
    await connection.save("ex13-demo-api", overwrite=True)


async def connection_in_a_secret_block(base_url: str):
    value = {"base_url": base_url, "token": os.environ["EX13_API_TOKEN"]}
    await Secret(value=value).save("ex13-demo-api", overwrite=True)


# ---- exercise 3: wrong answers ----


@flow
async def logs_the_token(hook_url: str) -> int:
    token = (await Secret.load("ex13-service-token")).get()
    get_run_logger().info("calling with token %s", token)
    async with httpx.AsyncClient() as client:
        response = await client.post(hook_url, headers={"Authorization": f"Bearer {token}"})
    get_run_logger().info("answered %s", response.status_code)
    return response.status_code


@flow(log_prints=True)
def prints_the_token(hook_url: str) -> int:
    token = Secret.load("ex13-service-token").get()
    print("token:", token)
    response = httpx.post(hook_url, headers={"Authorization": f"Bearer {token}"})
    get_run_logger().info("answered %s", response.status_code)
    return response.status_code


@flow
async def sends_the_hidden_form(hook_url: str) -> int:
    block = await Secret.load("ex13-service-token")
    async with httpx.AsyncClient() as client:
        response = await client.post(hook_url, headers={"Authorization": f"Bearer {block.value}"})
    get_run_logger().info("answered %s", response.status_code)
    return response.status_code


@flow
async def reads_a_variable(hook_url: str) -> int:
    token = await Variable.get("ex13-service-token")
    async with httpx.AsyncClient() as client:
        response = await client.post(hook_url, headers={"Authorization": f"Bearer {token}"})
    get_run_logger().info("answered %s", response.status_code)
    return response.status_code


async def not_a_flow(hook_url: str) -> int:
    return 200


@flow
async def forgets_the_status(hook_url: str) -> int:
    token = (await Secret.load("ex13-service-token")).get()
    async with httpx.AsyncClient() as client:
        response = await client.post(hook_url, headers={"Authorization": f"Bearer {token}"})
    return response.status_code


@flow
async def sends_no_header(hook_url: str) -> int:
    async with httpx.AsyncClient() as client:
        response = await client.post(hook_url, json={"token": "(not here)"})
    get_run_logger().info("answered %s", response.status_code)
    return response.status_code


# ---- exercise 4: wrong answers ----


async def _orders(order_ids: list[int], base_url: str) -> list[dict]:
    async with httpx.AsyncClient(base_url=base_url) as client:
        return [(await client.get(f"/orders/{order_id}")).json() for order_id in order_ids]


@flow
async def key_with_underscores(order_ids: list[int], base_url: str) -> float:
    orders = await _orders(order_ids, base_url)
    await create_table_artifact(orders, key="ex13_orders")
    return 0.0


@flow
async def table_without_a_key(order_ids: list[int], base_url: str) -> float:
    orders = await _orders(order_ids, base_url)
    await create_table_artifact([{k: o[k] for k in ("id", "customer", "amount")} for o in orders])
    total = sum(o["amount"] for o in orders)
    await create_markdown_artifact(f"{total:.2f}", key="ex13-orders-total")
    return total


@flow
async def rows_without_names(order_ids: list[int], base_url: str) -> float:
    orders = await _orders(order_ids, base_url)
    await create_table_artifact([[o["id"], o["customer"], o["amount"]] for o in orders], key="ex13-orders")
    return 0.0


@flow
async def total_rounded_to_one_decimal(order_ids: list[int], base_url: str) -> float:
    orders = await _orders(order_ids, base_url)
    await create_table_artifact([{k: o[k] for k in ("id", "customer", "amount")} for o in orders], key="ex13-orders")
    total = sum(o["amount"] for o in orders)
    await create_markdown_artifact(f"Total: {total:.1f}", key="ex13-orders-total")
    return total


@flow
async def the_first_order_only(order_ids: list[int], base_url: str) -> float:
    orders = await _orders(order_ids[:1], base_url)
    await create_table_artifact([{k: o[k] for k in ("id", "customer", "amount")} for o in orders], key="ex13-orders")
    await create_markdown_artifact(f"{orders[0]['amount']:.2f}", key="ex13-orders-total")
    return orders[0]["amount"]


# ---- exercise 5: wrong answers ----

RIGHT_ENV = "PREFECT_LOGGING_LEVEL=WARNING\n"


def toml_with_variable_names():
    return {
        "prefect.toml": "PREFECT_TASKS_DEFAULT_RETRIES = 2\nPREFECT_TASKS_DEFAULT_RETRY_DELAY_SECONDS = 10\n",
        ".env": RIGHT_ENV,
    }


def toml_with_the_pyproject_table():
    return {
        "prefect.toml": "[tool.prefect.tasks]\ndefault_retries = 2\ndefault_retry_delay_seconds = 10\n",
        ".env": RIGHT_ENV,
    }


def everything_in_dotenv():
    return {".env": "PREFECT_TASKS_DEFAULT_RETRIES=2\nPREFECT_TASKS_DEFAULT_RETRY_DELAY_SECONDS=10\n" + RIGHT_ENV}


def dotenv_without_the_prefix():
    return {
        "prefect.toml": "[tasks]\ndefault_retries = 2\ndefault_retry_delay_seconds = 10\n",
        ".env": "LOGGING_LEVEL=WARNING\n",
    }


def invalid_toml():
    return {"prefect.toml": "[tasks\ndefault_retries = 2\n", ".env": RIGHT_ENV}


def a_profiles_file_as_in_prefect_2():
    return {"profiles.toml": '[profiles.default]\nPREFECT_TASKS_DEFAULT_RETRIES = "2"\n', ".env": RIGHT_ENV}


# ---- exercise 6: wrong answers ----


def extra_loggers_only(folder: Path, demo_api_url: str) -> dict[str, str]:
    return {"PREFECT_LOGGING_EXTRA_LOGGERS": "httpx"}


def level_without_extra_loggers(folder: Path, demo_api_url: str) -> dict[str, str]:
    config = write_logging_config(folder / "logging.yml", {"httpx": {"level": "INFO"}})
    return {"PREFECT_LOGGING_CONFIG_PATH": str(config)}


def level_without_a_filter(folder: Path, demo_api_url: str) -> dict[str, str]:
    config = write_logging_config(folder / "logging.yml", {"httpx": {"level": "INFO"}})
    return {"PREFECT_LOGGING_EXTRA_LOGGERS": "httpx", "PREFECT_LOGGING_CONFIG_PATH": str(config)}


def a_config_file_never_written(folder: Path, demo_api_url: str) -> dict[str, str]:
    return {"PREFECT_LOGGING_EXTRA_LOGGERS": "httpx", "PREFECT_LOGGING_CONFIG_PATH": str(folder / "logging.yml")}


def loggers_as_a_list(folder: Path, demo_api_url: str) -> dict[str, str]:
    return {"PREFECT_LOGGING_EXTRA_LOGGERS": ["httpx"]}


@pytest.mark.parametrize(
    ("number", "wrong", "expected_message"),
    [
        (1, batch_as_text, "holds '50' (str); expected the number 50"),
        (1, token_in_a_variable, "'ex13-api-token' is a Variable"),
        (1, nothing_awaited, "In an `async def`, Variable.set and Block.save return coroutines"),
        (1, prefect_2_string_block, "The String block of Prefect 2 is gone"),
        (1, prefect_2_json_block, "The JSON block of Prefect 2 is gone"),
        (1, secret_name_with_underscores, "Block document name must only contain lowercase letters"),
        (1, secret_of_another_value, "holds another value than the token"),
        (2, connection_with_a_plain_token, "a plain read of the block shows the token itself"),
        (2, connection_without_a_slug, "of type ['unslugconnection']; expected the type 'ex13-api-connection'"),
        (2, connection_not_awaited, "the server has no block named 'ex13-demo-api'"),
        (2, connection_to_a_fixed_address, "base_url is 'http://localhost:8000'"),
        (2, connection_in_a_secret_block, "of type ['secret']"),
        (3, logs_the_token, "log line(s) stored for the run contain the token, e.g. 'calling with token <the token>'"),
        (3, prints_the_token, "contain the token, e.g. 'token: <the token>'"),
        (3, sends_the_hidden_form, "received Authorization 'Bearer **********'"),
        (3, reads_a_variable, "received Authorization 'Bearer None'"),
        (3, not_a_flow, "should be a Prefect flow"),
        (3, forgets_the_status, "mentions the status the service answered (200)"),
        (3, sends_no_header, "carried no Authorization header"),
        (4, key_with_underscores, "Artifact key must only contain lowercase letters, numbers, and dashes"),
        (4, table_without_a_key, "expected a table keyed 'ex13-orders'"),
        (4, rows_without_names, "the table's rows have no column names"),
        (4, total_rounded_to_one_decimal, "expected it to show the total 653.96"),
        (4, the_first_order_only, "expected orders [3, 1, 4]"),
        (5, toml_with_variable_names, "not PREFECT_TASKS_DEFAULT_RETRIES (prefect config view even lists those"),
        (5, toml_with_the_pyproject_table, "[tool.prefect...] tables belong in pyproject.toml"),
        (5, everything_in_dotenv, "the retry settings came from .env file; expected prefect.toml"),
        (5, dotenv_without_the_prefix, "uses logging.level INFO; expected WARNING"),
        (5, invalid_toml, "Prefect could not start in your project folder: Failed to load Prefect settings"),
        (5, a_profiles_file_as_in_prefect_2, "tasks.default_retries = 0"),
        (6, extra_loggers_only, "its level is still WARNING"),
        (6, level_without_extra_loggers, "httpx logged its requests (the process's console shows them)"),
        (6, level_without_a_filter, "of Prefect's own requests to its server"),
        (6, a_config_file_never_written, "is not a file, so Prefect silently used its own logging configuration"),
        (6, loggers_as_a_list, "environment variables are text"),
    ],
    ids=lambda value: getattr(value, "__name__", str(value))[:30],
)
def test_wrong_answers_are_rejected_twice_alike(graded, number, wrong, expected_message):
    outcome = graded(EX, number, wrong)
    assert outcome.status == "failed" and expected_message in outcome.message, outcome
    token = os.environ.get("EX13_API_TOKEN", "")
    assert not token or token not in outcome.message, "a check's message shows the credential"


# ---- right answers, written differently from the reference ----


def configuration_synchronously():
    Variable.set("ex13-batch-size", 50, overwrite=True, tags=["nightly"], _sync=True)
    Secret(value=os.environ["EX13_API_TOKEN"]).save("ex13-api-token", overwrite=True, _sync=True)


async def configuration_with_the_async_names():
    await Variable.aset("ex13-batch-size", 50, overwrite=True)
    await Secret(value=os.environ["EX13_API_TOKEN"]).asave("ex13-api-token", overwrite=True)


class NamedConnection(Block):
    """A block type named, not slugged: its slug comes from the name."""

    _block_type_name = "ex13 API connection"
    base_url: str
    token: SecretStr
    timeout_s: float = 10.0


def connection_synchronously(base_url: str):
    NamedConnection(base_url=base_url, token=SecretStr(os.environ["EX13_API_TOKEN"])).save(
        "ex13-demo-api", overwrite=True, _sync=True
    )


@task
def post_with(hook_url: str, token: str) -> int:
    return httpx.post(hook_url, headers={"authorization": "Bearer " + token}, timeout=10).status_code


@flow
def token_in_a_task(hook_url: str) -> int:
    secret = Secret.load("ex13-service-token")
    status = post_with(hook_url, secret.get())
    get_run_logger().info("the webhook said %d (token of %d characters)", status, len(secret.get()))
    return status


@flow
def report_with_columns(order_ids: list[int], base_url: str) -> float:
    orders = [httpx.get(f"{base_url}/orders/{order_id}").json() for order_id in reversed(order_ids)]
    columns = {name: [o[name] for o in orders] for name in ("id", "customer", "amount", "currency")}
    create_table_artifact(columns, key="ex13-orders", description="orders")
    total = round(sum(columns["amount"]), 2)
    create_markdown_artifact(f"# Orders\n\n| total |\n|---|\n| {total:,.2f} |", key="ex13-orders-total")
    return total


def dotted_keys_and_a_quoted_level():
    return {
        "prefect.toml": "tasks.default_retries = 2\ntasks.default_retry_delay_seconds = 10.0\n",
        ".env": "# mine, not committed\nPREFECT_LOGGING_LEVEL='warning'\n",
    }


def prefect_2_setting_name_and_a_path_filter(folder: Path, demo_api_url: str) -> dict[str, str]:
    config = yaml.safe_load(write_logging_config(folder / "base.yml", {}).read_text())
    config["filters"] = {"orders": {"()": FILTER, "prefix": "/orders/"}}
    config["loggers"]["httpx"] = {"level": "INFO", "filters": ["orders"]}
    (folder / "mine.yaml").write_text(yaml.safe_dump(config))
    return {"PREFECT_LOGGING_EXTRA_LOGGERS": " httpx ", "PREFECT_LOGGING_SETTINGS_PATH": str(folder / "mine.yaml")}


@pytest.mark.parametrize(
    ("number", "right"),
    [
        (1, configuration_synchronously),
        (1, configuration_with_the_async_names),
        (2, connection_synchronously),
        (3, token_in_a_task),
        (4, report_with_columns),
        (5, dotted_keys_and_a_quoted_level),
        (6, prefect_2_setting_name_and_a_path_filter),
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


def test_a_stopped_demo_api_is_the_courses_problem_not_the_learners(graded):
    from lessons_src.demo_api import start_demo_api, stop_demo_api
    from lessons_src.exercises.e13_configuration_and_observability import call_with_token

    stop_demo_api()
    try:
        outcome = graded(EX, 3, call_with_token)
    finally:
        start_demo_api()
    assert outcome.status == "course-problem" and "start_demo_api" in outcome.message, outcome
