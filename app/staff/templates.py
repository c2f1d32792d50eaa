"""Owner settings: message templates (with the tag picker, files and a preview against a real repair)."""
from __future__ import annotations

from flask import Blueprint, flash, redirect, render_template, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_babel import ngettext
from flask_login import current_user
from flask_wtf import FlaskForm
from htmx_flask import request
from sqlalchemy import select
from wtforms import (BooleanField, MultipleFileField, SelectChoice, SelectField, SelectMultipleField, StringField,
                     TextAreaField)

from ..attachments import store
from ..channels.sms_text import count, sms_body
from ..errors import ValidationFailed
from ..extensions import db
from ..i18n import CUSTOMER_LANGUAGE_NAMES, current_shop
from ..labels import CHANNEL_LABELS
from ..messaging.starter_templates import add_starter_templates, starter_templates_missing
from ..messaging.templates import DOCUMENTS, TAGS, all_templates, delete_template, preview, save_template
from ..models import Repair
from ..models.conversations import CHANNELS
from ..models.templates import MessageTemplate
from ..request_input import uploads, whole_number
from . import owner_required, show_errors

bp = Blueprint("templates", __name__, url_prefix="/settings/templates")

PREVIEW_REPAIRS = 30  # the newest repairs offered for a preview
KIND_LABELS = {"message": _l("Message"), "header": _l("Reply header (greeting)"),
               "footer": _l("Reply footer (signature)")}


class TemplateForm(FlaskForm):
    name = StringField(_l("Name"), render_kw={"maxlength": 120})
    kind = SelectField(_l("Kind"), choices=[SelectChoice(k, label) for k, label in KIND_LABELS.items()],
                       validate_choice=False)
    channels = SelectMultipleField(_l("Channels"), choices=[SelectChoice(c, CHANNEL_LABELS[c]) for c in CHANNELS],
                                   validate_choice=False)
    # A template may be written for customers in any of their languages; versions share the template's name.
    language = SelectField(_l("Language"), choices=[SelectChoice(code, name)
                                                    for code, name in CUSTOMER_LANGUAGE_NAMES.items()],
                           validate_choice=False)
    subject = StringField(_l("Subject (e-mail)"), render_kw={"maxlength": 255})
    body = TextAreaField(_l("Text"), render_kw={"rows": 10})
    sms_body = TextAreaField(_l("SMS text"), render_kw={"rows": 4})
    sms_plain = BooleanField(_l("SMS without Polish letters"))
    panel_body = TextAreaField(_l("Customer panel text"), render_kw={"rows": 6})
    marketing = BooleanField(_l("Marketing (only for customers who agreed to marketing messages)"))
    attachments = MultipleFileField(_l("Add files"))
    receipt = BooleanField(DOCUMENTS["acceptance_receipt"])


def _template_or_404(template_id: int) -> MessageTemplate:
    return db.get_or_404(MessageTemplate, template_id)


def _preview_repairs() -> list[Repair]:
    return list(db.session.scalars(select(Repair).order_by(Repair.created_at.desc(), Repair.id.desc())
                                   .limit(PREVIEW_REPAIRS)))


def _render_form(form: TemplateForm, template: MessageTemplate | None, status: int = 200):
    text = form.sms_body.data or ""
    return render_template("staff/templates/form.html", form=form, template=template, tags=TAGS,
                           repairs=_preview_repairs(), sms=count(sms_body(text, form.sms_plain.data)),
                           sms_full=count(sms_body(text))), status


@bp.route("/")
@owner_required
def index():
    return render_template("staff/templates/index.html", templates=all_templates(), kinds=KIND_LABELS,
                           starter_missing=starter_templates_missing())


@bp.route("/starter", methods=["POST"])
@owner_required
def add_starter():
    """Add the ready-made templates the shop lacks, with their automatic notices switched off."""
    added = add_starter_templates(language=current_shop().locale, actor=current_user)
    db.session.commit()
    flash(ngettext("%(num)d ready-made template added; its automatic notice is off until you switch it on.",
                   "%(num)d ready-made templates added; their automatic notices are off until you switch them on.",
                   len(added)) if added else _("The shop already has every ready-made template."), "success")
    return redirect(url_for("templates.index"))


@bp.route("/new", methods=["GET", "POST"])
@bp.route("/<int:template_id>", methods=["GET", "POST"])
@owner_required
def edit(template_id: int | None = None):
    template = _template_or_404(template_id) if template_id else None
    form = TemplateForm(obj=template)
    if template is not None and request.method == "GET":
        form.receipt.data = any(a.document == "acceptance_receipt" for a in template.attachments)
    if not form.validate_on_submit():
        return _render_form(form, template, 422 if form.errors else 200)
    try:
        files = [store(f.stream, f.filename) for f in uploads(form.attachments.data)]
        template = save_template(
            template, actor=current_user, files=files, receipt=form.receipt.data,
            remove_attachments=request.form.getlist("remove_attachment", type=whole_number),
            name=form.name.data, channels=form.channels.data, subject=form.subject.data, body=form.body.data,
            language=form.language.data, marketing=form.marketing.data, kind=form.kind.data,
            sms_body=form.sms_body.data or "", sms_plain=form.sms_plain.data, panel_body=form.panel_body.data or "",
        )
    except ValidationFailed as exc:
        db.session.rollback()
        show_errors(form, exc)
        return _render_form(form, template, 422)
    db.session.commit()
    flash(_("Template “%(name)s” saved.", name=template.name), "success")
    return redirect(url_for("templates.index"))


@bp.route("/<int:template_id>/delete", methods=["POST"])
@owner_required
def delete(template_id: int):
    template = _template_or_404(template_id)
    name = template.name
    delete_template(template, actor=current_user)
    db.session.commit()
    flash(_("Template “%(name)s” deleted.", name=name), "success")
    return redirect(url_for("templates.index"))


@bp.route("/preview", methods=["POST"])
@owner_required
def show_preview():
    """The form's texts rendered for the chosen repair, one per channel the template goes by (every channel for a
    reply header or footer), with the SMS counter on the SMS."""
    form = TemplateForm()
    repair = db.session.get(Repair, request.form.get("preview_repair_id", type=whole_number) or 0)
    errors, rendered = {}, None
    try:
        rendered = preview(subject=form.subject.data, body=form.body.data, language=form.language.data,
                           repair=repair, sms_body=form.sms_body.data or "", panel_body=form.panel_body.data or "",
                           sms_plain=form.sms_plain.data)
    except ValidationFailed as exc:
        errors = exc.fields
    channels = [c for c in CHANNELS if c in (form.channels.data or [])] or list(CHANNELS)
    sms = sms_full = None
    if rendered and "sms" in channels:
        text = rendered.text_for("sms")
        sms, sms_full = count(sms_body(text, rendered.sms_plain)), count(sms_body(text))
    return render_template("staff/templates/_preview.html", rendered=rendered, errors=errors, repair=repair,
                           channels=channels, labels=CHANNEL_LABELS, sms=sms, sms_full=sms_full,
                           plain=bool(rendered and rendered.sms_plain))


@bp.route("/sms-count", methods=["POST"])
@owner_required
def sms_count():
    """The live counter under the template's SMS text, as compose's under its text."""
    plain = request.form.get("sms_plain") in ("y", "on", "true", "1")
    text = request.form.get("sms_body", "")
    return render_template("staff/compose/_sms_counter.html", sms=count(sms_body(text, plain)),
                           sms_full=count(sms_body(text)), plain=plain)
