"""Assertions on the platform's error answers, shared by the service tests."""

from __future__ import annotations


def refused(response, field: str, code: str = "invalid") -> None:
    """A 400 in the platform's shape, ``code``, whose details name ``field``."""
    assert response.status_code == 400, response.content
    error = response.json()["error"]
    assert error["code"] == code and field in error["details"], error
