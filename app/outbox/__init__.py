"""The outbox: claiming due deliveries atomically, sending them with retries and backoff, and staff's actions on them.

Life of a delivery: `scheduled` (waits for its time: the undo window or "send later") or `queued` (due now, or
retrying later) → claimed by a dispatch pass → `sending` → `sent` (e-mail, SMS), `delivered` (customer panel) or,
after a failure, `queued` again with a backoff or `failed` for good. A delivery left `sending` by a crash is flagged
uncertain and waits for staff to resend or dismiss it; `cancelled` by staff while it waited.
"""
from .actions import can_cancel, can_dismiss, can_hide, can_resend, cancel, cancel_message, dismiss, hide, resend
from .dispatch import dispatch_pass
from .retention import purge_outbox

__all__ = [
    "can_cancel", "can_dismiss", "can_hide", "can_resend", "cancel", "cancel_message", "dismiss", "dispatch_pass",
    "hide",
    "purge_outbox", "resend",
]
