"""The headless Chromium the browser tests drive: where it is, how it starts, and whether a test may skip without it."""

from __future__ import annotations

import os

from lessons_src.browser import CHROMIUM, CHROMIUM_ARGS

__all__ = ["CHROMIUM", "CHROMIUM_ARGS", "MISSING", "WHY_MISSING"]

# In CI a browser test must run (.ci/run installs Debian's chromium); on a learner's machine it may be skipped.
MISSING = not os.path.exists(CHROMIUM) and not os.environ.get("CI")
WHY_MISSING = "Debian's chromium is not installed (apt-get install chromium)"
