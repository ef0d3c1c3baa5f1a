"""Micro Platform's Django project: settings, URLs, serving and the shared API pieces."""

from platformsite.celery import app as celery_app

__all__ = ["celery_app"]
