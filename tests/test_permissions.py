"""Who may change what: every state-changing route (POST, PUT, PATCH, DELETE in `app.url_map`) is classified in
MATRIX by endpoint name, and each role (anonymous, staff, owner, panel customer, API token) gets the answer its
class promises. A new state-changing route fails `test_every_state_changing_route_is_classified` until someone
adds it to MATRIX, which makes them decide who may use it.

Each request is a real one with a valid CSRF token for the role's session and an empty body: it shows whether the
role gets past the access check (the body's own checks come after, and the input sweep tests those).
"""
from __future__ import annotations

import pytest
from werkzeug.routing import Rule

from route_helpers import (CSRF_REFUSED, ROLES, WRITE_METHODS, RoleClient, build_path, good_value, in_safe_order, routes,
                           shops_per_role)

# The classes. Staff means any signed-in member of staff, owners included.
STAFF, OWNER, PANEL, PUBLIC, API, WEBHOOK = "staff", "owner", "panel", "public", "api", "webhook"
SIGN_OUT, PANEL_SIGN_OUT, PANEL_STEP = "sign-out", "panel sign-out", "panel sign-in step"
REQUEST_STEP = "request form step"

# What each role gets from a route of each class: one answer, or a tuple of acceptable ones. "in" means it got
# past the access check (any answer below 500 other than the refusals); "sign-in" a redirect to the staff sign-in
# page, "panel sign-in" to the panel's.
EXPECTED = {
    STAFF: {"anonymous": "sign-in", "staff": "in", "owner": "in", "panel": "sign-in", "api": "sign-in"},
    OWNER: {"anonymous": "sign-in", "staff": "403", "owner": "in", "panel": "sign-in", "api": "sign-in"},
    PANEL: {role: "in" if role == "panel" else "panel sign-in" for role in ROLES},
    # sign-in forms and one-time links check what is sent instead (401: wrong credentials)
    PUBLIC: dict.fromkeys(ROLES, ("in", "401")),
    # the second step of the panel's sign-in: without the first one in the session, back to the first
    PANEL_STEP: dict.fromkeys(ROLES, "panel sign-in"),
    # the public request form's code page: without a request sent from this browser, back to the form
    REQUEST_STEP: dict.fromkeys(ROLES, "request form"),
    SIGN_OUT: dict.fromkeys(ROLES, "sign-in"),
    PANEL_SIGN_OUT: dict.fromkeys(ROLES, "panel sign-in"),
    API: {role: "in" if role == "api" else "401" for role in ROLES},
    WEBHOOK: dict.fromkeys(ROLES, "403"),  # only the provider's signature opens them; no session or token does
}

# Every state-changing route by endpoint name. Add a new route here (the lead adds merged ones).
MATRIX = {
    # staff sign-in and own account
    "auth.login": PUBLIC,
    "auth.logout": SIGN_OUT,
    "account.language": PUBLIC,  # stored in the session when nobody is signed in
    "account.password": STAFF,
    # the inbox and threads
    "compose.page": STAFF,
    "compose.sms_count": STAFF,
    "compose.fill": STAFF,
    "compose.undo_message": STAFF,
    "bulk.page": STAFF,
    "thread_actions.assign_to": STAFF,
    "thread_actions.category": STAFF,
    "thread_actions.crm_note": STAFF,
    "thread_actions.delete": OWNER,
    "thread_actions.follow_thread": STAFF,
    "thread_actions.unfollow_thread": STAFF,
    "thread_actions.note": STAFF,
    "thread_actions.priority": STAFF,
    "thread_actions.queue": STAFF,
    "thread_actions.status": STAFF,
    "thread_actions.tag": STAFF,
    "thread_actions.untag": STAFF,
    "thread_actions.record": STAFF,
    "thread_actions.context": STAFF,
    "thread_actions.move": STAFF,
    "thread_tools.forward": STAFF,
    "thread_tools.make_ticket": STAFF,
    "thread_tools.merge": STAFF,
    "thread_tools.presence": STAFF,
    "thread_tools.split": STAFF,
    "threads.cancel_message": STAFF,
    "threads.move": STAFF,
    "threads.redact": STAFF,
    "held.accept": STAFF,
    "held.create_customer": STAFF,
    "held.discard": STAFF,
    "outbox.act": OWNER,  # and staff whom the owner let see the outbox (the seeded staff may not)
    # customers, repairs, tickets
    "customers.new": STAFF,
    "customers.edit": STAFF,
    "customers.consents": STAFF,
    "customers.erase": OWNER,
    "customers.panel_invite": STAFF,
    "customers.panel_disable": STAFF,
    "customers.contact_add": STAFF,
    "customers.contact_edit": STAFF,
    "customers.contact_remove": STAFF,
    "repairs.new": STAFF,
    "repairs.edit": STAFF,
    "repairs.set_status": STAFF,
    "tickets.new": STAFF,
    "tickets.edit": STAFF,
    # settings
    "settings.shop": OWNER,
    "settings.messaging": OWNER,
    "settings.opening_hours": OWNER,
    "settings.dismiss_setup": OWNER,
    "settings.user_new": OWNER,
    "settings.user_edit": OWNER,
    "settings.user_password": OWNER,
    "mailboxes.new": OWNER,
    "mailboxes.edit": OWNER,
    "mailboxes.set_active": OWNER,
    "mailboxes.make_default": OWNER,
    "mailboxes.test": OWNER,
    "mailboxes.test_imap": OWNER,
    "mailbox_oauth.save": OWNER,
    "notifications.index": OWNER,
    "notifications.reminders": OWNER,
    "notifications.reminder_switch": OWNER,
    "notifications.reminder_delete": OWNER,
    "panel_settings.index": OWNER,
    "sms_settings.index": OWNER,
    "sms_settings.replies": OWNER,
    "sms_settings.test": OWNER,
    "sms_settings.smsapi": OWNER,
    "sms_settings.rotate": OWNER,
    "sms_settings.provider": OWNER,
    "sms_settings.balance": OWNER,
    "templates.edit": OWNER,
    "templates.delete": OWNER,
    "templates.add_starter": OWNER,
    "templates.show_preview": OWNER,
    "templates.sms_count": OWNER,
    "api_tokens.index": OWNER,
    "api_tokens.revoke": OWNER,
    "backups.create": OWNER,
    "trusted_domains.index": OWNER,
    "mail_rules.new": OWNER,
    "mail_rules.edit": OWNER,
    "mail_rules.move": OWNER,
    "mail_rules.switch": OWNER,
    "mail_rules.delete": OWNER,
    "trusted_domains.delete": OWNER,
    "workflow.add_queue": OWNER,
    "workflow.rename_queue": OWNER,
    "workflow.delete_queue": OWNER,
    "workflow.add_status": OWNER,
    "workflow.edit_status": OWNER,
    "workflow.deactivate_status": OWNER,
    "workflow.move_status": OWNER,
    "workflow.reactivate_status": OWNER,
    # the customer panel
    "panel.sign_in": PUBLIC,
    "panel.code": PANEL_STEP,
    "panel.access_code": PUBLIC,
    "panel.link": PUBLIC,
    "panel.sign_out": PANEL_SIGN_OUT,
    "panel.account": PANEL,
    "panel.language": PANEL,
    "panel.new_thread": PANEL,
    "panel.reply": PANEL,
    "panel.request_form": PUBLIC,  # the public request form: anyone, no sign-in
    "panel.request_code": REQUEST_STEP,
    # the API and webhooks
    "api.post_customer": API,
    "api.patch_customer": API,
    "api.post_repair": API,
    "api.patch_repair": API,
    "api.post_message": API,
    "api.patch_thread": API,
    "webhooks.twilio_sms": WEBHOOK,
    "webhooks.twilio_status": WEBHOOK,
    "smsapi_webhooks.report": WEBHOOK,
    "smsapi_webhooks.incoming": WEBHOOK,
    "smsapi_webhooks.without_secret": WEBHOOK,
}


def state_changing(rules: list[Rule]) -> list[tuple[Rule, str]]:
    return [(rule, method) for rule in rules for method in sorted(rule.methods) if method in WRITE_METHODS]


def outcome(response) -> str:
    """How the route answered, in EXPECTED's words."""
    location = response.headers.get("Location", "").split("?")[0]
    if response.status_code in (301, 302, 303) and location.endswith("/login"):
        return "sign-in"
    if response.status_code in (301, 302, 303) and location.endswith("/sign-in"):
        return "panel sign-in"
    if response.status_code in (301, 302, 303) and location.endswith("/zapytanie"):
        return "request form"
    if response.status_code in (401, 403):
        return str(response.status_code)
    if CSRF_REFUSED in response.headers:
        return "CSRF refused"  # the test's own mistake: it must send the role's token
    if response.status_code >= 500:
        return str(response.status_code)
    return "in"


@pytest.fixture(scope="module")
def shopfronts(databases, tmp_path_factory):
    with shops_per_role(databases, tmp_path_factory, "permissions") as fronts:
        yield fronts


def test_every_state_changing_route_is_classified(app):
    endpoints = {rule.endpoint for rule, _method in state_changing(routes(app))}
    assert sorted(endpoints - set(MATRIX)) == [], "classify these routes in MATRIX: who may use them?"
    assert sorted(set(MATRIX) - endpoints) == [], "these routes are gone: remove them from MATRIX"


@pytest.mark.parametrize("role", ROLES)
def test_each_role_gets_what_the_matrix_promises(shopfronts, role):
    front = shopfronts[role]
    wrong = []
    with front.app.app_context():
        user = RoleClient(front, role)
        for rule, method in state_changing(in_safe_order(routes(front.app))):
            if rule.endpoint not in MATRIX:
                continue  # the test above names it
            path = build_path(rule, {name: good_value(front, rule, name) for name in rule.arguments})
            response = user.open(method, path, data={"csrf_token": user.token_for(path)})
            expected, got = EXPECTED[MATRIX[rule.endpoint]][role], outcome(response)
            if got not in (expected if isinstance(expected, tuple) else (expected,)):
                wrong.append(f"{method} {path} ({rule.endpoint}, {MATRIX[rule.endpoint]}): expected {expected}, "
                             f"got {got} ({response.status_code} {response.headers.get('Location', '')})")
    assert not wrong, f"as {role}:\n" + "\n".join(wrong)
