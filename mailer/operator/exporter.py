"""`mailer run`'s Prometheus endpoint (`[metrics] listen`, e.g. http://127.0.0.1:9464/metrics).

Two kinds of figures. What this process did since it started: the counters of mailer/metrics.py
(mails fetched by outcome, tickets opened, deliveries by result, sweep durations). And the state
of the desk, read from the database at each scrape (the same facts as `mailer status`, so the
same whichever daemon is asked): outbox mails by kind and state, the oldest waiting mail's age,
dead letters, tickets by state and overdue, each mailbox's and SMTP server's up/down and last
success, and how many reasons for attention each office has.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from prometheus_client import REGISTRY, CollectorRegistry, start_http_server
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from mailer import log
from mailer.clock import Clock
from mailer.operator import status
from mailer.settings import Settings
from storage import db, overview
from storage.vocabulary import TicketState

if TYPE_CHECKING:
    from sqlalchemy import Engine

logger = log.get(__name__)


class DeskCollector(Collector):
    """The desk's state, read from the database at each scrape."""

    def __init__(self, settings: Settings, engine: Engine, clock: Clock) -> None:
        self.settings, self.engine, self.clock = settings, engine, clock

    def collect(self) -> Iterator[Metric]:
        now = self.clock.now()
        with db.reading(self.engine) as s:
            offices = status.collect(s, self.settings, now)
            by_kind = overview.outbox_by_kind(s)
        outbox = GaugeMetricFamily(
            "pst_outbox_mails", "Outbox mails by office, kind and state (ack sent, deferred, failed…)",
            labels=["office", "kind", "state"],
        )  # fmt: skip
        for office, kind, state, n in by_kind:
            outbox.add_metric([office, kind, state], n)
        yield outbox
        yield from self._offices(offices, now.timestamp())

    def _offices(self, offices: list[status.OfficeStatus], now_s: float) -> Iterator[Metric]:
        def gauge(name: str, text: str, *labels: str) -> GaugeMetricFamily:
            return GaugeMetricFamily(name, text, labels=["office", *labels])

        oldest = gauge("pst_outbox_oldest_waiting_seconds", "Age of the oldest mail waiting to be sent")
        dead = gauge("pst_dead_letters", "Dead letters (mail that broke a step, kept whole)", "resolved")
        tickets = gauge("pst_tickets", "Tickets by state", "state")
        overdue = gauge("pst_tickets_overdue", "Open tickets past their deadline")
        up = gauge("pst_mailbox_up", "1 when the mailbox worked recently and is not failing", "mailbox")
        seen = gauge(
            "pst_mailbox_last_success_timestamp_seconds", "Last working session (Unix time)", "mailbox"
        )
        smtp = gauge("pst_smtp_up", "0 while the SMTP server refuses the office's login")
        attention = gauge("pst_attention", "Reasons `mailer status` would exit 1 for the office")
        silent_s = self.settings.status.mailbox_silent_after_s
        for st in offices:
            code = st.code
            if st.oldest_waiting_at is not None:
                oldest.add_metric([code], max(0.0, now_s - st.oldest_waiting_at.timestamp()))
            dead.add_metric([code, "false"], st.dead_letters)
            dead.add_metric([code, "true"], st.dead_letters_resolved)
            for state in (TicketState.OPEN, TicketState.WAITING, TicketState.ANSWERED, TicketState.CLOSED):
                tickets.add_metric([code, state], st.tickets.get(state, 0))
            overdue.add_metric([code], st.tickets.get(status.OVERDUE, 0))
            for m in st.mailboxes:
                h = m.health
                worked = h.worked_at.timestamp() if h is not None and h.worked_at is not None else None
                fine = h is not None and h.failing_since is None and worked is not None
                up.add_metric([code, m.folder], float(fine and now_s - (worked or 0) <= silent_s))
                if worked is not None:
                    seen.add_metric([code, m.folder], worked)
            smtp.add_metric([code], float(st.smtp is None or st.smtp.failing_since is None))
            attention.add_metric([code], len(st.attention(self.settings, self.clock.now())))
        yield from (oldest, dead, tickets, overdue, up, seen, smtp, attention)


class _Everything(Collector):
    """This process's counters (prometheus_client's default registry) and the desk's state."""

    def __init__(self, desk: DeskCollector) -> None:
        self.desk = desk

    def collect(self) -> Iterator[Metric]:
        yield from REGISTRY.collect()
        yield from self.desk.collect()


class Exporter:
    """The HTTP server of /metrics, in a thread of its own; `close()` stops it."""

    def __init__(self, settings: Settings, clock: Clock) -> None:
        self.engine = db.make_engine(settings.database_url)
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(_Everything(DeskCollector(settings, self.engine, clock)))
        where = settings.metrics
        self.server, self.thread = start_http_server(where.port, where.host, registry=self.registry)
        logger.info("metrics_served", url=f"http://{where.host}:{where.port}/metrics")

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)
        self.engine.dispose()


def serve(settings: Settings, clock: Clock) -> Exporter | None:
    """Start the endpoint if `[metrics] listen` is set; a port taken (another daemon on this
    machine) is logged and the daemon runs on without it."""
    if not settings.metrics.enabled:
        return None
    try:
        return Exporter(settings, clock)
    except OSError as exc:
        where = f"{settings.metrics.host}:{settings.metrics.port}"
        logger.error("metrics_not_served", listen=where, reason=f"{type(exc).__name__}: {exc}")
        return None
