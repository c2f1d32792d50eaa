"""Delivery channels (e-mail, SMS, customer panel), each able to say whether it can reach a customer and send."""
from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .base import Channel

# Channel name → "module:class"; imported on first use, so the app starts without loading SMTP or Twilio code.
CHANNELS = {
    "email": "app.channels.email:EmailChannel",
    "sms": "app.channels.sms:SmsChannel",
    "portal": "app.channels.portal:PortalChannel",
}


def get_channel(name: str) -> "Channel":
    """A new instance of the channel called `name`; KeyError for a name that is not in CHANNELS."""
    module, _, class_name = CHANNELS[name].partition(":")
    return getattr(import_module(module), class_name)()
