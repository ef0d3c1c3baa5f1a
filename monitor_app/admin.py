"""Operator screens of the monitor service."""
