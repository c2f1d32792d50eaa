"""API: the shop's message templates, with each channel's own text, to send with POST /messages {template_id}."""
from __future__ import annotations

from flask import abort, jsonify

from ..extensions import db
from ..messaging.templates import message_templates
from ..models import MessageTemplate
from .base import bp, token_required


def template_json(template: MessageTemplate) -> dict:
    """A template as written (tags unfilled): `body` is the e-mail's text and what a channel without its own
    carries; `texts` holds the SMS and panel texts of their own, when the template has them."""
    return {
        "id": template.id,
        "name": template.name,
        "language": template.language,
        "channels": list(template.channels or []),
        "marketing": template.marketing,
        "subject": template.subject,
        "body": template.body,
        "texts": {name: text for name, text in (("sms", template.sms_body), ("portal", template.panel_body))
                  if (text or "").strip()},
        "sms_plain": template.sms_plain,
    }


@bp.get("/templates")
@token_required
def list_templates():
    return jsonify({"templates": [template_json(t) for t in message_templates()]})


@bp.get("/templates/<int:template_id>")
@token_required
def get_template(template_id: int):
    template = db.session.get(MessageTemplate, template_id)
    if template is None or template.kind != "message":  # reply headers and footers are not sent on their own
        abort(404, description="template not found")
    return jsonify(template_json(template))
