"""Margins that lessons and checks allow between a measurement and its ideal, each with the measurement behind it.

A margin is defined here once and imported where it is used, so a lesson's assertion and an exercise's check
agree, and a change to one is a change to all, made with the measurement that justifies it.
"""

from __future__ import annotations

# Prefect computes a retry's scheduled time, then stamps the AwaitingRetry state: the two differ by a few
# milliseconds. With 1 client 1-5 ms; with 20 threads on 2 cores up to 18 ms in 8 runs and past 20 ms once.
RETRY_STAMPING_S = 0.05

# A served deployment's scheduled run may start before its slot: the serve process prefetches runs due in the
# next 10 s and the server's WaitForScheduledTime rule rounds the wait to whole seconds (0.1 s early seen in CI).
SCHEDULED_START_EARLY_S = 0.6

# The same stamping gap when one client, or a few, retry at a time (pair 02's single-call checks and its comparison
# of 3 strategies): 1-5 ms measured before; on 2026-12-01 (2 cores, load 2) at most 0.1 ms in 12 waits of 1 client
# and 36 waits of 3 clients, while 10 clients reached 23 ms once in 120 waits (hence RETRY_STAMPING_S for herds).
RETRY_STAMPING_FEW_CLIENTS_S = 0.02

# Task runs reach the server as events, a moment after they happen: on 2026-12-01, 4 task runs were all recorded and
# final 42-141 ms (median 69 ms, 15 runs) after their flow returned, on a quiet 2-core machine. A reader that does not
# know how many to expect waits until the recorded list has not changed for this long (about 7x the quiet maximum,
# for a machine busy with other notebooks or parallel tests).
RECORDING_QUIET_S = 1.0

# How long a reader that knows what records to expect (task runs, a log line) waits for them before it reports the
# course's own failure.
# Quiet, they arrive within 0.2 s; beside 8 CPU burners 0.16-0.37 s (2026-12-02, 10 task runs, 6 flows). In CI (4 test
# processes, each with its own server, on 2 cores) only 5 of 10 task runs were recorded, none final, after 10 s: a
# spike the quiet figures do not predict. Waiting costs nothing when the records arrive, so the deadline is generous.
RECORDS_DEADLINE_S = 30.0

# Events reach the server's database in batches, at the latest every flush interval (1 s on the course server): on
# 2026-12-01, 5 slot events were all readable 0.37-1.07 s after the last was emitted (5 runs, quiet 2-core machine).
# A reader that gets fewer than it expects stops waiting once the count has not changed for this long (about 3x that).
EVENTS_QUIET_S = 3.0
