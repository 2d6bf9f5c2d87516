#!/usr/bin/env python3
"""The course's two commands on every platform, needing nothing but Python 3.

    python course.py          create .venv with a supported Python, install the pinned set, open the course
    python course.py test     the same setup, then lint, unit tests, the browser test and every notebook

Other commands are passed on to `python -m lessons_src` inside the environment (server, demo-api, doctor, notebooks),
and `install` only sets the environment up. Options: --python PATH (which Python to build .venv with), --venv DIR.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent
SUPPORTED = [(3, 14), (3, 13), (3, 12), (3, 11)]  # newest first; pyproject.toml's requires-python says the same
PINNED_FILES = ("requirements.txt", "constraints.txt", "pyproject.toml")
LAB_SETTINGS = ROOT / "jupyterlab" / "overrides.json"  # the course's JupyterLab settings, for every environment
# Installed by jupyter-events (it asks for jsonschema[format-nongpl]) and used by nothing here: it only lets jsonschema
# check the "iri" format. But jsonschema imports it whenever it is installed, and it builds ~35 Lark parsers on import:
# 1 s of CPU in every process that imports Prefect (`import prefect` took 2.1 s with it, 1.0 s without, measured here;
# python-jsonschema/jsonschema#1428). Every worker, flow-run process, kernel and test process pays it, so it goes.
UNUSED_SLOW_PACKAGES = ("rfc3987-syntax",)
INSTALL_HELP = """No supported Python (3.11 to 3.14) was found. Install one, then run this command again:
  Windows:        winget install Python.Python.3.13   (or python.org; then: py course.py)
  macOS:          brew install python@3.13             (or python.org)
  Debian/Ubuntu:  sudo apt install python3 python3-venv (if it is 3.11 or newer)
  or point at one: python course.py --python /path/to/python3.13"""


def venv_python(venv: Path) -> Path:
    """Return the interpreter inside a virtual environment."""
    return venv / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


def version_of(command: list[str]) -> tuple[int, int] | None:
    """Return (major, minor) of the Python that `command` runs, or None when it does not run."""
    try:
        out = subprocess.run(
            [*command, "-c", "import sys; print(*sys.version_info[:2])"], capture_output=True, text=True, timeout=30
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    parts = out.stdout.split()
    return (int(parts[0]), int(parts[1])) if out.returncode == 0 and len(parts) == 2 else None


def candidates() -> list[list[str]]:
    """Return the Python commands worth trying, this interpreter first."""
    found = [[sys.executable]]
    if os.name == "nt":
        found += [["py", f"-{major}.{minor}"] for major, minor in SUPPORTED]
    found += [[f"python{major}.{minor}"] for major, minor in SUPPORTED] + [["python3"], ["python"]]
    pyenv = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv")) / "versions"
    found += [[str(p)] for p in sorted(pyenv.glob("3.1[1-4]*/bin/python3"), reverse=True)]
    return found


def find_python(requested: str | None) -> list[str]:
    """Return a command that runs a supported Python: the requested one, or the first one found."""
    for command in [[requested]] if requested else candidates():
        if version_of(command) in SUPPORTED:
            return command
    if requested:
        sys.exit(f"{requested} is not Python 3.11 to 3.14 (or does not run).\n{INSTALL_HELP}")
    sys.exit(INSTALL_HELP)


def pins_digest(version: tuple[int, int]) -> str:
    """Return a digest of the pin files and the Python version, so a change of either reinstalls."""
    digest = hashlib.sha256(f"{version}".encode())
    for name in PINNED_FILES:
        digest.update((ROOT / name).read_bytes())
    return digest.hexdigest()


def install_lab_settings(prefix: Path) -> Path:
    """Put the course's JupyterLab settings (jupyterlab/overrides.json) where the JupyterLab of `prefix` reads them.

    They turn off the "get notified about official Jupyter news?" pop-up that otherwise covers the first lesson.
    """
    target = prefix / "share" / "jupyter" / "lab" / "settings" / "overrides.d" / "prefect-course.json"
    settings = LAB_SETTINGS.read_text()
    if not target.exists() or target.read_text() != settings:
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(settings)
    return target


def remove_unused_slow_packages(python: Path | str) -> None:
    """Uninstall UNUSED_SLOW_PACKAGES from the environment of `python` (nothing happens where they are absent)."""
    subprocess.run(
        [str(python), "-m", "pip", "uninstall", "--disable-pip-version-check", "--yes", "-qq", *UNUSED_SLOW_PACKAGES],
        cwd=ROOT,
        check=True,
    )


def ensure_environment(venv: Path, requested: str | None) -> Path:
    """Create `venv` and install the pinned set into it unless it is already up to date; return its Python."""
    python = venv_python(venv)
    stamp = venv / ".course-installed"
    version = version_of([str(python)]) if python.exists() else None
    if version in SUPPORTED and requested and version_of([requested]) != version:
        version = None  # a different Python was asked for: rebuild
    if version in SUPPORTED and stamp.exists() and stamp.read_text() == pins_digest(version):
        install_lab_settings(venv)
        return python
    started = time.monotonic()
    if version not in SUPPORTED:
        base = find_python(requested)
        if venv.exists():
            print(f"[setup] removing {venv.name}: it was made with another Python", flush=True)
            shutil.rmtree(venv)
        print(f"[setup 1/2] creating {venv.name} with {' '.join(base)}", flush=True)
        subprocess.run([*base, "-m", "venv", str(venv)], check=True)
        version = version_of([str(python)])
    print(
        f"[setup 2/2] installing the pinned packages into {venv.name} (Python {version[0]}.{version[1]}); "
        "the first time this takes a few minutes and pip lists each package as it goes",
        flush=True,
    )
    subprocess.run(
        [str(python), "-m", "pip", "install", "--disable-pip-version-check", "-r", "requirements.txt", "-e", "."],
        cwd=ROOT,
        check=True,
    )
    remove_unused_slow_packages(python)
    install_lab_settings(venv)
    stamp.write_text(pins_digest(version))
    print(f"[setup] ready in {time.monotonic() - started:.0f} s", flush=True)
    return python


def main(argv: list[str] | None = None) -> int:
    """Set up the environment, then run the chosen course command inside it."""
    parser = argparse.ArgumentParser(prog="python course.py", description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "command",
        nargs="?",
        default="course",
        help="course (default), test, install, or any "
        "`python -m lessons_src` command: server, demo-api, doctor, notebooks",
    )
    parser.add_argument("args", nargs=argparse.REMAINDER, help="passed on (for test: to pytest)")
    parser.add_argument("--python", help="the Python to build the environment with")
    parser.add_argument("--venv", default=".venv", help="where the environment lives (default: .venv)")
    options = parser.parse_args(argv)
    python = ensure_environment(ROOT / options.venv, options.python)
    if options.command == "install":
        return 0
    return subprocess.call([str(python), "-m", "lessons_src", options.command, *options.args], cwd=ROOT)


if __name__ == "__main__":
    sys.exit(main())
