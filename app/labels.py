"""The words and colours the UI uses for channels and statuses, in one place for every page."""
from flask_babel import lazy_gettext as _l

CHANNEL_LABELS = {
    "email": _l("E-mail"), "sms": _l("SMS"), "portal": _l("Customer panel"), "phone": _l("Phone"),
    "chat": _l("Chat"), "web": _l("Web form"), "letter": _l("Letter"), "in_person": _l("In person"),
}
DELIVERY_LABELS = {
    "scheduled": _l("Scheduled"), "queued": _l("Queued"), "sending": _l("Sending"), "sent": _l("Sent"),
    "delivered": _l("Delivered"), "failed": _l("Failed"), "bounced": _l("Bounced"), "cancelled": _l("Cancelled"),
    "uncertain": _l("Uncertain"),
}
DELIVERY_COLOURS = {
    "scheduled": "grey", "queued": "grey", "sending": "grey", "sent": "green", "delivered": "green",
    "failed": "red", "bounced": "red", "cancelled": "slate", "uncertain": "amber",
}
THREAD_STATUS_LABELS = {
    "open": _l("Open"), "waiting_us": _l("Waiting for us"), "waiting_customer": _l("Waiting for customer"),
    "closed": _l("Closed"),
}
THREAD_STATUS_COLOURS = {"open": "blue", "waiting_us": "amber", "waiting_customer": "violet", "closed": "grey"}
# Threads' and tickets' priorities (models.repairs.PRIORITIES), most pressing last.
PRIORITY_LABELS = {"low": _l("Low"), "normal": _l("Normal"), "high": _l("High"), "urgent": _l("Urgent")}


def template_labels() -> dict:
    return {
        "CHANNEL_LABELS": CHANNEL_LABELS, "DELIVERY_LABELS": DELIVERY_LABELS,
        "DELIVERY_COLOURS": DELIVERY_COLOURS, "THREAD_STATUS_LABELS": THREAD_STATUS_LABELS,
        "THREAD_STATUS_COLOURS": THREAD_STATUS_COLOURS, "PRIORITY_LABELS": PRIORITY_LABELS,
    }
