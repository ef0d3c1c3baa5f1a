"""Operator screens of the discovery service."""
