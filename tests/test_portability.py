"""lessons_src imports, and starts, finds, locks and stops its services, where POSIX-only modules are missing."""

import ast
import os
import subprocess
import sys
import textwrap

from lessons_src.paths import PACKAGE_DIR

POSIX_ONLY_MODULES = {"fcntl", "termios", "tty", "pty", "pwd", "grp", "resource", "posix", "syslog", "crypt"}
POSIX_ONLY_OS_CALLS = {"killpg", "getpgid", "setsid", "setpgrp", "geteuid", "getuid", "fork", "WNOHANG", "waitpid"}

WITHOUT_POSIX = textwrap.dedent(
    """
    import os, sys, warnings
    for name in ("fcntl", "termios"):
        sys.modules[name] = None  # importing them raises ImportError, as on Windows
    for name in ("killpg", "getpgid", "geteuid", "setsid"):
        delattr(os, name)
    warnings.simplefilter("ignore")  # filelock falls back to a soft lock and says so; on Windows it uses msvcrt
    import lessons_src, lessons_src.cli, lessons_src.doctor, lessons_src.checks, lessons_src.notebooks
    from lessons_src import processes, server
    from lessons_src.demo_api import demo_api_status, start_demo_api, stop_demo_api

    api = start_demo_api()
    assert processes.pid_alive(api.pid) and start_demo_api() == api, "started, found alive and reused"
    assert stop_demo_api() and not processes.pid_alive(api.pid), "stopped"
    assert demo_api_status().startswith("not running")
    assert server.running_server() is None and server.choose_port() in server.PORT_RANGE
    with processes.start_lock(server.course_home() / "test.lock"):
        pass
    assert "fcntl" not in sys.modules or sys.modules["fcntl"] is None
    print("ok")
    """
)


def test_the_package_runs_its_service_lifecycle_without_posix_only_modules(tmp_path):
    result = subprocess.run(
        [sys.executable, "-c", WITHOUT_POSIX],
        env={**os.environ, "COURSE_HOME": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0 and result.stdout.strip() == "ok", result.stderr[-3000:]


def test_no_module_of_the_package_imports_or_calls_posix_only_apis():
    found = []
    for path in sorted(PACKAGE_DIR.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                found += [f"{path.name}: import {a.name}" for a in node.names if a.name in POSIX_ONLY_MODULES]
            elif isinstance(node, ast.ImportFrom) and node.module in POSIX_ONLY_MODULES:
                found.append(f"{path.name}: from {node.module} import ...")
            elif isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "os":
                if node.attr in POSIX_ONLY_OS_CALLS:
                    found.append(f"{path.name}:{node.lineno}: os.{node.attr}")
    assert not found, "POSIX-only (fails on Windows): " + "; ".join(found)
