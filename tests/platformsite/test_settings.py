"""Settings come from the environment and fail loudly on bad or insecure values."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
GOOD_KEY = "k" * 20 + "Q7x!p2Lm9#Rt5vWz8Yb3Nc6Df1Gh4Jk0Ms"


def load_settings(
    tmp_path, show: str = "settings.DATABASES['default']['ENGINE']", **env: str
) -> subprocess.CompletedProcess:
    """The settings loaded in a process of their own with ``env``; ``show`` printed."""
    clean = {
        k: v for k, v in os.environ.items() if not k.startswith(("PLATFORM_", "DATABASE_URL", "REDIS_URL"))
    }
    clean.update(
        {"PLATFORM_VAR_DIR": str(tmp_path), "DJANGO_SETTINGS_MODULE": "platformsite.settings", **env}
    )
    code = f"import django; django.setup(); from django.conf import settings; print({show})"
    return subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=clean, capture_output=True, text=True, timeout=60
    )


def test_embedded_defaults__sqlite_in_var_and_a_kept_secret_key(tmp_path):
    first = load_settings(tmp_path)
    assert first.returncode == 0, first.stderr
    assert first.stdout.strip() == "django.db.backends.sqlite3"
    key = (tmp_path / "secret_key").read_text()
    assert len(key) >= 50
    load_settings(tmp_path)
    assert (tmp_path / "secret_key").read_text() == key


@pytest.mark.parametrize(
    ("url", "timeout"),
    [
        ("postgres://platform@db.example/platform", "3"),
        ("postgres://platform@db/platform?connect_timeout=9", "9"),
    ],
)
def test_postgresql__connects_give_up_after_3_s_unless_the_url_says(tmp_path, url, timeout):
    loaded = load_settings(
        tmp_path, "settings.DATABASES['default']['OPTIONS']['connect_timeout']", DATABASE_URL=url
    )
    assert loaded.returncode == 0, loaded.stderr
    assert loaded.stdout.strip() == timeout


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"PLATFORM_ENV": "production", "ALLOWED_HOSTS": "platform.example.com"}, "SECRET_KEY is required"),
        (
            {"PLATFORM_ENV": "production", "SECRET_KEY": "short", "ALLOWED_HOSTS": "p.example.com"},
            "SECRET_KEY must be at least 50",
        ),
        ({"PLATFORM_ENV": "production", "SECRET_KEY": GOOD_KEY, "ALLOWED_HOSTS": "*"}, "ALLOWED_HOSTS"),
        (
            {
                "PLATFORM_ENV": "production",
                "SECRET_KEY": GOOD_KEY,
                "ALLOWED_HOSTS": "p.example.com",
                "DEBUG": "true",
            },
            "DEBUG must be off",
        ),
        ({"DEBUG": "perhaps"}, "DEBUG has an invalid value"),
        ({"PLATFORM_MAX_BODY_BYTES": "ten"}, "PLATFORM_MAX_BODY_BYTES has an invalid value"),
        ({"REDIS_URL": "http://localhost"}, "REDIS_URL must start with redis://"),
        ({"PLATFORM_TASK_MODE": "celery"}, "needs REDIS_URL"),
        ({"PLATFORM_ENV": "staging"}, "PLATFORM_ENV must be one of"),
        ({"DATABASE_URL": "nosuchdb://x"}, "DATABASE_URL has an invalid value"),
        ({"PLATFORM_REDIS_TIMEOUT": "0"}, "PLATFORM_REDIS_TIMEOUT must be a number of seconds above 0"),
    ],
)
def test_bad_or_insecure_setting__refuses_to_start_naming_it(tmp_path, env, message):
    result = load_settings(tmp_path, **env)
    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr
    assert message in result.stderr


def test_production__with_secure_settings__starts(tmp_path):
    result = load_settings(
        tmp_path, PLATFORM_ENV="production", SECRET_KEY=GOOD_KEY, ALLOWED_HOSTS="platform.example.com"
    )
    assert result.returncode == 0, result.stderr


def test_distributed_mode__redis_url_switches_cache_layer_and_broker(tmp_path):
    code = (
        "import django; django.setup(); from django.conf import settings as s; "
        "print(s.CACHES['default']['BACKEND'], s.CHANNEL_LAYERS['default']['BACKEND'], "
        "s.CELERY_BROKER_URL, s.PLATFORM_TASK_MODE, s.CACHES['default']['OPTIONS']['pool_class'], "
        "s.CACHES['default']['OPTIONS']['socket_timeout'], "
        "s.CELERY_BROKER_TRANSPORT_OPTIONS['socket_timeout'])"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PLATFORM_", "REDIS_URL"))}
    env.update(
        PLATFORM_VAR_DIR=str(tmp_path),
        DJANGO_SETTINGS_MODULE="platformsite.settings",
        REDIS_URL="redis://127.0.0.1:6399/3",
        PLATFORM_REDIS_TIMEOUT="1.5",
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout.split()
    assert out == [
        "platformsite.cache.PlatformRedisCache",
        "channels_redis.core.RedisChannelLayer",
        "redis://127.0.0.1:6399/3",
        "celery",
        "platformsite.cache.GuardedConnectionPool",
        "1.5",
        "1.5",
    ]


def test_check__missing_csrf_middleware__is_an_error(settings):
    from platformsite.checks import check_browser_protections

    assert check_browser_protections(None) == []
    settings.MIDDLEWARE = [m for m in settings.MIDDLEWARE if "Csrf" not in m]
    assert [error.id for error in check_browser_protections(None)] == ["platform.E001"]


@pytest.mark.parametrize(
    ("env", "autorefresh"),
    [
        ({}, "True"),  # embedded, the default: ``make run``
        ({"PLATFORM_ENV": "embedded", "DEBUG": "false"}, "True"),
        ({"PLATFORM_ENV": "test"}, "False"),
        ({"PLATFORM_ENV": "test", "DEBUG": "true"}, "True"),
        ({"PLATFORM_ENV": "production", "SECRET_KEY": GOOD_KEY, "ALLOWED_HOSTS": "p.example.com"}, "False"),
    ],
)
def test_static_files__refreshed_as_edited_in_the_embedded_mode_and_debug_only(tmp_path, env, autorefresh):
    """WhiteNoise without autorefresh keeps each file's start-up length: an edited stylesheet is cut off."""
    clean = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("PLATFORM_", "DEBUG", "DATABASE_URL", "REDIS_URL"))
    }
    clean.update(
        {"PLATFORM_VAR_DIR": str(tmp_path), "DJANGO_SETTINGS_MODULE": "platformsite.settings", **env}
    )
    code = "import django; django.setup(); from django.conf import settings; "
    code += "print(settings.WHITENOISE_AUTOREFRESH)"
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=clean, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == autorefresh
