"""Response headers every page gets: a strict CSP (our own scripts only), no sniffing, no framing, and no caching
of anything personal."""
from __future__ import annotations

from flask import Flask, g, request

CSP = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "font-src 'self'",
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)


def init_security(app: Flask) -> None:
    @app.after_request
    def security_headers(response):
        response.headers.setdefault("Content-Security-Policy", CSP)
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers.setdefault("X-Frame-Options", "DENY")
        response.headers.setdefault("Referrer-Policy", "same-origin")
        response.headers.setdefault("Permissions-Policy", "camera=(), microphone=(), geolocation=()")
        _cache_rule(response)
        if app.config["SESSION_COOKIE_SECURE"]:
            response.headers.setdefault("Strict-Transport-Security", "max-age=31536000")
        return response


def _cache_rule(response) -> None:
    """`Cache-Control: no-store` on every answer made for someone identified (staff, a panel customer, an API
    token: the loaders that let them in set `g.personal`), whatever the view set, so no browser cache on a shared
    computer nor proxy keeps pages, downloads or exports with personal data. Other answers without a rule of
    their own (sign-in forms with their CSRF token, errors) get it too; only static files and the few public
    resources that say so themselves (the panel's colour and logo) may be cached."""
    if request.endpoint == "static":
        return
    if g.get("personal") or g.get("api_token") is not None:
        response.headers["Cache-Control"] = "no-store"
        response.headers.pop("Expires", None)
    else:
        response.headers.setdefault("Cache-Control", "no-store")
