"""The course database: PostgreSQL in the course home by default, SQLite by one setting or as a stated fallback."""

from __future__ import annotations

import asyncio
import os
import signal

import asyncpg
import psutil
import pytest

from lessons_src import database


@pytest.fixture
def own_home(tmp_path, monkeypatch):
    """A course home of this test's own; whatever PostgreSQL it starts is stopped afterwards."""
    monkeypatch.setenv("COURSE_HOME", str(tmp_path))
    monkeypatch.delenv(database.SETTING, raising=False)
    yield tmp_path
    database.stop_database()


def test_postgresql_runs_from_the_course_home_on_a_socket_not_a_network_port(own_home):
    said: list[str] = []
    db = database.start_database(said.append)
    assert db.kind == "postgresql" and not said, said
    assert db.pid == database.postmaster_pid() and psutil.Process(db.pid).name().startswith("postgres")
    assert (own_home / "postgres" / "PG_VERSION").exists(), "its data lives in the course home"
    assert db.url.startswith("postgresql+asyncpg://postgres:@/postgres?host=")
    listening = [c for c in psutil.Process(db.pid).net_connections("inet") if c.status == psutil.CONN_LISTEN]
    assert listening == [], f"PostgreSQL must not listen on a network port: {listening}"
    assert database.start_database(said.append).pid == db.pid, "a second start finds the running server"
    assert database.stop_database() and database.postmaster_pid() is None


def test_a_killed_postgres_and_its_orphaned_backends_do_not_stop_the_next_start(own_home):
    first = database.start_database(print)
    loop = asyncio.new_event_loop()
    connection = loop.run_until_complete(  # a backend process, as the Prefect server holds them
        asyncpg.connect(host=str(own_home / "postgres"), user="postgres", database="postgres")
    )
    backends = psutil.Process(first.pid).children()
    os.kill(first.pid, signal.SIGKILL)  # as when a learner's machine kills it: its backends live on
    psutil.wait_procs([psutil.Process(first.pid)], timeout=5)
    assert database.postmaster_pid() is None
    second = database.start_database(print)
    assert second.kind == "postgresql" and second.pid != first.pid and database.postmaster_pid() == second.pid
    assert not [b.pid for b in backends if b.is_running() and b.status() != psutil.STATUS_ZOMBIE], "orphans left"
    connection.terminate()
    loop.close()


def test_a_pid_file_naming_another_program_is_not_trusted(own_home):
    database.start_database(print)
    database.stop_database()
    folder = own_home / "postgres"
    lines = ["placeholder"] * 8
    lines[0] = str(os.getpid())  # a live process that is not PostgreSQL, as after a reboot
    (folder / "postmaster.pid").write_text("\n".join(lines) + "\n")
    assert database.postmaster_pid() is None
    assert database.start_database(print).kind == "postgresql"


def test_sqlite_by_setting_and_a_wrong_setting_is_explained(own_home, monkeypatch):
    monkeypatch.setenv(database.SETTING, "sqlite")
    assert database.start_database(print) == database.Database("sqlite")
    monkeypatch.setenv(database.SETTING, "mysql")
    with pytest.raises(database.DatabaseError, match="not one of postgresql, sqlite"):
        database.start_database(print)


def test_a_machine_where_postgresql_cannot_start_falls_back_to_sqlite_and_says_why(own_home, monkeypatch):
    def broken() -> database.Database:
        raise OSError("no PostgreSQL binaries for this platform")

    monkeypatch.setattr(database, "_start_postgres", broken)
    said: list[str] = []
    db = database.start_database(said.append)
    assert db.kind == "sqlite" and db.url is None
    assert said == [db.fallback_reason] and "no PostgreSQL binaries" in said[0] and "COURSE_DATABASE=sqlite" in said[0]


def test_a_reset_deletes_the_data_folder(own_home):
    database.start_database(print)
    database.delete_database()
    assert database.postmaster_pid() is None and not (own_home / "postgres").exists()
