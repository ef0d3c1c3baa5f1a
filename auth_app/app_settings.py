"""Settings of the auth service that belong to no other (merged into Django settings)."""

from platformsite.env import env, read

BEAT_SCHEDULE = {
    "auth-purge-expired-tokens": {
        "task": "auth_app.tasks.purge_expired_tokens",
        "schedule": read("PLATFORM_TOKEN_PURGE_INTERVAL", env.int, 3600),
    },
    "auth-rotate-signing-key": {
        "task": "auth_app.tasks.rotate_signing_key_if_due",
        "schedule": 3600,
    },
}
