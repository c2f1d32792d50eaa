"""Trusted domains: partners and suppliers whose mail is accepted without them being customers."""
from __future__ import annotations

import re

from flask_babel import gettext as _
from sqlalchemy import func, select

from ..errors import ValidationFailed
from ..extensions import db
from ..models import TrustedDomain, User
from ..models.audit import record

_LABEL = re.compile(r"(?!-)[a-z0-9-]{1,63}(?<!-)")


def trusted_domains() -> list[TrustedDomain]:
    return list(db.session.scalars(select(TrustedDomain).order_by(TrustedDomain.domain)))


def clean_domain(raw: str | None) -> str:
    """The domain as stored: lower-case, without a leading `@` or `*.`; refuses (ValidationFailed) anything that
    is not a domain with at least two labels (a whole top-level domain such as `pl` cannot be trusted)."""
    domain = (raw or "").strip().lower().removeprefix("@").removeprefix("*.").rstrip(".")
    try:
        ascii_form = domain.encode("idna").decode("ascii") if domain else ""
    except UnicodeError:
        ascii_form = ""
    labels = ascii_form.split(".")
    if len(ascii_form) > 253 or len(labels) < 2 or not all(_LABEL.fullmatch(label) for label in labels):
        raise ValidationFailed({"domain": _("Enter a domain such as partner.pl.")})
    return domain


def add_trusted_domain(raw: str | None, *, actor: User) -> TrustedDomain:
    """Trust a domain and its subdomains; refuses (ValidationFailed) a bad or already trusted domain."""
    domain = clean_domain(raw)
    if db.session.scalar(select(TrustedDomain.id).where(func.lower(TrustedDomain.domain) == domain)) is not None:
        raise ValidationFailed({"domain": _("%(domain)s is already trusted.", domain=domain)})
    trusted = TrustedDomain(domain=domain)
    db.session.add(trusted)
    db.session.flush()
    record("trusted_domain.add", by=actor, target=trusted, domain=domain)
    return trusted


def remove_trusted_domain(trusted: TrustedDomain, *, actor: User) -> None:
    record("trusted_domain.remove", by=actor, target=trusted, domain=trusted.domain)
    db.session.delete(trusted)
    db.session.flush()
