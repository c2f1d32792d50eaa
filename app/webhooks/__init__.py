"""Webhooks: providers calling us (Twilio). Signatures authenticate them, so the blueprint is exempt from CSRF."""
from flask import Blueprint

bp = Blueprint("webhooks", __name__, url_prefix="/webhooks")

from . import twilio  # noqa: E402,F401  (registers the routes on bp)
