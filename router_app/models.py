"""Tables of the router service."""
