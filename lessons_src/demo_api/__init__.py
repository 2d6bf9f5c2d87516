"""A real local HTTP service for the lessons: start it, call it with httpx, and read what it recorded."""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlencode

import httpx

from lessons_src.demo_api.app import DATA_ENDPOINTS, endpoint_for, parse_limits, parse_query
from lessons_src.paths import course_home
from lessons_src.processes import (
    ServiceFiles,
    ServiceStartError,
    free_port,
    listens_on,
    process_runs,
    start_lock,
    start_service,
    terminate,
)

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "DemoAPI",
    "DemoAPIError",
    "DemoAPINotRunning",
    "DemoStats",
    "demo_api_problem",
    "demo_api_status",
    "get_demo_api",
    "start_demo_api",
    "stop_demo_api",
]

HOST = "127.0.0.1"
START_TIMEOUT_S = 10.0
HOW_TO_START = (
    "Start it in the notebook with `from lessons_src.demo_api import start_demo_api; api = start_demo_api()`, "
    "or in a terminal with `python -m lessons_src demo-api start`."
)


class DemoAPIError(RuntimeError):
    """The demo API could not be started or reached; the message says why and what to do."""


class DemoAPINotRunning(DemoAPIError):
    """No demo API answers; the message says how to start one."""


@dataclass(frozen=True)
class DemoStats:
    """What the demo API recorded since its last reset (GET /admin/stats), with accessors for lessons."""

    total: int
    in_flight: int
    peak_in_flight: int
    rejected: int
    status_counts: dict[int, int]
    endpoints: dict[str, dict[str, Any]] = field(repr=False)
    config: dict[str, Any]
    charged: int
    duplicates_avoided: int
    charges: list[dict[str, Any]] = field(repr=False)
    requests: list[dict[str, Any]] = field(repr=False)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> DemoStats:
        """Build the stats from the JSON the service returns."""

        def int_keys(counts: dict[str, int]) -> dict[int, int]:
            return {int(status): count for status, count in counts.items()}

        return cls(
            total=data["total"],
            in_flight=data["in_flight"],
            peak_in_flight=data["peak_in_flight"],
            rejected=data["rejected"],
            status_counts=int_keys(data["status_counts"]),
            endpoints={
                name: {**figures, "status_counts": int_keys(figures["status_counts"])}
                for name, figures in data["endpoints"].items()
            },
            config=data["config"],
            charged=data["payments"]["charged"],
            duplicates_avoided=data["payments"]["duplicates_avoided"],
            charges=data["payments"]["charges"],
            requests=data["requests"],
        )

    def attempts(self, key: str, endpoint: str | None = None) -> int:
        """Return how many calls arrived with this key (on one endpoint, or on all), rejected ones included."""
        if endpoint is not None and endpoint not in DATA_ENDPOINTS:
            raise ValueError(f"unknown endpoint {endpoint!r}; endpoints are {', '.join(DATA_ENDPOINTS)}")
        return sum(1 for r in self.requests if r["key"] == key and endpoint in (None, r["endpoint"]))

    def to_dataframe(self) -> pd.DataFrame:
        """Return the request log as a pandas DataFrame, one row per request, with a `duration` column in seconds."""
        import pandas as pd

        columns = ["id", "endpoint", "method", "path", "key", "attempt", "arrived", "finished", "status", "accepted"]
        frame = pd.DataFrame(self.requests, columns=columns)
        frame["attempt"] = frame["attempt"].astype("Int64")  # empty (<NA>) for requests without a key
        frame["duration"] = frame["finished"] - frame["arrived"]
        return frame

    def in_flight_series(self) -> tuple[list[float], list[int]]:
        """Return (times, counts): accepted requests in flight after each arrival and finish, for `plt.step`."""
        events = [(r["arrived"], 1) for r in self.requests if r["accepted"]]
        events += [(r["finished"], -1) for r in self.requests if r["accepted"] and r["finished"] is not None]
        times: list[float] = []
        counts: list[int] = []
        in_flight = 0
        for moment, change in sorted(events):  # at equal times a finish (-1) sorts before an arrival (+1)
            in_flight += change
            times.append(moment)
            counts.append(in_flight)
        return times, counts


@dataclass(frozen=True)
class DemoAPI:
    """Handle on a running demo API: build URLs, set limits, reset and read its stats."""

    pid: int
    port: int
    url: str

    def url_for(self, path: str, **params: Any) -> str:
        """Return the full URL for `path` with these query parameters, checked as the service would (ValueError)."""
        if "?" in path:
            raise ValueError(f"give query parameters as keyword arguments, not in the path: {path!r}")
        path = "/" + path.lstrip("/")
        query = {name: _query_text(value) for name, value in params.items() if value is not None}
        endpoint = endpoint_for(path)
        if endpoint is not None:
            parse_query(endpoint, query)
        elif query:
            raise ValueError(
                f"{path} is not a data endpoint, so it takes no query parameters; behaviours work on "
                "/orders, /orders/{id}, /weather/{city} and /payments"
            )
        return self.url + quote(path) + (f"?{urlencode(query)}" if query else "")

    def hook_url(self, name: str) -> str:
        """Return the URL at which the service records webhook calls named `name` (POST /hooks/{name})."""
        if not name or "/" in name or "?" in name:
            raise ValueError(f"a webhook name is one non-empty path segment, e.g. 'on-failure'; got {name!r}")
        return f"{self.url}/hooks/{quote(name)}"

    def hook_calls(self, name: str) -> list[dict[str, Any]]:
        """Return the calls webhook `name` received since the last reset (body, headers, `received` epoch time)."""
        return self._call("GET", f"/hooks/{quote(name)}")

    def configure(self, max_in_flight: int | None = None, max_per_second: float | None = None) -> dict[str, Any]:
        """Set the data endpoints' limits (None means unlimited) and return the limits now in force."""
        limits = {"max_in_flight": max_in_flight, "max_per_second": max_per_second}
        parse_limits(limits)
        return self._call("POST", "/admin/config", json=limits)

    def reset(self) -> None:
        """Clear the counters, request log, attempt counts, charges and webhook calls, and remove all limits."""
        self._call("POST", "/admin/reset")

    def stats(self) -> DemoStats:
        """Return what the service recorded since the last reset."""
        return DemoStats.from_json(self._call("GET", "/admin/stats"))

    def stop(self) -> None:
        """Stop this instance if its process still runs (and forget it if it is the one in the state file)."""
        if _is_demo_api(self):
            terminate(self.pid)
        if _read_state() == self:
            _files().forget()

    def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        try:
            response = httpx.request(method, self.url + path, timeout=10.0, **kwargs)
        except httpx.TransportError as exc:
            raise DemoAPINotRunning(f"The demo API at {self.url} did not answer ({exc!r}). {HOW_TO_START}") from exc
        response.raise_for_status()
        return response.json()


def _query_text(value: Any) -> str:
    return str(value).lower() if isinstance(value, bool) else str(value)


def _files() -> ServiceFiles:
    return ServiceFiles(course_home(), "demo_api")


def _read_state() -> DemoAPI | None:
    return _files().read(DemoAPI)


def _is_demo_api(api: DemoAPI) -> bool:
    """Return True when `api.pid` is still a demo API process on `api.port` (not a process that reused the pid)."""
    return process_runs(api.pid, "lessons_src.demo_api", "--port", str(api.port))


def _healthy(client: httpx.Client, url: str) -> bool:
    try:
        response = client.get(f"{url}/health", timeout=1.0)
        return response.status_code == 200 and response.json() == {"status": "ok"}
    except (httpx.HTTPError, ValueError):
        return False


def running_demo_api() -> DemoAPI | None:
    """Return the demo API of this course home if it answers, else None."""
    api = _read_state()
    if api is None or not _is_demo_api(api):
        return None
    with httpx.Client() as client:
        return api if _healthy(client, api.url) else None


def start_demo_api(timeout: float = START_TIMEOUT_S) -> DemoAPI:
    """Return the running demo API, or start one in the background on a free port and wait until it answers."""
    with start_lock(_files().lock):
        running = running_demo_api()
        if running is not None:
            return running
        port = free_port(HOST)
        url = f"http://{HOST}:{port}"
        command = [sys.executable, "-m", "lessons_src.demo_api", "--port", str(port)]
        with httpx.Client() as client:
            try:
                process = start_service(
                    command, _files().log, lambda pid: _healthy(client, url) and listens_on(pid, port), timeout
                )
            except ServiceStartError as error:
                raise DemoAPIError(f"The demo API did not start: {error}") from None
        api = DemoAPI(pid=process.pid, port=port, url=url)
        _files().write(api)
        return api


def stop_demo_api() -> bool:
    """Stop the demo API named in the state file, if it still runs; return True when a process was stopped."""
    api = _read_state()
    _files().forget()
    if api is not None and _is_demo_api(api):
        terminate(api.pid)
        return True
    return False


def get_demo_api() -> DemoAPI:
    """Return the running demo API, or raise DemoAPINotRunning saying how to start it."""
    api = running_demo_api()
    if api is None:
        raise DemoAPINotRunning(f"The demo API is not running. {HOW_TO_START}")
    return api


def demo_api_problem() -> str | None:
    """Return why a demo API that was started no longer answers, with the fix, or None (running, or never started)."""
    if _read_state() is None or running_demo_api() is not None:
        return None
    return (
        "the course's demo API stopped answering. Start it again with `python -m lessons_src demo-api start`, "
        "then run this cell again."
    )


def demo_api_status() -> str:
    """Return one line: "running at <url> (pid N)" or "not running" with how to start it."""
    api = running_demo_api()
    return f"running at {api.url} (pid {api.pid})" if api else f"not running. {HOW_TO_START}"
