"""A thread seen by staff: its timeline with per-channel delivery states, and stopping what has not gone yet."""
from __future__ import annotations

from flask import Blueprint, flash, get_flashed_messages, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_required

from ..extensions import db
from ..messaging.move import move_message, thread_label
from ..messaging.threads import thread_for_staff
from ..models import Message
from ..errors import ValidationFailed
from ..outbox import can_cancel, cancel

bp = Blueprint("threads", __name__, url_prefix="/threads")


@bp.route("/<int:thread_id>")
@login_required
def show(thread_id: int):
    thread = thread_for_staff(thread_id)
    undo_ids = get_flashed_messages(category_filter=["undo"])
    undoable = db.session.get(Message, int(undo_ids[-1])) if undo_ids else None
    if thread.unread:
        thread.unread = False
        db.session.commit()
    return render_template("staff/threads/show.html", thread=thread,
                           undoable=undoable if undoable and undoable.thread_id == thread.id else None)


@bp.route("/<int:thread_id>/messages/<int:message_id>/cancel", methods=["POST"])
@login_required
def cancel_message(thread_id: int, message_id: int):
    """Stop every delivery of a message that is still waiting (scheduled or queued); the message stays, marked."""
    thread = thread_for_staff(thread_id)
    message = db.get_or_404(Message, message_id)
    if message.thread_id != thread.id:
        return redirect(url_for("threads.show", thread_id=thread.id))
    stopped = 0
    for delivery in message.deliveries:
        if can_cancel(delivery):
            try:
                cancel(delivery, current_user)
                stopped += 1
            except ValidationFailed:  # a dispatcher claimed it a moment ago
                db.session.rollback()
    db.session.commit()
    flash(_("Sending cancelled.") if stopped else _("Nothing left to cancel: the message has already gone."),
          "info" if stopped else "warning")
    return redirect(url_for("threads.show", thread_id=thread.id))


@bp.route("/<int:thread_id>/messages/<int:message_id>/move", methods=["POST"])
@login_required
def move(thread_id: int, message_id: int):
    """Move a customer's message (an SMS marked "may belong to") into another of their threads, then show it there."""
    thread = thread_for_staff(thread_id)
    message = db.get_or_404(Message, message_id)
    if message.thread_id != thread.id:
        return redirect(url_for("threads.show", thread_id=thread.id))
    to_thread = thread_for_staff(request.form.get("to_thread_id", type=int) or 0)
    try:
        move_message(message, to_thread, current_user)
    except ValidationFailed as exc:
        db.session.rollback()
        flash(exc.fields["to_thread_id"], "error")
        return redirect(url_for("threads.show", thread_id=thread.id))
    db.session.commit()
    flash(_("Moved to %(thread)s.", thread=thread_label(to_thread)), "success")
    return redirect(url_for("threads.show", thread_id=to_thread.id, _anchor=f"message-{message.id}"))
