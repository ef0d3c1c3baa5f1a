"""Operator screens of the config service."""
