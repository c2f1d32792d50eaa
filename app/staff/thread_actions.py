"""Staff acting on a thread: assign, queue, status, priority, category, tags, follow, notes, the customer's CRM
note, delete; and recording a conversation held outside the app as a new thread.

Each change posts a small form. htmx swaps the thread's header (and puts the change's event at the end of the
timeline); without JavaScript the browser posts the form and comes back to the thread.
"""
from __future__ import annotations

from collections.abc import Callable

from flask import Blueprint, abort, flash, redirect, render_template, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user, login_required
from flask_wtf import FlaskForm
from htmx_flask import request
from sqlalchemy import select
from wtforms import HiddenField, SelectField, StringField, TextAreaField

from ..customers import update_customer
from ..errors import ValidationFailed
from ..extensions import db
from ..labels import CHANNEL_LABELS, PRIORITY_LABELS, THREAD_STATUS_LABELS
from ..messaging.record import RECORD_SOURCES, record_conversation
from ..messaging.thread_actions import (
    EVENTS, NOTE_MAX, QUEUES, UNCHANGED, add_note, add_tag, assign, categories_in_use, change_context, change_queue,
    delete_thread, follow, remove_tag, set_category, set_priority, set_status, thread_header, unfollow,
)
from ..messaging.threads import thread_for_staff
from ..models import Customer, Message, Queue, Repair, Thread, Ticket, User
from . import owner_required, show_errors, wants_fragment
from .customers import PANEL_STATE_LABELS, add_posted_contact, new_contact_form, new_contact_posted

bp = Blueprint("thread_actions", __name__, url_prefix="/threads")

bp.add_app_template_global(NOTE_MAX, "NOTE_MAX")
bp.add_app_template_global(EVENTS, "THREAD_EVENTS")
bp.add_app_template_global(PANEL_STATE_LABELS, "PANEL_STATE_LABELS")


def _change(thread_id: int, change: Callable[[Thread], Message | None]):
    """Load the thread, make the change, answer: htmx gets the header again plus the change's event for the
    timeline (a refused change: the header with the reason); a plain form post goes back to the thread."""
    thread = thread_for_staff(thread_id)
    try:
        event = change(thread)
    except ValidationFailed as exc:
        db.session.rollback()
        error = next(iter(exc.fields.values()))
        if wants_fragment():  # htmx swaps 200 answers only: the reason shows in the header
            return render_template("staff/threads/_changed.html", thread=thread, events=[], error=error,
                                   header=thread_header(thread, current_user))
        flash(error, "error")
        return redirect(url_for("threads.show", thread_id=thread.id))
    db.session.commit()
    if wants_fragment():
        return render_template("staff/threads/_changed.html", thread=thread, events=[event] if event else [],
                               header=thread_header(thread, current_user))
    return redirect(url_for("threads.show", thread_id=thread.id))


def _row(model, value: str | None):
    """The row a form or URL names by id, None for no id (""); 404 for an id that does not exist or is no number
    a database keeps (a hostile 10**30 must not reach PostgreSQL's integer columns)."""
    if not value:
        return None
    if not (value.isascii() and value.isdecimal() and len(value) <= 9):
        abort(404)
    return db.get_or_404(model, int(value))


@bp.route("/<int:thread_id>/assign", methods=["POST"])
@login_required
def assign_to(thread_id: int):
    """Give the thread to someone (the form's assignee_id: a user id, empty for nobody)."""
    return _change(thread_id, lambda thread: assign(thread, _row(User, request.form.get("assignee_id")), current_user))


@bp.route("/<int:thread_id>/queue", methods=["POST"])
@login_required
def queue(thread_id: int):
    """Move the thread to another queue (empty: none); its assignee is cleared."""
    return _change(thread_id, lambda thread: change_queue(thread, _row(Queue, request.form.get("queue_id")),
                                                          current_user))


@bp.route("/<int:thread_id>/status", methods=["POST"])
@login_required
def status(thread_id: int):
    """Set the status: open, waiting for us or the customer, closed (and back again to reopen)."""
    return _change(thread_id, lambda thread: set_status(thread, request.form.get("status", ""), current_user))


@bp.route("/<int:thread_id>/priority", methods=["POST"])
@login_required
def priority(thread_id: int):
    return _change(thread_id, lambda thread: set_priority(thread, request.form.get("priority", ""), current_user))


@bp.route("/<int:thread_id>/category", methods=["POST"])
@login_required
def category(thread_id: int):
    return _change(thread_id, lambda thread: set_category(thread, request.form.get("category", ""), current_user))


@bp.route("/categories")
@login_required
def categories():
    """The categories in use, as the options of the category field's suggestion list (loaded when it is used)."""
    return render_template("staff/threads/_categories.html", categories=categories_in_use())


@bp.route("/<int:thread_id>/tags", methods=["POST"])
@login_required
def tag(thread_id: int):
    return _change(thread_id, lambda thread: add_tag(thread, request.form.get("tag", ""), current_user))


@bp.route("/<int:thread_id>/tags/<int:tag_id>/remove", methods=["POST"])
@login_required
def untag(thread_id: int, tag_id: int):
    return _change(thread_id, lambda thread: remove_tag(thread, tag_id, current_user))


@bp.route("/<int:thread_id>/follow", methods=["POST"])
@login_required
def follow_thread(thread_id: int):
    """Follow the thread: it shows in the inbox's "Followed" view."""
    return _change(thread_id, lambda thread: follow(thread, current_user))


@bp.route("/<int:thread_id>/unfollow", methods=["POST"])
@login_required
def unfollow_thread(thread_id: int):
    return _change(thread_id, lambda thread: unfollow(thread, current_user))


@bp.route("/<int:thread_id>/notes", methods=["POST"])
@login_required
def note(thread_id: int):
    """Add an internal note; htmx puts it at the end of the timeline and empties the form."""
    thread = thread_for_staff(thread_id)
    body = request.form.get("body", "")
    try:
        added = add_note(thread, body, current_user)
    except ValidationFailed as exc:
        db.session.rollback()
        if wants_fragment():
            return render_template("staff/threads/_note_added.html", thread=thread, note=None, body=body,
                                   error=exc.message_for("body"))
        flash(exc.message_for("body"), "error")
        return redirect(url_for("threads.show", thread_id=thread.id))
    db.session.commit()
    if wants_fragment():
        return render_template("staff/threads/_note_added.html", thread=thread, note=added)
    return redirect(url_for("threads.show", thread_id=thread.id, _anchor=f"message-{added.id}"))


@bp.route("/<int:thread_id>/crm-note", methods=["POST"])
@login_required
def crm_note(thread_id: int):
    """Save the CRM note of the thread's customer (the side panel's form; audited as a customer change)."""
    thread = thread_for_staff(thread_id)
    if thread.customer is None:
        abort(404)
    error = None
    try:
        update_customer(thread.customer, actor=current_user, source="staff", crm_note=request.form.get("crm_note"))
    except ValidationFailed as exc:
        db.session.rollback()
        error = exc.message_for("crm_note")
    else:
        db.session.commit()
    if wants_fragment():
        return render_template("staff/threads/_crm_note.html", customer=thread.customer, thread=thread,
                               saved=error is None, error=error)
    flash(error or _("CRM note saved."), "error" if error else "success")
    return redirect(url_for("threads.show", thread_id=thread.id))


# --- what the thread is about: its customer, repair and ticket -----------------------------------


@bp.route("/<int:thread_id>/context", methods=["POST"])
@login_required
def context(thread_id: int):
    """Attach the thread to the repair and/or ticket the form names (repair_id, ticket_id; empty detaches; a field
    left out of the form stays as it is), then back to the thread (the banner, links and side panel change)."""
    thread = thread_for_staff(thread_id)
    parts = {name: _row(model, request.form[f"{name}_id"]) if f"{name}_id" in request.form else UNCHANGED
             for name, model in (("repair", Repair), ("ticket", Ticket))}
    try:
        events = change_context(thread, current_user, **parts)
    except ValidationFailed as exc:
        db.session.rollback()
        flash(next(iter(exc.fields.values())), "error")
    else:
        db.session.commit()
        if events:
            flash(_("The thread's context is changed."), "success")
    return redirect(url_for("threads.show", thread_id=thread.id))


class MoveForm(FlaskForm):
    customer_id = HiddenField()


@bp.route("/<int:thread_id>/move", methods=["GET", "POST"])
@login_required
def move(thread_id: int):
    """Move the thread to another customer: choose them (?customer_id=, the customer picker), read what they will
    and will not see in their panel, confirm."""
    thread = thread_for_staff(thread_id)
    form = MoveForm()
    customer = _row(Customer, request.values.get("customer_id"))
    if customer is not None and customer.id == thread.customer_id:
        customer = None
    if request.method == "POST" and customer is not None and form.validate_on_submit():
        try:
            change_context(thread, current_user, customer=customer)
        except ValidationFailed as exc:
            db.session.rollback()
            flash(next(iter(exc.fields.values())), "error")
            return render_template("staff/threads/move.html", thread=thread, form=form, customer=None), 422
        db.session.commit()
        flash(_("The thread now belongs to %(name)s.", name=customer.name), "success")
        return redirect(url_for("threads.show", thread_id=thread.id))
    elif request.method == "POST":
        abort(400)
    if customer is not None and customer.anonymized_at is not None:
        flash(_("This customer's data has been erased: nothing can be added or changed for them."), "error")
        customer = None
    form.customer_id.data = str(customer.id) if customer else ""
    return render_template("staff/threads/move.html", thread=thread, form=form, customer=customer)


@bp.route("/<int:thread_id>/delete", methods=["GET", "POST"])
@owner_required
def delete(thread_id: int):
    """Ask, then delete the thread: it leaves the inbox and every page; the audit trail keeps who did it."""
    thread = thread_for_staff(thread_id)
    if request.method == "GET":
        return render_template("staff/threads/delete.html", thread=thread)
    delete_thread(thread, current_user)
    db.session.commit()
    flash(_("Thread deleted."), "success")
    return redirect(url_for("inbox.index"))


# --- recording a conversation ----------------------------------------------------------------------


class RecordForm(FlaskForm):
    """A conversation held outside the app; the rules (and their messages) live in app.messaging.record."""

    customer_id = HiddenField()
    repair_id = SelectField(_l("Repair"), validate_choice=False)
    ticket_id = SelectField(_l("Ticket"), validate_choice=False)
    subject = StringField(_l("Subject"), render_kw={"maxlength": 255})
    source = SelectField(_l("How the customer got in touch"), validate_choice=False)
    body = TextAreaField(_l("What the customer said"), render_kw={"rows": 8})
    status = SelectField(_l("Status"), validate_choice=False)
    queue_id = SelectField(_l("Queue"), validate_choice=False)
    assignee_id = SelectField(_l("Assignee"), validate_choice=False)
    priority = SelectField(_l("Priority"), validate_choice=False)

    def offer(self, customer: Customer) -> None:
        """Choices for `customer`: their repairs and tickets, the ways a conversation happens, the statuses."""
        repairs = db.session.scalars(select(Repair).where(Repair.customer_id == customer.id)
                                     .order_by(Repair.created_at.desc(), Repair.id.desc()))
        tickets = db.session.scalars(select(Ticket).where(Ticket.customer_id == customer.id)
                                     .order_by(Ticket.created_at.desc(), Ticket.id.desc()))
        self.repair_id.choices = [("", _("None"))] + [(str(r.id), r.label) for r in repairs]
        self.ticket_id.choices = [("", _("None"))] + [(str(t.id), f"{t.number} · {t.subject}") for t in tickets]
        self.source.choices = [(name, CHANNEL_LABELS[name]) for name in RECORD_SOURCES]
        self.status.choices = list(THREAD_STATUS_LABELS.items())
        self.queue_id.choices = [("", _("None"))] + [(str(q.id), q.name) for q in db.session.scalars(QUEUES)]
        self.assignee_id.choices = [("", _("Nobody"))] + [
            (str(u.id), u.name) for u in db.session.scalars(select(User).where(User.active.is_(True))
                                                             .order_by(User.name, User.id))]
        self.priority.choices = [("", "—")] + [(name, str(label)) for name, label in PRIORITY_LABELS.items()]


@bp.route("/record", methods=["GET", "POST"])
@login_required
def record():
    """Record a phone call, visit, letter... as a new thread of a customer; nothing is sent to anyone.

    Opened without a customer it first asks for one (the same picker as writing a message)."""
    customer = _row(Customer, request.values.get("customer_id"))
    form = RecordForm(source="phone", status="open", repair_id=request.args.get("repair_id", ""),
                      ticket_id=request.args.get("ticket_id", ""))
    if customer is None:
        new_customer = new_contact_form()
        if request.method == "POST":
            if not new_contact_posted():
                abort(400)
            added = add_posted_contact(new_customer)
            if added is not None:
                return redirect(url_for("thread_actions.record", customer_id=added.id))
        return render_template("staff/threads/record.html", form=form, customer=None, new_customer=new_customer), \
            422 if new_customer.errors else 200
    form.offer(customer)
    if form.validate_on_submit():
        try:
            message = record_conversation(
                customer=customer, source=form.source.data, body=form.body.data, author=current_user,
                subject=form.subject.data, repair=_row(Repair, form.repair_id.data),
                ticket=_row(Ticket, form.ticket_id.data), status=form.status.data,
                queue=_row(Queue, form.queue_id.data), assignee=_row(User, form.assignee_id.data),
                priority=form.priority.data or None)
        except ValidationFailed as exc:
            db.session.rollback()
            show_errors(form, exc)
        else:
            db.session.commit()
            flash(_("Conversation recorded."), "success")
            return redirect(url_for("threads.show", thread_id=message.thread_id))
    return render_template("staff/threads/record.html", form=form, customer=customer), 422 if form.errors else 200
