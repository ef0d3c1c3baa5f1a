from django.conf import settings

from platformsite import services


class AuthAppConfig(services.ServiceConfig):
    name = "auth_app"
    service = "auth"
    verbose_name = "Authentication and authorization: accounts, OAuth2, roles and policy rules"
    beat_schedule = {
        "auth-purge-expired-tokens": {
            "task": "auth_app.tasks.purge_expired_tokens",
            "schedule": settings.PLATFORM_TOKEN_PURGE_INTERVAL,
        },
        "auth-rotate-signing-key": {"task": "auth_app.tasks.rotate_signing_key_if_due", "schedule": 3600},
    }
