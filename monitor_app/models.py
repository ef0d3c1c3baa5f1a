"""Tables of the monitor service."""
