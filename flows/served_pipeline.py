"""Flows that lesson 08 serves from a separate process. Serve them yourself with: python flows/served_pipeline.py"""

from datetime import UTC, datetime

from prefect import flow, serve


@flow(persist_result=True, log_prints=True)
def say_hello(name: str = "world") -> str:
    """Greet someone; the result is persisted so whoever triggered the run can read it back."""
    greeting = f"Hello, {name}!"
    print(greeting)
    return greeting


@flow(persist_result=True)
def add_up(numbers: list[int]) -> int:
    """Return the sum of the numbers it is given."""
    return sum(numbers)


@flow(persist_result=True)
def tick(label: str = "tick") -> str:
    """Return the label and the moment this run started, to show when scheduled runs really start."""
    return f"{label} at {datetime.now(UTC):%H:%M:%S.%f}"


if __name__ == "__main__":
    # One process serves several deployments: each `to_deployment` names one and sets its schedule and parameters.
    serve(
        say_hello.to_deployment("lesson-08-hello", parameters={"name": "served world"}),
        tick.to_deployment("lesson-08-every-3s", interval=3, parameters={"label": "scheduled"}),
        limit=2,  # at most 2 flow runs of this process at the same time; later ones wait
    )
