"""The course's command line: `python -m lessons_src server|demo-api|course|test|site ...`."""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

from lessons_src import demo_api, server
from lessons_src.demo_api import DemoAPIError
from lessons_src.paths import course_home_at, repo_root

TEST_HOMES = "COURSE_TEST_HOMES"  # the folder under which each test process makes its own course home
TEST_WORKERS = 4  # test processes on a 2-core machine: 6 made it CPU-bound and timing checks met other work


def _server(action: str) -> int:
    if action == "start":
        already = server.running_server()
        info = already or server.start_server()
        print(
            ("Already running" if already else "Started")
            + f": Prefect UI {server.ui_address(info)}  API {info.api_url}"
        )
    elif action == "stop":
        print("Stopped the course server." if server.stop_server() else "The course server was not running.")
    elif action == "status":
        print("Course server " + server.server_status())
        return 0 if server.running_server() else 1
    elif action == "migrate":
        server.migrate_database()
        print(f"Course database ready in {server.prefect_home()}")
    elif action == "reset":
        info = server.reset_server()
        print("Wiped the course database (flows, runs, limits, variables).")
        print(
            f"Restarted: Prefect UI {info.url}" if info else "Start the server with: python -m lessons_src server start"
        )
    return 0


def _demo_api(action: str) -> int:
    if action == "start":
        print(f"Demo API running at {demo_api.start_demo_api().url}")
    elif action == "stop":
        demo_api.stop_demo_api()
        print("Demo API stopped.")
    elif action == "status":
        print("Demo API " + demo_api.demo_api_status())
    return 0


def _notebooks(action: str) -> int:
    from lessons_src import notebooks

    if action == "time":
        server.start_server()
        rows = ["| Notebook | Run All, cells only (s) |", "|---|---|"]
        for path in notebooks.course_notebooks():
            rows.append(f"| {path.name} | {notebooks.run_all_seconds(path):.1f} |")
            print(rows[-1], flush=True)
        guide = notebooks.write_timings("\n".join(rows))
        print(f"Wrote the table into {guide}")
        return 0
    if action == "tidy":
        changed = notebooks.tidy_all()
        print("\n".join(f"tidied {p.name}" for p in changed) or "All notebooks already tidy.")
        return 0
    untidy = notebooks.untidy_notebooks()
    for path in untidy:
        print(f"{path.name}: has outputs or stale navigation; run `python -m lessons_src notebooks tidy`")
    return 1 if untidy else 0


def _doctor() -> int:
    from lessons_src.doctor import run_doctor

    results = run_doctor()
    failed = [r for r in results if not r.ok]
    print(f"{len(results) - len(failed)} passed, {len(failed)} failed")
    return 1 if failed else 0


def _site(pairs: Sequence[str]) -> int:
    """Build the website from freshly executed notebooks; stop the course services afterwards if it started them."""
    from lessons_src.notebooks import course_notebooks
    from lessons_src.site import build_site, pages_url

    unknown = sorted(set(pairs) - {p.name[:2] for p in course_notebooks()})
    if unknown:
        print(f"error: no pair {', '.join(unknown)}; pairs are two digits, e.g. --pairs 01,02", file=sys.stderr)
        return 2
    server_was_running = server.running_server() is not None
    api_was_running = demo_api.running_demo_api() is not None
    try:
        server.start_server()
        built = build_site(pairs)
    finally:
        if not api_was_running:
            demo_api.stop_demo_api()
        if not server_was_running:
            server.stop_server()
    print(
        f"Built {len(built.pages)} notebook pages with {built.figures} figures into {built.folder} "
        f"in {built.seconds:.0f} s. Open {built.folder / 'index.html'}; published at {pages_url()}"
    )
    return 0


def _progress(patterns: Sequence[str]) -> int:
    """Print this learner's progress table, or with patterns the class view of every course home they match."""
    from lessons_src import progress

    if not patterns:
        print(progress.learner_table(progress.read_progress()))
        return 0
    homes = progress.find_homes(patterns)
    if not homes:
        print(f"No course home with a {progress.FILE_NAME} matches {' '.join(patterns)}", file=sys.stderr)
        return 1
    print(progress.class_view(progress.read_progress(home) for home in homes))
    return 0


def _jupyter_lab_command() -> list[str]:
    command = [sys.executable, "-m", "jupyter", "lab", "--notebook-dir", str(repo_root() / "notebooks")]
    if getattr(os, "geteuid", lambda: 1)() == 0:  # JupyterLab refuses to run as root unless told to (containers, CI)
        command.append("--allow-root")
    return command


def _course() -> int:
    info = server.running_server() or server.start_server()
    print(f"Course server running. Prefect UI: {info.url}")
    print("Opening JupyterLab on notebooks/ (Ctrl+C to quit; the Prefect server keeps running:")
    print("  stop it with `python -m lessons_src server stop`).")
    env = {**os.environ, "PREFECT_API_URL": info.api_url, "PREFECT_HOME": str(server.prefect_home())}
    return subprocess.call(_jupyter_lab_command(), env=env)


def _notebook_targets(pairs: Sequence[str]) -> list[str]:
    """Return what pytest should collect of notebooks/: the folder, or only the lessons of the chosen pairs."""
    if not pairs:
        return ["notebooks"]
    from lessons_src.notebooks import course_notebooks

    return [f"notebooks/{p.name}" for p in course_notebooks() if p.name[:2] in pairs]


def stop_course_services(home: Path) -> None:
    """Stop the demo API, the course server and its database recorded in the course home `home`."""
    with course_home_at(home):
        demo_api.stop_demo_api()
        server.stop_server()


def remove_test_homes(homes: Path) -> None:
    """Stop the services of every course home under `homes` (one per test process), then remove the folder."""
    for home in sorted(p for p in homes.iterdir() if p.is_dir()):
        stop_course_services(home)
    shutil.rmtree(homes, ignore_errors=True)


def _test(pytest_args: Sequence[str], pairs: Sequence[str] = (), workers: int = TEST_WORKERS) -> int:
    """Run lint, unit tests and the notebooks (of `pairs`, or all) in course homes of their own; stop all they start.

    A learner's running course server and demo API are never used, reset or stopped: each test process gets its own
    course home under a temporary folder (tests/conftest.py), and everything started there is stopped at the end.
    """
    root = repo_root()
    sources = ["lessons_src", "tests", "flows", "course.py"]
    lint = subprocess.call([sys.executable, "-m", "ruff", "check", *sources], cwd=root)
    fmt = subprocess.call([sys.executable, "-m", "ruff", "format", "--check", *sources], cwd=root)
    homes = Path(tempfile.mkdtemp(prefix="course-test-"))
    try:
        tests = subprocess.call(
            [
                sys.executable,
                "-m",
                "pytest",
                "--nbval-lax",
                "--nbval-current-env",
                "--nbval-cell-timeout=180",
                f"--numprocesses={workers}",  # most of the suite waits (flow runs, retry delays, HTTP): overlap it
                "--dist=loadscope",  # a notebook's cells, a test module or a test class stay together on one worker
                "--timeout=600",  # a hung test fails alone, with its stack, long before CI's limit
                "--durations=15",  # the slowest tests, in every run, so a regression shows
                # tests/test_exercises_in_kernels.py runs the exercises notebooks and reads what their checks print
                "--ignore-glob=notebooks/*_exercises.ipynb",
                "tests",
                *_notebook_targets(pairs),
                *([f"--pairs={','.join(pairs)}"] if pairs else []),
                *pytest_args,
            ],
            cwd=root,
            env={**os.environ, TEST_HOMES: str(homes)},
        )
    finally:
        remove_test_homes(homes)
    return tests or lint or fmt


def main(argv: Sequence[str] | None = None) -> int:
    """Parse the command line and run the chosen command; return its exit code."""
    parser = argparse.ArgumentParser(prog="python -m lessons_src", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    server_parser = commands.add_parser("server", help="the course's Prefect server")
    server_parser.add_argument("action", choices=["start", "stop", "status", "reset", "migrate"])
    api_parser = commands.add_parser("demo-api", help="the course's demo HTTP API")
    api_parser.add_argument("action", choices=["start", "stop", "status"])
    notebooks_parser = commands.add_parser(
        "notebooks", help="tidy: strip outputs and regenerate navigation; check: fail if untidy; time: Run All seconds"
    )
    notebooks_parser.add_argument("action", choices=["tidy", "check", "time"])
    commands.add_parser("doctor", help="check this machine before class: versions, ports, disk, server, demo API")
    commands.add_parser("course", help="start the server and open JupyterLab on the notebooks")
    progress_parser = commands.add_parser(
        "progress", help="this learner's exercise verdicts; with --class, every learner's course home it matches"
    )
    progress_parser.add_argument(
        "--class",
        dest="homes",
        nargs="+",
        default=[],
        metavar="PATTERN",
        help="course homes to collect, e.g. '/home/*/prefect3-hands-on/.course'",
    )
    classroom_parser = commands.add_parser(
        "classroom", help="rehearse: a real local JupyterHub whose learners all run the 01 lesson at once"
    )
    classroom_parser.add_argument("action", choices=["rehearse"])
    classroom_parser.add_argument("--learners", type=int, default=3, help="how many learner accounts (default 3)")
    site_parser = commands.add_parser("site", help="execute every notebook and build the website into _site/")
    site_parser.add_argument(
        "--pairs", type=lambda text: text.split(","), default=[], help="only these pairs' notebooks, e.g. 01"
    )
    test_parser = commands.add_parser("test", help="lint, unit tests and every notebook (nbval)")
    test_parser.add_argument(
        "--workers", type=int, default=TEST_WORKERS, help="test processes (each with its own course home)"
    )
    test_parser.add_argument(
        "--pairs", type=lambda text: text.split(","), default=[], help="only these pairs' notebooks and tests, e.g. 01"
    )
    test_parser.add_argument("pytest_args", nargs=argparse.REMAINDER, help="extra arguments for pytest")
    args, unknown = parser.parse_known_args(argv)  # `test` hands options it does not know to pytest
    if unknown and args.command != "test":
        parser.error(f"unrecognized arguments: {' '.join(unknown)}")
    try:
        if args.command == "server":
            return _server(args.action)
        if args.command == "demo-api":
            return _demo_api(args.action)
        if args.command == "notebooks":
            return _notebooks(args.action)
        if args.command == "doctor":
            return _doctor()
        if args.command == "course":
            return _course()
        if args.command == "classroom":
            from lessons_src.classroom import rehearse

            return rehearse(args.learners)
        if args.command == "progress":
            return _progress(args.homes)
        if args.command == "site":
            return _site(args.pairs)
        return _test([*unknown, *args.pytest_args], args.pairs, args.workers)
    except (server.CourseServerError, DemoAPIError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
