"""API: customers (being written)."""
