"""Tables of the events service."""
