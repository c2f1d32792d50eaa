"""Writing to a customer: the compose form (from a customer, repair, ticket or thread), its live SMS counter, undo."""
from __future__ import annotations

import json
import secrets
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from flask import Blueprint, abort, flash, redirect, render_template, session, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user, login_required
from flask_wtf import FlaskForm
from sqlalchemy import delete
from htmx_flask import request
from wtforms import BooleanField, DateTimeLocalField, HiddenField, MultipleFileField, StringField, TextAreaField
from wtforms.validators import Optional

from ..attachments import store
from ..channels import get_channel
from ..channels.sms_text import count, sms_body
from ..errors import ValidationFailed
from ..extensions import db
from ..i18n import current_shop, shown_datetime
from ..labels import CHANNEL_LABELS
from ..customers import contact_of
from ..messaging.compose import REPAIR_CONTACT, channel_problems, compose, default_channels, sender_address, undo
from ..messaging.threads import live_thread
from ..messaging.presence import arrived_since, latest_message_id, others_present
from ..messaging.templates import Rendered, message_templates, refusal_for, render, reply_frame, version_for
from ..messaging.threads import thread_for_staff
from ..models import Customer, KeptDraft, Message, MessageTemplate, Repair, Ticket, utcnow
from ..models.conversations import CHANNELS
from . import fix_url
from .customers import add_posted_contact, new_contact_form, new_contact_posted
from ..request_input import uploads, whole_number
from .thread_tools import carried_files, carry_files

bp = Blueprint("compose", __name__)
# How long a message taken back with Undo waits, on the server, to be opened again in the compose form.
DRAFT_SECONDS = 24 * 3600
# The session key of the id of the message whose Undo toast the next thread page shows.
UNDO_KEY = "undo_message_id"

class ComposeForm(FlaskForm):
    subject = StringField(_l("Subject"), render_kw={"maxlength": 200})
    cc = StringField(_l("CC"), render_kw={"placeholder": _l("addresses separated by commas")})
    body = TextAreaField(_l("Message"), render_kw={"rows": 8})
    sms_plain = BooleanField(_l("SMS without Polish letters"))
    send_at = DateTimeLocalField(_l("Send later"), validators=[Optional()], format="%Y-%m-%dT%H:%M")
    attachments = MultipleFileField(_l("Attachments"))


class RecipientForm(FlaskForm):
    """The customer picker on a compose page opened without a recipient (a GET form: no CSRF needed)."""

    class Meta:
        csrf = False

    customer_id = HiddenField()


def _context():
    """Customer, repair, ticket and thread named by the request (query string or form), each checked to exist."""
    values = request.values
    # A reply begun in a thread that was merged meanwhile goes to the thread it was merged into.
    thread = live_thread(thread_for_staff(values.get("thread_id", type=whole_number) or 0)) if values.get("thread_id") else None
    repair = db.get_or_404(Repair, values.get("repair_id", type=whole_number)) if values.get("repair_id") else None
    ticket = db.get_or_404(Ticket, values.get("ticket_id", type=whole_number)) if values.get("ticket_id") else None
    customer_id = values.get("customer_id", type=whole_number)
    customer_id = customer_id or (thread.customer_id if thread else None) or (repair.customer_id if repair else None) \
        or (ticket.customer_id if ticket else None)
    customer = db.get_or_404(Customer, customer_id) if customer_id else None
    return customer, repair or (thread.repair if thread else None), ticket or (thread.ticket if thread else None), thread


def _channel_states(customer: Customer | None, thread=None) -> list[dict]:
    """Each channel with why it cannot reach the customer; for a thread without a customer, e-mail alone, with why
    it cannot reach the thread's sender."""
    if customer is None and thread is not None:
        reason = get_channel("email").sender_unreachable_reason(sender_address(thread))
        return [{"name": "email", "label": CHANNEL_LABELS["email"], "reason": reason, "fix_url": fix_url(reason)}]
    shop = current_shop()
    states = []
    for name in CHANNELS:
        reason = get_channel(name).unreachable_reason(customer, shop) if customer else None
        if reason and customer.is_company and any(  # a contact person may have the address the company lacks
                not channel_problems(customer, [name], shop, contact) for contact in customer.contacts):
            reason = None
        states.append({"name": name, "label": CHANNEL_LABELS[name], "reason": reason, "fix_url": fix_url(reason)})
    return states


def reply_box(thread) -> dict | None:
    """What the reply box at the bottom of a thread's page needs: the channels that can reach the thread's customer,
    those a reply goes by unless changed, and the text it starts with. A thread without a customer is answered by
    e-mail to its sender (`to`), or, when it has none, not at all (`reason` says why)."""
    customer = thread.customer
    if customer is None:
        email = _channel_states(None, thread)[0]
        return {"channels": [email], "chosen": ["email"], "body": "", "to": sender_address(thread),
                "reason": email["reason"]}
    return {"channels": _channel_states(customer), "chosen": default_channels(customer, thread, current_shop()),
            "body": _framed_reply(customer, thread.repair)}


def _send_at_in_shop_zone(local: datetime | None) -> datetime | None:
    """The form's date and time, read in the shop's time zone (the form has no zone of its own)."""
    if local is None:
        return None
    return local.replace(tzinfo=ZoneInfo(current_shop().timezone))


def _render(
    form, customer, repair, ticket, thread, chosen, errors=None, status=200, page="staff/compose/page.html",
    new_customer=None, **collision
):
    own = _template_texts(_chosen_template(), customer, repair)
    own_texts, plain = own.texts, form.sms_plain.data
    if thread is not None:  # a reply: who else is on the thread, and the last message this reply has seen
        collision.setdefault("seen_message_id", latest_message_id(thread))
        collision.setdefault("present", others_present(thread, current_user))
    return render_template(
        page, form=form, customer=customer, repair=repair, ticket=ticket, thread=thread,
        new_customer=new_customer or new_contact_form(),
        sender=sender_address(thread) if customer is None and thread is not None else None,
        channels=_channel_states(customer, thread), chosen=chosen, errors=errors or {}, recipient_form=RecipientForm(),
        sms=count(sms_body(form.body.data or "", form.sms_plain.data)), sms_full=count(sms_body(form.body.data or "")),
        templates=message_templates() if customer is not None else [],  # templates are written for customers
        template_id=request.values.get("template_id", type=whole_number),
        own_texts=own_texts, own_sms=count(sms_body(own_texts["sms"], plain)) if "sms" in own_texts else None,
        **collision,
    ), status


def _chosen_template() -> MessageTemplate | None:
    template_id = request.values.get("template_id", type=whole_number)
    template = db.session.get(MessageTemplate, template_id) if template_id else None
    return template if template is not None and template.kind == "message" else None


def _template_texts(template: MessageTemplate | None, customer: Customer | None, repair: Repair | None) -> Rendered:
    """The chosen template rendered for this customer (its version in their language): its own SMS and panel
    texts, which those channels carry instead of the text written in the form, are its `texts` ({} without)."""
    if template is None or customer is None or refusal_for(template, customer):
        return Rendered("", "")
    return render(version_for(template, customer, current_shop()), shop=current_shop(), customer=customer,
                  repair=repair)


def _framed_reply(customer: Customer, repair: Repair | None) -> str:
    """An empty reply: the shop's header and footer in the customer's language (else the shop's), with room to
    write between them."""
    shop = current_shop()
    language = customer.language_or(shop.locale)
    parts = [render(frame, shop=shop, customer=customer, repair=repair).body for kind in ("header", "footer")
             if (frame := reply_frame(language, kind) or reply_frame(shop.locale, kind)) is not None]
    return "\n\n\n\n".join(parts)


@bp.route("/compose", methods=["GET", "POST"])
@login_required
def page():
    customer, repair, ticket, thread = _context()
    form = ComposeForm()
    if request.method == "GET":
        chosen = default_channels(customer, thread, current_shop()) if customer else ["email"] if thread else []
        if (draft := _kept_draft(request.args.get("draft", ""))) is not None:  # back from Undo
            form = ComposeForm(formdata=None, body=draft["body"], subject=draft["subject"],
                               sms_plain=draft["sms_plain"], cc=draft["cc"])
            chosen = draft["channels"]
        elif customer is not None and not form.body.data:
            form.body.data = _framed_reply(customer, repair)
        return _render(form, customer, repair, ticket, thread, chosen)
    if customer is None and thread is None:
        if not new_contact_posted():
            abort(400)
        new_customer = new_contact_form()
        added = add_posted_contact(new_customer)
        if added is None:
            return _render(form, None, repair, ticket, thread, [], status=422, new_customer=new_customer)
        return redirect(url_for("compose.page", customer_id=added.id))
    chosen = request.form.getlist("channels")
    if not form.validate():
        return _render(form, customer, repair, ticket, thread, chosen, status=422)
    try:
        files = carried_files(request.form.get("kept_files", "")) + [
            store(f.stream, f.filename) for f in uploads(form.attachments.data)]
        newer = arrived_since(thread, request.form.get("seen_message_id", type=whole_number)) \
            if thread is not None and request.form.get("seen_message_id") else []
        if newer:  # someone wrote while this reply was written: show it first, send only when asked again
            return _render(form, customer, repair, ticket, thread, chosen, status=409, newer=newer,
                           seen_message_id=latest_message_id(thread), kept_files=carry_files(files),
                           kept_names=[f.filename for f in files])
        own = _template_texts(_chosen_template(), customer, repair)  # the template's SMS and panel texts
        contact = contact_of(customer, request.form["contact_id"]) \
            if customer is not None and "contact_id" in request.form else REPAIR_CONTACT
        message = compose(
            contact=contact, customer=customer, channels=chosen, body=form.body.data, author=current_user,
            subject=form.subject.data or "", repair=repair, ticket=ticket, thread=thread,
            cc=(form.cc.data or "").replace(";", ",").split(","),
            attachments=files, send_at=_send_at_in_shop_zone(form.send_at.data),
            sms_plain=form.sms_plain.data,
            template=_chosen_template() if customer is not None else None, texts=own.texts,
        )
    except ValidationFailed as exc:
        db.session.rollback()
        return _render(form, customer, repair, ticket, thread, chosen, errors=exc.fields, status=422)
    db.session.commit()
    _drop_draft(request.form.get("draft", ""))
    if form.send_at.data is None:
        session[UNDO_KEY] = message.id  # the thread page shows the Undo toast for it, once
    else:
        flash(_("Message scheduled for %(when)s.", when=shown_datetime(_send_at_in_shop_zone(form.send_at.data))),
              "success")
    return redirect(url_for("threads.show", thread_id=message.thread_id))


@bp.route("/compose/template", methods=["POST"])
@login_required
def fill():
    """The subject and text of the chosen template for this customer and repair, in place of what was written;
    a marketing template for a customer without consent is refused with the reason, leaving the text alone."""
    customer, repair, ticket, thread = _context()
    if customer is None:
        abort(400)
    form, errors = ComposeForm(), {}
    template = _chosen_template()
    if template is not None:
        if refusal := refusal_for(template, customer):
            errors["template_id"] = refusal
        else:
            template = version_for(template, customer, current_shop())
            rendered = render(template, shop=current_shop(), customer=customer, repair=repair)
            form.subject.data, form.body.data = rendered.subject, rendered.body
            form.sms_plain.data = form.sms_plain.data or rendered.sms_plain  # the template's choice, to untick
    return _render(form, customer, repair, ticket, thread, [], errors, page="staff/compose/_text.html")


@bp.route("/compose/sms-count", methods=["POST"])
@login_required
def sms_count():
    """The live counter under the editor: characters, encoding, parts, and what the plain variant saves."""
    body = request.form.get("body", "")
    plain = request.form.get("sms_plain") in ("y", "on", "true", "1")
    return render_template(
        "staff/compose/_sms_counter.html",
        sms=count(sms_body(body, plain)), sms_full=count(sms_body(body)), plain=plain,
    )


@bp.route("/messages/<int:message_id>/undo", methods=["POST"])
@login_required
def undo_message(message_id: int):
    """Stop a message in its undo window and open it again in the compose form. The text waits on the server and
    the browser is sent to the compose page (Post/Redirect/Get), so the address is that page's and reloading it
    shows the text again without taking anything back twice."""
    message = db.get_or_404(Message, message_id)
    thread = thread_for_staff(message.thread_id)
    context = {"customer_id": thread.customer_id, "repair_id": thread.repair_id, "ticket_id": thread.ticket_id}
    try:
        draft = undo(message, actor=current_user)
    except ValidationFailed as exc:
        db.session.rollback()
        flash(exc.message_for("undo"), "error")
        return redirect(url_for("threads.show", thread_id=thread.id))
    if db.session.get(type(thread), thread.id) is not None:
        context["thread_id"] = thread.id
    db.session.commit()
    flash(_("Message not sent. You can edit it and send it again."), "info")
    return redirect(url_for("compose.page", draft=_keep_draft(draft, thread.customer_id),
                            **{key: value for key, value in context.items() if value is not None}))


def _keep_draft(draft: dict, customer_id: int | None) -> str:
    """Keep what Undo took back for the person who took it, under a new random id; drafts older than a day are
    dropped. In the database, not the session (a message can be far longer than a cookie) nor a file (the next
    page may be served by another machine)."""
    now = utcnow()
    db.session.execute(delete(KeptDraft).where(KeptDraft.created_at < now - timedelta(seconds=DRAFT_SECONDS)))
    token = secrets.token_urlsafe(24)
    db.session.add(KeptDraft(token=token, user_id=current_user.id, customer_id=customer_id, data=json.dumps(draft),
                             created_at=now))
    db.session.commit()
    return token


def _kept_draft(token: str) -> dict | None:
    """The draft kept under `token` for the signed-in person; None for anyone else's, an expired or unknown one."""
    kept = db.session.get(KeptDraft, token) if token and len(token) <= 64 else None
    if kept is None or kept.user_id != current_user.id \
            or kept.created_at < utcnow() - timedelta(seconds=DRAFT_SECONDS):
        return None
    try:
        draft = json.loads(kept.data)
    except ValueError:
        return None
    return draft if isinstance(draft, dict) else None


def _drop_draft(token: str) -> None:
    """Forget a draft once it has been sent again."""
    if _kept_draft(token) is not None:
        db.session.execute(delete(KeptDraft).where(KeptDraft.token == token))
        db.session.commit()
