"""customers (being written)."""
from flask import Blueprint

bp = Blueprint("customers", __name__, url_prefix="/customers")


@bp.route("/")
def index():
    return "todo"
