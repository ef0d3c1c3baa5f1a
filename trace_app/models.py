"""Tables of the trace service."""
