"""Run the demo API in the foreground on 127.0.0.1: `python -m lessons_src.demo_api --port 8765`."""

from __future__ import annotations

import argparse
from collections.abc import Sequence

import uvicorn

from lessons_src.demo_api import HOST
from lessons_src.demo_api.app import create_app


def main(argv: Sequence[str] | None = None) -> None:
    """Parse --port and serve the app until SIGTERM or Ctrl+C."""
    parser = argparse.ArgumentParser(prog="python -m lessons_src.demo_api", description=__doc__)
    parser.add_argument("--port", type=int, required=True, help="port to listen on (127.0.0.1 only)")
    args = parser.parse_args(argv)
    uvicorn.run(
        create_app(),
        host=HOST,
        port=args.port,
        log_level="warning",
        access_log=False,
        lifespan="off",
        ws="none",
        timeout_graceful_shutdown=1,  # requests still sleeping are cut short when stopped
    )


if __name__ == "__main__":
    main()
