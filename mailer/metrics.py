"""The daemon's own counters for Prometheus: what this process did since it started (mails
fetched by outcome, tickets opened, deliveries by result, sweep durations). The state of the
desk (outbox depth and age, dead letters, overdue tickets, mailbox up/down) is read from the
database at each scrape, so that it is the same whichever daemon answers:
mailer/operator/exporter.py serves both at `[metrics] listen`.

The counters live in prometheus_client's default registry; incrementing one costs well under a
microsecond, so the hot paths count freely.
"""

from __future__ import annotations

from prometheus_client import Counter, Histogram

MAILS_FETCHED = Counter(
    "pst_mails_fetched",
    "Mails fetched and processed, by office, folder and outcome",
    ["office", "role", "outcome"],
)
TICKETS_OPENED = Counter("pst_tickets_opened", "Tickets opened by mail", ["office"])
DELIVERIES = Counter(
    "pst_deliveries",
    "Outbox deliveries handled by this process, by office and result "
    "(sent, deferred, failed, retry_connection, suppressed, held, skipped)",
    ["office", "result"],
)
SWEEP_SECONDS = Histogram(
    "pst_sweep_duration_seconds",
    "Duration of one sweep: reminders, escalations and digests",
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
)
