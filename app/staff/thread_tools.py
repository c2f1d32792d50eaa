"""A thread's tools for staff: merge another thread into it, split a message out, forward it by e-mail, make a
ticket of it, print it, and see who else has it open."""
from __future__ import annotations

from dataclasses import asdict

from flask import Blueprint, abort, current_app, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user, login_required
from flask_wtf import FlaskForm
from itsdangerous import BadSignature, URLSafeSerializer
from wtforms import BooleanField, EmailField, TextAreaField

from ..attachments import StoredFile, is_stored

from ..errors import ValidationFailed
from ..extensions import db
from ..messaging.events import WORDED_EVENTS, event_text
from ..messaging.forward import forward_thread, forwardable
from ..messaging.merge import merge_threads
from ..messaging.threads import thread_label
from ..messaging.presence import heartbeat, others_present
from ..messaging.split import split_message
from ..messaging.thread_actions import joins_other_context
from ..messaging.threads import thread_for_staff
from ..models import Message
from ..repairs import ticket_from_thread
from ..request_input import whole_number
from . import show_errors

bp = Blueprint("thread_tools", __name__, url_prefix="/threads")

bp.add_app_template_global(event_text)
bp.add_app_template_global(thread_label)


@bp.app_template_global()
def other_context_ids(thread, candidates) -> set[int]:
    """The ids of the merge candidates about another repair or ticket than `thread` (the Merge tool's second group)."""
    return {other.id for other in candidates if joins_other_context(thread, other)}
bp.add_app_template_global(WORDED_EVENTS, "WORDED_EVENTS")


class ForwardForm(FlaskForm):
    to = EmailField(_l("Forward to"), render_kw={"placeholder": _l("e.g. orders@supplier.example")})
    note = TextAreaField(_l("Covering note"), render_kw={"rows": 4})
    include_notes = BooleanField(_l("Include internal notes"))


def carry_files(files: list[StoredFile]) -> str:
    """Files already stored for a reply that was held back (a new message arrived), signed so the form can carry
    them to the next submit and nobody has to choose them again."""
    return _file_signer().dumps([asdict(f) for f in files]) if files else ""


def carried_files(value: str) -> list[StoredFile]:
    """The files carry_files signed, those still stored; nothing for a missing or tampered value."""
    if not value:
        return []
    try:
        files = [StoredFile(**f) for f in _file_signer().loads(value)]
    except (BadSignature, TypeError):
        return []
    return [f for f in files if is_stored(f.sha256)]


def _file_signer() -> URLSafeSerializer:
    return URLSafeSerializer(current_app.secret_key, salt="reply-kept-files")


@bp.route("/<int:thread_id>/merge", methods=["POST"])
@login_required
def merge(thread_id: int):
    """Merge the chosen thread (`source_id`) of the same customer into this one, then show this one. A thread of
    another repair or ticket is merged only once staff confirm that on a page saying so (`other_repair`)."""
    thread = thread_for_staff(thread_id)
    source = thread_for_staff(request.form.get("source_id", type=whole_number) or 0)
    if joins_other_context(thread, source) and request.form.get("other_repair") != "confirmed":
        # The address stays the thread's: this page answers a POST and is no place to come back to.
        return render_template("staff/threads/merge_confirm.html", thread=thread, source=source), {
            "HX-Push-Url": "false"}
    try:
        merge_threads(thread, source, current_user)
    except ValidationFailed as exc:
        db.session.rollback()
        flash(exc.message_for("source_id"), "error")
        return redirect(url_for("threads.show", thread_id=thread.id))
    db.session.commit()
    flash(_("“%(thread)s” was merged into this thread.", thread=thread_label(source)), "success")
    return redirect(url_for("threads.show", thread_id=thread.id))


@bp.route("/split", methods=["POST"])
@login_required
def split():
    """Copy one message (`message_id`) into a new thread of its own, then show the new thread."""
    message = db.get_or_404(Message, request.form.get("message_id", type=whole_number) or 0)
    thread = thread_for_staff(message.thread_id)
    try:
        new = split_message(message, current_user)
    except ValidationFailed as exc:
        db.session.rollback()
        flash(exc.message_for("message_id"), "error")
        return redirect(url_for("threads.show", thread_id=thread.id))
    db.session.commit()
    flash(_("The message now has a thread of its own."), "success")
    return redirect(url_for("threads.show", thread_id=new.id))


@bp.route("/<int:thread_id>/forward", methods=["GET", "POST"])
@login_required
def forward(thread_id: int):
    """The forward form; sending queues the conversation as one e-mail."""
    thread = thread_for_staff(thread_id)
    form = ForwardForm()
    if form.validate_on_submit():
        try:
            forward_thread(thread, to=form.to.data, note=form.note.data, include_notes=form.include_notes.data,
                           actor=current_user)
        except ValidationFailed as exc:
            db.session.rollback()
            show_errors(form, exc)
        else:
            db.session.commit()
            flash(_("The conversation is on its way to %(address)s.", address=form.to.data.strip()), "success")
            return redirect(url_for("threads.show", thread_id=thread.id))
    return render_template("staff/threads/forward.html", thread=thread, form=form), \
        422 if request.method == "POST" else 200


@bp.route("/<int:thread_id>/ticket", methods=["POST"])
@login_required
def make_ticket(thread_id: int):
    """A new ticket of the thread's customer, with the thread attached to it (the subject as written in the tool,
    else the thread's); refused for a thread without a customer, with the reason shown on the thread."""
    thread = thread_for_staff(thread_id)
    if not FlaskForm().validate_on_submit():
        abort(400)
    try:
        ticket = ticket_from_thread(thread, actor=current_user, subject=request.form.get("subject", ""))
    except ValidationFailed as exc:
        db.session.rollback()
        flash(next(iter(exc.fields.values())), "error")
        return redirect(url_for("threads.show", thread_id=thread.id))
    db.session.commit()
    flash(_("Ticket %(number)s made; this thread belongs to it.", number=ticket.number), "success")
    return redirect(url_for("threads.show", thread_id=thread.id))


@bp.route("/<int:thread_id>/print")
@login_required
def print_view(thread_id: int):
    """Without `show`, the choice of what to print (every message ticked, notes offered unticked); with it, the
    chosen messages and notes (`m`) laid out for paper."""
    thread = thread_for_staff(thread_id)
    entries = forwardable(thread, include_notes=True)
    if not request.args.get("show"):
        return render_template("staff/threads/print_choose.html", thread=thread, entries=entries)
    chosen = set(request.args.getlist("m", type=whole_number))
    messages = [m for m in entries if m.id in chosen]
    return render_template("staff/threads/print.html", thread=thread, messages=messages)


@bp.route("/<int:thread_id>/presence", methods=["POST"])
@login_required
def presence(thread_id: int):
    """The page's heartbeat: note that the user has the thread open (replying when `replying` is 1) and answer
    with who else has it open."""
    thread = thread_for_staff(thread_id)
    heartbeat(thread, current_user, replying=request.form.get("replying") == "1")
    db.session.commit()
    return render_template("staff/threads/_presence_list.html", thread=thread,
                           present=others_present(thread, current_user))
