"""The headless Chromium the browser tests drive: where it is, how it starts, and whether a test may skip without it."""

from __future__ import annotations

import os
import shutil

CHROMIUM = os.environ.get("COURSE_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
# In CI a browser test must run (.ci/run installs Debian's chromium); on a learner's machine it may be skipped.
MISSING = not os.path.exists(CHROMIUM) and not os.environ.get("CI")
WHY_MISSING = "Debian's chromium is not installed (apt-get install chromium)"
