"""The HTTP API (JSON, bearer tokens) for the shop's other systems; one module per resource, their common parts
in base.py."""
from . import customers, messages, repairs, templates, threads  # noqa: F401  (their routes)
from .base import bp

__all__ = ["bp"]
