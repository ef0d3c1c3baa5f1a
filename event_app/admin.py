"""Operator screens of the events service."""
