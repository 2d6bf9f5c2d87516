"""A flow that lesson 13 runs in a fresh Python process, to show which of its log lines reach the Prefect server.

Run it yourself, with the course's server in PREFECT_API_URL and the demo API's address:
    python flows/observed_jobs.py http://127.0.0.1:PORT my-label 1 2 3
It prints the flow run's id as the last line of its output (Prefect's own lines go to stderr). The flow is async
only so that the process ends as soon as the run does (a sync run waits up to 1 s for its heartbeat thread).
"""

import asyncio
import sys

import httpx
from prefect import flow, get_run_logger


@flow(flow_run_name="fetch-orders-{label}")
async def fetch_orders(base_url: str, order_ids: list[int], label: str = "by-hand") -> int:
    """Fetch orders from the demo API with httpx, then log how many."""
    async with httpx.AsyncClient(base_url=base_url, timeout=10) as client:
        for order_id in order_ids:
            (await client.get(f"/orders/{order_id}")).raise_for_status()
    get_run_logger().info("fetched %d orders", len(order_ids))
    return len(order_ids)


if __name__ == "__main__":
    url, run_label, *ids = sys.argv[1:]
    state = asyncio.run(fetch_orders(url, [int(i) for i in ids], run_label, return_state=True))
    print(state.state_details.flow_run_id)
