"""`flask` commands (being written)."""


def register_cli(app):
    pass
