"""Settings → Rules (owners): the ordered rules for incoming mail, and trying them on a message already received."""
from __future__ import annotations

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from flask_wtf import FlaskForm
from sqlalchemy import select
from wtforms import BooleanField, SelectChoice, SelectField, StringField

from ..errors import ValidationFailed
from ..extensions import db
from ..i18n import quoted
from ..inbound import rules as mail_rules
from ..labels import CHANNEL_LABELS, PRIORITY_LABELS
from ..models import Mailbox, MailRule, Queue, User
from ..models.conversations import CHANNELS
from ..models.repairs import PRIORITIES
from ..pages import one_button
from . import form_values, owner_required, show_errors

bp = Blueprint("mail_rules", __name__, url_prefix="/settings/rules")


class RuleForm(FlaskForm):
    # Choices are not checked by the form (validate_choice=False): the domain gives the clearer message.
    name = StringField(_l("Name"))
    channel = SelectField(_l("Arrived through"), validate_choice=False)
    mailbox_id = SelectField(_l("Mailbox"), validate_choice=False)
    words = StringField(_l("The subject or text contains any of these words"))
    sender_domain = StringField(_l("The sender's address is in the domain"))
    queue_id = SelectField(_l("Set the queue"), validate_choice=False)
    assignee_id = SelectField(_l("Assign to"), validate_choice=False)
    priority = SelectField(_l("Set the priority"), validate_choice=False)
    tags = StringField(_l("Add tags"))
    stop = BooleanField(_l("Stop here: later rules are not applied to a message this rule matched"))

    def fill_choices(self) -> None:
        anything = SelectChoice("", _("Any"))
        nothing = SelectChoice("", _("Leave as it is"))
        self.channel.choices = [anything, *(SelectChoice(c, CHANNEL_LABELS[c]) for c in CHANNELS)]
        self.mailbox_id.choices = [anything, *(SelectChoice(str(m.id), f"{m.name} <{m.email}>") for m in
                                               db.session.scalars(select(Mailbox).order_by(Mailbox.name)))]
        self.queue_id.choices = [nothing, *(SelectChoice(str(q.id), q.name) for q in
                                            db.session.scalars(select(Queue).order_by(Queue.position, Queue.name)))]
        self.assignee_id.choices = [nothing, *(SelectChoice(str(u.id), u.name) for u in db.session.scalars(
            select(User).where(User.active.is_(True)).order_by(User.name)))]
        self.priority.choices = [nothing, *(SelectChoice(p, PRIORITY_LABELS[p]) for p in PRIORITIES)]


def _form(rule: MailRule | None = None) -> RuleForm:
    if rule is None or request.method == "POST":
        form = RuleForm()
    else:
        form = RuleForm(data={
            "name": rule.name, "channel": rule.channel, "mailbox_id": str(rule.mailbox_id or ""),
            "words": rule.words, "sender_domain": rule.sender_domain, "queue_id": str(rule.queue_id or ""),
            "assignee_id": str(rule.assignee_id or ""), "priority": rule.priority,
            "tags": ", ".join(tag.name for tag in mail_rules.rule_tags(rule)), "stop": rule.stop,
        })
    form.fill_choices()
    return form


def _describe(rules: list[MailRule]) -> dict[int, list]:
    """Each rule's actions as far as their queue, person and tags still exist."""
    return {rule.id: mail_rules.planned_actions(rule) for rule in rules}


@bp.route("/")
@owner_required
def index():
    rules = mail_rules.rules()
    tried, verdicts = None, None
    raw = request.args.get("message_id", "")
    if raw.strip():
        tried = mail_rules.received_message(raw)
        if tried is None:
            flash(_("No received message has the number %(number)s.", number=raw[:20]), "error")
        else:
            verdicts = mail_rules.try_rules(tried)
    mailboxes = {m.id: m for m in db.session.scalars(select(Mailbox))}
    return render_template("staff/settings/mail_rules.html", rules=rules, actions=_describe(rules),
                           mailboxes=mailboxes, recent=mail_rules.recent_received(), tried=tried,
                           verdicts=verdicts, message_id=raw[:20], channel_labels=CHANNEL_LABELS,
                           PRIORITY_LABELS=PRIORITY_LABELS)


@bp.route("/new", methods=["GET", "POST"])
@owner_required
def new():
    form = _form()
    if form.validate_on_submit():
        try:
            rule = mail_rules.create_rule(actor=current_user, **form_values(form))
        except ValidationFailed as exc:
            db.session.rollback()
            show_errors(form, exc)
        else:
            db.session.commit()
            flash(_("Rule %(name)s added.", name=quoted(rule.name)), "success")
            return redirect(url_for(".index"))
    return render_template("staff/settings/mail_rule_form.html", form=form, rule=None), 422 if form.errors else 200


@bp.route("/<int:rule_id>", methods=["GET", "POST"])
@owner_required
def edit(rule_id: int):
    rule = db.get_or_404(MailRule, rule_id)
    form = _form(rule)
    if form.validate_on_submit():
        try:
            changed = mail_rules.update_rule(rule, actor=current_user, **form_values(form))
        except ValidationFailed as exc:
            db.session.rollback()
            show_errors(form, exc)
        else:
            db.session.commit()
            flash(_("Rule %(name)s saved.", name=quoted(rule.name)) if changed else _("Nothing changed."), "success")
            return redirect(url_for(".index"))
    return render_template("staff/settings/mail_rule_form.html", form=form, rule=rule), 422 if form.errors else 200


def _attempt(action, rule: MailRule, *args, done: str | None = None):
    """Run a one-button action (move, switch, delete) and go back to the list, saying how it went."""
    return one_button(action, rule, *args, back=url_for(".index"), done=done)


@bp.route("/<int:rule_id>/move", methods=["POST"])
@owner_required
def move(rule_id: int):
    return _attempt(mail_rules.move_rule, db.get_or_404(MailRule, rule_id), request.form.get("direction", ""))


@bp.route("/<int:rule_id>/switch", methods=["POST"])
@owner_required
def switch(rule_id: int):
    rule = db.get_or_404(MailRule, rule_id)
    enabled = request.form.get("enabled") == "1"
    done = _("Rule %(name)s switched on.", name=quoted(rule.name)) if enabled else _("Rule %(name)s switched off.",
                                                                                name=quoted(rule.name))
    return _attempt(mail_rules.switch_rule, rule, enabled, done=done)


@bp.route("/<int:rule_id>/delete", methods=["POST"])
@owner_required
def delete(rule_id: int):
    rule = db.get_or_404(MailRule, rule_id)
    return _attempt(mail_rules.delete_rule, rule, done=_("Rule %(name)s deleted.", name=quoted(rule.name)))
