"""API: add a customer, change one (consents included), read one back, export their data."""
from __future__ import annotations

from flask import jsonify, send_file, url_for

from ..customers import create_customer, set_contact_people, update_customer
from ..errors import ValidationFailed
from ..extensions import db
from ..models import Customer
from ..privacy.export import export_customer
from .base import api_actor, bp, error, json_body, token_required

# Where the JSON name differs from the domain's field name (the flag is inverted, too).
JSON_NAMES = {"sms_informational": "sms_opt_out"}


def customer_json(customer: Customer) -> dict:
    return {
        "id": customer.id,
        "name": customer.name,
        "kind": customer.kind,  # person | company
        "nip": customer.nip,  # a company's NIP, ten digits; null for a person
        "address": customer.address,
        "contacts": [{"id": contact.id, "name": contact.name, "email": contact.email, "phone": contact.phone}
                     for contact in customer.contacts],
        "email": customer.email,
        "phone": customer.phone,
        "sms_informational": customer.sms_informational,
        "marketing_consent": customer.marketing_consent,
        "panel_state": customer.panel_state,
        "language": customer.language,  # null: the shop's language
        "vocative": customer.vocative,  # null: the dictionary's vocative of the first name
        "created_at": customer.created_at.isoformat(),
    }


def _given(data: dict, key: str, default):
    """The value sent for key; null counts as not sent."""
    value = data.get(key)
    return default if value is None else value


CUSTOMER_FIELDS = ("name", "email", "phone", "sms_opt_out", "marketing_consent", "crm_note", "language", "vocative",
                   "kind", "nip", "address", "contacts")


@bp.post("/customers")
@token_required
def post_customer():
    data = json_body(CUSTOMER_FIELDS)
    opt_out = _given(data, "sms_opt_out", False)
    try:
        customer = create_customer(
            name=data.get("name"),
            email=data.get("email"),
            phone=data.get("phone"),
            crm_note=data.get("crm_note") or "",
            # A non-boolean goes through as it is, so the domain refuses it along with any other bad field.
            sms_informational=not opt_out if isinstance(opt_out, bool) else opt_out,
            marketing_consent=_given(data, "marketing_consent", False),
            language=data.get("language"),
            vocative=data.get("vocative"),
            kind=_given(data, "kind", "person"),
            nip=data.get("nip"),
            address=data.get("address") or "",
            actor=api_actor(),
            source="api",
        )
        if data.get("contacts") is not None:
            set_contact_people(customer, data["contacts"], actor=api_actor(), source="api")
    except ValidationFailed as exc:
        raise ValidationFailed({JSON_NAMES.get(name, name): message for name, message in exc.fields.items()}) from None
    db.session.commit()
    return jsonify(customer_json(customer)), 201, {"Location": url_for(".get_customer", customer_id=customer.id)}


@bp.get("/customers/<int:customer_id>")
@token_required
def get_customer(customer_id: int):
    customer = db.session.get(Customer, customer_id)
    if customer is None:
        return error(404, "customer not found")
    return jsonify(customer_json(customer))


@bp.patch("/customers/<int:customer_id>")
@token_required
def patch_customer(customer_id: int):
    """Change the fields sent; a consent that changes is recorded with the source "api" and `consent_note`."""
    customer = db.session.get(Customer, customer_id)
    if customer is None or customer.anonymized_at is not None:
        return error(404, "customer not found")
    data = json_body(CUSTOMER_FIELDS + ("consent_note",))
    fields = {name: value for name, value in data.items()
              if name not in ("sms_opt_out", "consent_note", "contacts")}
    if "sms_opt_out" in data:
        opt_out = data["sms_opt_out"]
        fields["sms_informational"] = not opt_out if isinstance(opt_out, bool) else opt_out
    try:
        update_customer(customer, actor=api_actor(), source="api", consent_note=data.get("consent_note") or "",
                        **fields)
        if data.get("contacts") is not None:  # the whole list: people left out are removed
            set_contact_people(customer, data["contacts"], actor=api_actor(), source="api")
    except ValidationFailed as exc:
        raise ValidationFailed({JSON_NAMES.get(name, name): message for name, message in exc.fields.items()}) from None
    db.session.commit()
    return jsonify(customer_json(customer))


@bp.get("/customers/<int:customer_id>/export")
@token_required
def export_customer_data(customer_id: int):
    """The customer's data as a ZIP (app/privacy/export.py), audited as "customer.export"."""
    customer = db.session.get(Customer, customer_id)
    if customer is None:
        return error(404, "customer not found")
    archive = export_customer(customer, actor=api_actor())
    db.session.commit()
    return send_file(archive, mimetype="application/zip", as_attachment=True,
                     download_name=f"customer-{customer.id}.zip")
