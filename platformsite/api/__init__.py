"""Pieces every service API shares: authentication, scope permissions, errors, pagination."""
