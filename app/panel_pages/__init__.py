"""The customer panel's pages at /p/<shop-slug>/... (the blueprint "panel"); what they do is in
app/panel (access, notices, the customer's conversation)."""
from __future__ import annotations

from flask import Flask

from ..panel.auth import AreaSessionInterface
from . import requests, views  # noqa: F401  (the routes)
from .blueprint import bp


def init_panel(app: Flask) -> None:
    """Give the panel its own session cookie (see AreaSessionInterface) and register its pages."""
    app.session_interface = AreaSessionInterface()
    app.register_blueprint(bp)
