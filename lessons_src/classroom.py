"""A classroom rehearsal: a real local JupyterHub whose N learners run the 01 lesson at once in headless Chromium.

`python -m lessons_src classroom rehearse --learners 3` installs JupyterHub and its proxy on first use into
`<course home>/classroom/` (never into the course's `.venv`), starts the hub on 127.0.0.1 with one account per
learner, logs every learner in through a Chromium page of their own, runs All in their copy of the lesson, samples
each learner's memory, prints one line per learner and stops everything it started.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psutil

from lessons_src import server
from lessons_src.browser import CHROMIUM, CHROMIUM_ARGS, KERNEL_IDLE, NOTEBOOK_REPORT
from lessons_src.paths import course_home, repo_root
from lessons_src.processes import free_port, log_tail, port_is_free, terminate

HUB_VERSION = "5.5.4"  # the `jupyterhub` wheel on the package index
PROXY_VERSION = "5.3.0"  # `configurable-http-proxy` on the npm registry
HOST = "127.0.0.1"
LESSON = "01_flows_and_tasks.ipynb"
MARKER = "COURSE_CLASSROOM"  # set in every process the rehearsal starts (to the rehearsal's folder), to stop them all
HUB_START_TIMEOUT_S = 60.0
SPAWN_TIMEOUT_S = 300.0  # log in, start the single-user server, open the lesson, start its kernel
RUN_ALL_TIMEOUT_S = 600.0
SAMPLE_EVERY_S = 1.0
MB = 1024 * 1024
LOOPBACK = {"127.0.0.1", "::1"}
# Started by the hub with the course's Python: JupyterHub's single-user extension, imported from the folder the
# rehearsal installed it into, in this process only (the kernels it starts do not see that folder).
SINGLEUSER_LAUNCHER = "import sys; sys.path.insert(0, sys.argv.pop(1)); from jupyterhub.singleuser import main; main()"

# Run All is over when the kernel is idle and every cell ran, or an unplanned error stopped it.
RUN_ALL_DONE = (
    f"() => {{ const r = ({NOTEBOOK_REPORT})(); "
    "return r.busy === 'idle' && (r.unrun === 0 || r.unplanned.length > 0); }"
)


class ClassroomError(RuntimeError):
    """The rehearsal could not be set up (a tool missing, an install or the hub failed); the message says why."""


@dataclass(frozen=True)
class Tools:
    """What the rehearsal installs once into `<course home>/classroom/`: the hub, its proxy, the single-user side."""

    folder: Path

    @property
    def hub_venv(self) -> Path:
        """A virtual environment of its own with JupyterHub and its dependencies."""
        return self.folder / "hub-venv"

    @property
    def hub(self) -> Path:
        """The `jupyterhub` command."""
        return self.hub_venv / "bin" / "jupyterhub"

    @property
    def proxy(self) -> Path:
        """The `configurable-http-proxy` command, installed with npm."""
        return self.folder / "proxy" / "node_modules" / ".bin" / "configurable-http-proxy"

    @property
    def singleuser(self) -> Path:
        """JupyterHub's package alone (no dependencies), which the course's Python imports its single-user side from."""
        return self.folder / "singleuser"


@dataclass(frozen=True)
class Learner:
    """One learner account: its name, its folder (the server's home and notebook folder) and its course port."""

    name: str
    folder: Path
    course_port: int

    @property
    def home(self) -> Path:
        """The learner's own course home (`COURSE_HOME`): course server, database, demo API, logs."""
        return self.folder / ".course"


@dataclass(frozen=True)
class Plan:
    """Everything one rehearsal uses: its folder, learners, ports and the shared password of the learner accounts."""

    root: Path
    learners: tuple[Learner, ...]
    public_port: int
    hub_port: int
    proxy_api_port: int
    password: str = field(repr=False)

    @property
    def url(self) -> str:
        """Where learners' browsers reach the hub (through its proxy)."""
        return f"http://{HOST}:{self.public_port}"


@dataclass(frozen=True)
class Result:
    """What one learner's rehearsal came to."""

    name: str
    problem: str | None  # None: passed
    run_all_seconds: float | None
    peak_mb: float
    peak_rss_mb: float
    cpu_seconds: float

    @property
    def passed(self) -> bool:
        """True when every code cell ran and no error came from a cell not tagged raises-exception."""
        return self.problem is None


def learner_ports(count: int, is_free: Callable[[int], bool] | None = None) -> list[int]:
    """Return `count` different free ports of the course server's range, from its top down, one per learner.

    Each learner's course server tries its own port first (`COURSE_PORT`), so N servers starting at once do not all
    race for 4200, and the top of the range keeps them away from the ports a learner's or the test suite's take.
    """
    check = is_free or (lambda port: port_is_free(HOST, port))
    ports = [port for port in reversed(server.PORT_RANGE) if check(port)][:count]
    if len(ports) < count:
        raise ClassroomError(f"only {len(ports)} free ports in {server.PORT_RANGE} for {count} learners' servers")
    return ports


def make_plan(root: Path, count: int) -> Plan:
    """Return the plan of a rehearsal with `count` learners in `root`: names, folders, free ports, a new password."""
    if count < 1:
        raise ValueError(f"a rehearsal needs at least one learner, got {count}")
    ports = learner_ports(count)
    learners = tuple(
        Learner(f"learner{i}", root / "learners" / f"learner{i}", port) for i, port in enumerate(ports, start=1)
    )
    public, hub, api = _different_free_ports(3)
    return Plan(root, learners, public, hub, api, secrets.token_urlsafe(16))


def _different_free_ports(count: int) -> list[int]:
    """Return `count` distinct ports the system says are free now."""
    ports: set[int] = set()
    while len(ports) < count:
        ports.add(free_port(HOST))
    return sorted(ports)


def learner_environment(learner: Learner, root: Path) -> dict[str, str]:
    """Return what the spawner adds to a learner's environment: their course home and port, and the marker."""
    return {"COURSE_HOME": str(learner.home), server.PORT_SETTING: str(learner.course_port), MARKER: str(root)}


def hub_config(plan: Plan, tools: Tools) -> str:
    """Return the hub's `jupyterhub_config.py`: loopback only, shared-password accounts, a local process per learner."""
    environments = {learner.name: learner_environment(learner, plan.root) for learner in plan.learners}
    state = plan.root / "hub"
    settings = {
        "JupyterHub.bind_url": f"http://{HOST}:{plan.public_port}",
        "JupyterHub.hub_bind_url": f"http://{HOST}:{plan.hub_port}",
        "JupyterHub.db_url": f"sqlite:///{state / 'jupyterhub.sqlite'}",
        "JupyterHub.cookie_secret_file": str(state / "jupyterhub_cookie_secret"),
        "JupyterHub.cleanup_servers": True,
        "JupyterHub.cleanup_proxy": True,
        "ConfigurableHTTPProxy.command": [str(tools.proxy)],
        "ConfigurableHTTPProxy.api_url": f"http://{HOST}:{plan.proxy_api_port}",
        "ConfigurableHTTPProxy.pid_file": str(state / "proxy.pid"),
        "JupyterHub.authenticator_class": "shared-password",
        "SharedPasswordAuthenticator.user_password": plan.password,
        "Authenticator.allowed_users": sorted(environments),
        "JupyterHub.spawner_class": "jupyterhub.spawner.SimpleLocalProcessSpawner",
        "SimpleLocalProcessSpawner.home_dir_template": str(plan.root / "learners" / "{username}"),
        "Spawner.ip": HOST,
        "Spawner.cmd": [sys.executable, "-c", SINGLEUSER_LAUNCHER, str(tools.singleuser)],
        "Spawner.args": ["--allow-root", "--LabApp.expose_app_in_browser=True"],
        "Spawner.default_url": f"/lab/tree/{LESSON}",
        "Spawner.start_timeout": int(SPAWN_TIMEOUT_S),
        "Spawner.http_timeout": int(SPAWN_TIMEOUT_S),
    }
    lines = [
        "# Written by lessons_src.classroom for one rehearsal; removed with it.",
        f"ENVIRONMENTS = {json.dumps(environments, indent=4)}",
        "",
        "",
        "def learner_environment(spawner):",
        "    spawner.environment = {**spawner.environment, **ENVIRONMENTS[spawner.user.name]}  # a dict of its own",
        "",
        "",
        "c.Spawner.pre_spawn_hook = learner_environment",
    ]
    lines += [f"c.{name} = {value!r}" for name, value in settings.items()]
    return "\n".join(lines) + "\n"


def judge(report: dict[str, Any]) -> str | None:
    """Return why the page's notebook report is not a pass (cells unrun, an unplanned error), or None when it is."""
    if not report.get("cells"):
        return "the page showed no code cells"
    if report.get("unplanned"):
        return f"an error outside cells tagged raises-exception, in: {report['unplanned'][0]!r}"
    if report.get("unrun"):
        return f"{report['unrun']} of {report['cells']} code cells did not run"
    return None


def report_line(result: Result) -> str:
    """Return the one line printed for a learner: passed or not, Run All seconds, peak memory, CPU time."""
    verdict = "passed" if result.passed else f"FAILED ({result.problem})"
    seconds = "-" if result.run_all_seconds is None else f"{result.run_all_seconds:.1f} s"
    return (
        f"{result.name}: {verdict}; Run All {seconds}; peak memory {result.peak_mb:.0f} MB "
        f"(PSS; RSS summed {result.peak_rss_mb:.0f} MB); CPU {result.cpu_seconds:.0f} s"
    )


def _run(command: Sequence[str], what: str, say: Callable[[str], None]) -> None:
    """Run an install command; on failure raise ClassroomError with the end of its output."""
    say(f"  {' '.join(str(part) for part in command)}")
    done = subprocess.run([str(part) for part in command], capture_output=True, text=True)
    if done.returncode != 0:
        tail = "\n".join((done.stdout + done.stderr).splitlines()[-15:])
        raise ClassroomError(f"installing {what} failed (exit {done.returncode}):\n{tail}")


def _has_wheel(site: Path, version: str) -> bool:
    """Return True when JupyterHub `version` is installed under `site` (a site-packages or --target folder)."""
    return any(site.glob(f"**/jupyterhub-{version}.dist-info"))


def _installed_proxy_version(tools: Tools) -> str | None:
    """Return the version of configurable-http-proxy npm installed in the tools folder, or None."""
    package = tools.folder / "proxy" / "node_modules" / "configurable-http-proxy" / "package.json"
    try:
        return json.loads(package.read_text())["version"]
    except (FileNotFoundError, KeyError, json.JSONDecodeError):
        return None


def install_tools(folder: Path, say: Callable[[str], None]) -> Tools:
    """Install JupyterHub and its proxy into `folder` unless they are there already, saying what it installs."""
    tools = Tools(folder)
    folder.mkdir(parents=True, exist_ok=True)
    if not (tools.hub.exists() and _has_wheel(tools.hub_venv / "lib", HUB_VERSION)):
        say(f"First rehearsal on this machine: installing JupyterHub {HUB_VERSION} into {tools.hub_venv} (about 1 min)")
        _run([sys.executable, "-m", "venv", "--clear", tools.hub_venv], "a virtual environment for JupyterHub", say)
        _run(
            [tools.hub_venv / "bin" / "python", "-m", "pip", "install", "-q", f"jupyterhub=={HUB_VERSION}"],
            "JupyterHub",
            say,
        )
    if not _has_wheel(tools.singleuser, HUB_VERSION):
        say(f"Installing JupyterHub {HUB_VERSION}'s single-user side (no dependencies) into {tools.singleuser}")
        command = [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--upgrade", "--target", tools.singleuser]
        _run([*command, f"jupyterhub=={HUB_VERSION}"], "JupyterHub's single-user side", say)
    if _installed_proxy_version(tools) != PROXY_VERSION:
        npm = shutil.which("npm")
        if npm is None or shutil.which("node") is None:
            raise ClassroomError(
                "the hub's proxy needs Node.js and npm: install them (e.g. apt-get install nodejs npm)"
            )
        say(f"Installing configurable-http-proxy {PROXY_VERSION} with npm into {folder / 'proxy'}")
        _run(
            [npm, "install", "--silent", "--prefix", folder / "proxy", f"configurable-http-proxy@{PROXY_VERSION}"],
            "the proxy",
            say,
        )
    return tools


def chromium() -> Path:
    """Return Debian's Chromium (or `COURSE_CHROMIUM`), which Playwright drives; ClassroomError when there is none."""
    found = CHROMIUM
    if not Path(found).exists():
        raise ClassroomError(
            "the rehearsal drives Chromium: install it (apt-get install chromium) or set COURSE_CHROMIUM"
        )
    return Path(found)


def prepare(plan: Plan, tools: Tools) -> Path:
    """Give every learner a folder with their own copy of the lesson; write the hub's config; return its path."""
    for learner in plan.learners:
        learner.folder.mkdir(parents=True)
        shutil.copy(repo_root() / "notebooks" / LESSON, learner.folder / LESSON)
    state = plan.root / "hub"
    state.mkdir()
    config = state / "jupyterhub_config.py"
    config.write_text(hub_config(plan, tools))
    return config


def start_hub(plan: Plan, tools: Tools, config: Path) -> subprocess.Popen:
    """Start JupyterHub (it starts its proxy) and return it once its API answers through the proxy."""
    log = plan.root / "hub.log"
    with open(log, "ab") as output:
        hub = subprocess.Popen(
            [str(tools.hub), "-f", str(config)],
            cwd=config.parent,
            env={**os.environ, MARKER: str(plan.root)},
            stdout=output,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    deadline = time.monotonic() + HUB_START_TIMEOUT_S
    while time.monotonic() < deadline:
        if hub.poll() is not None:
            raise ClassroomError(f"JupyterHub exited at start (code {hub.returncode}):\n{log_tail(log)}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{plan.url}/hub/api/", timeout=2).status_code == 200:
                return hub
        time.sleep(0.3)
    raise ClassroomError(f"JupyterHub did not answer within {HUB_START_TIMEOUT_S:g} s:\n{log_tail(log)}")


def _environ(process: psutil.Process) -> dict[str, str]:
    """Return a process's environment, or {} when it cannot be read (gone, another user's on some systems)."""
    try:
        return process.environ()
    except psutil.Error:
        return {}


def processes_by_environment(key: str, values: Iterable[str]) -> dict[str, list[psutil.Process]]:
    """Return, for each of `values`, the processes whose environment sets `key` to it, and everything they started."""
    found: dict[str, dict[int, psutil.Process]] = {value: {} for value in values}
    for process in psutil.process_iter():
        group = found.get(_environ(process).get(key, ""))
        if group is not None and process.pid not in group:
            group[process.pid] = process
            with contextlib.suppress(psutil.Error):
                group.update((child.pid, child) for child in process.children(recursive=True))
    return {value: list(group.values()) for value, group in found.items()}


def memory_bytes(processes: Iterable[psutil.Process]) -> tuple[int, int]:
    """Return (PSS, RSS) summed over `processes`: PSS splits shared pages among their users, RSS counts them in each."""
    pss = rss = 0
    for process in processes:
        with contextlib.suppress(psutil.Error):
            info = process.memory_full_info()
            rss += info.rss
            pss += getattr(info, "pss", info.rss)  # PSS is Linux's; elsewhere RSS is the closest
    return pss, rss


def cpu_seconds(processes: Iterable[psutil.Process]) -> dict[int, float]:
    """Return the CPU time (user and system, in seconds) each of `processes` has used so far, by pid."""
    used = {}
    for process in processes:
        with contextlib.suppress(psutil.Error):
            times = process.cpu_times()
            used[process.pid] = times.user + times.system
    return used


def exposed_listeners(processes: Iterable[psutil.Process]) -> set[str]:
    """Return the addresses `processes` listen on beyond loopback (`ip:port`), which a rehearsal must not open."""
    exposed = set()
    for process in processes:
        with contextlib.suppress(psutil.Error):
            for connection in process.net_connections("inet"):
                if connection.status == psutil.CONN_LISTEN and connection.laddr.ip not in LOOPBACK:
                    exposed.add(f"{connection.laddr.ip}:{connection.laddr.port}")
    return exposed


class Sampler:
    """Sample each learner's process tree every second in a thread: peak PSS and RSS, CPU time, exposed listeners."""

    def __init__(self, homes: dict[str, Path], marker: tuple[str, str], every: float = SAMPLE_EVERY_S) -> None:
        """Watch the learners `homes` (name: course home) and every process carrying the environment `marker`."""
        self.homes = homes
        self.marker = marker
        self.every = every
        self.peak = dict.fromkeys(homes, (0, 0))
        self._cpu: dict[str, dict[int, float]] = {name: {} for name in homes}
        self.exposed: set[str] = set()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="classroom-sampler", daemon=True)

    def sample(self) -> None:
        """Take one sample of every learner's memory and of every marked process's listening sockets."""
        trees = processes_by_environment("COURSE_HOME", [str(home) for home in self.homes.values()])
        for name, home in self.homes.items():
            pss, rss = memory_bytes(trees[str(home)])
            best = self.peak[name]
            self.peak[name] = (max(best[0], pss), max(best[1], rss))
            self._cpu[name].update(cpu_seconds(trees[str(home)]))  # a process's last sample stays once it ends
        key, value = self.marker
        self.exposed |= exposed_listeners(processes_by_environment(key, [value])[value])

    def cpu(self, name: str) -> float:
        """Return the CPU seconds the learner's processes used, as sampled (a process shorter than 1 s is missed)."""
        return sum(self._cpu[name].values())

    def _loop(self) -> None:
        while not self._stop.wait(self.every):
            self.sample()

    def __enter__(self) -> Sampler:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join()


@dataclass
class PageOutcome:
    """What a learner's page reported: the problem (None: passed) and the Run All seconds when it got that far."""

    problem: str | None
    seconds: float | None = None


async def _learner_runs_the_lesson(browser: Any, plan: Plan, learner: Learner) -> PageOutcome:
    """Log `learner` in through the hub in a page of their own, run all cells of their lesson, read the report."""
    context = await browser.new_context(viewport={"width": 1400, "height": 1000})
    try:
        page = await context.new_page()
        await page.goto(f"{plan.url}/hub/login", timeout=60_000)
        await page.fill("#username_input", learner.name)
        await page.fill("#password_input", plan.password)
        await page.click("#login_submit")
        await page.wait_for_function(KERNEL_IDLE, timeout=SPAWN_TIMEOUT_S * 1000, polling=500)
        started = time.monotonic()
        await page.evaluate("() => window.jupyterapp.commands.execute('notebook:run-all-cells')")
        await page.wait_for_function(RUN_ALL_DONE, timeout=RUN_ALL_TIMEOUT_S * 1000, polling=500)
        seconds = time.monotonic() - started
        return PageOutcome(judge(await page.evaluate(NOTEBOOK_REPORT)), seconds)
    except Exception as error:  # a page that times out or crashes fails this learner, not the others
        return PageOutcome(f"{type(error).__name__}: {(str(error).strip().splitlines() or [''])[0]}")
    finally:
        await context.close()


async def run_learners(plan: Plan, browser_path: Path) -> list[PageOutcome]:
    """Run every learner's lesson at the same time, each in a browser context (cookies) of their own."""
    from playwright.async_api import async_playwright

    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=str(browser_path), args=CHROMIUM_ARGS)
        try:
            return list(await asyncio.gather(*(_learner_runs_the_lesson(browser, plan, x) for x in plan.learners)))
        finally:
            await browser.close()


def stop_everything(plan: Plan, hub: subprocess.Popen | None) -> None:
    """Stop the hub (it stops the servers and its proxy), each learner's course services, then anything left."""
    from lessons_src.cli import stop_course_services

    if hub is not None and hub.poll() is None:
        hub.terminate()  # JupyterHub stops the single-user servers and the proxy on SIGTERM (cleanup_* settings)
        with contextlib.suppress(subprocess.TimeoutExpired):
            hub.wait(timeout=30)
        terminate(hub)
    for learner in plan.learners:
        if learner.home.exists():
            with contextlib.suppress(Exception):  # stop the others even if one learner's services resist
                stop_course_services(learner.home)
    for process in processes_by_environment(MARKER, [str(plan.root)])[str(plan.root)]:
        terminate(process.pid)


def rehearse(learners: int, say: Callable[[str], None] = print) -> int:
    """Rehearse a class of `learners` on a real local JupyterHub; print one line per learner; 0 when all passed."""
    if learners < 1:
        say(f"error: --learners must be 1 or more, got {learners}")
        return 2
    try:
        tools = install_tools(course_home() / "classroom", say)
        browser_path = chromium()
    except ClassroomError as error:
        say(f"error: {error}")
        return 2
    root = Path(tempfile.mkdtemp(prefix="course-classroom-"))
    plan = hub = None
    try:
        plan = make_plan(root, learners)
        config = prepare(plan, tools)
        say(
            f"JupyterHub {HUB_VERSION} at {plan.url} (proxy {PROXY_VERSION}), {learners} learner(s) "
            f"({', '.join(x.name for x in plan.learners)}), each with a course home of their own under {root}"
        )
        hub = start_hub(plan, tools, config)
        say(f"Every learner logs in and runs All in {LESSON} at the same time in headless Chromium...")
        homes = {learner.name: learner.home for learner in plan.learners}
        with Sampler(homes, (MARKER, str(root))) as sampler:
            outcomes = asyncio.run(run_learners(plan, browser_path))
        results = [
            Result(
                x.name, outcome.problem, outcome.seconds, *(b / MB for b in sampler.peak[x.name]), sampler.cpu(x.name)
            )
            for x, outcome in zip(plan.learners, outcomes, strict=True)
        ]
        for result in results:
            say(report_line(result))
        if sampler.exposed:
            say(f"FAILED: listening beyond 127.0.0.1: {', '.join(sorted(sampler.exposed))}")
        else:
            say("Every process of the rehearsal listened on 127.0.0.1 only.")
        if not all(result.passed for result in results):
            say(f"Last lines of the hub's log:\n{log_tail(root / 'hub.log')}")
        return 0 if all(result.passed for result in results) and not sampler.exposed else 1
    except ClassroomError as error:
        say(f"error: {error}")
        return 2
    finally:
        if plan is not None:
            stop_everything(plan, hub)
        shutil.rmtree(root, ignore_errors=True)
        say("Stopped the hub, its proxy, the learners' servers, kernels, course servers, databases and demo APIs.")
