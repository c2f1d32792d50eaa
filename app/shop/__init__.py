"""The shop itself: its settings, its staff accounts, its repair workflow (statuses and queues) and the
branding of its customer panel."""
