"""Seeing what the app is doing: request logs, /metrics for Prometheus, `flask status` for a person."""
from __future__ import annotations

from flask import Flask

from .commands import status
from .metrics import init_metrics
from .request_log import configure_logging, init_request_log


def init_monitoring(app: Flask) -> None:
    configure_logging(app)
    init_request_log(app)
    init_metrics(app)
    app.cli.add_command(status)
