"""The demo API's Starlette application: deterministic data, failure behaviours, limits and its own records."""

from __future__ import annotations

import asyncio
import json
import math
import random
import time
from collections import Counter, deque
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import asdict, dataclass, field
from datetime import date, timedelta
from http import HTTPStatus
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

FAIL_STATUSES = (400, 404, 500, 502, 503)
_STATUS_LIST = ", ".join(map(str, FAIL_STATUSES))
MAX_DELAY_S = 30.0
PAGE_SIZE_MAX = 100
PARAM_HELP = {
    "delay": f"seconds to wait before answering, 0 to {MAX_DELAY_S:g}",
    "fail_first": "whole number N >= 0: the first N calls for this endpoint and key fail (needs key)",
    "fail_rate": "probability 0 to 1 that a call fails, decided from seed, key and attempt number (needs key)",
    "seed": "whole number for fail_rate (default 0)",
    "key": "any text up to 200 characters naming the caller whose attempts are counted",
    "fail_status": f"status used by fail_first and fail_rate, one of {_STATUS_LIST} (default 503)",
    "status": f"always answer with this status, one of {_STATUS_LIST}",
    "malformed": "true or false: answer 200 with a body that is not valid JSON",
}
PAGING_HELP = {
    "page": "page number, whole number >= 1 (default 1)",
    "page_size": f"orders per page, 1 to {PAGE_SIZE_MAX} (default 20)",
}


# --- deterministic data -------------------------------------------------------------------------------------------

CUSTOMERS = (
    "Ada Lovelace",
    "Alan Turing",
    "Grace Hopper",
    "Katherine Johnson",
    "Edsger Dijkstra",
    "Barbara Liskov",
    "Donald Knuth",
    "Margaret Hamilton",
    "Claude Shannon",
    "Radia Perlman",
)
WEATHER = {
    "amsterdam": ("Amsterdam", 11.5, 24.0, "light rain"),
    "berlin": ("Berlin", 9.0, 14.0, "overcast"),
    "cairo": ("Cairo", 27.5, 12.0, "sunny"),
    "lisbon": ("Lisbon", 18.0, 19.0, "partly cloudy"),
    "london": ("London", 12.0, 21.0, "drizzle"),
    "nairobi": ("Nairobi", 22.5, 11.0, "partly cloudy"),
    "new-york": ("New York", 15.5, 17.0, "clear"),
    "oslo": ("Oslo", 3.5, 9.0, "snow"),
    "paris": ("Paris", 14.0, 13.0, "cloudy"),
    "tokyo": ("Tokyo", 19.5, 8.0, "clear"),
}


def make_orders(count: int = 95) -> list[dict[str, Any]]:
    """Return the same `count` plausible orders every time (a fixed seed, no clock)."""
    rng = random.Random(2024)
    first_day = date(2024, 1, 2)
    return [
        {
            "id": order_id,
            "customer": rng.choice(CUSTOMERS),
            "amount": round(rng.uniform(5, 480), 2),
            "currency": rng.choice(("EUR", "EUR", "USD", "GBP")),
            "created": (first_day + timedelta(days=order_id * 3 // 2)).isoformat(),
            "status": rng.choice(("pending", "paid", "paid", "shipped", "delivered", "refunded")),
        }
        for order_id in range(1, count + 1)
    ]


ORDERS = make_orders()
ORDERS_BY_ID = {order["id"]: order for order in ORDERS}


# --- query validation (shared with the client, so a typo fails before any request is sent) -----------------------


@dataclass(frozen=True)
class Behaviour:
    """How a data endpoint should misbehave for one request."""

    delay: float = 0.0
    fail_first: int = 0
    fail_rate: float = 0.0
    seed: int = 0
    key: str | None = None
    fail_status: int = 503
    status: int | None = None
    malformed: bool = False


def _invalid(name: str, value: str) -> ValueError:
    return ValueError(f"invalid {name}={value!r}. {name}: {({**PARAM_HELP, **PAGING_HELP})[name]}")


def _number(name: str, value: str, low: float, high: float) -> float:
    try:
        number = float(value)
    except ValueError:
        raise _invalid(name, value) from None
    if not low <= number <= high:
        raise _invalid(name, value)
    return number


def _whole(name: str, value: str, low: int | None = None, high: int | None = None) -> int:
    try:
        number = int(value)
    except ValueError:
        raise _invalid(name, value) from None
    if (low is not None and number < low) or (high is not None and number > high):
        raise _invalid(name, value)
    return number


def _status(name: str, value: str) -> int:
    if value not in {str(code) for code in FAIL_STATUSES}:
        raise _invalid(name, value)
    return int(value)


def _flag(name: str, value: str) -> bool:
    if value.lower() not in ("true", "false", "1", "0"):
        raise _invalid(name, value)
    return value.lower() in ("true", "1")


def parse_query(endpoint: str, query: Mapping[str, str]) -> tuple[Behaviour, dict[str, int]]:
    """Check a data endpoint's query parameters; return its behaviour and paging values, or raise ValueError."""
    allowed = {**PARAM_HELP, **(PAGING_HELP if endpoint == "orders" else {})}
    unknown = sorted(set(query) - set(allowed))
    if unknown:
        listing = "; ".join(f"{name}: {text}" for name, text in allowed.items())
        raise ValueError(f"unknown query parameter(s) {', '.join(unknown)} for {endpoint}. Valid parameters: {listing}")
    key = query.get("key")
    if key is not None and not 1 <= len(key) <= 200:
        raise _invalid("key", key)
    behaviour = Behaviour(
        delay=_number("delay", query.get("delay", "0"), 0.0, MAX_DELAY_S),
        fail_first=_whole("fail_first", query.get("fail_first", "0"), 0),
        fail_rate=_number("fail_rate", query.get("fail_rate", "0"), 0.0, 1.0),
        seed=_whole("seed", query.get("seed", "0")),
        key=key,
        fail_status=_status("fail_status", query.get("fail_status", "503")),
        status=_status("status", query["status"]) if "status" in query else None,
        malformed=_flag("malformed", query.get("malformed", "false")),
    )
    if (behaviour.fail_first or behaviour.fail_rate) and key is None:
        raise ValueError("fail_first and fail_rate need key=...: attempts are counted per endpoint and key")
    paging: dict[str, int] = {}
    if endpoint == "orders":
        paging["page"] = _whole("page", query.get("page", "1"), 1)
        paging["page_size"] = _whole("page_size", query.get("page_size", "20"), 1, PAGE_SIZE_MAX)
    return behaviour, paging


@dataclass(frozen=True)
class Limits:
    """Admission limits for data endpoints; None means unlimited."""

    max_in_flight: int | None = None
    max_per_second: float | None = None


def parse_limits(body: object) -> Limits:
    """Check a POST /admin/config body and return its limits, or raise ValueError."""
    if not isinstance(body, dict) or set(body) - {"max_in_flight", "max_per_second"}:
        raise ValueError('config must be a JSON object with only "max_in_flight" and/or "max_per_second"')
    in_flight, per_second = body.get("max_in_flight"), body.get("max_per_second")
    if in_flight is not None and (isinstance(in_flight, bool) or not isinstance(in_flight, int) or in_flight < 1):
        raise ValueError(f"max_in_flight must be a whole number >= 1 or None (unlimited), got {in_flight!r}")
    if per_second is not None and (
        isinstance(per_second, bool) or not isinstance(per_second, int | float) or not 0 < per_second < math.inf
    ):
        raise ValueError(f"max_per_second must be a number > 0 or None (unlimited), got {per_second!r}")
    return Limits(in_flight, None if per_second is None else float(per_second))


# --- the service's own records ------------------------------------------------------------------------------------


@dataclass
class DemoState:
    """Everything the service remembers between requests; a reset replaces the whole object."""

    limits: Limits = field(default_factory=Limits)
    log: list[dict[str, Any]] = field(default_factory=list)
    attempts: Counter[tuple[str, str]] = field(default_factory=Counter)
    running: dict[int, float] = field(default_factory=dict)  # record id -> monotonic time its delay ends
    in_flight_by_endpoint: Counter[str] = field(default_factory=Counter)
    peak: int = 0
    peak_by_endpoint: Counter[str] = field(default_factory=Counter)
    accepted_at: deque[float] = field(default_factory=deque)  # monotonic times of recent accepted requests
    charges: list[dict[str, Any]] = field(default_factory=list)
    charges_by_key: dict[str, dict[str, Any]] = field(default_factory=dict)
    duplicates_avoided: int = 0
    hook_calls: list[dict[str, Any]] = field(default_factory=list)  # what POST /hooks/{name} received, in order

    def receive(self, name: str, request: Request, body: bytes) -> dict[str, Any]:
        """Record one call of webhook `name`: when it arrived, its JSON (or text) body and its headers."""
        try:
            payload: Any = json.loads(body) if body else None
        except (json.JSONDecodeError, UnicodeDecodeError):
            payload = body.decode(errors="replace")
        call = {
            "id": len(self.hook_calls) + 1,
            "name": name,
            "received": time.time(),
            "body": payload,
            "headers": dict(request.headers),
        }
        self.hook_calls.append(call)
        return call

    def arrive(self, endpoint: str, request: Request, now: float) -> dict[str, Any]:
        """Log a request as it arrives and number it among the calls for its endpoint and key."""
        key = request.query_params.get("key")
        attempt = None
        if key is not None:
            self.attempts[endpoint, key] += 1
            attempt = self.attempts[endpoint, key]
        record = {
            "id": len(self.log) + 1,
            "endpoint": endpoint,
            "method": request.method,
            "path": request.url.path,
            "key": key,
            "attempt": attempt,
            "arrived": now,
            "finished": None,
            "status": None,
            "accepted": False,
        }
        self.log.append(record)
        return record

    def admit(self, record: dict[str, Any], delay: float) -> tuple[str, float] | None:
        """Count the request in flight and return None, or return (limit hit, seconds until it frees a slot)."""
        now = time.monotonic()
        if self.limits.max_in_flight is not None and len(self.running) >= self.limits.max_in_flight:
            return "max_in_flight", max(min(self.running.values()) - now, 0.01)
        if self.limits.max_per_second is not None:
            capacity = max(1, math.floor(self.limits.max_per_second))
            window = capacity / self.limits.max_per_second
            while self.accepted_at and self.accepted_at[0] <= now - window:
                self.accepted_at.popleft()
            if len(self.accepted_at) >= capacity:
                return "max_per_second", max(self.accepted_at[0] + window - now, 0.01)
            self.accepted_at.append(now)
        record["accepted"] = True
        self.running[record["id"]] = now + delay
        self.peak = max(self.peak, len(self.running))
        endpoint = record["endpoint"]
        self.in_flight_by_endpoint[endpoint] += 1
        self.peak_by_endpoint[endpoint] = max(self.peak_by_endpoint[endpoint], self.in_flight_by_endpoint[endpoint])
        return None

    def finish(self, record: dict[str, Any], status: int) -> None:
        """Record the answer's status and time, and stop counting the request in flight."""
        record["finished"] = time.time()
        record["status"] = status
        if self.running.pop(record["id"], None) is not None:
            self.in_flight_by_endpoint[record["endpoint"]] -= 1

    def charge(self, order_id: int, amount: float, idempotency_key: str | None) -> tuple[dict[str, Any], bool]:
        """Charge once per Idempotency-Key; return the charge and whether it is a replay of an earlier one."""
        if idempotency_key is not None and idempotency_key in self.charges_by_key:
            self.duplicates_avoided += 1
            return self.charges_by_key[idempotency_key], True
        charge = {
            "charge_id": f"ch_{len(self.charges) + 1:04d}",
            "order_id": order_id,
            "amount": amount,
            "idempotency_key": idempotency_key,
        }
        self.charges.append(charge)
        if idempotency_key is not None:
            self.charges_by_key[idempotency_key] = charge
        return charge, False

    def snapshot(self) -> dict[str, Any]:
        """Return the stats as JSON-ready data (GET /admin/stats)."""

        def status_counts(records: list[dict[str, Any]]) -> dict[str, int]:
            counts = Counter(str(r["status"]) for r in records if r["status"] is not None)
            return dict(sorted(counts.items()))

        return {
            "config": asdict(self.limits),
            "total": len(self.log),
            "in_flight": len(self.running),
            "peak_in_flight": self.peak,
            "rejected": sum(1 for r in self.log if r["status"] == 429),
            "status_counts": status_counts(self.log),
            "endpoints": {
                name: {
                    "requests": len(records := [r for r in self.log if r["endpoint"] == name]),
                    "status_counts": status_counts(records),
                    "peak_in_flight": self.peak_by_endpoint[name],
                }
                for name in DATA_ENDPOINTS
            },
            "payments": {
                "charged": len(self.charges),
                "duplicates_avoided": self.duplicates_avoided,
                "charges": self.charges,
            },
            "requests": self.log,
        }


# --- responses ----------------------------------------------------------------------------------------------------


# Reason phrases as RFC 9110 names them, the same on every Python (3.11 and 3.12 still say "Unprocessable Entity")
PHRASES = {422: "Unprocessable Content"}


def error(status: int, detail: str, headers: dict[str, str] | None = None, **extra: Any) -> JSONResponse:
    """Return the service's JSON error body {"error": <reason phrase>, "detail": ...}."""
    body = {"error": PHRASES.get(status, HTTPStatus(status).phrase), "detail": detail, **extra}
    return JSONResponse(body, status_code=status, headers=headers)


def _rejection(limits: Limits, limit: str, retry_after: float) -> JSONResponse:
    detail = (
        f"max_in_flight={limits.max_in_flight} requests are already in flight"
        if limit == "max_in_flight"
        else f"max_per_second={limits.max_per_second:g} reached"
    )
    return error(
        429,
        f"{detail}; retry in {retry_after:.2f} s",
        headers={"Retry-After": str(max(1, math.ceil(retry_after)))},
        limit=limit,
        retry_after=round(retry_after, 3),
    )


def fails_by_rate(fail_rate: float, seed: int, key: str, attempt: int) -> bool:
    """Return True when attempt number `attempt` for `key` fails under fail_rate and seed (same answer every run)."""
    return random.Random(f"{seed}:{key}:{attempt}").random() < fail_rate


def _simulated_failure(endpoint: str, behaviour: Behaviour, attempt: int | None) -> JSONResponse | None:
    """Return the failure this behaviour asks for on this attempt, or None to answer normally."""
    if behaviour.status is not None:
        return error(behaviour.status, f"simulated failure: status={behaviour.status}")
    if attempt is None:
        return None
    if attempt <= behaviour.fail_first:
        return error(
            behaviour.fail_status,
            f"simulated failure: call {attempt} of the first {behaviour.fail_first} for {endpoint} "
            f"key {behaviour.key!r} fails (fail_first)",
        )
    if fails_by_rate(behaviour.fail_rate, behaviour.seed, behaviour.key or "", attempt):
        return error(
            behaviour.fail_status,
            f"simulated failure: call {attempt} for {endpoint} key {behaviour.key!r} "
            f"drew a failure (fail_rate={behaviour.fail_rate:g}, seed={behaviour.seed})",
        )
    return None


Handler = Callable[[Request, DemoState, dict[str, int]], Awaitable[Response]]


def data_endpoint(endpoint: str, handler: Handler) -> Callable[[Request], Awaitable[Response]]:
    """Wrap a handler with logging, validation, limits and the requested behaviour."""

    async def endpoint_function(request: Request) -> Response:
        state: DemoState = request.app.state.demo  # held for the whole request, so a reset never mixes records
        record = state.arrive(endpoint, request, time.time())
        response: Response | None = None
        try:
            try:
                behaviour, paging = parse_query(endpoint, request.query_params)
            except ValueError as exc:
                response = error(422, str(exc))
                return response
            rejected = state.admit(record, behaviour.delay)
            if rejected is not None:
                response = _rejection(state.limits, *rejected)
                return response
            await request.body()  # read (and cache) it now, so a client that gives up during the delay stops nothing
            if behaviour.delay:
                await asyncio.sleep(behaviour.delay)
            response = _simulated_failure(endpoint, behaviour, record["attempt"])
            if response is None:
                response = await handler(request, state, paging)
            if behaviour.malformed and response.status_code < 400:  # the work is done, only the answer is garbled
                cut = response.body[: len(response.body) // 2]
                response = Response(cut, status_code=response.status_code, media_type="application/json")
            return response
        finally:
            state.finish(record, response.status_code if response is not None else 500)

    return endpoint_function


async def list_orders(request: Request, state: DemoState, paging: dict[str, int]) -> Response:
    """One page of orders, oldest first."""
    page, size = paging["page"], paging["page_size"]
    items = ORDERS[(page - 1) * size : page * size]
    has_next = page * size < len(ORDERS)
    body = {
        "page": page,
        "page_size": size,
        "total": len(ORDERS),
        "items": items,
        "next_page": page + 1 if has_next else None,
    }
    return JSONResponse(body)


async def get_order(request: Request, state: DemoState, paging: dict[str, int]) -> Response:
    """One order by id."""
    order_id = request.path_params["order_id"]
    order = ORDERS_BY_ID.get(int(order_id)) if order_id.isdigit() else None
    if order is None:
        return error(404, f"no order {order_id!r}; order ids are 1 to {len(ORDERS)}")
    return JSONResponse(order)


async def get_weather(request: Request, state: DemoState, paging: dict[str, int]) -> Response:
    """Current weather for one of the known cities."""
    city = request.path_params["city"]
    known = WEATHER.get(city.strip().lower().replace(" ", "-"))
    if known is None:
        return error(404, f"unknown city {city!r}; known cities: {', '.join(WEATHER)}")
    name, temperature, wind, condition = known
    return JSONResponse({"city": name, "temperature_c": temperature, "wind_kph": wind, "condition": condition})


async def create_payment(request: Request, state: DemoState, paging: dict[str, int]) -> Response:
    """Charge an order, once per Idempotency-Key header; 201 for a new charge, 200 for a replayed one."""
    try:
        body = await request.json()
    except json.JSONDecodeError:
        body = None
    order_id, amount = (body.get("order_id"), body.get("amount")) if isinstance(body, dict) else (None, None)
    if isinstance(order_id, bool) or not isinstance(order_id, int):
        return error(422, 'body must be JSON like {"order_id": 7, "amount": 19.99} with a whole-number order_id')
    if isinstance(amount, bool) or not isinstance(amount, int | float) or not 0 < amount < math.inf:
        return error(422, f"amount must be a number > 0, got {amount!r}")
    if order_id not in ORDERS_BY_ID:
        return error(404, f"no order {order_id}; order ids are 1 to {len(ORDERS)}")
    charge, replayed = state.charge(order_id, amount, request.headers.get("idempotency-key"))
    return JSONResponse({**charge, "replayed": replayed}, status_code=200 if replayed else 201)


DATA_ROUTES = [
    Route("/orders", data_endpoint("orders", list_orders), methods=["GET"], name="orders"),
    Route("/orders/{order_id}", data_endpoint("order", get_order), methods=["GET"], name="order"),
    Route("/weather/{city}", data_endpoint("weather", get_weather), methods=["GET"], name="weather"),
    Route("/payments", data_endpoint("payments", create_payment), methods=["POST"], name="payments"),
]
DATA_ENDPOINTS = tuple(route.name for route in DATA_ROUTES)


def endpoint_for(path: str) -> str | None:
    """Return the data endpoint name ("orders", "order", "weather", "payments") serving `path`, or None."""
    return next((route.name for route in DATA_ROUTES if route.path_regex.match(path)), None)


# --- health and admin ---------------------------------------------------------------------------------------------


async def health(request: Request) -> Response:
    """Liveness check; never counted or limited."""
    return JSONResponse({"status": "ok"})


async def stats(request: Request) -> Response:
    """The service's records since the last reset."""
    return JSONResponse(request.app.state.demo.snapshot())


async def configure(request: Request) -> Response:
    """Replace the limits; a missing or null value means unlimited."""
    try:
        limits = parse_limits(await request.json())
    except (json.JSONDecodeError, ValueError) as exc:
        return error(422, str(exc))
    request.app.state.demo.limits = limits
    return JSONResponse(asdict(limits))


async def reset(request: Request) -> Response:
    """Forget every record, attempt count, charge, webhook call and limit."""
    request.app.state.demo = DemoState()
    return JSONResponse({"status": "reset"})


async def receive_hook(request: Request) -> Response:
    """Record a webhook call (POST /hooks/{name}); never counted among the data endpoints' requests or limited."""
    call = request.app.state.demo.receive(request.path_params["name"], request, await request.body())
    return JSONResponse({"received": call["id"]})


async def hook_calls(request: Request) -> Response:
    """Return every call webhook `name` received since the last reset, oldest first (GET /hooks/{name})."""
    name = request.path_params["name"]
    return JSONResponse([call for call in request.app.state.demo.hook_calls if call["name"] == name])


async def http_error(request: Request, exc: Exception) -> Response:
    """Answer unknown paths and wrong methods with the service's JSON error body."""
    assert isinstance(exc, HTTPException)
    endpoints = (
        "GET /orders, GET /orders/{id}, GET /weather/{city}, POST /payments, POST and GET /hooks/{name}, GET /health, "
        "GET /admin/stats"
    )
    detail = f"{request.method} {request.url.path} is not served here; endpoints: {endpoints}"
    return error(exc.status_code, detail, headers=exc.headers)


def create_app() -> Starlette:
    """Return a fresh demo API application with empty records and no limits."""
    routes = [
        *DATA_ROUTES,
        Route("/hooks/{name}", receive_hook, methods=["POST"]),
        Route("/hooks/{name}", hook_calls, methods=["GET"]),
        Route("/health", health, methods=["GET"]),
        Route("/admin/stats", stats, methods=["GET"]),
        Route("/admin/config", configure, methods=["POST"]),
        Route("/admin/reset", reset, methods=["POST"]),
    ]
    app = Starlette(routes=routes, exception_handlers={HTTPException: http_error})
    app.state.demo = DemoState()
    return app
