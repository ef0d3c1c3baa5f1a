"""Tables of the config service."""
