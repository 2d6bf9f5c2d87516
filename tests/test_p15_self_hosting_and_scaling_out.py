"""Lesson 15's machinery: a second Prefect server under a prefix with a password, the proxy in front of it and a Dask
cluster, started as one group (everything on 127.0.0.1 only, all of it gone after `stop()`); the workload and the
fresh client against a server; what the course server runs; and the docker compose recipe in docs/.
"""

import os
import time

import httpx
import psutil
import pytest
import yaml

from lessons_src.background import BackgroundProcess
from lessons_src.pairs import p15_self_hosting_and_scaling_out as p15
from lessons_src.paths import course_home_at, repo_root

COMPOSE = repo_root() / "docs" / "self_hosting" / "compose.yaml"
AUTH = "tester:secret-1"


@pytest.fixture(scope="module")
def stack():
    """Start a team server (prefix /t15, password), its proxy and a two-worker Dask cluster; stop them afterwards."""
    from lessons_src import setup

    setup(quiet=True)
    services = p15.Services("test-15-")
    proxy_port = p15.free_port()
    team = p15.TeamServer(
        "test-15-team", services.folder("home"), "/t15", AUTH, public_url=f"http://127.0.0.1:{proxy_port}"
    )
    proxy = p15.PathProxy("test-15-proxy", "/t15", f"http://127.0.0.1:{team.port}", port=proxy_port)
    cluster = p15.DaskCluster("test-15-", [services.folder("worker-a"), services.folder("worker-b")])
    services.add(team, proxy, *cluster.processes)
    try:
        team.wait_until_ready()
        proxy.wait_until_ready()
        cluster.wait_until_ready()
        yield services, team, proxy, cluster
    finally:
        services.stop()


def test_everything_listens_on_loopback_only_and_is_gone_after_stop(stack):
    services, team, proxy, cluster = stack
    addresses = p15.listening(services.processes)
    assert len(addresses) == 5 and all(addresses.values()), addresses
    assert p15.beyond_loopback(addresses) == {}, addresses
    assert (
        f"127.0.0.1:{team.port}" in addresses["test-15-team"]
        and f"127.0.0.1:{proxy.port}" in addresses["test-15-proxy"]
    )
    # a group of its own, stopped: its processes and folders go, the rest keeps running
    extra = p15.Services("test-15-extra-")
    lone = p15.DaskScheduler("test-15-extra-scheduler")
    folder = extra.folder("scratch")
    extra.add(lone)
    p15.wait_for(lambda: p15._accepts("127.0.0.1", lone.port), lone, "scheduler", 60)
    pid = lone.pid
    assert extra.stop() == ["test-15-extra-scheduler"]
    assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    assert not folder.exists() and p15.listening(extra.processes) == {}
    assert all(process.running for process in services.processes)


def test_a_group_used_as_a_context_manager_is_stopped_when_its_block_fails():
    with pytest.raises(RuntimeError, match="a cell failed"), p15.Services("test-15-block-") as group:
        failing = p15.DaskScheduler("test-15-block-scheduler")
        folder = group.folder("scratch")
        group.add(failing)
        raise RuntimeError("a cell failed")
    assert not failing.running and not folder.exists()


def test_the_team_server_serves_under_its_prefix_and_asks_for_the_password(stack):
    _, team, _, _ = stack
    assert team.api_url == f"http://127.0.0.1:{team.port}/t15/api"
    assert httpx.get(f"{team.api_url}/health").status_code == 200  # probes need no password
    assert httpx.get(f"{team.api_url}/ready").status_code == 200
    assert httpx.get(f"{team.api_url}/admin/version").status_code == 401
    assert httpx.get(f"{team.api_url}/admin/version", auth=tuple(AUTH.split(":"))).status_code == 200
    assert httpx.get(f"http://127.0.0.1:{team.port}/api/health").status_code == 404
    assert (team.home / "prefect.db").is_file() and (team.home / "ui").is_dir()
    assert all(p15.is_setting(name) for name in team.settings), team.settings


def test_the_proxy_forwards_its_prefix_unchanged_logs_each_request_and_refuses_the_rest(stack):
    _, team, proxy, _ = stack
    before = len(proxy.requests())
    settings = httpx.get(f"{proxy.url}/ui-settings").json()
    refused = httpx.get(f"http://127.0.0.1:{proxy.port}/api/health")
    seen = proxy.requests()[before:]
    assert settings["api_url"] == f"{proxy.url}/api" and settings["auth"] == "BASIC"
    assert refused.status_code == 404 and "/t15" in refused.json()["detail"]
    assert [(r.path, r.routed, r.status) for r in seen] == [
        ("/t15/ui-settings", True, 200),
        ("/api/health", False, 404),
    ]


def test_the_dask_cluster_records_which_named_worker_ran_each_task(stack):
    from distributed import Client, get_worker

    _, _, _, cluster = stack
    assert sorted(cluster.worker_names().values()) == ["test-15-worker-a", "test-15-worker-b"]
    since = time.time()
    with Client(cluster.address, timeout=30) as client:
        said = client.gather([client.submit(lambda i: (time.sleep(0.2), get_worker().name)[1], i) for i in range(4)])
    recorded = cluster.tasks_since(since)
    assert sorted(r.worker for r in recorded) == sorted(said) and len(recorded) == 4, (recorded, said)
    assert all(r.end >= r.start >= since for r in recorded)


def test_a_workload_and_a_fresh_client_run_against_the_team_server(stack, tmp_path):
    _, team, _, _ = stack
    mark = team.log_mark()
    [run] = p15.run_workloads({"team": team.client_env()}, 2, 0.05, "test-15-limit").values()
    assert run.returncode == 0 and run.seconds > 0 and run.retried is not None and run.flow_run_id, run.output
    assert team.retryable_errors(team.log_mark()) == 0 and team.retryable_errors(mark) <= team.retryable_errors()
    done = p15.run_client(team.client_env(), "test-15-variable", "hello", tmp_path)
    assert done.returncode == 0 and "created test-15-variable" in done.stdout, done.stderr
    refused = p15.run_client({"PREFECT_API_URL": team.api_url}, "test-15-other", "x", tmp_path)
    assert refused.returncode != 0 and "401" in refused.stdout + refused.stderr
    assert "Unauthorized" in p15.last_error(refused.stdout + refused.stderr) or "401" in p15.last_error(
        refused.stdout + refused.stderr
    )


def test_retryable_errors_are_counted_from_a_mark(tmp_path):
    with course_home_at(tmp_path):
        server = p15.TeamServer("test-15-count", tmp_path / "home")
        server.log_path.write_text("x\nEncountered retryable exception in request:\n")
        mark = server.log_mark()
        with server.log_path.open("a") as log:
            log.write("Encountered retryable exception in request:\nEncountered retryable exception in request:\n")
        assert (server.retryable_errors(), server.retryable_errors(mark)) == (3, 2)


def test_a_team_server_without_prefix_or_password_has_neither_setting(tmp_path):
    with course_home_at(tmp_path):
        plain = p15.TeamServer("test-15-plain", tmp_path / "home", port=4999)
    assert plain.api_url == "http://127.0.0.1:4999/api"
    assert not {"PREFECT_SERVER_API_BASE_PATH", "PREFECT_SERVER_API_AUTH_STRING"} & set(plain.settings)
    assert "PREFECT_API_AUTH_STRING" not in plain.client_env() and plain.env["PREFECT_HOME"] == str(tmp_path / "home")
    assert not any(name.startswith("PREFECT_") and name not in plain.settings for name in plain.env)


def test_clean_env_drops_every_prefect_variable(monkeypatch):
    monkeypatch.setenv("PREFECT_API_URL", "http://elsewhere/api")
    env = p15.clean_env(PREFECT_HOME="/x")
    assert env["PREFECT_HOME"] == "/x" and "PREFECT_API_URL" not in env and env["PATH"] == os.environ["PATH"]


@pytest.mark.parametrize(
    ("name", "real"),
    [
        ("PREFECT_API_URL", True),
        ("PREFECT_SERVER_API_AUTH_STRING", True),
        ("PREFECT_UI_API_URL", True),  # an alias of PREFECT_SERVER_UI_API_URL
        ("PREFECT_API_LOG_RETRYABLE_ERRORS", True),
        ("PREFECT_ORION_API_URL", False),
        ("PREFECT_DATABASE_URL", False),
        ("API_URL", False),
    ],
)
def test_is_setting_knows_prefects_names(name, real):
    assert p15.is_setting(name) is real


def test_beyond_loopback_keeps_only_what_others_could_reach():
    found = {"a": {"127.0.0.1:1", "0.0.0.0:2"}, "b": {"127.0.0.1:3"}, "c": set()}
    assert p15.beyond_loopback(found) == {"a": {"0.0.0.0:2"}}


def test_wait_for_says_when_a_process_exits_or_times_out(tmp_path):
    import sys

    with course_home_at(tmp_path):
        quits = BackgroundProcess([sys.executable, "-c", "print('bye')"], "test-15-quits").start()
        with pytest.raises(RuntimeError, match="bye"):
            p15.wait_for(lambda: False, quits, "the quitter", 30)
        sleeps = BackgroundProcess([sys.executable, "-c", "import time; time.sleep(30)"], "test-15-sleeps").start()
        try:
            with pytest.raises(TimeoutError, match="within 0 s"):
                p15.wait_for(lambda: False, sleeps, "the sleeper", 0.3)
        finally:
            sleeps.stop()


def test_the_proxy_answers_404_to_paths_outside_its_prefix():
    app = p15.proxy_app("/p15", "http://127.0.0.1:9")
    transport = httpx.ASGITransport(app=app)

    async def ask() -> httpx.Response:
        async with httpx.AsyncClient(transport=transport, base_url="http://proxy") as client:
            return await client.get("/elsewhere")

    from lessons_src.checks import run_coroutine

    answer = run_coroutine(ask())
    assert answer.status_code == 404 and answer.json() == {"detail": "this proxy routes only /p15/..."}


def test_folders_are_made_empty_and_removed_by_prefix(tmp_path):
    with course_home_at(tmp_path):
        first = p15.lesson_folder("a", "test-15-")
        (first / "left.txt").write_text("x")
        again = p15.lesson_folder("a", "test-15-")
        assert again == first and list(again.iterdir()) == []
        p15.lesson_folder("b", "test-15-")
        assert p15.remove_folders("test-15-") == ["test-15-a", "test-15-b"] and p15.remove_folders("test-15-") == []


def test_the_course_server_is_one_process_with_its_services_on(course_server):
    [command] = p15.process_tree(course_server.pid)
    assert "prefect server start" in command
    assert p15.tree_listening(course_server.pid) == {f"127.0.0.1:{course_server.port}"}
    services = p15.server_services(course_server.api_url)
    assert services["scheduler"] and services["event_persister"] and not services["event_logger"], services


def test_clean_up_deletes_the_prefixed_limits_and_folders(course_server):
    from lessons_src.pairs.p05_concurrency_limits import ensure_limit, read_limit

    ensure_limit("test-15-clean-limit", 1)
    p15.lesson_folder("clean", "test-15-clean-")
    removed = p15.clean_up("test-15-clean-")
    assert (
        removed == ["limit test-15-clean-limit", "folder test-15-clean-clean"]
        and read_limit("test-15-clean-limit") is None
    )
    assert p15.clean_up("test-15-clean-") == []


def test_the_compose_recipe_is_valid_complete_and_uses_only_real_settings():
    compose = yaml.safe_load(COMPOSE.read_text())
    services = compose["services"]
    assert set(services) == {"database", "server", "worker"}
    assert all(service.get("image") for service in services.values())
    assert services["server"]["command"].startswith("prefect server start")
    assert services["worker"]["command"].startswith("prefect worker start --pool")
    assert services["server"]["depends_on"]["database"]["condition"] == "service_healthy"
    assert services["worker"]["depends_on"]["server"]["condition"] == "service_healthy"
    assert all(port.startswith("127.0.0.1:") for port in services["server"]["ports"])  # published on loopback only
    assert "database" in compose["volumes"] and "healthcheck" in services["database"]
    server_env, worker_env = services["server"]["environment"], services["worker"]["environment"]
    assert server_env["PREFECT_API_DATABASE_CONNECTION_URL"].startswith("postgresql+asyncpg://")
    assert "PREFECT_SERVER_API_AUTH_STRING" in server_env and "PREFECT_API_AUTH_STRING" in worker_env
    assert worker_env["PREFECT_API_URL"] == "http://server:4200/api"
    names = [name for service in services.values() for name in service.get("environment", {})]
    prefect_names = [name for name in names if name.startswith("PREFECT_")]
    assert len(prefect_names) >= 9 and [n for n in prefect_names if not p15.is_setting(n)] == []
    assert "NOT RUN IN THIS COURSE" in COMPOSE.read_text()
    assert "self_hosting/compose.yaml" in (repo_root() / "docs" / "self_hosting.md").read_text()


def test_a_setting_name_that_is_not_real_would_be_caught():
    compose = yaml.safe_load(COMPOSE.read_text())
    compose["services"]["server"]["environment"]["PREFECT_ORION_DATABASE_CONNECTION_URL"] = "x"
    names = [n for s in compose["services"].values() for n in s.get("environment", {}) if n.startswith("PREFECT_")]
    assert [n for n in names if not p15.is_setting(n)] == ["PREFECT_ORION_DATABASE_CONNECTION_URL"]


def test_clean_up_finds_and_stops_what_a_killed_kernel_left(tmp_path):
    import subprocess
    import sys

    with course_home_at(tmp_path):
        env = p15.marked_env("test-15-orphan-x", dict(os.environ))
        left = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"], env=env)
        other_home = subprocess.Popen(
            [sys.executable, "-c", "import time; time.sleep(60)"],
            env={**env, p15.MARK: f"{tmp_path / 'elsewhere'}|test-15-orphan-x"},
        )
        try:
            deadline = time.monotonic() + 10
            while left.pid not in p15.orphans("test-15-orphan-") and time.monotonic() < deadline:
                time.sleep(0.1)  # its environment is readable once the interpreter has started
            assert p15.orphans("test-15-orphan-") == {left.pid: "test-15-orphan-x"}  # not the other course home's
            assert p15.orphans("lesson-15-") == {}
            removed = p15.clean_up("test-15-orphan-")
            assert removed == [f"process test-15-orphan-x (pid {left.pid}, left by an earlier kernel)"]
            assert left.wait(timeout=10) is not None and other_home.poll() is None
        finally:
            other_home.kill()
            other_home.wait()
