"""Operator screens of the router service."""
