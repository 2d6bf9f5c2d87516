"""The classroom rehearsal: its helpers (ports, environments, hub config, report, sampling, stopping) and a real run."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from types import SimpleNamespace

import psutil
import pytest
import yaml

from lessons_src import classroom, server
from lessons_src.paths import repo_root
from lessons_src.processes import pid_alive, port_is_free
from tests.chromium import MISSING, WHY_MISSING

CHILD_WITH_GRANDCHILD = textwrap.dedent(
    """
    import subprocess, sys, time
    held = bytearray(int(sys.argv[1]) * 1024 * 1024)  # written, so its pages are really in memory
    for i in range(0, len(held), 4096):
        held[i] = 1
    grandchild = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    print("ready", flush=True)
    time.sleep(120)
    """
)


def start_child(tmp_path: Path, megabytes: int, **env: str) -> subprocess.Popen:
    """Start a process in its own session holding `megabytes` of memory and a grandchild, with `env` added."""
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD_WITH_GRANDCHILD, str(megabytes)],
        env={**os.environ, **env},
        stdout=subprocess.PIPE,
        text=True,
        start_new_session=True,
        cwd=tmp_path,
    )
    assert child.stdout.readline().strip() == "ready"
    return child


def learner(tmp_path: Path, number: int, port: int) -> classroom.Learner:
    return classroom.Learner(f"learner{number}", tmp_path / "learners" / f"learner{number}", port)


def test_learner_ports_are_different_free_ports_from_the_top_of_the_course_range():
    taken = {4299, 4297}
    assert classroom.learner_ports(3, is_free=lambda port: port not in taken) == [4298, 4296, 4295]
    ports = classroom.learner_ports(3)  # the real check: free on this machine now
    assert len(set(ports)) == 3 and all(p in server.PORT_RANGE and port_is_free("127.0.0.1", p) for p in ports)


def test_learner_ports_says_when_the_range_is_full():
    with pytest.raises(classroom.ClassroomError, match="only 1 free ports"):
        classroom.learner_ports(2, is_free=lambda port: port == 4250)


def test_a_plan_gives_each_learner_a_folder_and_port_and_the_hub_three_ports(tmp_path):
    plan = classroom.make_plan(tmp_path, 3)
    assert [x.name for x in plan.learners] == ["learner1", "learner2", "learner3"]
    assert len({x.course_port for x in plan.learners}) == 3
    assert len({plan.public_port, plan.hub_port, plan.proxy_api_port}) == 3
    assert all(x.folder.parent == tmp_path / "learners" for x in plan.learners)
    assert len(plan.password) >= 8  # SharedPasswordAuthenticator refuses shorter ones
    assert plan.password not in repr(plan)
    with pytest.raises(ValueError, match="at least one learner"):
        classroom.make_plan(tmp_path, 0)


def test_each_learner_gets_a_course_home_and_port_of_their_own(tmp_path):
    first, second = learner(tmp_path, 1, 4299), learner(tmp_path, 2, 4298)
    env = classroom.learner_environment(first, tmp_path)
    assert env == {
        "COURSE_HOME": str(tmp_path / "learners" / "learner1" / ".course"),
        "COURSE_PORT": "4299",
        classroom.MARKER: str(tmp_path),
    }
    assert classroom.learner_environment(second, tmp_path)["COURSE_HOME"] != env["COURSE_HOME"]


def test_a_rehearsal_of_no_learners_is_refused_before_installing_anything(monkeypatch):
    monkeypatch.setattr(classroom, "install_tools", lambda folder, say: pytest.fail("installed for 0 learners"))
    said: list[str] = []
    assert classroom.rehearse(0, say=said.append) == 2
    assert said == ["error: --learners must be 1 or more, got 0"]


def test_the_hub_config_binds_loopback_and_sets_each_learners_environment(tmp_path):
    from traitlets.config import Config

    plan = classroom.Plan(
        tmp_path, (learner(tmp_path, 1, 4299), learner(tmp_path, 2, 4298)), 8001, 8002, 8003, "p" * 16
    )
    tools = classroom.Tools(tmp_path / "tools")
    c = Config()
    exec(classroom.hub_config(plan, tools), {"c": c})
    assert c.JupyterHub.bind_url == "http://127.0.0.1:8001"
    assert c.JupyterHub.hub_bind_url == "http://127.0.0.1:8002"
    assert c.ConfigurableHTTPProxy.api_url == "http://127.0.0.1:8003"
    assert c.Spawner.ip == "127.0.0.1"
    assert c.ConfigurableHTTPProxy.command == [str(tools.proxy)]
    assert c.JupyterHub.authenticator_class == "shared-password"
    assert c.SharedPasswordAuthenticator.user_password == "p" * 16
    assert sorted(c.Authenticator.allowed_users) == ["learner1", "learner2"]
    assert c.Spawner.cmd[0] == sys.executable and c.Spawner.cmd[-1] == str(tools.singleuser)  # the course's Python
    assert c.SimpleLocalProcessSpawner.home_dir_template.format(username="learner2") == str(plan.learners[1].folder)
    spawner = SimpleNamespace(user=SimpleNamespace(name="learner2"), environment={"KEPT": "1"})
    c.Spawner.pre_spawn_hook(spawner)
    assert spawner.environment == {"KEPT": "1", **classroom.learner_environment(plan.learners[1], tmp_path)}


def test_the_page_report_passes_only_when_every_cell_ran_without_an_unplanned_error():
    assert classroom.judge({"cells": 20, "unrun": 0, "unplanned": [], "busy": "idle"}) is None
    assert "3 of 20 code cells did not run" in classroom.judge({"cells": 20, "unrun": 3, "unplanned": []})
    stopped = classroom.judge({"cells": 20, "unrun": 5, "unplanned": ["course = setup()"]})
    assert "raises-exception" in stopped and "course = setup()" in stopped
    assert "no code cells" in classroom.judge({"cells": 0, "unrun": 0, "unplanned": []})


def test_the_report_line_says_passed_or_why_not_with_seconds_and_memory():
    passed = classroom.Result("learner1", None, 29.84, 654.4, 904.2, 41.3)
    assert classroom.report_line(passed) == (
        "learner1: passed; Run All 29.8 s; peak memory 654 MB (PSS; RSS summed 904 MB); CPU 41 s"
    )
    failed = classroom.Result("learner2", "TimeoutError: page timed out", None, 300.0, 400.0, 9.0)
    assert classroom.report_line(failed).startswith("learner2: FAILED (TimeoutError: page timed out); Run All -;")


def test_the_sampler_counts_a_learners_whole_tree_and_no_one_elses(tmp_path):
    mine = start_child(tmp_path, 150, COURSE_HOME=str(tmp_path / "a"))
    other = start_child(tmp_path, 20, COURSE_HOME=str(tmp_path / "b"))
    try:
        trees = classroom.processes_by_environment("COURSE_HOME", [str(tmp_path / "a"), str(tmp_path / "b")])
        assert {p.pid for p in trees[str(tmp_path / "a")]} == {
            mine.pid,
            *(c.pid for c in psutil.Process(mine.pid).children()),
        }
        assert len(trees[str(tmp_path / "a")]) == 2  # the child and the grandchild it started
        with classroom.Sampler({"a": tmp_path / "a", "b": tmp_path / "b"}, ("NOBODY", "x"), every=0.1) as sampler:
            time.sleep(0.5)
        assert sampler.peak["a"][0] > 150 * classroom.MB > sampler.peak["b"][1]
        assert sampler.peak["a"][1] >= sampler.peak["a"][0]  # RSS counts shared pages in full
        assert sampler.cpu("a") > 0
    finally:
        for child in (mine, other):
            classroom.terminate(child)


def test_listeners_beyond_loopback_are_reported(tmp_path):
    listen = (
        "import socket, sys, time; s = socket.socket(); s.bind((sys.argv[1], 0)); s.listen(); "
        "print(1, flush=True); time.sleep(60)"
    )
    started = [
        subprocess.Popen([sys.executable, "-c", listen, ip], stdout=subprocess.PIPE) for ip in ("127.0.0.1", "0.0.0.0")
    ]
    try:
        for process in started:
            process.stdout.readline()
        loopback, everywhere = (psutil.Process(p.pid) for p in started)
        assert classroom.exposed_listeners([loopback]) == set()
        assert [a.split(":")[0] for a in classroom.exposed_listeners([loopback, everywhere])] == ["0.0.0.0"]
    finally:
        for process in started:
            classroom.terminate(process)


def test_stopping_ends_every_marked_process_and_its_children(tmp_path):
    plan = classroom.Plan(tmp_path, (learner(tmp_path, 1, 4299),), 1, 2, 3, "p" * 16)
    marked = start_child(tmp_path, 1, **{classroom.MARKER: str(tmp_path)})
    spared = start_child(tmp_path, 1, **{classroom.MARKER: str(tmp_path / "another rehearsal")})
    grandchild = psutil.Process(marked.pid).children()[0]
    try:
        classroom.stop_everything(plan, None)
        assert not pid_alive(marked.pid) and not pid_alive(grandchild.pid)  # a zombie counts as gone
        assert pid_alive(spared.pid)
    finally:
        classroom.terminate(spared)
        classroom.terminate(marked)


def test_installed_tools_are_reused_without_installing_again(tmp_path, monkeypatch):
    tools = classroom.Tools(tmp_path)
    ran: list[list[str]] = []
    monkeypatch.setattr(classroom, "_run", lambda command, what, say: ran.append([str(x) for x in command]))
    said: list[str] = []
    classroom.install_tools(tmp_path, said.append)  # nothing there: a venv, JupyterHub, its single-user side, the proxy
    assert [command[-1] for command in ran] == [
        str(tools.hub_venv),
        f"jupyterhub=={classroom.HUB_VERSION}",
        f"jupyterhub=={classroom.HUB_VERSION}",
        f"configurable-http-proxy@{classroom.PROXY_VERSION}",
    ]
    assert "--no-deps" in ran[2] and "First rehearsal" in said[0]
    tools.hub.parent.mkdir(parents=True)
    tools.hub.touch()
    (tools.hub_venv / "lib" / "python3" / "site-packages" / f"jupyterhub-{classroom.HUB_VERSION}.dist-info").mkdir(
        parents=True
    )
    (tools.singleuser / f"jupyterhub-{classroom.HUB_VERSION}.dist-info").mkdir(parents=True)
    package = tools.folder / "proxy" / "node_modules" / "configurable-http-proxy" / "package.json"
    package.parent.mkdir(parents=True)
    package.write_text(f'{{"version": "{classroom.PROXY_VERSION}"}}')
    ran.clear()
    said.clear()
    assert classroom.install_tools(tmp_path, said.append) == tools
    assert ran == [] and said == []


# The keys Zero to JupyterHub 4.4.0 reads (its jupyterhub/values.yaml): at the top, and under `singleuser`.
Z2JH_KEYS = {
    "cull", "custom", "debug", "enabled", "fullnameOverride", "global", "httpRoute", "hub", "imagePullSecret",
    "imagePullSecrets", "ingress", "nameOverride", "prePuller", "proxy", "rbac", "scheduling", "singleuser",
}  # fmt: skip
Z2JH_SINGLEUSER_KEYS = {
    "allowPrivilegeEscalation", "cloudMetadata", "cmd", "cpu", "defaultUrl", "events", "extraAnnotations",
    "extraContainers", "extraEnv", "extraFiles", "extraLabels", "extraNodeAffinity", "extraPodAffinity",
    "extraPodAntiAffinity", "extraPodConfig", "extraResource", "extraTolerations", "fsGid", "image", "initContainers",
    "lifecycleHooks", "memory", "networkPolicy", "networkTools", "nodeSelector", "podNameTemplate", "profileList",
    "serviceAccountName", "startTimeout", "storage", "uid",
}  # fmt: skip


def test_the_z2jh_values_file_is_yaml_with_the_keys_zero_to_jupyterhub_reads():
    values = yaml.safe_load((repo_root() / "docs" / "classroom" / "z2jh-values.yaml").read_text())
    assert set(values) <= Z2JH_KEYS and set(values["singleuser"]) <= Z2JH_SINGLEUSER_KEYS
    singleuser = values["singleuser"]
    assert singleuser["image"]["name"].endswith("/prefect3-hands-on") and singleuser["image"]["tag"]
    assert set(singleuser["memory"]) == {"guarantee", "limit"} and set(singleuser["cpu"]) == {"guarantee", "limit"}
    lesson = singleuser["defaultUrl"].removeprefix("/lab/tree/")
    assert (repo_root() / lesson).is_file()  # the lesson the learner lands on exists (repo2docker puts the repo in ~)
    assert values["hub"]["config"]["JupyterHub"]["authenticator_class"] == "shared-password"


needs_tools = pytest.mark.skipif(
    (MISSING or not shutil.which("npm")) and not os.environ.get("CI"),
    reason=f"{WHY_MISSING}, or npm is missing (apt-get install npm): the rehearsal needs both",
)


@needs_tools
@pytest.mark.timeout(900)  # one learner takes about 1-2 min; under the suite's 4 workers on 2 cores, longer
def test_a_real_rehearsal_with_one_learner_passes_and_leaves_nothing_running():
    said: list[str] = []
    started = time.monotonic()
    code = classroom.rehearse(1, say=said.append)
    print(f"rehearse(1) took {time.monotonic() - started:.0f} s:", *said, sep="\n")
    assert code == 0, said
    line = next(s for s in said if s.startswith("learner1: "))
    found = re.fullmatch(
        r"learner1: passed; Run All ([\d.]+) s; peak memory (\d+) MB \(PSS; RSS summed (\d+) MB\); CPU (\d+) s", line
    )
    assert found, line
    assert 0 < float(found[1]) < classroom.RUN_ALL_TIMEOUT_S and 200 < int(found[2]) <= int(found[3])
    assert int(found[4]) >= 5  # a server, a kernel, a Prefect server and its database all started and worked
    root = re.search(r"under (\S+)$", next(s for s in said if s.startswith("JupyterHub "))).group(1)
    assert not Path(root).exists()
    assert classroom.processes_by_environment(classroom.MARKER, [root])[root] == []


@needs_tools
def test_ctrl_c_stops_the_hub_and_its_proxy(monkeypatch):
    async def interrupted(plan, browser):
        raise KeyboardInterrupt

    monkeypatch.setattr(classroom, "run_learners", interrupted)
    said: list[str] = []
    with pytest.raises(KeyboardInterrupt):
        classroom.rehearse(1, say=said.append)
    root = re.search(r"under (\S+)$", next(s for s in said if s.startswith("JupyterHub "))).group(1)
    assert classroom.processes_by_environment(classroom.MARKER, [root])[root] == []
    assert not Path(root).exists() and said[-1].startswith("Stopped the hub")
