"""The customer panel as a channel: "sending" publishes the message in the customer's panel inbox."""
from __future__ import annotations

from typing import TYPE_CHECKING

from flask_babel import gettext as _

from .base import SendResult, Unreachable, published

if TYPE_CHECKING:
    from ..models import Customer, Delivery, Shop


def _closed_reason(customer: "Customer | None") -> Unreachable | None:
    if customer is None or not customer.panel_active:
        return Unreachable(_("The panel is not activated for this customer."), "customer",
                           customer.id if customer is not None else None)
    return None


class PortalChannel:
    name = "portal"
    # Nothing travels further than our own database: a published panel message has arrived, so the
    # outbox records it as delivered at once.
    delivered_when_sent = True
    sends_in_transaction = True  # published in the transaction that records the result: a crash undoes it

    def unreachable_reason(self, customer: "Customer", shop: "Shop") -> Unreachable | None:
        return _closed_reason(customer)

    def open_session(self) -> "PortalSession":
        return PortalSession()


class PortalSession:
    """Publishing needs no connection; the change is committed together with the outbox's record of the result."""

    def send(self, delivery: "Delivery") -> SendResult:
        """Make the message visible in the panel and queue the customer's notice that it waits there (what
        on_publish registered); fails for good when the customer's panel is not active (any more)."""
        message = delivery.message
        reason = _closed_reason(message.thread.customer)
        if reason:
            return SendResult(ok=False, error=reason, error_code="panel_inactive", permanent=True)
        message.visible_to_customer = True
        published(message)  # queues the customer's notice (portal/notices.py registers it)
        return SendResult(ok=True, provider_id=f"panel:{message.id}")

    def close(self) -> None:
        """Nothing to close."""
