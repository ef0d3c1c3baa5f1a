"""Password sign-ins count failures against the address as client secrets do at /o/token/: the
dashboards', the admin's and /o/login/ (they had no limit: a password could be guessed at will)."""

from __future__ import annotations

import pytest

from auth_app.forms import LOCKED_OUT
from tests.conftest import basic_auth

PAGES = ["/ui/login/", "/admin/login/", "/o/login/"]


@pytest.fixture(autouse=True)
def _limit(settings):
    settings.PLATFORM_TOKEN_FAILURE_LIMIT = 2


@pytest.mark.parametrize("page", PAGES)
def test_wrong_passwords__then_even_the_right_one_is_refused_from_that_address(client, staff_user, page):
    for _ in range(2):
        refused = client.post(page, {"username": "operator", "password": "wrong"})
        assert refused.status_code == 200 and LOCKED_OUT not in refused.content.decode()
    locked = client.post(page, {"username": "operator", "password": "pw-operator-1"})
    assert locked.status_code == 200 and LOCKED_OUT in locked.content.decode()
    assert "_auth_user_id" not in client.session
    other = client.post(page, {"username": "operator", "password": "pw-operator-1"}, REMOTE_ADDR="10.0.0.9")
    assert other.status_code == 302  # another address signs in


def test_the_pages_and_the_token_endpoint_count_apart(client, staff_user):
    # one count made a person's mistyped passwords lock every service of the address out of tokens
    for _ in range(2):
        client.post("/ui/login/", {"username": "operator", "password": "wrong"})
    assert client.post("/o/token/", {"grant_type": "client_credentials"}).status_code != 429
    for _ in range(2):
        client.post(
            "/o/token/", {"grant_type": "client_credentials"}, HTTP_AUTHORIZATION=basic_auth("x", "y")
        )
    assert client.post("/o/token/", {"grant_type": "client_credentials"}).status_code == 429
    assert (
        LOCKED_OUT
        in client.post("/o/login/", {"username": "operator", "password": "pw-operator-1"}).content.decode()
    )


def test_a_failed_sign_in__records_the_name_only_of_a_user_that_exists(client, staff_user, caplog):
    # people type their password into the name field: it went into the audit event
    with caplog.at_level("INFO", logger="platform.audit"):
        client.post("/ui/login/", {"username": "hunter2-password", "password": "x"})
        client.post("/ui/login/", {"username": "operator", "password": "x"})
    subjects = [
        getattr(record, "subject", None)
        for record in caplog.records
        if "authentication.failed" in record.getMessage()
    ]
    assert subjects == ["user:(unknown)", "user:operator"]
