"""System checks of the platform's own configuration."""

from __future__ import annotations

from django.conf import settings
from django.core.checks import Error, Tags, register

#: Browser protections that must stay in MIDDLEWARE (Django's W002/W003 are silenced in their favour).
REQUIRED_MIDDLEWARE = (
    "platformsite.middleware.CsrfViewMiddleware",
    "platformsite.middleware.XFrameOptionsMiddleware",
    "platformsite.middleware.SessionMiddleware",
    "platformsite.middleware.AuthenticationMiddleware",
)


@register(Tags.security)
def check_browser_protections(app_configs, **kwargs) -> list[Error]:
    return [
        Error(
            f"{path} is missing from MIDDLEWARE",
            hint="Browsers lose CSRF or framing protection.",
            id="platform.E001",
        )
        for path in REQUIRED_MIDDLEWARE
        if path not in settings.MIDDLEWARE
    ]
