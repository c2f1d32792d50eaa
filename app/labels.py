"""The words and colours the UI uses for channels and statuses, in one place for every page."""
from flask_babel import lazy_gettext as _l

CHANNEL_LABELS = {
    "email": _l("E-mail"), "sms": _l("SMS"), "portal": _l("Customer panel"), "phone": _l("Phone"),
    "chat": _l("Chat"), "web": _l("Web form"), "letter": _l("Letter"), "in_person": _l("In person"),
    "request_form": _l("Website request"),
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

# What each action of the audit log means, and the areas the filter groups them in (AuditEvent.action,
# "area.verb"). An action missing here is shown by its code (audit_action_label).
AUDIT_AREA_LABELS = {
    "api_token": _l("API tokens"), "auth": _l("Signing in"), "backup": _l("Backups"), "customer": _l("Customers"),
    "inbound": _l("Held mail and SMS"), "mail_rule": _l("Rules for incoming mail"), "mailbox": _l("Mailboxes"), "message": _l("Messages"),
    "oauth_client": _l("OAuth clients"), "outbox": _l("Outbox"), "panel": _l("Customer panel"),
    "queue": _l("Queues"), "repair": _l("Repairs"), "request_form": _l("Requests from the website"),
    "settings": _l("Settings"), "sms": _l("SMS"),
    "status": _l("Repair statuses"), "template": _l("Message templates"), "thread": _l("Threads"),
    "ticket": _l("Tickets"), "trusted_domain": _l("Trusted domains"), "user": _l("Staff accounts"),
}
AUDIT_ACTION_LABELS = {
    "api_token.create": _l("API token created"), "api_token.revoke": _l("API token revoked"),
    "auth.login": _l("Signed in"), "auth.login_failed": _l("Failed sign-in"), "auth.logout": _l("Signed out"),
    "backup.create": _l("Backup made"), "backup.download": _l("Backup downloaded"),
    "backup.restore": _l("Backup restored"),
    "customer.add_email": _l("Customer's e-mail address added"), "customer.create": _l("Customer added"),
    "customer.erase": _l("Customer anonymised"), "customer.export": _l("Customer's data exported"),
    "customer.update": _l("Customer changed"),
    "customer.contact_add": _l("Contact person added"), "customer.contact_update": _l("Contact person changed"),
    "customer.contact_remove": _l("Contact person removed"),
    "customer.contact_sms": _l("Contact person's SMS stopped or allowed"),
    "inbound.accept": _l("Held mail or SMS accepted"), "inbound.discard": _l("Held mail or SMS discarded"),
    "mail_rule.create": _l("Rule for incoming mail added"), "mail_rule.delete": _l("Rule for incoming mail deleted"),
    "mail_rule.disable": _l("Rule for incoming mail switched off"),
    "mail_rule.enable": _l("Rule for incoming mail switched on"),
    "mail_rule.move": _l("Rule for incoming mail moved"), "mail_rule.update": _l("Rule for incoming mail changed"),
    "mailbox.broken": _l("Mailbox stopped working"), "mailbox.connect": _l("Mailbox connected"),
    "mailbox.create": _l("Mailbox added"), "mailbox.update": _l("Mailbox changed"),
    "message.bulk": _l("Bulk message sent"), "message.move": _l("Message moved to another thread"),
    "message.redact": _l("Text masked in a message"), "message.send": _l("Message sent"),
    "message.undo": _l("Sending undone"),
    "oauth_client.save": _l("OAuth client saved"),
    "outbox.cancel": _l("Delivery cancelled"), "outbox.dismiss": _l("Failed delivery dismissed"),
    "outbox.hide": _l("Delivery removed from the outbox"), "outbox.resend": _l("Delivery sent again"),
    "panel.invite": _l("Invited to the customer panel"), "panel.password": _l("Panel password set"),
    "panel.reply": _l("Customer wrote in the panel"), "panel.sign_in": _l("Customer signed in to the panel"),
    "panel.state": _l("Panel access changed"),
    "queue.create": _l("Queue added"), "queue.delete": _l("Queue deleted"), "queue.rename": _l("Queue renamed"),
    "repair.create": _l("Repair added"), "repair.status": _l("Repair status changed"),
    "repair.update": _l("Repair changed"),
    "settings.notifications": _l("Notification settings changed"), "settings.panel": _l("Panel settings changed"),
    "settings.reminders": _l("Reminders changed"), "settings.setup_dismissed": _l("Setup checklist hidden"),
    "settings.shop": _l("Shop settings changed"),
    "sms.configure": _l("SMS account set up"), "sms.test": _l("Test SMS sent"),
    "sms.low_balance": _l("SMS balance low"), "sms.low_balance_threshold": _l("SMS low-balance threshold changed"),
    "sms.provider": _l("SMS provider switched"), "sms.rotate_secret": _l("SMS callback addresses renewed"),
    "request_form.wait": _l("Website request waiting for its code"),
    "request_form.confirm": _l("Website request confirmed with its code"),
    "request_form.expire": _l("Website request unconfirmed, moved to the inbox"),
    "request_form.ticket": _l("Ticket made of a website request"),
    "status.create": _l("Repair status added"), "status.deactivate": _l("Repair status retired"),
    "status.move": _l("Repair status moved"), "status.reactivate": _l("Repair status brought back"),
    "status.update": _l("Repair status changed"),
    "template.delete": _l("Template deleted"), "template.save": _l("Template saved"),
    "template.starter": _l("Ready-made templates added"),
    "thread.delete": _l("Thread deleted"), "thread.forward": _l("Thread forwarded"),
    "thread.merge": _l("Threads merged"), "thread.record": _l("Conversation recorded by hand"),
    "thread.split": _l("Message split into a new thread"),
    "ticket.create": _l("Ticket added"), "ticket.from_thread": _l("Ticket made of a thread"),
    "ticket.update": _l("Ticket changed"),
    "trusted_domain.add": _l("Trusted domain added"), "trusted_domain.remove": _l("Trusted domain removed"),
    "user.create": _l("Staff account added"), "user.password_change": _l("Password changed"),
    "user.password_reset": _l("Password reset"), "user.update": _l("Staff account changed"),
}


def audit_action_label(action: str) -> str:
    """An audit action in words; an action without a label (a newer one) by its code."""
    return str(AUDIT_ACTION_LABELS.get(action, action))


def audit_area_label(area: str) -> str:
    return str(AUDIT_AREA_LABELS.get(area, area))


def template_labels() -> dict:
    return {
        "CHANNEL_LABELS": CHANNEL_LABELS, "DELIVERY_LABELS": DELIVERY_LABELS,
        "DELIVERY_COLOURS": DELIVERY_COLOURS, "THREAD_STATUS_LABELS": THREAD_STATUS_LABELS,
        "THREAD_STATUS_COLOURS": THREAD_STATUS_COLOURS, "PRIORITY_LABELS": PRIORITY_LABELS,
    }
