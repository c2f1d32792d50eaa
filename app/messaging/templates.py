"""Message templates: the tags they may use, checking them at save time, and rendering them for a customer.

A template may use only the offered tags (`{{ repair_number }}`) and `{% if tag %} … {% else %} … {% endif %}`.
Everything else (attribute access, filters, calls, arithmetic, loops, assignments) is refused when the template
is saved, so a saved template cannot fail or run away when it is rendered for a customer: every tag has a value
at send time (empty when the repair or customer lacks it), and the sandbox renders plain strings only.
"""
from __future__ import annotations

from dataclasses import dataclass
from io import BytesIO
from functools import cache

from flask_babel import force_locale
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from jinja2 import TemplateSyntaxError, Undefined, nodes
from jinja2.sandbox import ImmutableSandboxedEnvironment
from sqlalchemy import select

from ..attachments import StoredFile, store, stored_size
from ..customers import first_name_vocative
from ..errors import ValidationFailed
from ..extensions import db
from ..fields import clean_line, clean_text, gather
from ..i18n import babel_locale, money, shown_date
from ..models import Customer, Repair, Shop
from ..models.audit import record
from ..models.conversations import CHANNELS
from ..models.templates import MessageTemplate, TemplateAttachment
from ..models.customers import CUSTOMER_LANGUAGES
from ..accounts.sms import active_account
from ..channels.sms_text import MAX_BODY as SMS_MAX
from ..channels.sms_text import sms_body as sms_text_of
from ..urls import absolute_url
from .receipt import acceptance_receipt

NAME_MAX = 120
SUBJECT_MAX = 255
BODY_MAX = 20_000
KINDS = ("message", "header", "footer")
DOCUMENTS = {"acceptance_receipt": _l("Acceptance receipt (PDF)")}

# The tags a template can use, in the picker's order, with the label staff see.
TAGS = {
    "customer_first_name": _l("Customer's first name"),
    "customer_first_name_vocative": _l("Customer's first name in the vocative (Katarzyno, Tomaszu)"),
    "customer_name": _l("Customer's full name"),
    "repair_number": _l("Repair number"),
    "device": _l("Device"),
    "fault": _l("Fault description"),
    "status": _l("Repair status"),
    "price_estimate": _l("Price estimate"),
    "pickup_date": _l("Pickup date"),
    "shop_name": _l("Shop name"),
    "shop_address": _l("Shop address"),
    "shop_phone": _l("Shop phone"),
    "opening_hours": _l("Opening hours"),
    "panel_link": _l("Customer panel link"),
    "sms_reply_hint": _l("Reply-by-SMS hint"),
}


@cache
def _environment() -> ImmutableSandboxedEnvironment:
    # Text, not HTML: the mail's HTML part is built from the rendered text like any message's. Unknown names are
    # refused when a template is saved (check_text); should one still reach a render (a tag dropped in a later
    # version), it prints nothing rather than failing a message to a customer.
    return ImmutableSandboxedEnvironment(autoescape=False, undefined=Undefined, keep_trailing_newline=True,
                                         auto_reload=False, cache_size=0)


# --- checking ------------------------------------------------------------------------------------


def _refusal(node: nodes.Node, line: int = 1) -> str | None:
    """Why `node` (or anything in it) is not allowed in a template, or None when it is. `line` is the nearest
    line known above it: some nodes (an autoescape block's) carry none of their own."""
    line = getattr(node, "lineno", None) or line
    if isinstance(node, nodes.Template | nodes.Output):
        children = node.body if isinstance(node, nodes.Template) else node.nodes
        return next((why for child in children if (why := _refusal(child, line))), None)
    if isinstance(node, nodes.TemplateData):
        return None
    if isinstance(node, nodes.Name):
        if node.name not in TAGS:
            return _("Line %(line)d: there is no tag %(tag)s.", line=line, tag=node.name)
        return None
    if isinstance(node, nodes.If):
        test = node.test.node if isinstance(node.test, nodes.Not) else node.test
        if not isinstance(test, nodes.Name):
            return _("Line %(line)d: an if-block can only test one tag, like: if pickup_date.", line=line)
        parts = [test, *node.body, *node.elif_, *node.else_]
        return next((why for part in parts if (why := _refusal(part, line))), None)
    return _("Line %(line)d: only tags and if-blocks are allowed here.", line=line)


def check_text(text: str, field: str) -> None:
    """Refuse (ValidationFailed on `field`, naming the line) a template text with a syntax error, an unknown tag,
    or anything beyond tags and if-blocks."""
    try:
        tree = _environment().parse(text)
        why = _refusal(tree)
    except TemplateSyntaxError as exc:
        raise ValidationFailed({field: _("Line %(line)d: %(problem)s", line=exc.lineno, problem=exc.message)}) \
            from None
    except RecursionError:  # thousands of nested blocks or brackets: no shop writes that by hand
        raise ValidationFailed({field: _("The text is nested too deeply.")}) from None
    if why:
        raise ValidationFailed({field: why})


# --- rendering -----------------------------------------------------------------------------------


def tag_values(shop: Shop, customer: Customer | None, repair: Repair | None, language: str) -> dict[str, str]:
    """Every tag's text for this customer and repair; what is unknown is empty. Amounts, dates and the hint in
    the template's language (the customer reads them in it)."""
    locale = babel_locale(language if language in CUSTOMER_LANGUAGES else shop.locale or "pl")
    values = dict.fromkeys(TAGS, "")
    values.update(shop_name=shop.name, shop_address=shop.address or "", shop_phone=shop.phone or "",
                  opening_hours=shop.opening_hours_text, panel_link=absolute_url("panel.sign_in", slug=shop.slug))
    if customer is not None:
        values.update(customer_first_name=customer.first_name, customer_name=customer.name,
                      customer_first_name_vocative=first_name_vocative(customer))
    if repair is not None:
        values.update(repair_number=repair.number, device=repair.device, fault=repair.description or "",
                      status=repair.status.name if repair.status else "")
        if repair.price_estimate is not None:
            values["price_estimate"] = money(repair.price_estimate, locale)
        if repair.pickup_date is not None:
            values["pickup_date"] = shown_date(repair.pickup_date, locale)
    if active_account() is not None:
        with force_locale(language):
            values["sms_reply_hint"] = _("You can reply to this SMS.")
    return values


def render_text(text: str, values: dict[str, str]) -> str:
    """A checked template text with these tag values."""
    return _environment().from_string(text).render(values)


@dataclass(frozen=True)
class Rendered:
    """A template's text for one customer: the subject and main text (the e-mail's), and the SMS and panel
    texts when the template has its own for those channels (None: the channel carries the main text).
    `sms_plain`: the SMS, whichever text it carries, goes without Polish letters."""

    subject: str
    body: str
    sms: str | None = None
    panel: str | None = None
    sms_plain: bool = False

    @property
    def texts(self) -> dict[str, str]:
        """The channels' own texts, keyed by channel name, as compose() takes them."""
        return {name: text for name, text in (("sms", self.sms), ("portal", self.panel)) if text}

    def text_for(self, channel: str) -> str:
        """What `channel` carries."""
        return self.texts.get(channel, self.body)


def _rendered(values: dict[str, str], subject: str, body: str, sms: str, panel: str, sms_plain: bool) -> Rendered:
    own = [render_text(text, values).strip() if (text or "").strip() else None for text in (sms, panel)]
    return Rendered(" ".join(render_text(subject or "", values).split()), render_text(body or "", values).strip(),
                    own[0] or None, own[1] or None, bool(sms_plain))


def render(template: MessageTemplate, *, shop: Shop, customer: Customer | None, repair: Repair | None) -> Rendered:
    """The template's subject (on one line), body and channels' own texts for this customer and repair."""
    values = tag_values(shop, customer, repair, template.language)
    return _rendered(values, template.subject, template.body, template.sms_body or "", template.panel_body or "",
                     template.sms_plain)


def _check_all(texts: dict[str, str]) -> dict[str, str]:
    """The refusal of each text (check_text), keyed by its field."""
    errors = {}
    for field, text in texts.items():
        try:
            check_text(text or "", field)
        except ValidationFailed as exc:
            errors.update(exc.fields)
    return errors


def preview(*, subject: str, body: str, language: str, repair: Repair | None, sms_body: str = "",
            panel_body: str = "", sms_plain: bool = False) -> Rendered:
    """An unsaved template's texts for a real repair (and its customer); refuses what saving would refuse."""
    errors = _check_all({"subject": subject, "body": body, "sms_body": sms_body, "panel_body": panel_body})
    if errors:
        raise ValidationFailed(errors)
    shop = Shop.current()
    values = tag_values(shop, repair.customer if repair else None, repair,
                        language if language in CUSTOMER_LANGUAGES else "pl")
    return _rendered(values, subject, body, sms_body, panel_body, sms_plain)


def refusal_for(template: MessageTemplate, customer: Customer) -> str | None:
    """Why this template may not go to this customer, or None: marketing needs the customer's consent."""
    if template.marketing and not customer.marketing_consent:
        return _("“%(template)s” is a marketing message and %(customer)s has not agreed to marketing messages.",
                 template=template.name, customer=customer.name)
    return None


# --- the shop's templates ------------------------------------------------------------------------


def message_templates() -> list[MessageTemplate]:
    """The templates staff can choose when writing (not the reply headers and footers), by name."""
    return list(db.session.scalars(
        select(MessageTemplate).where(MessageTemplate.kind == "message").order_by(MessageTemplate.name,
                                                                                 MessageTemplate.id)))


def all_templates() -> list[MessageTemplate]:
    return list(db.session.scalars(select(MessageTemplate).order_by(MessageTemplate.kind, MessageTemplate.name,
                                                                    MessageTemplate.id)))


def version_for(template: MessageTemplate, customer: Customer, shop: Shop) -> MessageTemplate:
    """The version of `template` the customer reads. Templates of one kind with the same name are one message
    written in several languages ("Gotowe do odbioru" in Polish, English and Ukrainian): the customer's
    language's version, else the shop's language's, else `template` itself."""
    wanted = customer.language_or(shop.locale)
    if template.language == wanted:
        return template
    versions = {}
    for version in db.session.scalars(select(MessageTemplate).where(
            MessageTemplate.kind == template.kind, MessageTemplate.name == template.name).order_by(MessageTemplate.id)):
        versions.setdefault(version.language, version)
    return versions.get(wanted) or versions.get(shop.locale or "pl") or template


def reply_frame(language: str, kind: str) -> MessageTemplate | None:
    """The shop's reply header or footer in this language, if it has one."""
    return db.session.scalar(select(MessageTemplate).where(MessageTemplate.kind == kind,
                                                           MessageTemplate.language == language).limit(1))


def checked_fields(*, name, channels, subject, body, language, kind, marketing=False, template=None,
                   sms_body="", sms_plain=False, panel_body="") -> dict:
    """The template's fields cleaned; ValidationFailed names every bad field at once (syntax with its line).

    The SMS text is refused when, as written, it is longer than one SMS may be (compose's limit; tags filled in
    later are checked again when the message is written)."""
    errors = {}
    name = gather(errors, clean_line, name, "name", NAME_MAX, _l("Enter a name."))
    if kind not in KINDS:
        errors["kind"] = _("Choose one of: %(values)s.", values=", ".join(KINDS))
    if language not in CUSTOMER_LANGUAGES:
        errors["language"] = _("Choose Polish, English or Ukrainian.")
    channels = [c for c in CHANNELS if c in (channels or [])]
    if kind == "message" and not channels:
        errors["channels"] = _("Choose at least one channel.")
    subject = gather(errors, clean_line, subject, "subject", SUBJECT_MAX)
    body = gather(errors, clean_text, body, "body", BODY_MAX)
    sms_body = gather(errors, clean_text, sms_body or "", "sms_body", BODY_MAX).strip()
    panel_body = gather(errors, clean_text, panel_body or "", "panel_body", BODY_MAX).strip()
    texts = {"subject": subject, "body": body, "sms_body": sms_body, "panel_body": panel_body}
    errors.update(_check_all({field: text for field, text in texts.items() if field not in errors}))
    if "sms_body" not in errors and len(sms_text_of(sms_body, bool(sms_plain))) > SMS_MAX:
        errors["sms_body"] = _("An SMS can have at most %(n)d characters.", n=SMS_MAX)
    if not body.strip():
        errors.setdefault("body", _("Write the text."))
    if kind in ("header", "footer") and language in CUSTOMER_LANGUAGES and "language" not in errors:
        other = reply_frame(language, kind)
        if other is not None and other is not template:
            errors["kind"] = _("The shop already has a reply %(kind)s in this language: “%(name)s”.",
                               kind=_("header") if kind == "header" else _("footer"), name=other.name)
    if errors:
        raise ValidationFailed(errors)
    return dict(name=name, channels=channels, subject=subject, body=body, language=language,
                marketing=bool(marketing), kind=kind, sms_body=sms_body, sms_plain=bool(sms_plain),
                panel_body=panel_body)


def save_template(template: MessageTemplate | None, *, actor, files=(), receipt: bool = False,
                  remove_attachments=(), **fields) -> MessageTemplate:
    """Create (template None) or change a template; `files` (StoredFile) are added, attachment ids in
    `remove_attachments` removed, and the acceptance receipt attached or not. Refuses bad fields (checked_fields)."""
    cleaned = checked_fields(template=template, **fields)
    if template is None:
        template = MessageTemplate()
        db.session.add(template)
    for field, value in cleaned.items():
        setattr(template, field, value)
    keep = [a for a in template.attachments if a.id not in set(remove_attachments) and a.kind == "file"]
    keep += [TemplateAttachment(kind="file", filename=f.filename, content_type=f.content_type, sha256=f.sha256)
             for f in files]
    if receipt:
        keep.append(next((a for a in template.attachments if a.document == "acceptance_receipt"), None)
                    or TemplateAttachment(kind="document", document="acceptance_receipt",
                                          filename="receipt.pdf", content_type="application/pdf"))
    template.attachments = keep
    db.session.flush()
    record("template.save", by=actor, target=template, name=template.name)
    return template


def delete_template(template: MessageTemplate, *, actor) -> None:
    """Delete a template; automatic notifications that used it stop (their rules go with it)."""
    record("template.delete", by=actor, target=template, name=template.name)
    db.session.delete(template)
    db.session.flush()


def template_files(template: MessageTemplate, *, repair: Repair | None, shop: Shop) -> list:
    """The files the template carries, as StoredFile: its uploaded files, and its documents rendered now for
    `repair`. Refuses (ValidationFailed on "template_id") a document without a repair and a file gone from disk."""
    files = []
    for attachment in template.attachments:
        if attachment.kind == "document":
            if repair is None:
                raise ValidationFailed({"template_id": _("“%(template)s” attaches a repair's receipt: write from "
                                                         "a repair.", template=template.name)})
            with force_locale(shop.locale or "pl"):
                name = _("receipt-%(number)s.pdf", number=repair.number)
            files.append(store(BytesIO(acceptance_receipt(repair, shop)), name))
            continue
        try:
            size = stored_size(attachment.sha256)
        except (FileNotFoundError, ValueError):
            raise ValidationFailed({"template_id": _("The file %(name)s of “%(template)s” is missing; upload it "
                                                     "again.", name=attachment.filename, template=template.name)}) \
                from None
        files.append(StoredFile(attachment.sha256, size, attachment.content_type, attachment.filename))
    return files
