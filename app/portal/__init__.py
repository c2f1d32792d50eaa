"""The customer panel at /p/<shop-slug>/...: its own session, branding and pages for the shop's customers."""
from __future__ import annotations

from flask import Blueprint, Flask, abort, g, redirect, request, url_for
from sqlalchemy import select

from ..extensions import db
from ..i18n import current_shop
from ..models import ShopSlug
from .access import AreaSessionInterface, current_customer

bp = Blueprint("portal", __name__, url_prefix="/p/<slug>")


def init_portal(app: Flask) -> None:
    """Give the panel its own session cookie (see AreaSessionInterface) and register its pages."""
    from . import views  # noqa: F401  (the routes)

    app.session_interface = AreaSessionInterface()
    app.register_blueprint(bp)


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
