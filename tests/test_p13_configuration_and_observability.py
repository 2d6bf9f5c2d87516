"""Lesson 13's machinery: profiles only in the course's PREFECT_HOME, what fresh processes see and store, clean-ups."""

import logging
import os
from datetime import UTC, datetime, timedelta
from uuid import uuid4

import pytest
import yaml
from prefect import flow
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.blocks.core import Block
from prefect.blocks.system import Secret
from prefect.client.orchestration import get_client
from prefect.settings import temporary_settings
from prefect.variables import Variable
from pydantic import SecretStr

from lessons_src.pairs import p13_configuration_and_observability as p13
from lessons_src.paths import course_home
from lessons_src.runs import flow_run_id_of
from lessons_src.server import prefect_home

PREFIX = "test13-"
T0 = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


@pytest.fixture(scope="module", autouse=True)
def nothing_left_behind():
    """Remove what the tests created under their prefix, whatever failed."""
    from lessons_src import setup

    yield
    setup(quiet=True)
    p13.clean_up(PREFIX)


def _line(delay: float, message: str = "m", name: str = "prefect.flow_runs", level: int = 20) -> p13.StoredLog:
    return p13.StoredLog(name, level, message, T0, T0 + timedelta(seconds=delay))


# ---- profiles ----


def test_the_profiles_file_is_the_course_ones_and_refused_when_prefect_uses_another(course_server, tmp_path):
    assert p13.profiles_path() == prefect_home() / "profiles.toml"
    with temporary_settings(updates={"PREFECT_PROFILES_PATH": str(tmp_path / "profiles.toml")}):
        with pytest.raises(RuntimeError, match="never touches your own profiles"):
            p13.profiles_path()


def test_a_created_profile_is_listed_by_a_fresh_prefect_and_removed_by_prefix(course_server):
    with p13.profiles_restored() as path:
        p13.create_profile(f"{PREFIX}a", {"PREFECT_TASKS_DEFAULT_RETRIES": "2"})
        p13.create_profile("kept-13", {})
        assert p13.read_profiles_file()["profiles"][f"{PREFIX}a"] == {"PREFECT_TASKS_DEFAULT_RETRIES": "2"}
        listed = p13.prefect_cli("profile", "ls", env=p13.fresh_env())
        assert listed.returncode == 0 and f"{PREFIX}a" in listed.stdout and "\x1b[" not in listed.stdout
        profiles = p13.read_profiles_file()
        path.write_text(path.read_text().replace("[profiles", f'active = "{PREFIX}a"\n\n[profiles', 1))
        assert p13.read_profiles_file()["active"] == f"{PREFIX}a" and "active" not in profiles
        assert p13.remove_profiles(PREFIX) == [f"{PREFIX}a"]
        after = p13.read_profiles_file()
        assert set(after["profiles"]) == {"kept-13"} and "active" not in after  # no lesson profile stays active
        assert p13.remove_profiles(PREFIX) == []


def test_the_profiles_file_is_put_back_byte_for_byte_even_after_an_error(course_server):
    path = p13.profiles_path()
    with p13.profiles_restored():
        path.write_text('[profiles.mine]\nPREFECT_API_URL = "http://example.invalid/api"\n')
        with pytest.raises(ZeroDivisionError):
            with p13.profiles_restored():
                p13.create_profile(f"{PREFIX}b", {})
                raise ZeroDivisionError
        assert path.read_text() == '[profiles.mine]\nPREFECT_API_URL = "http://example.invalid/api"\n'
        path.unlink()
        with p13.profiles_restored():
            p13.create_profile(f"{PREFIX}c", {})
            assert path.exists()
        assert not path.exists()  # absent before, absent after


def test_the_learners_own_profiles_file_is_only_stamped(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("USERPROFILE", str(tmp_path))
    assert p13.learner_profiles_stamp() is None
    (tmp_path / ".prefect").mkdir()
    (tmp_path / ".prefect" / "profiles.toml").write_text("x = 1\n")
    size, _ = p13.learner_profiles_stamp()
    assert size == 6


# ---- fresh processes ----


def test_a_fresh_environment_keeps_the_course_home_and_drops_the_api_only_when_asked(course_server):
    kept = p13.fresh_env({"PREFECT_LOGGING_LEVEL": "DEBUG"})
    dropped = p13.fresh_env(drop_prefect=True)
    assert kept["PREFECT_API_URL"] == os.environ["PREFECT_API_URL"] and kept["PREFECT_LOGGING_LEVEL"] == "DEBUG"
    assert "PREFECT_API_URL" not in dropped and dropped["PREFECT_HOME"] == str(prefect_home())
    assert dropped["PREFECT_PROFILES_PATH"] == str(prefect_home() / "profiles.toml")


def test_config_view_and_the_settings_a_fresh_process_really_uses(course_server):
    folder = p13.lesson_folder("settings", prefix=PREFIX)
    (folder / "prefect.toml").write_text("PREFECT_CLIENT_MAX_RETRIES = 9\n\n[tasks]\ndefault_retries = 3\n")
    (folder / ".env").write_text("PREFECT_TASKS_DEFAULT_RETRIES=4\nPREFECT_FLOWS_DEFAULT_RETRIES=4\n")
    env = p13.fresh_env({"PREFECT_FLOWS_DEFAULT_RETRIES": "5"}, drop_prefect=True)
    names = ["PREFECT_TASKS_DEFAULT_RETRIES", "PREFECT_FLOWS_DEFAULT_RETRIES", "PREFECT_CLIENT_MAX_RETRIES"]
    seen = p13.settings_seen(folder, env, names)
    assert [seen.source_of(name) for name in names] == [".env file", "env", "prefect.toml"]
    assert seen.used == {
        "PREFECT_TASKS_DEFAULT_RETRIES": "4",
        "PREFECT_FLOWS_DEFAULT_RETRIES": "5",
        "PREFECT_CLIENT_MAX_RETRIES": "5",
    }  # the env-named key is listed by config view, not used
    assert seen.settings["PREFECT_CLIENT_MAX_RETRIES"].value == "9"
    assert seen.source_of("PREFECT_SERVER_API_PORT") == "defaults" and seen.profile


def test_a_fresh_process_that_cannot_start_says_why(course_server):
    folder = p13.lesson_folder("broken", prefix=PREFIX)
    (folder / "prefect.toml").write_text("[tasks\ndefault_retries = 3\n")
    with pytest.raises(p13.FreshProcessError, match="invalid TOML") as raised:
        p13.settings_seen(folder, p13.fresh_env(drop_prefect=True), ["PREFECT_TASKS_DEFAULT_RETRIES"])
    assert "Traceback" not in raised.value.summary


def test_a_lesson_folder_is_empty_and_named_by_its_prefix(course_server):
    folder = p13.lesson_folder("f", prefix=PREFIX)
    (folder / "left.txt").write_text("x")
    again = p13.lesson_folder("f", prefix=PREFIX)
    assert again == course_home() / f"{PREFIX}f" and list(again.iterdir()) == []


def test_the_flow_run_id_is_the_last_line_a_process_printed():
    run_id = uuid4()
    assert p13.FreshRun("x", 0, f"noise\n{run_id}\n", "").flow_run_id == run_id
    assert p13.FreshRun("x", 1, "Traceback ...\nKeyError: 'x'\n", "").flow_run_id is None
    assert p13.FreshRun("x", 1, "", "").flow_run_id is None


# ---- logging configuration ----


def test_the_filter_keeps_only_records_that_mention_its_prefix():
    keep = p13.OnlyRequestsTo("http://127.0.0.1:5000")

    def record(url: str) -> logging.LogRecord:
        return logging.LogRecord("httpx", logging.INFO, "", 0, 'HTTP Request: %s %s "%s"', ("GET", url, "200"), None)

    assert keep.filter(record("http://127.0.0.1:5000/orders/1"))
    assert not keep.filter(record("http://127.0.0.1:4200/api/logs/"))


def test_a_logging_configuration_starts_from_prefects_own(tmp_path):
    filters = {"mine": {"()": "lessons_src.pairs.p13_configuration_and_observability.OnlyRequestsTo", "prefix": "x"}}
    path = p13.write_logging_config(tmp_path / "l.yml", {"httpx": {"level": "INFO", "filters": ["mine"]}}, filters)
    config = yaml.safe_load(path.read_text())
    assert config["loggers"]["httpx"] == {"level": "INFO", "filters": ["mine"]} and config["filters"] == filters
    assert config["loggers"]["prefect.flow_runs"]["handlers"] == ["api"] and "console" in config["handlers"]


def test_extra_loggers_store_httpx_lines_only_with_a_level_and_the_filter_keeps_prefects_own_out(demo_api):
    folder = p13.lesson_folder("logging", prefix=PREFIX)
    filters = {
        "mine": {"()": "lessons_src.pairs.p13_configuration_and_observability.OnlyRequestsTo", "prefix": demo_api.url}
    }
    config = p13.write_logging_config(folder / "l.yml", {"httpx": {"level": "INFO", "filters": ["mine"]}}, filters)
    extra = {"PREFECT_LOGGING_EXTRA_LOGGERS": "httpx"}
    runs = p13.observed_flow_runs(
        {"only": p13.fresh_env(extra), "filtered": p13.fresh_env(extra | {"PREFECT_LOGGING_CONFIG_PATH": str(config)})},
        demo_api.url,
        [1, 2],
    )
    assert all(run.returncode == 0 and run.flow_run_id for run in runs.values()), runs
    only, filtered = (p13.stored_logs(runs[label].flow_run_id) for label in ("only", "filtered"))
    assert [line.name for line in only if line.name == "httpx"] == []
    assert [line.message.split()[3] for line in filtered if line.name == "httpx"] == [
        f"{demo_api.url}/orders/1",
        f"{demo_api.url}/orders/2",
    ]
    assert p13.is_last_line(filtered[-1]) and all(line.delay >= 0 for line in filtered)


# ---- what the server stored ----


def test_a_stored_line_knows_its_level_and_delay():
    line = _line(1.25, level=30)
    assert line.level_name == "WARNING" and line.delay == 1.25 and _line(0, level=5).level_name == "5"
    assert p13.is_last_line(_line(0, "Finished in state Completed()"))
    assert not p13.is_last_line(_line(0, "Finished in state Completed()", name="prefect.task_runs"))


def test_stored_logs_wait_for_the_last_line_and_say_when_it_never_comes(course_server):
    @flow
    def logs_twice() -> None:
        from prefect import get_run_logger

        get_run_logger().warning("first")

    lines = p13.stored_logs(flow_run_id_of(logs_twice(return_state=True)))
    assert [line.message for line in lines if line.level_name == "WARNING"] == ["first"]
    with pytest.raises(TimeoutError, match="last log line is not stored"):
        p13.stored_logs(uuid4(), timeout=0.3)


def test_a_runs_artifacts_leave_out_its_result_record(course_server):
    @flow(persist_result=True)
    def publishes() -> int:
        create_table_artifact([{"a": 1}], key=f"{PREFIX}table")
        create_markdown_artifact("# hi", key=f"{PREFIX}notes")
        return 1

    artifacts = p13.run_artifacts(flow_run_id_of(publishes(return_state=True)))
    assert [(a.key, a.type) for a in artifacts] == [(f"{PREFIX}table", "table"), (f"{PREFIX}notes", "markdown")]
    assert p13.delete_artifacts(PREFIX) >= 2 and p13.delete_artifacts(PREFIX) == 0


def test_the_delay_figure_draws_one_bar_per_line_against_the_batch_interval():
    figure = p13.plot_log_delays([_line(0.5), _line(2.1)], 2.0, "t")
    ax = figure.axes[0]
    assert [round(bar.get_width(), 2) for bar in ax.patches] == [0.5, 2.1]
    assert ax.get_xlim()[1] > 2.1 and "logged to stored" in ax.get_xlabel()
    with pytest.raises(ValueError, match="no log lines"):
        p13.plot_log_delays([], 2.0, "t")


# ---- clean-ups by name ----


class Connection13(Block):
    """A block type of the tests' own."""

    _block_type_slug = f"{PREFIX}connection"
    token: SecretStr


def test_clean_up_removes_variables_blocks_their_types_profiles_and_folders_by_prefix(course_server):
    p13.clean_up(PREFIX)  # what the tests above left
    Variable.set(f"{PREFIX}v", 1, overwrite=True)
    Variable.set("kept-13-v", 1, overwrite=True)
    Secret(value="s").save(f"{PREFIX}secret", overwrite=True)
    Connection13(token="t").save("other-13-name", overwrite=True)
    p13.lesson_folder("folder", prefix=PREFIX)
    with p13.profiles_restored():
        p13.create_profile(f"{PREFIX}p", {})
        removed = p13.clean_up(PREFIX)
        assert p13.clean_up(PREFIX) == []
    assert removed == [
        f"profile {PREFIX}p",
        f"variable {PREFIX}v",
        f"block secret/{PREFIX}secret",
        f"block {PREFIX}connection/other-13-name",
        f"block type {PREFIX}connection",
        f"folder {PREFIX}folder",
    ]
    with get_client(sync_client=True) as client:
        assert client.read_variable_by_name("kept-13-v") is not None
        client.delete_variable_by_name("kept-13-v")
