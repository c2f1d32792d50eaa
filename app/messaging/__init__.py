"""The domain of conversations: threads, messages and deliveries. Views, API, CLI and jobs call these."""

from . import due  # noqa: F401,E402  (its flush hook keeps Thread.due_at current on every path)
