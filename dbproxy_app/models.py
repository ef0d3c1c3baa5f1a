"""Tables of the db service."""
