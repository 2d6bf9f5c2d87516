"""The flow-script helper of pair 10: its environment, its measurements, and that no process outlives it."""

import os
from pathlib import Path

import pytest

from lessons_src.pairs import p10_pitfall_lab
from lessons_src.pairs.p10_pitfall_lab import ScriptResult, script_environment, start_flow_script


def test_without_an_api_url_the_script_gets_none_and_its_own_home(monkeypatch, tmp_path):
    monkeypatch.setenv("PREFECT_API_URL", "http://127.0.0.1:4200/api")
    monkeypatch.setenv("PREFECT_HOME", "/somewhere/else")
    env = script_environment(None, tmp_path / "home")
    assert "PREFECT_API_URL" not in env
    assert env["PREFECT_HOME"] == str(tmp_path / "home")
    assert env["PREFECT_SERVER_ANALYTICS_ENABLED"] == "false"
    assert env["PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS"] == "90"  # Prefect's 20 s is too tight here
    assert os.environ["PREFECT_API_URL"] == "http://127.0.0.1:4200/api"  # this process is left alone


def test_with_an_api_url_the_script_uses_that_server(monkeypatch, tmp_path):
    monkeypatch.delenv("PREFECT_API_URL", raising=False)
    env = script_environment("http://127.0.0.1:4299/api", tmp_path)
    assert env["PREFECT_API_URL"] == "http://127.0.0.1:4299/api" and env["PREFECT_HOME"] == str(tmp_path)
    assert "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS" not in env


def test_a_bad_api_url_or_a_missing_setup_is_explained(monkeypatch):
    with pytest.raises(ValueError, match="http://127.0.0.1:4200/api"):
        start_flow_script("bad", "127.0.0.1:4200")
    monkeypatch.delenv("PREFECT_HOME", raising=False)
    with pytest.raises(RuntimeError, match=r"setup\(\)"):
        start_flow_script("no home", "http://127.0.0.1:4200/api")


def test_noise_keeps_only_warnings_errors_and_tracebacks():
    stderr = (
        "12:00:00 | INFO    | prefect - Starting temporary server on http://127.0.0.1:8001\n\n"
        "12:00:09 | WARNING | EventsWorker - Still processing items\n"
        "Traceback (most recent call last):\n"
        "sqlite3.OperationalError: database is locked\n"
    )
    result = ScriptResult("x", 1.0, 0.5, 0.5, 0, "", stderr)
    assert len(result.stderr_lines) == 4
    assert result.noise == result.stderr_lines[1:]


def test_the_flow_runs_against_the_course_server_and_leaves_nothing_behind(course_server):
    script = start_flow_script("course server", course_server.api_url)
    folder = Path(script.folder)
    assert folder.is_dir()
    result = script.collect(timeout=60)
    assert result.returncode == 0, result.stderr
    assert '"result": "hello"' in result.stdout and "Finished in state Completed()" in result.stderr
    assert "temporary server" not in result.stderr
    assert 0 < result.import_seconds < result.seconds and 0 < result.flow_seconds < result.seconds
    assert not script.running and not folder.exists()
    script.stop()  # a second stop is harmless


def test_a_script_that_overruns_is_stopped_and_cleaned_up(monkeypatch, course_server):
    stuck = "import sys, time\nprint('stuck', file=sys.stderr, flush=True)\ntime.sleep(60)"
    monkeypatch.setattr(p10_pitfall_lab, "TRIVIAL_FLOW", stuck)
    script = start_flow_script("stuck", course_server.api_url)
    with pytest.raises(TimeoutError, match="did not finish within 1 s") as stopped:
        script.collect(timeout=1)
    assert "stuck" in str(stopped.value)  # the message ends with what the script printed
    assert not script.running and not script.folder.exists()
