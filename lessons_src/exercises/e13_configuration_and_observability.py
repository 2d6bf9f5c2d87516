"""Exercises for pair 13 (configuration, secrets and observability): graders read back what the server stored
(Variables, blocks and their schemas, artifacts, log lines, webhook calls the demo API received) and what a fresh
Prefect process really uses (its settings, the log lines its run stored)."""

from __future__ import annotations

import json
import os
import secrets
import time
from pathlib import Path
from typing import Any

import httpx
from prefect import flow, get_run_logger
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.blocks.core import Block
from prefect.blocks.system import Secret
from prefect.client.orchestration import get_client
from prefect.exceptions import ObjectNotFound
from prefect.utilities.dispatch import get_registry_for_type
from prefect.variables import Variable
from pydantic import SecretStr, ValidationError

from lessons_src.checks import (
    CheckFailed,
    CourseProblem,
    Exercise,
    ExerciseSet,
    call_answer,
    describe,
    expect,
    require_flow,
    require_signature,
    require_type,
    run_coroutine,
    run_flow,
    short,
)
from lessons_src.demo_api import get_demo_api
from lessons_src.demo_api.app import ORDERS_BY_ID
from lessons_src.pairs.p13_configuration_and_observability import (
    FreshProcessError,
    StoredLog,
    delete_artifacts,
    delete_blocks,
    delete_variables,
    fresh_env,
    lesson_folder,
    observed_flow_runs,
    run_artifacts,
    settings_seen,
    stored_logs,
    write_logging_config,
)
from lessons_src.pairs.p13_configuration_and_observability import (
    clean_up as clean_up_by_prefix,
)
from lessons_src.runs import flow_run_id_of

PREFIX = "ex13-"
TOKEN_VARIABLE = "EX13_API_TOKEN"  # the environment variable the credential of exercises 1 and 2 arrives in
BATCH_VARIABLE = "ex13-batch-size"
TOKEN_SECRET = "ex13-api-token"
CONNECTION_SLUG = "ex13-api-connection"
CONNECTION_NAME = "ex13-demo-api"
SERVICE_SECRET = "ex13-service-token"  # exercise 3: the check saves it, with a new value every time
HOOK = "ex13-token-check"
TABLE_KEY, TOTAL_KEY = "ex13-orders", "ex13-orders-total"
REPORT_ORDERS = [3, 1, 4]
RETRIES, RETRY_DELAY, LEVEL = 2, 10.0, "WARNING"
LOGGED_ORDERS = [11, 12, 13]


def api_token() -> str:
    """Return the credential of exercises 1 and 2 from EX13_API_TOKEN, putting a new one there if there is none."""
    return os.environ.setdefault(TOKEN_VARIABLE, secrets.token_urlsafe(12))


# ---- reference solutions (shown by ex.solution(n)) ----


async def store_configuration():
    await Variable.set("ex13-batch-size", 50, overwrite=True)
    await Secret(value=os.environ["EX13_API_TOKEN"]).save("ex13-api-token", overwrite=True)


class ApiConnection(Block):
    """Where a service lives, and the token to call it with."""

    _block_type_slug = "ex13-api-connection"
    base_url: str
    token: SecretStr


# Kept out of Prefect's registry of block types (slug -> class), so that a learner's own class with this slug
# registers without a warning that it overrides the course's.
get_registry_for_type(Block).pop(ApiConnection.get_block_type_slug(), None)


async def save_connection(base_url: str):
    connection = ApiConnection(base_url=base_url, token=os.environ["EX13_API_TOKEN"])
    await connection.save("ex13-demo-api", overwrite=True)


@flow
async def call_with_token(hook_url: str) -> int:
    token = (await Secret.load("ex13-service-token")).get()
    async with httpx.AsyncClient(timeout=10) as client:
        response = await client.post(hook_url, headers={"Authorization": f"Bearer {token}"})
    get_run_logger().info("the service answered %s", response.status_code)
    return response.status_code


@flow
async def orders_report(order_ids: list[int], base_url: str) -> float:
    async with httpx.AsyncClient(base_url=base_url, timeout=10) as client:
        orders = [(await client.get(f"/orders/{order_id}")).json() for order_id in order_ids]
    rows = [{"id": order["id"], "customer": order["customer"], "amount": order["amount"]} for order in orders]
    await create_table_artifact(rows, key="ex13-orders")
    total = sum(order["amount"] for order in orders)
    await create_markdown_artifact(f"**Total:** {total:.2f}", key="ex13-orders-total")
    return total


def project_files() -> dict[str, str]:
    return {
        "prefect.toml": "[tasks]\ndefault_retries = 2\ndefault_retry_delay_seconds = 10\n",
        ".env": "PREFECT_LOGGING_LEVEL=WARNING\n",
    }


def logging_environment(folder: Path, demo_api_url: str) -> dict[str, str]:
    only_the_demo_api = {"()": "lessons_src.pairs.p13_configuration_and_observability.OnlyRequestsTo"}
    config = write_logging_config(
        folder / "logging.yml",
        loggers={"httpx": {"level": "INFO", "filters": ["demo_api_only"]}},
        filters={"demo_api_only": {**only_the_demo_api, "prefix": demo_api_url}},
    )
    return {"PREFECT_LOGGING_EXTRA_LOGGERS": "httpx", "PREFECT_LOGGING_CONFIG_PATH": str(config)}


# ---- shared by the graders ----

PREFECT_2_BLOCKS = ("JSON", "String", "DateTime")


def _call(answer: Any, *args: Any) -> Any:
    """Call a learner's function (sync or async); say plainly when it used a Prefect 2 block or an invalid name."""
    try:
        return call_answer(answer, *args)
    except (ImportError, AttributeError) as error:
        gone = next((name for name in PREFECT_2_BLOCKS if f"'{name}'" in str(error)), None)
        if gone is None:
            raise
        raise CheckFailed(
            f"your code raised {type(error).__name__}: {error}. The {gone} block of Prefect 2 is gone from Prefect 3: "
            "keep such values in a Variable (Variable.set)"
        ) from None
    except ValidationError as error:
        messages = "; ".join(str(e.get("msg")) for e in error.errors())
        raise CheckFailed(f"Prefect refused a value your code gave it: {messages}") from None


def _not_awaited_hint(answer: Any) -> str:
    """Explain a missing await when the learner's function is async (its Prefect calls then return coroutines)."""
    import inspect

    if inspect.iscoroutinefunction(getattr(answer, "fn", answer)):
        return " In an `async def`, Variable.set and Block.save return coroutines: `await` them, or nothing is stored."
    return ""


def _read_variable(name: str) -> Any | None:
    with get_client(sync_client=True) as client:
        return client.read_variable_by_name(name)


def _read_block(name: str, slug: str, include_secrets: bool) -> Any | None:
    with get_client(sync_client=True) as client:
        try:
            return client.read_block_document_by_name(name, block_type_slug=slug, include_secrets=include_secrets)
        except ObjectNotFound:
            return None


def _documents_named(name: str) -> list[Any]:
    """Return every block document called `name`, of any type (without their secret values)."""
    with get_client(sync_client=True) as client:
        return [d for d in client.read_block_documents(include_secrets=False) if d.name == name]


def _masked(text: str, secret: str) -> str:
    """Return `text` with `secret` replaced, so a check's message never shows a credential."""
    return text.replace(secret, "<the token>")


def _demo_api() -> Any:
    """Return the demo API, or stop the check as the course's problem when it is not running."""
    try:
        return get_demo_api()
    except Exception as error:  # DemoAPINotRunning: the notebook's first cell starts it
        raise CourseProblem(f"{error}") from None


def _logs_of(state: Any) -> list[StoredLog]:
    """Return the log lines the server stored for the flow run that ended in `state`, sending this process's
    waiting lines at once (they would otherwise leave with the next batch, up to 2 s later)."""
    from prefect.logging.handlers import APILogHandler

    run_coroutine(APILogHandler.aflush())
    try:
        return stored_logs(flow_run_id_of(state))
    except TimeoutError as error:
        raise CourseProblem(f"{error}; the server did not store the run's logs in time") from None


# ---- exercise 1: a Variable and a Secret ----


def _grade_store_configuration(answer: Any) -> str:
    expect(callable(answer), f"your answer should be a function that stores the configuration; got {short(answer)}")
    token = api_token()
    delete_variables(PREFIX)
    delete_blocks(TOKEN_SECRET)
    _call(answer)
    leaked = _read_variable(TOKEN_SECRET)
    expect(
        leaked is None,
        f"'{TOKEN_SECRET}' is a Variable: anyone who opens the UI's Variables page reads it in plain text. "
        "Save the token as a Secret block: Secret(value=...).save('ex13-api-token')",
    )
    variable = _read_variable(BATCH_VARIABLE)
    others = sorted(v.name for v in _all_variables() if v.name.startswith("ex13"))
    expect(
        variable is not None,
        f"the server has no Variable '{BATCH_VARIABLE}' (ex13 variables: {others or 'none'})."
        + _not_awaited_hint(answer),
    )
    expect(
        variable.value == 50 and not isinstance(variable.value, bool),
        f"the Variable '{BATCH_VARIABLE}' holds {variable.value!r} ({type(variable.value).__name__}); expected the "
        "number 50. A Variable keeps JSON: Variable.set(name, 50) stores a number, '50' stores text",
    )
    stored = _read_block(TOKEN_SECRET, "secret", include_secrets=True)
    if stored is None:
        kinds = [d.block_type.slug for d in _documents_named(TOKEN_SECRET) if d.block_type]
        expect(
            not kinds, f"'{TOKEN_SECRET}' is a block of type {kinds}, not a Secret: use prefect.blocks.system.Secret"
        )
        raise CheckFailed(f"the server has no Secret block '{TOKEN_SECRET}'." + _not_awaited_hint(answer))
    expect(
        stored.data.get("value") == token,
        f"the Secret block '{TOKEN_SECRET}' holds another value than the token in {TOKEN_VARIABLE}; save "
        f"Secret(value=os.environ['{TOKEN_VARIABLE}'])",
    )
    shown = _read_block(TOKEN_SECRET, "secret", include_secrets=False)
    return (
        f"The server holds the Variable {BATCH_VARIABLE} = 50 (a number) and the Secret block secret/{TOKEN_SECRET}, "
        f"which a plain read shows as {shown.data['value']!r}."
    )


def _all_variables() -> list[Any]:
    with get_client(sync_client=True) as client:
        return client.read_variables()


# ---- exercise 2: a custom block with a secret field ----


def _grade_save_connection(answer: Any) -> str:
    expect(callable(answer), f"your answer should be a function of base_url; got {short(answer)}")
    require_signature(answer, ("http://x",), "your function", "one argument, the service's base_url")
    token, url = api_token(), _demo_api().url
    delete_blocks(CONNECTION_SLUG)
    for document in _documents_named(CONNECTION_NAME):
        with get_client(sync_client=True) as client:
            client.delete_block_document(document.id)
    _call(answer, url)
    documents = _documents_named(CONNECTION_NAME)
    expect(documents, f"the server has no block named '{CONNECTION_NAME}'." + _not_awaited_hint(answer))
    slugs = sorted(d.block_type.slug for d in documents if d.block_type)
    expect(
        CONNECTION_SLUG in slugs,
        f"'{CONNECTION_NAME}' was saved as a block of type {slugs}; expected the type '{CONNECTION_SLUG}': give the "
        f"class `_block_type_slug = '{CONNECTION_SLUG}'` (without it the slug comes from the class name)",
    )
    plain = _read_block(CONNECTION_NAME, CONNECTION_SLUG, include_secrets=False)
    fields = plain.block_schema.fields.get("properties", {}) if plain.block_schema else {}
    expect(
        {"base_url", "token"} <= set(fields),
        f"the block type's fields are {sorted(fields)}; expected base_url and token",
    )
    expect(
        plain.data.get("token") != token,
        "a plain read of the block shows the token itself: anyone who opens the block in the UI sees it. "
        "Declare the field as `token: SecretStr` (from pydantic)",
    )
    full = _read_block(CONNECTION_NAME, CONNECTION_SLUG, include_secrets=True)
    expect(
        full.data.get("token") == token,
        f"the block's token is not the credential in {TOKEN_VARIABLE}; pass token=os.environ['{TOKEN_VARIABLE}']",
    )
    expect(
        full.data.get("base_url") == url,
        f"the block's base_url is {full.data.get('base_url')!r}; expected the base_url your function was given, {url}",
    )
    secret_fields = plain.block_schema.fields.get("secret_fields", [])
    return (
        f"Block {CONNECTION_SLUG}/{CONNECTION_NAME} saved with base_url {url}; its secret fields {secret_fields} "
        f"read back as {plain.data.get('token')!r} without include_secrets."
    )


# ---- exercise 3: use the secret, never log it ----


def _grade_call_with_token(answer: Any) -> str:
    require_flow(answer, "call_with_token")
    require_signature(answer, ("http://x",), "call_with_token", "one argument, hook_url")
    api = _demo_api()
    token = "tok-" + secrets.token_urlsafe(18)  # a new credential for every grading
    Secret(value=token).save(SERVICE_SECRET, overwrite=True, _sync=True)
    since = time.time()
    result, state = run_flow(answer, api.hook_url(HOOK))
    lines = _logs_of(state)
    leaks = [line for line in lines if token in line.message]
    if leaks:
        shown = _masked(leaks[0].message, token)[:160]
        raise CheckFailed(
            f"{len(leaks)} log line(s) stored for the run contain the token, e.g. {shown!r}: anyone who reads the "
            "run's logs now has it. Log facts about it (its length), never the value; print() counts with log_prints"
        )
    expect(
        state.is_completed(),
        f"the run ended {state.name}: {_masked(describe(result), token)}",
    )
    calls = [call for call in api.hook_calls(HOOK) if call["received"] >= since]
    expect(calls, f"the service at hook_url received no call; POST to the hook_url your flow is given ({HOOK})")
    header = calls[-1]["headers"].get("authorization")
    expect(header is not None, "the call carried no Authorization header; send headers={'Authorization': 'Bearer ...'}")
    if header != f"Bearer {token}":
        seen = _masked(header, token)
        hint = (
            " `.value` (or str(block)) is the hidden form; `.get()` returns the secret"
            if "*" in header
            else " Load the Secret block 'ex13-service-token' (a Variable of that name does not exist)"
            if "None" in header
            else ""
        )
        raise CheckFailed(
            f"the service received Authorization {seen!r}; expected 'Bearer <the token>' from the Secret block "
            f"'{SERVICE_SECRET}'.{hint}"
        )
    status_lines = [line.message for line in lines if "200" in line.message and line.name != "httpx"]
    expect(
        status_lines,
        "no stored log line of the run mentions the status the service answered (200); log it with get_run_logger()",
    )
    return (
        f"The service received the token from the Secret block; none of the run's {len(lines)} stored log lines "
        f"contains it, and one says {status_lines[0][:80]!r}."
    )


# ---- exercise 4: artifacts a person can read ----


def _table_rows(data: Any) -> list[dict[str, Any]]:
    """Return a table artifact's rows as dicts, from any of the shapes Prefect accepts; fail on rows without names."""
    table = json.loads(data) if isinstance(data, str) else data
    if isinstance(table, dict):
        columns = list(table)
        return [dict(zip(columns, values, strict=False)) for values in zip(*table.values(), strict=False)]
    if table and all(isinstance(row, dict) for row in table):
        return table
    raise CheckFailed(
        f"the table's rows have no column names (its first row is {short(table[0] if table else None)}); give a "
        "list of dicts, e.g. [{'id': 3, 'customer': ..., 'amount': ...}], or a dict of columns"
    )


def _grade_orders_report(answer: Any) -> str:
    require_flow(answer, "orders_report")
    require_signature(answer, ([1], "http://x"), "orders_report", "two arguments, order_ids and base_url")
    api = _demo_api()
    delete_artifacts(TABLE_KEY)
    result, state = run_flow(answer, REPORT_ORDERS, api.url)
    expect(state.is_completed(), f"the run ended {state.name}: {describe(result)}")
    artifacts = run_artifacts(flow_run_id_of(state))
    by_key = {artifact.key: artifact for artifact in artifacts if artifact.key}
    seen = [(artifact.key, artifact.type) for artifact in artifacts]
    expect(
        TABLE_KEY in by_key,
        f"the run created the artifacts (key, type) {seen or 'none'}; expected a table keyed '{TABLE_KEY}' "
        "(create_table_artifact(..., key=...) inside the flow)",
    )
    table = by_key[TABLE_KEY]
    expect(table.type == "table", f"'{TABLE_KEY}' is a {table.type} artifact; expected a table")
    rows = _table_rows(table.data)
    expected = [ORDERS_BY_ID[order_id] for order_id in REPORT_ORDERS]
    missing = [column for column in ("id", "customer", "amount") if not rows or column not in rows[0]]
    expect(not missing, f"the table's columns are {sorted(rows[0]) if rows else []}; it lacks {missing}")
    got = sorted((row["id"], row["customer"], row["amount"]) for row in rows)
    want = sorted((order["id"], order["customer"], order["amount"]) for order in expected)
    expect(
        got == want,
        f"the table holds {short(got)}; expected orders {REPORT_ORDERS} as the demo API returns them: {short(want)}",
    )
    total = f"{sum(order['amount'] for order in expected):.2f}"
    expect(
        TOTAL_KEY in by_key and by_key[TOTAL_KEY].type == "markdown",
        f"the run created the artifacts (key, type) {seen}; expected a markdown artifact keyed '{TOTAL_KEY}'",
    )
    text = str(by_key[TOTAL_KEY].data)
    expect(total in text, f"'{TOTAL_KEY}' says {text[:120]!r}; expected it to show the total {total} (two decimals)")
    return f"Run artifacts read back: a table of {len(rows)} orders keyed {TABLE_KEY}, and {TOTAL_KEY} showing {total}."


# ---- exercise 5: the settings a fresh process sees ----

SETTING_NAMES = ["PREFECT_TASKS_DEFAULT_RETRIES", "PREFECT_TASKS_DEFAULT_RETRY_DELAY_SECONDS", "PREFECT_LOGGING_LEVEL"]


def _as_number(value: str | None) -> float | None:
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


def _grade_project_files(answer: Any) -> str:
    expect(callable(answer), f"your answer should be a function that returns the files; got {short(answer)}")
    files = require_type(_call(answer), dict, "your function's value", "{'prefect.toml': '...', '.env': '...'}")
    for name, text in files.items():
        require_type(name, str, "each file name", "'prefect.toml'")
        require_type(text, str, f"the text of {name}", "'[tasks]\\ndefault_retries = 2\\n'")
        expect("/" not in name and "\\" not in name, f"{name!r}: give plain file names, written in the project folder")
    folder = lesson_folder("project", prefix=PREFIX)
    for name, text in files.items():
        (folder / name).write_text(text)
    try:
        seen = settings_seen(folder, fresh_env(drop_prefect=True), SETTING_NAMES)
    except FreshProcessError as error:
        raise CheckFailed(f"Prefect could not start in your project folder: {error.summary}") from None
    retries, delay, level = (seen.used[name] for name in SETTING_NAMES)
    toml = files.get("prefect.toml", "")
    toml_hint = " prefect.toml takes the nested names ([tasks] then default_retries = 2)"
    if "PREFECT_" in toml:
        toml_hint += ", not PREFECT_TASKS_DEFAULT_RETRIES (prefect config view even lists those, but they are ignored)"
    if "[tool." in toml:
        toml_hint += "; [tool.prefect...] tables belong in pyproject.toml"
    expect(
        _as_number(retries) == RETRIES and _as_number(delay) == RETRY_DELAY,
        f"a process in your folder uses tasks.default_retries = {retries} and tasks.default_retry_delay_seconds = "
        f"{delay}; expected {RETRIES} and {RETRY_DELAY:g}.{toml_hint}.",
    )
    expect(
        level == LEVEL,
        f"a process in your folder uses logging.level {level}; expected {LEVEL}. In .env write the variable's full "
        "name: PREFECT_LOGGING_LEVEL=WARNING",
    )
    sources = {name: seen.source_of(name) for name in SETTING_NAMES}
    expect(
        sources["PREFECT_TASKS_DEFAULT_RETRIES"]
        == sources["PREFECT_TASKS_DEFAULT_RETRY_DELAY_SECONDS"]
        == "prefect.toml",
        f"the retry settings came from {sources['PREFECT_TASKS_DEFAULT_RETRIES']}; expected prefect.toml, the file "
        "the team commits",
    )
    expect(
        sources["PREFECT_LOGGING_LEVEL"] == ".env file",
        f"the logging level came from {sources['PREFECT_LOGGING_LEVEL']}; expected .env, your own uncommitted file",
    )
    return (
        f"A fresh process in the folder uses retries {retries} and delay {delay} from prefect.toml, and logging "
        f"level {level} from .env (prefect config view and get_current_settings() agree)."
    )


# ---- exercise 6: httpx's lines on the server ----

CONFIG_PATH_NAMES = ("PREFECT_LOGGING_CONFIG_PATH", "PREFECT_LOGGING_SETTINGS_PATH")


def _grade_logging_environment(answer: Any) -> str:
    expect(callable(answer), f"your answer should be a function of (folder, demo_api_url); got {short(answer)}")
    require_signature(answer, (Path("."), "http://x"), "your function", "two arguments, folder and demo_api_url")
    api = _demo_api()
    folder = lesson_folder("logging", prefix=PREFIX)
    extra = require_type(_call(answer, folder, api.url), dict, "your function's value", "{'PREFECT_...': '...'}")
    for name, value in extra.items():
        require_type(name, str, "each variable's name", "'PREFECT_LOGGING_EXTRA_LOGGERS'")
        require_type(value, str, f"the value of {name} (environment variables are text)", "'httpx'")
    from prefect.settings import get_current_settings

    [run] = observed_flow_runs({"ex13": fresh_env(extra)}, api.url, LOGGED_ORDERS).values()
    if run.returncode != 0 or run.flow_run_id is None:
        error = FreshProcessError("flows/observed_jobs.py", run.returncode, run.stderr)
        raise CheckFailed(f"the flow's process failed with your settings: {error.summary}")
    try:
        lines = stored_logs(run.flow_run_id)
    except TimeoutError:
        raise CheckFailed(
            "the run's own log lines never reached the server: did your settings turn off logging to the API "
            "(PREFECT_LOGGING_TO_API_ENABLED) or replace the 'api' handler?"
        ) from None
    requests = [line.message for line in lines if line.name == "httpx"]
    demo = [m for m in requests if api.url in m]
    own = [m for m in requests if str(get_current_settings().api.url) in m]
    if not demo:
        raise CheckFailed(_why_no_httpx_lines(extra, run.stderr))
    if own:
        raise CheckFailed(
            f"the run stored the demo API's requests, and also {len(own)} of Prefect's own requests to its server, "
            f"e.g. {own[0][:100]!r}: they go through httpx too. Give the httpx logger a filter that keeps only the "
            "lines mentioning the demo API (the lesson's OnlyRequestsTo)",
        )
    expect(
        len(demo) == len(LOGGED_ORDERS),
        f"the run stored {len(demo)} demo API request line(s); the flow made {len(LOGGED_ORDERS)}",
    )
    return f"The run's stored logs hold the {len(demo)} demo API requests from httpx, and none of Prefect's own."


def _why_no_httpx_lines(extra: dict[str, str], console: str) -> str:
    """Say why no httpx line of the demo API reached the server, from the settings and the process's console."""
    loggers = [name.strip() for name in extra.get("PREFECT_LOGGING_EXTRA_LOGGERS", "").split(",")]
    config = next((extra[name] for name in CONFIG_PATH_NAMES if name in extra), None)
    if config is not None and not Path(config).is_file():
        return (
            f"{config} is not a file, so Prefect silently used its own logging configuration: write the file "
            "(in the folder you are given) before returning its path"
        )
    if "httpx - HTTP Request" in console and "httpx" not in loggers:
        return (
            "httpx logged its requests (the process's console shows them) but none reached the server: "
            "PREFECT_LOGGING_EXTRA_LOGGERS=httpx attaches Prefect's API handler to that logger"
            + (f" (you gave the loggers {loggers!r})" if any(loggers) else "")
        )
    if "httpx" in loggers:
        return (
            "PREFECT_LOGGING_EXTRA_LOGGERS=httpx attached Prefect's handler, but no httpx line got through: httpx "
            "logs at INFO and its level is still WARNING (inherited from the root logger). Set the httpx logger's "
            "level to INFO in a logging configuration (PREFECT_LOGGING_CONFIG_PATH), and check that its filter "
            "lets the demo API's lines through"
        )
    return "no httpx line reached the server: name the logger in PREFECT_LOGGING_EXTRA_LOGGERS and set its level"


def clean_up() -> list[str]:
    """Delete what the exercises and their checks created (ex13-... variables, blocks, artifacts, folders)."""
    return clean_up_by_prefix(PREFIX)


EXERCISES = ExerciseSet(
    pair="13",
    title="Configuration, secrets and observability",
    exercises=[
        Exercise(
            1,
            "a Variable and a Secret",
            _grade_store_configuration,
            hints=[
                "A batch size is not secret: a Variable (Variable.set). The token is: a Secret block "
                "(prefect.blocks.system.Secret). In an `async def` both must be awaited.",
                "`await Variable.set('ex13-batch-size', 50, overwrite=True)` and "
                "`await Secret(value=os.environ['EX13_API_TOKEN']).save('ex13-api-token', overwrite=True)`.",
            ],
            solution=[store_configuration],
            answer=lambda: store_configuration,
        ),
        Exercise(
            2,
            "a custom block with a secret field",
            _grade_save_connection,
            hints=[
                "A block is a class: `class ApiConnection(Block):` with typed fields; `_block_type_slug` names its "
                "type on the server; a `SecretStr` field (from pydantic) is kept secret.",
                "`await ApiConnection(base_url=base_url, token=os.environ['EX13_API_TOKEN']).save('ex13-demo-api', "
                "overwrite=True)`; save() registers the type itself.",
            ],
            solution=[ApiConnection, save_connection],
            answer=lambda: save_connection,
        ),
        Exercise(
            3,
            "use a secret, never log it",
            _grade_call_with_token,
            hints=[
                "`(await Secret.load('ex13-service-token')).get()` returns the value; `.value` is its hidden form.",
                "Send it in the header only: `headers={'Authorization': f'Bearer {token}'}`; log "
                "`response.status_code`, never the token.",
            ],
            solution=[call_with_token],
            answer=lambda: call_with_token,
        ),
        Exercise(
            4,
            "artifacts a person can read",
            _grade_orders_report,
            hints=[
                "Create the artifacts inside the flow: `create_table_artifact(rows, key=...)` and "
                "`create_markdown_artifact(text, key=...)`; keys use lowercase letters, digits and dashes.",
                "rows = [{'id': o['id'], 'customer': o['customer'], 'amount': o['amount']} for o in orders]; "
                "the total as f'{total:.2f}'. In an async flow, await both.",
            ],
            solution=[orders_report],
            answer=lambda: orders_report,
        ),
        Exercise(
            5,
            "settings files for a project",
            _grade_project_files,
            hints=[
                "prefect.toml uses the settings' nested names in tables ([tasks] then default_retries = 2); .env "
                "uses the environment variables' names (PREFECT_LOGGING_LEVEL=WARNING).",
                "{'prefect.toml': '[tasks]\\ndefault_retries = 2\\ndefault_retry_delay_seconds = 10\\n', "
                "'.env': 'PREFECT_LOGGING_LEVEL=WARNING\\n'}",
            ],
            solution=[project_files],
            answer=lambda: project_files,
        ),
        Exercise(
            6,
            "httpx's lines on the server, and only yours",
            _grade_logging_environment,
            hints=[
                "Three things: PREFECT_LOGGING_EXTRA_LOGGERS=httpx, the httpx logger's level lowered to INFO, and a "
                "filter that keeps only lines mentioning demo_api_url; the last two go in a logging configuration "
                "file named by PREFECT_LOGGING_CONFIG_PATH.",
                "write_logging_config(folder / 'logging.yml', {'httpx': {'level': 'INFO', 'filters': ['mine']}}, "
                "{'mine': {'()': 'lessons_src.pairs.p13_configuration_and_observability.OnlyRequestsTo', "
                "'prefix': demo_api_url}}) writes it; return both variables.",
            ],
            solution=[logging_environment],
            answer=lambda: logging_environment,
        ),
    ],
)
