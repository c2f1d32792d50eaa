"""Webhooks: providers calling us (Twilio, SMSAPI.pl). Twilio's signatures, or the secret in SMSAPI's URLs,
authenticate them, so the blueprints are exempt from CSRF."""
from .smsapi import bp as smsapi_bp
from .twilio import bp

__all__ = ["bp", "smsapi_bp"]
