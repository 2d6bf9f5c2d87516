"""The one call at the top of every notebook: find or start the course server and point Prefect at it."""

from __future__ import annotations

import os
import sys
from importlib.metadata import version

from lessons_src.server import ServerInfo, prefect_home, running_server, start_server, ui_address

SUPPORTED_PYTHONS = ((3, 11), (3, 12), (3, 13), (3, 14))  # pyproject.toml's requires-python and course.py agree


def connect_prefect(info: ServerInfo) -> None:
    """Point this process's Prefect client at the course server (also when Prefect is already imported)."""
    os.environ["PREFECT_API_URL"] = info.api_url
    os.environ["PREFECT_HOME"] = str(prefect_home())
    os.environ["PREFECT_SERVER_ANALYTICS_ENABLED"] = "false"
    already_imported = "prefect.context" in sys.modules
    import prefect.context  # importing here puts Prefect's import time in setup(), not in the first flow

    if already_imported:
        prefect.context.refresh_global_settings_context()


def setup(quiet: bool = False) -> ServerInfo:
    """Check the environment, start or reuse the course server, connect Prefect to it and say where the UI is."""
    if sys.version_info[:2] not in SUPPORTED_PYTHONS:
        raise RuntimeError(
            f"This course supports Python 3.11 to 3.14; this kernel runs {sys.version.split()[0]}. Choose the "
            "course's kernel, or run `python course.py` from the repository (it finds a supported Python)."
        )
    already = running_server()
    info = already or start_server(say=None if quiet else print)
    connect_prefect(info)
    if not quiet:
        how = "using the course server already running" if already else "the course server is ready"
        print(f"Prefect {version('prefect')} on Python {sys.version.split()[0]}: {how}.")
        print(f"Prefect UI: {ui_address(info)}    (API {info.api_url})")
    return info
