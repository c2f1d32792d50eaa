"""tickets (being written)."""
from flask import Blueprint

bp = Blueprint("tickets", __name__, url_prefix="/tickets")


@bp.route("/")
def index():
    return "todo"
