"""Absolute addresses of the app's pages, for what leaves a request: mail, SMS, PDFs, webhooks' callbacks."""
from __future__ import annotations

from flask import current_app, url_for


def absolute_url(endpoint: str, **values) -> str:
    """An absolute address of `endpoint` under PUBLIC_BASE_URL (its path included), also outside any request."""
    base = current_app.config["PUBLIC_BASE_URL"].rstrip("/")
    with current_app.test_request_context("/", base_url=base + "/"):
        return url_for(endpoint, _external=True, **values)


def public_url(path: str) -> str:
    """The address at which the outside world (a provider's webhook) reaches `path` of this app: PUBLIC_BASE_URL,
    its mount prefix included, then the path."""
    return current_app.config["PUBLIC_BASE_URL"].rstrip("/") + path
