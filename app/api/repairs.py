"""API: repairs (being written)."""
