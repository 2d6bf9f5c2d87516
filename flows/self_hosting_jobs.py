"""Pair 15's workload: tasks that each hold one slot of a global concurrency limit, run by a fresh client process.

`python flows/self_hosting_jobs.py TASKS SECONDS LIMIT` waits until every address in `WAIT_FOR` (comma-separated, if
set) answers 200, so that clients of different servers start together; then it creates (or resets) the limit at 2
slots on the server that `PREFECT_API_URL` names, runs the flow, and prints one JSON line: the flow run's id, the
seconds the flow call took (Python's start-up and imports excluded) and how many requests the server answered with a
retryable error (503) that Prefect's client sent again. The same file runs against any server: only the environment
differs.
"""

import json
import logging
import os
import sys
import time

import httpx
from prefect import flow, task
from prefect.client.orchestration import get_client
from prefect.client.schemas.actions import GlobalConcurrencyLimitCreate, GlobalConcurrencyLimitUpdate
from prefect.concurrency.sync import concurrency
from prefect.exceptions import ObjectNotFound
from prefect.runtime import flow_run
from prefect.task_runners import ThreadPoolTaskRunner

SLOTS = 2
WAIT_S = 180.0


class RetryCounter(logging.Handler):
    """Count the requests Prefect's client sends again after a retryable answer (its DEBUG line says so)."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.retries = 0

    def emit(self, record: logging.LogRecord) -> None:
        if "retryable" in record.getMessage():
            self.retries += 1


@task
def hold_a_slot(index: int, seconds: float, limit: str) -> int:
    """Wait for one slot of `limit`, then hold it for `seconds`."""
    with concurrency(limit, occupy=1, strict=True):
        time.sleep(seconds)
    return index


@flow(task_runner=ThreadPoolTaskRunner(max_workers=32))
def through_a_limit(tasks: int, seconds: float, limit: str) -> str:
    """Run `tasks` tasks at once, each holding one of the limit's slots for `seconds`; return the flow run's id."""
    for future in hold_a_slot.map(range(tasks), seconds, limit):
        future.result()
    return flow_run.id


def reset_limit(name: str) -> None:
    """Create global concurrency limit `name` with SLOTS slots, or reset it to SLOTS free slots."""
    with get_client(sync_client=True) as client:
        try:
            client.update_global_concurrency_limit(
                name, GlobalConcurrencyLimitUpdate(limit=SLOTS, active=True, active_slots=0)
            )
        except ObjectNotFound:
            client.create_global_concurrency_limit(GlobalConcurrencyLimitCreate(name=name, limit=SLOTS))


def wait_for_servers(addresses: list[str]) -> None:
    """Return once every address answers 200; fail after WAIT_S seconds."""
    deadline = time.monotonic() + WAIT_S
    for address in addresses:
        while True:
            try:
                if httpx.get(address, timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise SystemExit(f"{address} did not answer within {WAIT_S:.0f} s")
            time.sleep(0.2)


if __name__ == "__main__":
    tasks, seconds, limit = int(sys.argv[1]), float(sys.argv[2]), sys.argv[3]
    wait_for_servers([address for address in os.environ.get("WAIT_FOR", "").split(",") if address])
    counter = RetryCounter()
    client_logger = logging.getLogger("prefect.client")
    client_logger.addHandler(counter)
    client_logger.setLevel(logging.DEBUG)
    reset_limit(limit)
    started = time.perf_counter()
    run_id = through_a_limit(tasks, seconds, limit)
    took = time.perf_counter() - started
    print(json.dumps({"flow_run_id": run_id, "seconds": took, "retried": counter.retries}), flush=True)
