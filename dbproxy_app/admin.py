"""Operator screens of the db service."""
