"""How long a delivery waits after a failed attempt: doubling steps with jitter, up to a cap."""
from __future__ import annotations

import random
from datetime import timedelta

from flask import current_app

DEFAULT_BASE = 60  # seconds: the first step (config OUTBOX_BACKOFF_BASE)
DEFAULT_CAP = 3600  # seconds: the longest step (config OUTBOX_BACKOFF_CAP)
_MAX_DOUBLINGS = 30  # beyond this every step is the cap anyway; keeps 2**n small


def retry_delay(attempts: int, base: float = DEFAULT_BASE, cap: float = DEFAULT_CAP) -> timedelta:
    """The wait after the `attempts`-th failed attempt: a random time between half the step and the whole step.

    Steps double from `base` up to `cap`: with the defaults 1, 2, 4, 8, 16, 32, 60, 60 … minutes. We wait at
    least half the step (unlike "full jitter", which may retry at once) so that a server that is down is not
    hammered; the random other half spreads the retries of a burst of failures (a mailbox down for a minute)
    so that they do not all come back in the same second.
    """
    step = min(cap, base * 2 ** min(max(attempts - 1, 0), _MAX_DOUBLINGS))
    return timedelta(seconds=random.uniform(step / 2, step))


def configured_retry_delay(attempts: int) -> timedelta:
    """retry_delay() with the app's OUTBOX_BACKOFF_BASE and OUTBOX_BACKOFF_CAP (seconds)."""
    config = current_app.config
    base = float(config.get("OUTBOX_BACKOFF_BASE", DEFAULT_BASE))
    cap = float(config.get("OUTBOX_BACKOFF_CAP", DEFAULT_CAP))
    return retry_delay(attempts, base, cap)
