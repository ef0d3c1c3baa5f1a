"""Operator screens of the auth service."""
