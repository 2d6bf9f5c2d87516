"""Lifecycle of the course server, in a temporary COURSE_HOME so a learner's running server is never touched."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess

import httpx
import pytest

from lessons_src import database, server
from lessons_src.cli import main


@pytest.fixture(scope="module")
def temp_home(tmp_path_factory):
    home = tmp_path_factory.mktemp("course_home")
    previous = {name: os.environ.pop(name, None) for name in ("COURSE_HOME", database.SETTING)}
    os.environ["COURSE_HOME"] = str(home)  # and the default database, PostgreSQL, whatever this run uses
    yield home
    server.stop_server()
    os.environ.pop("COURSE_HOME")
    os.environ.update({name: value for name, value in previous.items() if value is not None})


@pytest.fixture(scope="module")
def started(temp_home):
    return server.start_server()


def test_start_uses_a_course_local_prefect_home_and_answers_health(started, temp_home):
    assert started.home == str(temp_home / "prefect_home")
    assert (temp_home / "postgres" / "PG_VERSION").exists()
    assert server.is_healthy(started.port)
    assert started.api_url == f"http://127.0.0.1:{started.port}/api"


def _setting(tree: dict, parts: list[str]):
    """Find a setting such as ["server", "tasks", "tag", ...] in Prefect's nested settings, longest key first."""
    for i in range(len(parts), 0, -1):
        key = "_".join(parts[:i])
        if key in tree:
            return tree[key] if i == len(parts) else _setting(tree[key], parts[i:])
    raise KeyError("_".join(parts))


def test_the_server_runs_with_the_course_settings(started):
    answered = httpx.get(f"{started.api_url}/admin/settings", timeout=10).json()
    for name, wanted in server.SERVER_SETTINGS.items():
        value = _setting(answered, name.removeprefix("PREFECT_").lower().split("_"))
        assert str(value).lower() == wanted.lower() or (isinstance(value, float) and value == float(wanted)), name


def test_the_ui_is_served_from_files_in_the_course_home(started, temp_home):
    """Servers with other URL prefixes (Binder, parallel tests) must not rewrite the files this one serves."""
    copies = list((temp_home / "prefect_home" / "ui_build").rglob("index.html"))
    assert copies, "the UI's files should be copied into the course home, not the installed package"
    page = httpx.get(f"http://127.0.0.1:{started.port}/", timeout=10)
    assert page.status_code == 200 and "<html" in page.text.lower(), f"the UI answered {page.status_code}"


def test_second_start_reuses_the_running_server(started):
    again = server.start_server()
    assert again == started


def test_status_reports_running_and_cli_exit_codes(started, capsys):
    assert "running" in server.server_status()
    assert main(["server", "status"]) == 0
    assert started.url in capsys.readouterr().out


def test_a_free_preferred_port_is_used_and_a_taken_one_makes_the_server_choose_another():
    free = [port for port in server.PORT_RANGE if server._port_free(port)]
    assert len(free) >= 2, f"this test needs two free ports in {server.PORT_RANGE}; free: {free}"
    preferred = free[1]  # not the first free one, so ignoring the preference would pick another port
    assert server.choose_port(preferred) == preferred
    with socket.socket() as blocker:
        blocker.bind((server.HOST, preferred))
        blocker.listen()
        chosen = server.choose_port(preferred)
    assert chosen != preferred and chosen in server.PORT_RANGE, f"blocked {preferred}, chose {chosen}"


def test_invalid_port_is_rejected_with_a_clear_message():
    with pytest.raises(ValueError, match="between 1 and 65535"):
        server.start_server(port=70000)


def test_stale_state_file_is_not_trusted(temp_home, started):
    state = temp_home / "server.json"
    saved = state.read_text()
    state.write_text(json.dumps({"pid": 999_999, "port": started.port, "home": started.home}))
    assert server.running_server() is None
    state.write_text("not json")
    assert server.running_server() is None
    state.write_text(saved)
    assert server.running_server() == started


def test_setup_restarts_a_stopped_server_and_says_so(started, capsys, monkeypatch):
    from lessons_src import setup

    for name in ("PREFECT_API_URL", "PREFECT_HOME"):  # monkeypatch restores the test process's settings afterwards
        monkeypatch.setenv(name, os.environ.get(name, ""))
    assert server.stop_server()
    assert "not running" in server.server_status()
    info = setup()
    out = capsys.readouterr().out
    assert "Starting the course's Prefect server" in out and "the course server is ready" in out
    assert info.url in out
    assert os.environ["PREFECT_API_URL"] == info.api_url
    setup()
    assert "already running" in capsys.readouterr().out


def test_reset_wipes_the_database_and_restarts(temp_home):
    marker = temp_home / "prefect_home" / "marker.txt"
    marker.write_text("learner data")
    info = server.reset_server()
    assert info is not None and server.is_healthy(info.port)
    assert not marker.exists()


def test_the_server_runs_on_postgresql_and_recovers_when_postgres_is_killed(temp_home, capsys):
    from lessons_src import setup

    info = setup(quiet=True)
    assert info.database == "postgresql" and info.database_pid == database.postmaster_pid()
    os.kill(info.database_pid, signal.SIGKILL)  # a learner's machine kills it mid-lesson
    assert server.running_server() is None, "a server whose database died is not the running server"
    again = setup()
    assert "lost its database; restarting it" in capsys.readouterr().out
    assert again.database == "postgresql" and server.running_server() == again
    assert again.database_pid != info.database_pid and again.pid != info.pid


def test_stop_is_idempotent(temp_home):
    server.start_server()
    assert server.stop_server() is True
    assert server.stop_server() is False
    assert main(["server", "status"]) == 1


def test_sqlite_mode_runs_the_server_on_prefects_sqlite_file(tmp_path, monkeypatch):
    monkeypatch.setenv("COURSE_HOME", str(tmp_path))
    monkeypatch.setenv(database.SETTING, "sqlite")
    try:
        info = server.start_server(say=None)
        assert info.database == "sqlite" and info.database_pid is None
        assert (tmp_path / "prefect_home" / "prefect.db").exists() and not (tmp_path / "postgres").exists()
    finally:
        server.stop_server()


def test_migrate_creates_the_database_ahead_of_the_first_start_and_leaves_nothing_running(tmp_path, monkeypatch):
    monkeypatch.setenv("COURSE_HOME", str(tmp_path))
    server.migrate_database()  # what Binder's postBuild runs at build time
    assert (tmp_path / "postgres" / "PG_VERSION").exists() and database.postmaster_pid() is None
    try:
        db = database.start_database(print)
        tables = subprocess.run(
            [
                str(database.binaries() / "psql"),
                "-h",
                str(tmp_path / "postgres"),
                "-U",
                "postgres",
                "-tAc",
                "select count(*) from information_schema.tables where table_name = 'flow_run'",
            ],
            capture_output=True,
            text=True,
            check=True,
        )
        assert db.kind == "postgresql" and tables.stdout.strip() == "1", tables
    finally:
        database.stop_database()


def test_a_port_another_server_takes_between_the_check_and_the_start_is_not_adopted(tmp_path, monkeypatch):
    """Two starts at once (parallel tests, two kernels) can both find a port free: the loser must move on."""
    import http.server
    import threading

    impostor = http.server.HTTPServer((server.HOST, 0), http.server.BaseHTTPRequestHandler)
    impostor.RequestHandlerClass.do_GET = lambda handler: (handler.send_response(200), handler.end_headers())
    threading.Thread(target=impostor.serve_forever, daemon=True).start()
    taken = impostor.server_address[1]  # answers /api/ready with 200, as another course server would
    real_choose = server.choose_port
    choices = iter([taken])
    monkeypatch.setattr(
        server,
        "choose_port",
        lambda preferred=server.DEFAULT_PORT: next(choices, None) or real_choose(server.preferred_port()),
    )  # then this test process's own preferred port, away from other test processes
    monkeypatch.setenv("COURSE_HOME", str(tmp_path))
    try:
        info = server.start_server(say=None)
        assert info.port != taken and server.running_server() == info, f"adopted the impostor on {taken}: {info}"
    finally:
        server.stop_server()
        impostor.shutdown()


def test_course_port_chooses_the_first_port_to_try_and_a_bad_value_is_explained(monkeypatch):
    monkeypatch.setenv(server.PORT_SETTING, "4242")
    assert server.preferred_port() == 4242
    monkeypatch.setenv(server.PORT_SETTING, "forty-two")
    with pytest.raises(server.CourseServerError, match="COURSE_PORT='forty-two' is not a port number"):
        server.preferred_port()


def test_a_start_that_lost_its_port_is_told_apart_from_other_failures():
    from lessons_src.processes import free_port

    port = free_port()
    lost = f"ERROR | uvicorn.error - [Errno 98] error while attempting to bind on address ('127.0.0.1', {port})"
    assert server._port_was_taken(port, lost), "the output says another process held the port, though it is free now"
    assert not server._port_was_taken(port, "ImportError: no module named prefect"), "another failure, a free port"
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", port))
        holder.listen()
        assert server._port_was_taken(port, ""), "a port still held was taken, whatever the output"


def test_a_taken_port_makes_the_server_try_the_ports_after_the_preferred_one_first():
    free = [port for port in server.PORT_RANGE if server._port_free(port)]
    assert len(free) >= 3, f"this test needs three free ports in {server.PORT_RANGE}; free: {free}"
    preferred = free[1]
    with socket.socket() as blocker:
        blocker.bind((server.HOST, preferred))
        blocker.listen()
        chosen = server.choose_port(preferred)
    assert chosen > preferred, f"blocked {preferred}, chose {chosen}: expected a port after it, not {free[0]} before"
