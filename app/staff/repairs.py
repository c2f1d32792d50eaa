"""repairs (being written)."""
from flask import Blueprint

bp = Blueprint("repairs", __name__, url_prefix="/repairs")


@bp.route("/")
def index():
    return "todo"
