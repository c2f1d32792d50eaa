"""GET /metrics in Prometheus' text format, for the shop's monitoring; off unless METRICS_TOKEN is set.

The shop's state (outbox, mailboxes, held mail) is read from the database at each scrape, so every process
answers the same. Request latency is measured in the process that served the request. Under gunicorn with
several workers, gunicorn.conf.py sets PROMETHEUS_MULTIPROC_DIR: each worker writes its latencies to a file there
(prometheus_client's multiprocess mode) and a scrape adds up all the workers', so any worker answers for the
whole machine. Each machine reports its own requests: scrape every web machine."""
from __future__ import annotations

import hmac
import os
import time

from flask import Blueprint, Flask, abort, current_app, g, request
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Histogram, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.core import GaugeMetricFamily

from .health import shop_health

bp = Blueprint("monitoring", __name__)
PREFIX = "repair_inbox_"


class ShopCollector:
    """The database-backed gauges, computed when Prometheus scrapes (inside the /metrics request)."""

    def collect(self):
        health = shop_health()
        deliveries = GaugeMetricFamily(PREFIX + "deliveries", "Deliveries by channel and status.",
                                       labels=["channel", "status"])
        for (channel, status), number in sorted(health.deliveries.items()):
            deliveries.add_metric([channel, status], number)
        yield deliveries
        yield GaugeMetricFamily(PREFIX + "oldest_due_delivery_age_seconds",
                                "How long the longest-waiting due delivery has waited past its time (0: none).",
                                value=health.oldest_due_seconds)
        failures = GaugeMetricFamily(PREFIX + "delivery_failures",
                                     "Deliveries that failed or bounced, by channel, status and error code.",
                                     labels=["channel", "status", "error_code"])
        for (channel, status, code), number in sorted(health.delivery_failures.items()):
            failures.add_metric([channel, status, code], number)
        yield failures
        yield GaugeMetricFamily(PREFIX + "held_items", "Inbound mail and SMS held for staff to decide.",
                                value=health.held)
        yield GaugeMetricFamily(PREFIX + "inbound_errors", "Fetched mail that could not be recorded.",
                                value=health.inbound_errors)
        labels = ["mailbox_id", "mailbox"]
        good_poll = GaugeMetricFamily(PREFIX + "mailbox_last_good_poll_age_seconds",
                                      "Seconds since the mailbox's last polling pass that went through.", labels=labels)
        broken = GaugeMetricFamily(PREFIX + "mailbox_broken", "1 when the mailbox is marked broken.", labels=labels)
        failing = GaugeMetricFamily(PREFIX + "mailbox_consecutive_failures",
                                    "Failed sending or polling attempts in a row.", labels=labels)
        last_pass = GaugeMetricFamily(PREFIX + "mailbox_last_poll_items",
                                      "What the mailbox's last polling pass did, by outcome.",
                                      labels=[*labels, "outcome"])
        for mailbox in health.mailboxes:
            values = [str(mailbox.id), mailbox.email]
            broken.add_metric(values, int(mailbox.broken))
            failing.add_metric(values, mailbox.consecutive_failures)
            if mailbox.last_poll_ok_at is not None:
                good_poll.add_metric(values, max(0.0, (health.now - mailbox.last_poll_ok_at).total_seconds()))
            for outcome, number in sorted(mailbox.last_poll_counts.items()):
                last_pass.add_metric([*values, outcome], number)
        yield from (good_poll, broken, failing, last_pass)


def init_metrics(app: Flask) -> None:
    """A registry of the app's own (tests build many apps; the global default registry would mix them), the
    shop's gauges, and the request latency histogram observed after every request."""
    registry = CollectorRegistry()
    registry.register(ShopCollector())
    latency = Histogram(PREFIX + "http_request_duration_seconds", "Time to answer a request, in this process.",
                        ["endpoint", "method"], registry=registry)
    app.extensions["metrics"] = registry

    @app.after_request
    def _observe(response):
        started = g.get("request_started")  # set first thing by the request log (request_log.py)
        if started is not None:
            latency.labels(request.endpoint or "unmatched", request.method).observe(time.perf_counter() - started)
        return response

    app.register_blueprint(bp)


@bp.route("/metrics")
def metrics():
    """404 while METRICS_TOKEN is unset; 401 without `Authorization: Bearer <METRICS_TOKEN>`."""
    token = current_app.config.get("METRICS_TOKEN") or ""
    if not token:
        abort(404)
    scheme, _space, given = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(), token.encode()):
        return "Unauthorized\n", 401, {"WWW-Authenticate": 'Bearer realm="metrics"', "Content-Type": "text/plain"}
    return generate_latest(_registry()), 200, {"Content-Type": CONTENT_TYPE_LATEST,
                                                                       "Cache-Control": "no-store"}


def _registry() -> CollectorRegistry:
    """This process's registry; in multiprocess mode, the shop's gauges and every worker's latencies instead."""
    if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        return current_app.extensions["metrics"]
    registry = CollectorRegistry()
    MultiProcessCollector(registry)
    registry.register(ShopCollector())
    return registry
