"""Tasks that pair 14 runs in the background: the notebook calls `.delay(...)`, a task worker process runs them.

Both sides load this file by its path (`lessons_src.task_workers.load_tasks`), so both compute the same task key
(the function's name and a hash of its code): a task worker only takes runs whose key it serves.
"""

import os
import time

from prefect import task


@task
def make_thumbnail(image_id: int, seconds: float = 0.5) -> dict:
    """Pretend to resize one image (sleeps `seconds`); return which process did it."""
    time.sleep(seconds)
    return {"image_id": image_id, "pid": os.getpid()}


@task
def send_receipt(order_id: int) -> str:
    """Pretend to e-mail a receipt for one order."""
    return f"receipt for order {order_id} sent"
