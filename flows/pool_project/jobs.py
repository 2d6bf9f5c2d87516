"""Flows that lesson 11 deploys to a process work pool; a worker runs each in a new Python process in this folder."""

import os
import time

from prefect import flow


@flow(log_prints=True, persist_result=True)
def where_am_i(label: str = "job", seconds: float = 0.0) -> dict:
    """Sleep `seconds`, then report the process, folder and environment the worker gave this run (result persisted)."""
    time.sleep(seconds)
    seen = {
        "label": label,
        "pid": os.getpid(),
        "folder": os.path.basename(os.getcwd()),
        "GREETING": os.environ.get("GREETING"),
        "worker": os.environ.get("PREFECT__WORKER_NAME"),
    }
    print(seen)
    return seen
