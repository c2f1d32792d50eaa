"""Ready-made Polish and English templates for the usual statuses, their automatic notices switched off, and a
switched-off reminder for a repair still waiting for pickup after 7 opening days.

A fresh shop gets them from the migrations (0010, and 0025 for the reminder); a shop that lacks them can add
them from Settings → Templates. They are plain data here so the migration can insert the same rows without the models.
"""
from __future__ import annotations

from sqlalchemy import select

from ..extensions import db
from ..models import RepairStatus, Shop
from ..models.audit import record
from ..models.templates import MessageTemplate, StatusNotification, StatusReminder

# The status each automatic notice belongs to: "accepted" is the workflow's first status, "ready" the one named
# READY_STATUS (else the last status that is not final).
READY_STATUS = "gotowa do odbioru"

# (purpose, language, name, channels, subject, body); purpose "quote" has no automatic notice, "pickup_reminder"
# is the text of the reminder below.
STARTER_TEMPLATES = [
    ("accepted", "pl", "Przyjęcie naprawy", ["email", "sms", "portal"], "Przyjęliśmy {{ device }} do naprawy",
     "Dzień dobry {{ customer_first_name_vocative }},\n\nprzyjęliśmy {{ device }} do naprawy (zlecenie {{ repair_number }})."
     "{% if fault %} Zgłoszona usterka: {{ fault }}.{% endif %} Damy znać, gdy będziemy wiedzieć więcej.\n\n"
     "{{ shop_name }}{% if shop_phone %}, tel. {{ shop_phone }}{% endif %}"),
    ("quote", "pl", "Wycena naprawy", ["email", "sms", "portal"], "Wycena naprawy {{ repair_number }}",
     "Dzień dobry {{ customer_first_name_vocative }},\n\nsprawdziliśmy {{ device }} (zlecenie {{ repair_number }}). "
     "Koszt naprawy: {{ price_estimate }}. Prosimy o odpowiedź, czy naprawiamy.\n\n{{ shop_name }}"),
    ("ready", "pl", "Gotowa do odbioru", ["email", "sms", "portal"], "{{ device }} gotowy do odbioru",
     "Dzień dobry {{ customer_first_name_vocative }},\n\n{{ device }} (zlecenie {{ repair_number }}) jest gotowy do "
     "odbioru.{% if price_estimate %} Do zapłaty: {{ price_estimate }}.{% endif %}"
     "{% if opening_hours %} Zapraszamy: {{ opening_hours }}.{% endif %}\n\n{{ shop_name }}"),
    ("accepted", "en", "Repair accepted", ["email", "sms", "portal"], "We have accepted your {{ device }}",
     "Hello {{ customer_first_name }},\n\nwe have accepted your {{ device }} for repair (order {{ repair_number }})."
     "{% if fault %} Reported fault: {{ fault }}.{% endif %} We will let you know as soon as we know more.\n\n"
     "{{ shop_name }}{% if shop_phone %}, phone {{ shop_phone }}{% endif %}"),
    ("quote", "en", "Repair quote", ["email", "sms", "portal"], "Quote for repair {{ repair_number }}",
     "Hello {{ customer_first_name }},\n\nwe have checked your {{ device }} (order {{ repair_number }}). "
     "The repair costs {{ price_estimate }}. Please reply whether we should go ahead.\n\n{{ shop_name }}"),
    ("ready", "en", "Ready for pickup", ["email", "sms", "portal"], "Your {{ device }} is ready for pickup",
     "Hello {{ customer_first_name }},\n\nyour {{ device }} (order {{ repair_number }}) is ready for pickup."
     "{% if price_estimate %} Amount due: {{ price_estimate }}.{% endif %}"
     "{% if opening_hours %} Opening hours: {{ opening_hours }}.{% endif %}\n\n{{ shop_name }}"),
    ("pickup_reminder", "pl", "Przypomnienie o odbiorze", ["email", "sms", "portal"],
     "{{ device }} czeka na odbiór",
     "Dzień dobry {{ customer_first_name_vocative }},\n\nprzypominamy, że {{ device }} (zlecenie {{ repair_number }}) "
     "czeka na odbiór.{% if opening_hours %} Zapraszamy: {{ opening_hours }}.{% endif %}\n\n{{ shop_name }}"),
    ("pickup_reminder", "en", "Pickup reminder", ["email", "sms", "portal"], "Your {{ device }} is waiting for you",
     "Hello {{ customer_first_name }},\n\na reminder that your {{ device }} (order {{ repair_number }}) is waiting "
     "for pickup.{% if opening_hours %} Opening hours: {{ opening_hours }}.{% endif %}\n\n{{ shop_name }}"),
]
# The ready-made reminder: the "pickup_reminder" text after this many opening days in the ready status.
PICKUP_REMINDER_DAYS = 7
NOTICE_CHANNELS = ["email", "sms"]  # what a switched-on notice sends through, until the owner chooses otherwise


def notice_statuses(statuses: list[RepairStatus]) -> dict[str, RepairStatus]:
    """The statuses the ready-made notices belong to ("accepted", "ready"), from the workflow in its order."""
    active = [s for s in statuses if s.active]
    found = {}
    if active:
        found["accepted"] = active[0]
    ready = next((s for s in active if s.name == READY_STATUS), None) or \
        next((s for s in reversed(active) if not s.is_final and s is not active[0]), None)
    if ready is not None:
        found["ready"] = ready
    return found


def starter_rows(shop_language: str) -> list[tuple]:
    """STARTER_TEMPLATES with every language version of a message under one name, the one in the shop's language
    (else the Polish one): templates sharing a name are one message's versions, and a notice picks the customer's."""
    names = {purpose: name for purpose, language, name, *_rest in STARTER_TEMPLATES if language == "pl"}
    names.update({purpose: name for purpose, language, name, *_rest in STARTER_TEMPLATES if language == shop_language})
    return [(purpose, language, names[purpose], *rest) for purpose, language, _name, *rest in STARTER_TEMPLATES]


def starter_templates_missing() -> bool:
    """Whether some ready-made template (by name and language) is not among the shop's templates."""
    have = set(db.session.execute(select(MessageTemplate.name, MessageTemplate.language)).all())
    return any((name, language) not in have
               for _purpose, language, name, *_rest in starter_rows(Shop.current().locale))


def add_starter_templates(*, language: str, actor) -> list[MessageTemplate]:
    """Add the ready-made templates the shop lacks (by name and language); for the accepted and ready
    statuses that have no automatic notice yet, a switched-off notice with the template in `language`; and, when
    the ready status has no reminder after PICKUP_REMINDER_DAYS days, that reminder, switched off.
    Templates the shop already has are left alone; returns the templates added."""
    have = {(t.name, t.language): t for t in db.session.scalars(select(MessageTemplate))}
    added, by_purpose = [], {}
    for purpose, lang, name, channels, subject, body in starter_rows(language):
        template = have.get((name, lang))
        if template is None:
            template = MessageTemplate(name=name, language=lang, channels=channels, subject=subject, body=body,
                                       kind="message", marketing=False)
            db.session.add(template)
            added.append(template)
        if lang == language:
            by_purpose[purpose] = template
    db.session.flush()
    ruled = set(db.session.scalars(select(StatusNotification.status_id)))
    statuses = notice_statuses(RepairStatus.ordered(active_only=False))
    for purpose, status in statuses.items():
        if status.id not in ruled and purpose in by_purpose:
            db.session.add(StatusNotification(status_id=status.id, template_id=by_purpose[purpose].id,
                                              channels=NOTICE_CHANNELS, enabled=False))
    ready = statuses.get("ready")
    if ready is not None and "pickup_reminder" in by_purpose and not db.session.scalar(
            select(StatusReminder.id).where(StatusReminder.status_id == ready.id,
                                            StatusReminder.days == PICKUP_REMINDER_DAYS)):
        db.session.add(StatusReminder(status_id=ready.id, days=PICKUP_REMINDER_DAYS, enabled=False,
                                      template_id=by_purpose["pickup_reminder"].id, channels=NOTICE_CHANNELS))
    if added:
        record("template.starter", by=actor, names=[t.name for t in added])
    db.session.flush()
    return added
