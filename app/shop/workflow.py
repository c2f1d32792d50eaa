"""The shop's repair workflow: the statuses a repair goes through (their order, colours, which are final) and the
queues tickets and threads are sorted into. Owners change them in Settings → Workflow."""
from __future__ import annotations

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import func, select

from ..errors import ValidationFailed
from ..extensions import db
from ..fields import choice_field, cleaned_fields, flag_field, line_field
from ..models import Queue, Repair, RepairStatus, Thread, Ticket, User
from ..models.audit import apply_changes, record
from ..models.shop import STATUS_COLOURS

NAME_MAX = 80  # status and queue names
DIRECTIONS = ("up", "down")

Actor = User | str | None  # the signed-in user, a machine label such as "api:erp", or None for the system


def _unique_name(field: str, model: type[RepairStatus] | type[Queue], name: str, row=None) -> None:
    """Refuse a name another row of the model has, in any letter case (compared in Python, see resolve_status)."""
    folded = name.casefold()
    for other in db.session.scalars(select(model)):
        if other is not row and other.name.casefold() == folded:
            raise ValidationFailed({field: _("“%(name)s” already exists.", name=other.name)})


_clean_name = line_field("name", NAME_MAX, _l("Enter a name."))
_STATUS_CLEANERS = {
    "name": _clean_name, "colour": choice_field("colour", tuple(STATUS_COLOURS)), "is_final": flag_field("is_final"),
}


def _status_fields(name, colour, is_final) -> dict:
    fields = cleaned_fields(_STATUS_CLEANERS, dict(name=name, colour=colour, is_final=is_final))
    if fields["name"].isdigit():
        # The API takes a status by id or by name; a name of digits would read as an id.
        raise ValidationFailed({"name": _("A name cannot be only digits.")})
    return fields


def add_status(name: str, colour: str, *, is_final: bool = False, actor: Actor = None) -> RepairStatus:
    """Add an active status at the end of the workflow; refuses an empty, digits-only or taken name, unknown colours."""
    fields = _status_fields(name, colour, is_final)
    _unique_name("name", RepairStatus, fields["name"])
    last = db.session.scalar(select(func.max(RepairStatus.position)))
    status = RepairStatus(**fields, position=(last or 0) + 1, active=True)
    db.session.add(status)
    db.session.flush()
    record("status.create", by=actor, target=status, name=status.name)
    return status


def update_status(status: RepairStatus, name: str, colour: str, is_final: bool, *, actor: Actor = None) -> list[str]:
    """Rename or recolour a status, or mark it final (the repair is over); returns the changed fields.

    Repairs keep their status across a rename; their logs keep the old name. Refuses like add_status.
    """
    fields = _status_fields(name, colour, is_final)
    _unique_name("name", RepairStatus, fields["name"], row=status)
    changed = apply_changes(status, fields, "status.update", by=actor)  # a setting: its old and new value
    if changed:
        db.session.flush()
    return changed


def move_status(status: RepairStatus, direction: str, *, actor: Actor = None) -> bool:
    """Swap the status with its neighbour above or below (active or not); False at either end."""
    if direction not in DIRECTIONS:
        raise ValidationFailed({"direction": _("Choose one of: %(values)s.", values=", ".join(DIRECTIONS))})
    statuses = RepairStatus.ordered(active_only=False)
    index = statuses.index(status)
    other = index - 1 if direction == "up" else index + 1
    if not 0 <= other < len(statuses):
        return False
    statuses[index], statuses[other] = statuses[other], statuses[index]
    # Renumbered from 0 rather than swapping two values: positions may repeat or have gaps.
    for position, row in enumerate(statuses):
        row.position = position
    record("status.move", by=actor, target=status, direction=direction)
    db.session.flush()
    return True


def deactivate_status(status: RepairStatus, *, actor: Actor = None) -> None:
    """Stop offering the status for repairs; repairs in it keep it (statuses are never deleted).

    Refuses to deactivate the last active status: new repairs need one to start in.
    """
    if not status.active:
        return
    if len(RepairStatus.ordered()) <= 1:
        raise ValidationFailed({"status": _("The workflow needs at least one active status.")})
    status.active = False
    record("status.deactivate", by=actor, target=status, name=status.name)
    db.session.flush()


def reactivate_status(status: RepairStatus, *, actor: Actor = None) -> None:
    """Offer a deactivated status again, in its old place."""
    if status.active:
        return
    status.active = True
    record("status.reactivate", by=actor, target=status, name=status.name)
    db.session.flush()


def status_usage() -> dict[int, int]:
    """How many repairs are in each status, by status id (statuses nobody uses are missing)."""
    rows = db.session.execute(select(Repair.status_id, func.count()).group_by(Repair.status_id))
    return {status_id: count for status_id, count in rows}


# --- the workflow: queues ---------------------------------------------------------------------


def add_queue(name: str, *, actor: Actor = None) -> Queue:
    """Add a queue at the end of the list; refuses an empty or taken name."""
    name = _clean_name(name)
    _unique_name("name", Queue, name)
    last = db.session.scalar(select(func.max(Queue.position)))
    queue = Queue(name=name, position=(last or 0) + 1)
    db.session.add(queue)
    db.session.flush()
    record("queue.create", by=actor, target=queue, name=name)
    return queue


def rename_queue(queue: Queue, name: str, *, actor: Actor = None) -> bool:
    """Rename a queue; False when the name is the same. Refuses an empty or taken name."""
    name = _clean_name(name)
    _unique_name("name", Queue, name, row=queue)
    if name == queue.name:
        return False
    record("queue.rename", by=actor, target=queue, old=queue.name, new=name)
    queue.name = name
    db.session.flush()
    return True


def delete_queue(queue: Queue, *, actor: Actor = None) -> None:
    """Delete a queue no ticket or thread is in; refuses one in use (ValidationFailed on "queue")."""
    if queue_usage().get(queue.id):
        raise ValidationFailed({"queue": _("“%(name)s” still has tickets or conversations.", name=queue.name)})
    record("queue.delete", by=actor, target=queue, name=queue.name)
    db.session.delete(queue)
    db.session.flush()


def queue_usage() -> dict[int, int]:
    """How many tickets and threads are in each queue, by queue id (unused queues are missing)."""
    usage: dict[int, int] = {}
    for model in (Ticket, Thread):
        rows = db.session.execute(
            select(model.queue_id, func.count()).where(model.queue_id.is_not(None)).group_by(model.queue_id)
        )
        for queue_id, count in rows:
            usage[queue_id] = usage.get(queue_id, 0) + count
    return usage


def queues() -> list[Queue]:
    """The queues in the owner's order."""
    return list(db.session.scalars(select(Queue).order_by(Queue.position, Queue.id)))
