"""Response headers every page gets: a strict CSP (our own scripts only), no sniffing, no framing (but for the public
request form, see allow_framing), and no caching of anything personal."""
from __future__ import annotations

from flask import Flask, request

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

# The one page any site may show in a frame: the public request form, which shops put on their own websites.
FRAMEABLE_CSP = CSP.replace("frame-ancestors 'none'", "frame-ancestors *")


def allow_framing(response):
    """Let any site frame this answer (the public request form); every other page stays unframeable."""
    response.headers["Content-Security-Policy"] = FRAMEABLE_CSP
    return response


def init_security(app: Flask) -> None:
    @app.after_request
    def security_headers(response):
        response.headers.setdefault("Content-Security-Policy", CSP)
        response.headers["X-Content-Type-Options"] = "nosniff"
        if response.headers.get("Content-Security-Policy") != FRAMEABLE_CSP:
            response.headers.setdefault("X-Frame-Options", "DENY")
        response.headers.setdefault("Referrer-Policy", "same-origin")
        response.headers.setdefault("Permissions-Policy", "camera=(), microphone=(), geolocation=()")
        _cache_rule(response)
        if app.config["SESSION_COOKIE_SECURE"]:
            response.headers.setdefault("Strict-Transport-Security", "max-age=31536000")
        return response


def _cache_rule(response) -> None:
    """`Cache-Control: no-store` on every answer except static files and those a view marked `public` (the same
    for everyone: versioned assets, the panel's colour and logo), whatever else the view set. So no browser cache
    on a shared computer nor proxy keeps pages, downloads, exports or API answers with personal data, nor a sign-in
    form with its CSRF token; a new page is covered without anyone remembering to."""
    if request.endpoint == "static" or response.cache_control.public:
        return
    response.headers["Cache-Control"] = "no-store"
    response.headers.pop("Expires", None)
