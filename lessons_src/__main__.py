"""Entry point for `python -m lessons_src`."""

from lessons_src.cli import main

raise SystemExit(main())
