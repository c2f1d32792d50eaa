"""Errors the domain raises for callers (views, API, CLI) to show in their own way."""
from __future__ import annotations


class ValidationFailed(Exception):
    """Input that breaks a rule; `fields` maps each field name to a message a person can read."""

    def __init__(self, fields: dict[str, str]):
        super().__init__("; ".join(f"{name}: {message}" for name, message in fields.items()))
        self.fields = fields
