"""The code pair 14 tests: order totals from the orders service, a task with retries, a deployment it triggers.

The tests live elsewhere (the lesson writes them in a temporary folder); they import this module as `orders`.
"""

import httpx
from prefect import flow, get_run_logger, task
from prefect.deployments import run_deployment


@task
def order_total(order: dict, discount: float = 0.0) -> float:
    """Return what an order costs after `discount` (a fraction: 0.1 is 10 %), rounded to cents."""
    if not 0 <= discount < 1:
        raise ValueError(f"discount must be a fraction in [0, 1), got {discount}")
    total = round(order["amount"] * (1 - discount), 2)
    get_run_logger().info("order %s: %.2f", order.get("id"), total)
    return total


@task(retries=3, retry_delay_seconds=10)
def fetch_order(order_id: int, base_url: str) -> dict:
    """Fetch one order from the orders service; a failed call is retried 3 times, 10 s apart."""
    response = httpx.get(f"{base_url}/orders/{order_id}", timeout=10)
    response.raise_for_status()
    return response.json()


@flow
def orders_total(order_ids: list[int], base_url: str, discount: float = 0.0) -> float:
    """Fetch the orders and return the sum of their totals after the discount."""
    total = round(sum(order_total(fetch_order(order_id, base_url), discount) for order_id in order_ids), 2)
    get_run_logger().info("%d orders, total %.2f", len(order_ids), total)
    return total


def request_report(total: float) -> str:
    """Trigger a run of the `report/nightly` deployment for `total`, without waiting; return the run's id."""
    run = run_deployment("report/nightly", parameters={"total": total}, timeout=0)
    return str(run.id)
