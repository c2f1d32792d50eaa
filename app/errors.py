"""Errors the domain raises for callers (views, API, CLI) to show in their own way."""
from __future__ import annotations


class ValidationFailed(Exception):
    """Input that breaks a rule; `fields` maps each field name to a message a person can read."""

    def __init__(self, fields: dict[str, str]):
        super().__init__("; ".join(f"{name}: {message}" for name, message in fields.items()))
        self.fields = fields

    def message_for(self, field: str) -> str:
        """The message for `field`, else the first one: a caller showing one field's error never misses a refusal
        the domain names otherwise (such as an erased customer)."""
        return self.fields.get(field) or next(iter(self.fields.values()), "")
