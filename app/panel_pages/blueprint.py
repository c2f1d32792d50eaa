"""The customer panel's blueprint: the shop's slug in every address (an old one redirects), the customer known
before anything is said."""
from __future__ import annotations

from flask import Blueprint, abort, g, redirect, request
from sqlalchemy import select

from ..extensions import db
from ..i18n import current_shop
from ..models import ShopSlug
from ..panel.auth import current_customer

bp = Blueprint("panel", __name__, url_prefix="/p/<slug>")


@bp.url_value_preprocessor
def _shop_from_slug(endpoint, values):
    """The slug must be the shop's; an old one (kept in ShopSlug) redirects GETs to the same page under the new."""
    slug = (values or {}).pop("slug", "")
    shop = current_shop()
    if slug == shop.slug:
        return
    if db.session.scalar(select(ShopSlug.id).where(ShopSlug.slug == slug)) is None or request.method != "GET":
        abort(404)
    path = request.full_path if request.query_string else request.path
    g.panel_redirect = "/p/" + shop.slug + path.removeprefix(f"/p/{slug}")


@bp.before_request
def _redirect_old_slug():
    if "panel_redirect" in g:
        return redirect(request.script_root + g.panel_redirect, 301)


@bp.before_request
def _load_customer():
    """Know who is signed in before anything is said: the panel's words follow the customer's language."""
    current_customer()


@bp.url_defaults
def _add_slug(endpoint, values):
    values.setdefault("slug", current_shop().slug)
