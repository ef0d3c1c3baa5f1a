"""Operator screens of the trace service."""
