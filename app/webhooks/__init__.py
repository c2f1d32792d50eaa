"""Webhooks: providers calling us (Twilio). Signatures authenticate them, so the blueprint is exempt from CSRF."""
from .twilio import bp

__all__ = ["bp"]
