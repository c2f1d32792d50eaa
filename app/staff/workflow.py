"""Workflow settings: repair statuses and queues (being written)."""
from flask import Blueprint

bp = Blueprint("workflow", __name__, url_prefix="/settings/workflow")
