"""A thread seen by staff: its timeline with per-channel delivery states, received mail shown safely with its
files, and stopping what has not gone yet."""
from __future__ import annotations

from flask import (
    Blueprint, abort, flash, g, make_response, redirect, render_template, request, session, url_for,
)
from flask_babel import get_locale
from flask_babel import gettext as _
from flask_login import current_user, login_required
from markupsafe import Markup

from ..attachments import send_stored, servable
from ..errors import ValidationFailed
from ..extensions import db
from ..formatting import sender_name
from ..inbound.html import has_remote_images, resolve_cid, show_remote_images
from ..messaging.move import move_message
from ..messaging.presence import latest_message_id, others_present
from ..messaging.thread_actions import side_panel, thread_header
from ..messaging.threads import THREAD_PAGE, live_thread, thread_for_staff, thread_label, timeline
from ..models import Attachment, Message
from ..outbox import cancel_message as stop_message
from ..privacy.redaction import redact_message
from ..request_input import whole_number
from ..security import CSP
from .compose import UNDO_KEY, reply_box

bp = Blueprint("threads", __name__, url_prefix="/threads")

# Images a browser may show from a received mail (cid: parts): raster formats only, never SVG (it can script).
SAFE_IMAGES = {"image/png", "image/jpeg", "image/gif", "image/webp"}
# A page showing one mail's remote images, because the reader asked: those images may load from anywhere.
CSP_REMOTE_IMAGES = CSP.replace("img-src 'self' data:", "img-src 'self' data: https: http:")
# How many of the latest messages a thread's page shows; earlier ones load on request, 50 at a time.
PAGE_MESSAGES = 50
# An id no row has: thread_item_url builds an address with it, then puts each item's own id in its place.
PLACEHOLDER_ID = 987654321987654321


@bp.route("/<int:thread_id>")
@login_required
def show(thread_id: int):
    """The thread with its latest messages; `?all=1` shows them all (where a link to an earlier message leads),
    `?images=<message id>` all of them too, with that received mail's remote images loaded."""
    thread = thread_for_staff(thread_id, THREAD_PAGE)
    if thread.merged_into_id is not None:  # an old link, or a bookmark, of a thread merged into another
        return redirect(url_for("threads.show", thread_id=live_thread(thread).id))
    undo_id = session.pop(UNDO_KEY, None)
    undoable = db.session.get(Message, undo_id) if isinstance(undo_id, int) else None
    images_for = request.args.get("images", type=whole_number)
    if thread.unread:
        thread.unread = False
        db.session.commit()
    everything = images_for or request.args.get("all") == "1"
    messages, more = timeline(thread, limit=None if everything else PAGE_MESSAGES)
    response = make_response(render_template(
        "staff/threads/show.html", thread=thread, messages=messages, more=more, images_for=images_for,
        undoable=undoable if undoable and undoable.thread_id == thread.id else None, reply=reply_box(thread),
        header=thread_header(thread, current_user), side=side_panel(thread),
        present=others_present(thread, current_user), latest_id=latest_message_id(thread)))
    if images_for:
        response.headers["Content-Security-Policy"] = CSP_REMOTE_IMAGES
    return response


@bp.route("/<int:thread_id>/earlier")
@login_required
def earlier(thread_id: int):
    """The messages before `?before=<message id>`, as timeline entries for htmx to put above it."""
    thread = thread_for_staff(thread_id)
    before = db.session.get(Message, request.args.get("before", type=whole_number) or 0)
    if before is None or before.thread_id != thread.id:
        abort(404)
    messages, more = timeline(thread, before=before, limit=PAGE_MESSAGES)
    return render_template("staff/threads/_earlier.html", thread=thread, messages=messages, more=more)


@bp.app_template_global()
def mail_html(message: Message, remote_images: bool = False) -> Markup:
    """A received mail's sanitised HTML for the thread view: its inline images pointed at our own view, remote
    images held back unless `remote_images`."""
    urls = {a.content_id: url_for("threads.inline_image", thread_id=message.thread_id, attachment_id=a.id)
            for a in message.attachments if a.content_id and a.sha256 and a.content_type in SAFE_IMAGES}
    html = resolve_cid(message.body_html, urls) if urls else message.body_html or ""  # most mail has no cid: image
    return Markup(show_remote_images(html) if remote_images else html)


bp.add_app_template_global(has_remote_images)
bp.add_app_template_global(sender_name)


@bp.app_template_global()
def thread_item_url(endpoint: str, thread_id: int, **item: int) -> str:
    """url_for(endpoint, thread_id=thread_id, <item>=<id>) for one item (a message, a file) of a thread. A timeline
    links each of its entries and files: the address is built once per request and thread, each id put in."""
    [(name, item_id)] = item.items()
    built = g.setdefault("thread_item_urls", {})
    try:
        before, after = built[endpoint, thread_id, name]
    except KeyError:
        address = url_for(endpoint, thread_id=thread_id, **{name: PLACEHOLDER_ID})
        before, after = built[endpoint, thread_id, name] = address.split(str(PLACEHOLDER_ID))
    return f"{before}{item_id}{after}"


# translated()'s labels, per vocabulary and locale: (the vocabulary, kept so its id stays its own; its labels).
_translated: dict[tuple, tuple[dict, dict[str, str]]] = {}


@bp.app_template_global()
def translated(labels: dict) -> dict[str, str]:
    """A label vocabulary of app/labels.py (lazily translated) in the request's language, for a page that shows its
    labels many times. Resolved once per locale for the life of the process, as flask_babel keeps its catalogues."""
    key = (id(labels), get_locale())
    try:
        return _translated[key][1]
    except KeyError:
        resolved = {name: str(label) for name, label in labels.items()}
        _translated[key] = (labels, resolved)
        return resolved


@bp.app_template_global()
def listed_attachments(message: Message) -> list[Attachment]:
    """The files to list under a received mail: all but the inline images its HTML already shows."""
    shown_inline = bool(message.body_html) and "cid:" in message.body_html
    return [a for a in message.attachments if not (a.inline and a.sha256 and shown_inline)]


def _stored_attachment(thread_id: int, attachment_id: int) -> Attachment:
    """The thread's stored attachment, or 404 (another thread's, only listed, or its file gone)."""
    thread = thread_for_staff(thread_id)
    attachment = db.session.get(Attachment, attachment_id)
    if attachment is None or attachment.message.thread_id != thread.id or not attachment.sha256:
        abort(404)
    if not servable(attachment.filename, attachment.sha256):
        abort(404)
    return attachment


@bp.route("/<int:thread_id>/attachments/<int:attachment_id>")
@login_required
def attachment(thread_id: int, attachment_id: int):
    """Download a file of the thread: always as an attachment, with the type its content showed."""
    stored = _stored_attachment(thread_id, attachment_id)
    response = send_stored(stored.sha256, mimetype=stored.content_type, as_attachment=True,
                           download_name=stored.filename, max_age=0)
    response.headers["Cache-Control"] = "private, no-store"
    return response


@bp.route("/<int:thread_id>/attachments/<int:attachment_id>/inline")
@login_required
def inline_image(thread_id: int, attachment_id: int):
    """A received mail's inline image (cid:), shown in the page only when its content is a raster image."""
    stored = _stored_attachment(thread_id, attachment_id)
    if stored.content_type not in SAFE_IMAGES:
        abort(404)
    response = send_stored(stored.sha256, mimetype=stored.content_type, max_age=0)
    response.headers["Content-Disposition"] = "inline"
    response.headers["Cache-Control"] = "private, max-age=3600"
    return response


@bp.route("/<int:thread_id>/messages/<int:message_id>/cancel", methods=["POST"])
@login_required
def cancel_message(thread_id: int, message_id: int):
    """Stop every delivery of a message that is still waiting (scheduled or queued); the message stays, marked."""
    thread = thread_for_staff(thread_id)
    message = db.get_or_404(Message, message_id)
    if message.thread_id != thread.id:
        return redirect(url_for("threads.show", thread_id=thread.id))
    try:
        stopped = stop_message(message, current_user)
    except ValidationFailed as exc:
        db.session.rollback()
        flash(exc.message_for("message"), "error")
        return redirect(url_for("threads.show", thread_id=thread.id))
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
    to_thread = thread_for_staff(request.form.get("to_thread_id", type=whole_number) or 0)
    try:
        move_message(message, to_thread, current_user)
    except ValidationFailed as exc:
        db.session.rollback()
        flash(exc.message_for("to_thread_id"), "error")
        return redirect(url_for("threads.show", thread_id=thread.id))
    db.session.commit()
    flash(_("Moved to %(thread)s.", thread=thread_label(to_thread)), "success")
    return redirect(url_for("threads.show", thread_id=to_thread.id, _anchor=f"message-{message.id}"))


@bp.route("/<int:thread_id>/messages/<int:message_id>/redact", methods=["GET", "POST"])
@login_required
def redact(thread_id: int, message_id: int):
    """Replace the selected text (form field "text": a passcode, a document number) with "[redacted]" everywhere
    the message is kept. GET shows the message with the form, on a page of its own (for browsers without
    JavaScript: the thread's page copies its one form into the entry instead)."""
    thread = thread_for_staff(thread_id)
    message = db.get_or_404(Message, message_id)
    if message.thread_id != thread.id or message.kind == "event":
        abort(404)
    if request.method == "GET":
        return render_template("staff/threads/redact.html", thread=thread, message=message)
    try:
        redact_message(message, request.form.get("text", ""), current_user)
    except ValidationFailed as exc:
        db.session.rollback()
        flash(exc.message_for("text"), "error")
    else:
        db.session.commit()
        flash(_("The text is redacted."), "success")
    return redirect(url_for("threads.show", thread_id=thread.id, _anchor=f"message-{message.id}"))
