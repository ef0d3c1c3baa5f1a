"""Tables of the discovery service."""
