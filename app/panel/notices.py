"""What the customer panel sends through the outbox: invitations, sign-in links and codes, "a new message waits"
notices to customers, and "a customer wrote" notices to the shop; each queued as a Delivery with its purpose and
rendered when the dispatcher sends it, so retries, the outbox page and the thread show them like any message,
and no working link or code is ever stored (only their hashes, made at send time)."""
from __future__ import annotations

from datetime import timedelta
from email.utils import format_datetime, make_msgid

from flask import current_app, render_template, url_for
from flask_babel import force_locale
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import func, select

from ..channels import get_channel, mime
from ..channels.base import NoticeContent, on_publish, register_notices
from ..channels.mail_build import OutgoingMail
from ..customers import ThroughContact, contact_writing_from, first_name_vocative, refuse_erased, sms_stopped
from ..errors import ValidationFailed
from ..extensions import db
from ..mail_ids import INSTANCE_HEADER, instance_id, reply_address
from ..models import Customer, Delivery, Mailbox, Message, Shop, Thread, WebRequest, utcnow
from ..models.audit import record
from ..urls import absolute_url
from . import credentials
from ..shop import branding

ACCESS_CATEGORY = "customer-panel"  # the thread that keeps a customer's invitations and sign-in messages
SIGN_IN_MESSAGES_PER_HOUR = 5  # whatever the form's rate limits allow, no more sign-in SMS than this to a person
NOTICE_LINK_LIFETIME_HOURS = 72  # a "new message" notice is often read hours later
CUSTOMER_NOTICES = ("panel_invite", "panel_sign_in", "panel_notice", "panel_request")
REQUEST_CODES_PER_HOUR = 5  # codes for requests from the public form to one customer: each SMS costs the shop money
# How staff see a delivery that is not the message itself (the outbox, the thread's delivery badges).
PURPOSE_LABELS = {"panel_invite": _l("panel invitation"), "panel_sign_in": _l("panel sign-in link"),
                  "panel_notice": _l("notice of a panel message"), "shop_notice": _l("notice to the shop"),
                  "panel_request": _l("code for a request from the website")}


def _app_path(endpoint: str, **values) -> str:
    """The path of a page within the app (without PUBLIC_BASE_URL's own path), as a `next` parameter holds it."""
    with current_app.test_request_context("/"):
        return url_for(endpoint, **values)


def _queue(message: Message, purpose: str, channel: str, recipient: str) -> Delivery:
    now = utcnow()
    delivery = Delivery(message_id=message.id, channel=channel, purpose=purpose, status="queued",
                        recipient=recipient, next_attempt_at=now, created_at=now)
    db.session.add(delivery)
    return delivery


def _recipient(customer: Customer, channel: str) -> str:
    return customer.email if channel == "email" else customer.phone


def access_thread(customer: Customer) -> Thread:
    """The customer's closed "Customer panel" thread, where staff see each invitation and sign-in message sent."""
    thread = db.session.scalars(
        select(Thread).where(Thread.customer_id == customer.id, Thread.category == ACCESS_CATEGORY,
                             Thread.deleted_at.is_(None)).order_by(Thread.id).limit(1)
    ).first()
    if thread is None:
        with force_locale(Shop.current().locale):
            subject = _("Customer panel access")
        thread = Thread(customer_id=customer.id, subject=subject, category=ACCESS_CATEGORY, status="closed",
                        source_channel="portal", closed_at=utcnow(), last_activity_at=utcnow())
        db.session.add(thread)
        db.session.flush()
    return thread


def _access_message(customer: Customer, channel: str, purpose: str, summary: str, author=None) -> Message:
    """A message in the access thread standing for what goes out; its text is a summary, never the link."""
    thread = access_thread(customer)
    message = Message(thread_id=thread.id, kind="message", direction="out", author_user_id=getattr(author, "id", None),
                      subject=thread.subject, body_text=summary, visible_to_customer=False, automatic=True,
                      meta={"channels": [channel], "panel": purpose}, created_at=utcnow())
    db.session.add(message)
    db.session.flush()
    _queue(message, purpose, channel, _recipient(customer, channel))
    return message


def invite(customer: Customer, channel: str, *, actor) -> Message:
    """Open the customer's panel and send an invitation with a one-time link (7 days) by e-mail or SMS.

    Refuses (ValidationFailed on `channel`) a channel that cannot reach the customer, and a disabled panel
    being re-opened this way is allowed: inviting is how staff open it again.
    """
    refuse_erased(customer, "channel")
    if channel not in ("email", "sms"):
        raise ValidationFailed({"channel": _("Choose e-mail or SMS.")})
    reason = get_channel(channel).unreachable_reason(customer, Shop.current())
    if reason:
        raise ValidationFailed({"channel": reason})
    if customer.panel_state != "active":
        credentials.set_panel_state(customer, "invited", actor=actor)
    with force_locale(Shop.current().locale):
        summary = _("Invitation to the customer panel, with a one-time link valid for 7 days.")
    message = _access_message(customer, channel, "panel_invite", summary, author=actor)
    record("panel.invite", by=actor, target=customer, channel=channel)
    return message


def send_sign_in(login: str) -> None:
    """Send a one-time sign-in link and code to `login` (an e-mail address or a phone number) when it belongs to a
    customer with panel access and can be reached there, at most SIGN_IN_MESSAGES_PER_HOUR an hour; otherwise
    nothing, and the caller says the same either way, so the form cannot tell anyone which addresses are customers."""
    customer = credentials.customer_by_login(login)
    if customer is None:
        return
    channel = "email" if "@" in login else "sms"
    if get_channel(channel).unreachable_reason(customer, Shop.current()) or _sign_ins_last_hour(customer) >= \
            SIGN_IN_MESSAGES_PER_HOUR:
        return
    with force_locale(Shop.current().locale):
        summary = _("Sign-in link and code for the customer panel, asked for on the sign-in page.")
    _access_message(customer, channel, "panel_sign_in", summary)


def _sign_ins_last_hour(customer: Customer, purpose: str = "panel_sign_in") -> int:
    """Sign-in messages (or other `purpose`) sent to the customer in the last hour (each SMS costs the shop
    money)."""
    return db.session.scalar(
        select(func.count(Delivery.id)).join(Message).join(Thread, Thread.id == Message.thread_id)
        .where(Thread.customer_id == customer.id, Delivery.purpose == purpose,
               Delivery.created_at > utcnow() - timedelta(hours=1))
    ) or 0


def send_request_code(web_request: WebRequest, customer: Customer) -> bool:
    """Queue the one message a request from the public form sends: its confirmation code, to the customer's own
    address or number on file that the request named (web_request.code_recipient; a company's contact person's,
    when it was theirs), at most
    REQUEST_CODES_PER_HOUR an hour per customer. Recorded in the customer's closed panel-access thread like
    sign-in messages (the summary, never the code). False when it was not queued (the cap, or the channel cannot
    reach the customer): the request then waits until it expires, like one whose code was never typed."""
    channel = web_request.code_channel
    contact = contact_writing_from(customer, email=web_request.code_recipient if channel == "email" else None,
                                   phone=web_request.code_recipient if channel == "sms" else None)
    own = web_request.code_recipient in (customer.email, customer.phone) or contact is None
    if get_channel(channel).unreachable_reason(customer if own else ThroughContact(customer, contact), Shop.current()) \
            or (not own and channel == "sms" and sms_stopped(contact.phone)) \
            or _sign_ins_last_hour(customer, "panel_request") >= REQUEST_CODES_PER_HOUR:
        return False
    thread = access_thread(customer)
    with force_locale(Shop.current().locale):
        summary = _("Code to confirm a request sent through the website's request form.")
    message = Message(thread_id=thread.id, kind="message", direction="out", subject=thread.subject, body_text=summary,
                      visible_to_customer=False, automatic=True,
                      meta={"channels": [channel], "panel": "panel_request", "web_request": web_request.id},
                      created_at=utcnow())
    db.session.add(message)
    db.session.flush()
    _queue(message, "panel_request", channel, web_request.code_recipient)
    return True


def _web_request(delivery: Delivery) -> WebRequest | None:
    request_id = (delivery.message.meta or {}).get("web_request")
    return db.session.get(WebRequest, request_id) if isinstance(request_id, int) else None


def queue_panel_notice(message: Message) -> Delivery | None:
    """Tell the customer by e-mail (else SMS) that `message`, just published in the panel, waits for them there.

    None when the message also went by e-mail or SMS (they have it already) or neither channel reaches them.
    """
    if {"email", "sms"} & set((message.meta or {}).get("channels") or ()):
        return None
    customer = message.thread.customer
    shop = Shop.current()
    for channel in ("email", "sms"):
        if not get_channel(channel).unreachable_reason(customer, shop):
            return _queue(message, "panel_notice", channel, _recipient(customer, channel))
    return None


def queue_shop_notice(message: Message) -> Delivery | None:
    """Tell the shop by e-mail (to its notification address) that a customer wrote `message` in the panel."""
    shop = Shop.current()
    if not shop.notification_email:
        return None
    return _queue(message, "shop_notice", "email", shop.notification_email)


# --- rendering at send time ----------------------------------------------------------------------


def notice_language(delivery: Delivery, shop: Shop) -> str:
    """The language a notice is written in: the customer's for customer notices, the shop's for the shop's."""
    if delivery.purpose == "panel_request" and (web_request := _web_request(delivery)) is not None:
        return web_request.language  # the language the sender filled the form in
    if delivery.purpose in CUSTOMER_NOTICES:
        return delivery.message.thread.customer.language_or(shop.locale)
    return shop.locale or "pl"


def _context(delivery: Delivery, shop: Shop) -> dict:
    """What the templates of a notice need; makes the one-time link (and code) of customer notices now."""
    message = delivery.message
    thread = message.thread
    customer = thread.customer
    polish = notice_language(delivery, shop) == "pl"  # a Polish greeting calls the customer by the vocative
    context = {"shop": shop, "brand": branding.brand_palette(shop), "customer": customer, "thread": thread,
               "message": message, "greeting_name": first_name_vocative(customer) if polish else customer.first_name,
               "repair": thread.repair, "sign_in_url": absolute_url("panel.sign_in", slug=shop.slug)}
    if delivery.purpose == "panel_invite":
        context["link"] = absolute_url("panel.link", slug=shop.slug, token=credentials.issue_link(customer, "invite"))
    elif delivery.purpose == "panel_sign_in":
        context["link"] = absolute_url("panel.link", slug=shop.slug, token=credentials.issue_link(customer, "login"))
        context["code"] = credentials.issue_code(customer)
    elif delivery.purpose == "panel_notice":
        token = credentials.issue_link(customer, "login", hours=NOTICE_LINK_LIFETIME_HOURS)
        thread_path = _app_path("panel.thread", slug=shop.slug, thread_id=thread.id)
        context["link"] = absolute_url("panel.link", slug=shop.slug, token=token, next=thread_path)
    elif delivery.purpose == "panel_request":
        web_request = _web_request(delivery)
        if web_request is None or web_request.state != "pending":
            raise ValueError("the request this code confirms is no longer waiting")
        context["code"] = credentials.issue_request_code(web_request)
    elif delivery.purpose == "shop_notice":
        context["staff_url"] = absolute_url("threads.show", thread_id=thread.id)
        context["login"] = customer.email or customer.phone or ""
    return context


def _subject(delivery: Delivery, context: dict) -> str:
    shop, repair = context["shop"], context["repair"]
    about = f" [#{repair.number}]" if repair is not None else ""
    if delivery.purpose == "panel_invite":
        return _("Your customer panel at %(shop)s", shop=shop.name)
    if delivery.purpose == "panel_sign_in":
        return _("Sign in to the customer panel of %(shop)s", shop=shop.name)
    if delivery.purpose == "panel_notice":
        return _("New message from %(shop)s", shop=shop.name) + about
    if delivery.purpose == "panel_request":
        return _("Your code to confirm the request to %(shop)s", shop=shop.name)
    if context["thread"].source_channel == "request_form":
        return _("%(customer)s sent a request through the website form", customer=context["customer"].name)
    return _("%(customer)s wrote in the customer panel", customer=context["customer"].name) + about


def notice_mail(delivery: Delivery, *, shop: Shop, home: Mailbox, via: Mailbox) -> OutgoingMail:
    """The e-mail of a notice delivery (see DELIVERY_PURPOSES), sent through `via` as automatic mail.

    A customer's reply to a "new message" notice finds its thread through the Reply-To token.
    """
    with force_locale(notice_language(delivery, shop)):
        context = _context(delivery, shop)
        subject = _subject(delivery, context)
        name = delivery.purpose.removeprefix("panel_")
        text = render_template(f"emails/panel_{name}.txt", subject=subject, **context)
        html = render_template(f"emails/panel_{name}.html", subject=subject, **context)
    for value in (subject, delivery.recipient):
        if "\r" in value or "\n" in value:
            raise ValueError(f"line break in a header value: {value!r}")
    message_id = make_msgid("panel", domain=via.email.rpartition("@")[2])
    headers = [
        f"From: {mime.address(via.display_name or shop.name, via.email)}",
        mime.folded("To", [delivery.recipient]),
        *([f"Reply-To: {reply_address(home.email, context['thread'].token)}"]
          if delivery.purpose in CUSTOMER_NOTICES else []),
        mime.header("Subject", subject),
        f"Date: {format_datetime(utcnow())}",
        f"Message-ID: {message_id}",
        "Auto-Submitted: auto-generated",
        "X-Auto-Response-Suppress: OOF, AutoReply",
        f"{INSTANCE_HEADER}: {instance_id()}",
    ]
    international = not (via.email.isascii() and delivery.recipient.isascii())
    data = mime.mail_bytes(headers, text, html, encoding="utf-8" if international else "ascii")
    return OutgoingMail(data, message_id.strip("<>"), via.email, [delivery.recipient], international)


def notice_sms(delivery: Delivery) -> str:
    """The SMS text of a customer notice delivery: short, with the link (and the code for sign-ins)."""
    shop = Shop.current()
    with force_locale(notice_language(delivery, shop)):
        context = _context(delivery, shop)
        if delivery.purpose == "panel_invite":
            return _("%(shop)s: your customer panel is ready. Open it within 7 days: %(link)s",
                     shop=shop.name, link=context["link"])
        if delivery.purpose == "panel_sign_in":
            return _("%(shop)s: your sign-in code is %(code)s (15 min). Or open: %(link)s",
                     shop=shop.name, code=context["code"], link=context["link"])
        if delivery.purpose == "panel_request":
            return _("%(shop)s: your code to confirm the request is %(code)s (15 min). If you sent no request, "
                     "ignore this message.", shop=shop.name, code=context["code"])
        return _("%(shop)s: a new message waits for you in the customer panel: %(link)s",
                 shop=shop.name, link=context["link"])


register_notices(PURPOSE_LABELS, NoticeContent(mail=notice_mail, sms=notice_sms))
on_publish("panel_notice", queue_panel_notice)
