"""The authorization code flow: a user signs in (/o/login/), consents to the scopes asked for
(checked against the user's own before the consent page), and the client redeems the code with
its PKCE verifier (S256 only); refresh rotation; the RFC 9207 issuer in the answer."""

from __future__ import annotations

import base64
import hashlib
import secrets
from urllib.parse import parse_qs, urlencode, urlparse

import pytest

from auth_app.models import Account
from auth_app.services import service_account_create, user_account_create
from tests.auth_app.test_oauth import verify_with_jwks

pytestmark = pytest.mark.django_db


def public_client(name: str, *scopes: str) -> str:
    """A public PKCE client ``name`` holding ``scopes``, redirecting to the app's callback: its id."""
    account, _ = service_account_create(
        name=name,
        scopes=list(scopes),
        grant_type="authorization_code",
        client_type="public",
        redirect_uris=["https://app.example.com/cb"],
    )
    return account.application.client_id


def pkce() -> tuple[str, str]:
    """A PKCE code verifier and its S256 challenge."""
    verifier = secrets.token_urlsafe(48)
    digest = hashlib.sha256(verifier.encode()).digest()
    return verifier, base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def authorization(client_id: str, challenge: str, **fields: str) -> dict[str, str]:
    """An authorization request of ``client_id`` to the app's callback with an S256 challenge;
    ``fields``: scope, state, allow..."""
    return {
        "client_id": client_id,
        "response_type": "code",
        "redirect_uri": "https://app.example.com/cb",
        "code_challenge": challenge,
        "code_challenge_method": "S256",
        **fields,
    }


def test_authorization_code_with_pkce__then_refresh_rotates(client, django_user_model):
    # given a public PKCE client and a user whose account allows config:read
    client_id = public_client("webapp", "config:read", "config:write")
    user_account_create(username="dave", scopes=["config:read"], password="pw-dave-123456")
    client.login(username="dave", password="pw-dave-123456")
    verifier, challenge = pkce()
    # when the user authorizes
    response = client.post(
        "/o/authorize/",
        authorization(client_id, challenge, scope="config:read", allow="Authorize", state="xyz"),
    )
    assert response.status_code == 302, response.content
    answer = parse_qs(urlparse(response["Location"]).query)
    code = answer["code"][0]
    # RFC 9207: the issuer in the answer is the metadata's (it was the site's root, which clients
    # checking it refuse as a mix-up)
    metadata = client.get("/o/.well-known/oauth-authorization-server").json()
    assert answer["iss"] == [metadata["issuer"]] == ["http://testserver/o"]
    client.logout()
    tokens = client.post(
        "/o/token/",
        {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": "https://app.example.com/cb",
            "client_id": client_id,
            "code_verifier": verifier,
        },
    ).json()
    # then the token is the user's
    assert verify_with_jwks(client, tokens["access_token"])["sub"] == "dave"
    whoami = client.get("/api/v1/auth/whoami/", HTTP_AUTHORIZATION=f"Bearer {tokens['access_token']}").json()
    assert whoami == {**whoami, "type": "user", "subject": "user:dave", "scopes": ["config:read"]}
    # and a refresh rotates the refresh token; the old one is then refused
    refreshed = client.post(
        "/o/token/",
        {"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"], "client_id": client_id},
    ).json()
    assert refreshed["refresh_token"] != tokens["refresh_token"]
    bearer = f"Bearer {refreshed['access_token']}"
    assert client.get("/api/v1/auth/whoami/", HTTP_AUTHORIZATION=bearer).status_code == 200
    reused = client.post(
        "/o/token/",
        {"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"], "client_id": client_id},
    )
    assert reused.status_code == 400
    # and the replay revoked the family: the refreshed access token stops working at once, though
    # this process validated (and cached) it just before
    bearer = f"Bearer {refreshed['access_token']}"
    assert client.get("/api/v1/auth/whoami/", HTTP_AUTHORIZATION=bearer).status_code == 401


def _authorize_code_flow(client, name: str, scope: str):
    """A logged-in user authorizes a public PKCE client of ``name`` holding config:read and write."""
    client_id = public_client(name, "config:read", "config:write")
    _, challenge = pkce()
    return client.post(
        "/o/authorize/",
        authorization(client_id, challenge, scope=scope, allow="Authorize"),
    )


def test_user_token__scopes_limited_to_the_users_account(client):
    user_account_create(username="erin", scopes=["config:read"], password="pw-erin-123456")
    client.login(username="erin", password="pw-erin-123456")
    response = _authorize_code_flow(client, "webapp2", "config:write")
    assert "error=invalid_scope" in response.get("Location", "") or response.status_code == 400


def test_user_token__a_user_without_an_account_and_not_staff__gets_no_scope(client, django_user_model):
    django_user_model.objects.create_user(username="gina", password="pw-gina-123456")
    client.login(username="gina", password="pw-gina-123456")
    response = _authorize_code_flow(client, "webapp4", "config:read")
    assert "code=" not in response.get("Location", "")
    assert "error=invalid_scope" in response.get("Location", "") or response.status_code == 400


def signed_in_with_a_public_client(client, app: str, user: str) -> str:
    """A public PKCE client ``app`` (config:read) and the user ``user`` signed in: the client's id."""
    client_id = public_client(app, "config:read")
    user_account_create(username=user, scopes=["config:read"], password=f"pw-{user}-123456")
    client.login(username=user, password=f"pw-{user}-123456")
    return client_id


def test_pkce__is_required_for_public_clients(client):
    client_id = signed_in_with_a_public_client(client, "webapp3", "frank")
    response = client.post(
        "/o/authorize/",
        {
            "client_id": client_id,
            "response_type": "code",
            "redirect_uri": "https://app.example.com/cb",
            "scope": "config:read",
            "allow": "Authorize",
        },
    )
    assert "code=" not in response.get("Location", "")


def test_authorization_naming_a_scope_the_user_lacks__refused_before_the_consent_page(client):
    # the consent page asked, and the refusal came once the user had allowed it
    client_id = signed_in_with_a_public_client(client, "webapp6", "judy")
    Account.objects.filter(name="webapp6").update(scopes="config:read trace:read")  # the client's
    _, challenge = pkce()
    response = client.get(
        "/o/authorize/",
        authorization(client_id, challenge, scope="config:read trace:read", state="s1"),
    )
    assert response.status_code == 302
    answer = parse_qs(urlparse(response["Location"]).query)
    assert answer["error"] == ["invalid_scope"] and answer["state"] == ["s1"]
    assert "trace:read" in answer["error_description"][0]


@pytest.mark.parametrize("method", ["plain", None])
def test_pkce_plain__is_refused_before_the_consent_page(client, method):
    # given a public PKCE client and a signed-in user
    client_id = signed_in_with_a_public_client(client, "webapp5", "hana")
    query = {
        "client_id": client_id,
        "response_type": "code",
        "redirect_uri": "https://app.example.com/cb",
        "scope": "config:read",
        "code_challenge": "a-challenge-sent-as-is-" + "x" * 30,
        "state": "s1",
    }
    if method:
        query["code_challenge_method"] = method
    # when the client asks for an authorization with a plain challenge
    response = client.get("/o/authorize/", query)
    # then the user is sent back with the error at once, instead of being asked to allow it
    assert response.status_code == 302
    answer = parse_qs(urlparse(response["Location"]).query)
    assert answer["error"] == ["invalid_request"]
    assert answer["state"] == ["s1"]


def test_authorization_code__a_user_who_is_not_staff_signs_in_and_authorizes(client):
    # /o/authorize/ sent a signed-out user to the dashboards' login, which takes only staff: a user
    # account (type user) could never authorize a client through the pages
    client_id = public_client("webapp", "config:read")
    user_account_create(username="frank", scopes=["config:read"], password="pw-frank-123456")
    _, challenge = pkce()
    query = urlencode(authorization(client_id, challenge, scope="config:read"))
    to_login = client.get(f"/o/authorize/?{query}")
    assert to_login.status_code == 302
    login_page = to_login["Location"]
    assert login_page.startswith("/o/login/")
    page = client.get(login_page)
    assert page.status_code == 200 and b'action="/o/login/"' in page.content
    signed_in = client.post(
        login_page, {"username": "frank", "password": "pw-frank-123456", "next": f"/o/authorize/?{query}"}
    )
    assert signed_in.status_code == 302 and signed_in["Location"] == f"/o/authorize/?{query}"
    consent = client.get(signed_in["Location"])
    assert consent.status_code == 200  # the consent page, to the user who is not staff
    assert client.get("/ui/").status_code == 302  # the dashboards still take only staff


def test_authorization_without_a_scope__asks_for_the_clients_scopes_the_user_holds(client):
    # the consent page asked for every scope of the client, and allowing it answered invalid_scope
    # to a user lacking one of them
    client_id = public_client("webapp", "config:read", "trace:read")
    user_account_create(username="ivan", scopes=["config:read"], password="pw-ivan-123456")
    client.login(username="ivan", password="pw-ivan-123456")
    verifier, challenge = pkce()
    query = authorization(client_id, challenge)
    page = client.get("/o/authorize/", query)
    assert page.status_code == 200 and page.context["form"]["scope"].value() == "config:read"
    allowed = client.post(
        "/o/authorize/", {**query, "scope": page.context["form"]["scope"].value(), "allow": "1"}
    )
    answer = parse_qs(urlparse(allowed["Location"]).query)
    assert "code" in answer, answer
    tokens = client.post(
        "/o/token/",
        {
            "grant_type": "authorization_code",
            "code": answer["code"][0],
            "redirect_uri": "https://app.example.com/cb",
            "client_id": client_id,
            "code_verifier": verifier,
        },
    ).json()
    assert tokens["scope"] == "config:read"


def test_without_a_scope_and_none_held__invalid_scope_at_once(client):
    # it showed a consent page listing no scope, whose "allow" only showed the page again
    client_id = public_client("webapp", "config:read", "trace:read")
    user_account_create(username="ivan", scopes=["events:read"], password="pw-ivan-123456")
    client.login(username="ivan", password="pw-ivan-123456")
    query = authorization(client_id, pkce()[1], state="s1")
    response = client.get("/o/authorize/", query)
    assert response.status_code == 302
    answer = parse_qs(urlparse(response["Location"]).query)
    assert answer["error"] == ["invalid_scope"] and answer["state"] == ["s1"]
    assert answer["error_description"] == ["The signed-in user holds none of the client's scopes."]


def test_the_sign_in_page__renders_under_runservice_auth_without_the_dashboards(client, settings):
    # its page extended the dashboards' and named their URLs: a 500 where they are not served
    settings.ROOT_URLCONF = "tests.platformsite.urls_auth_only"
    response = client.get("/o/login/?next=/o/authorize/")
    assert response.status_code == 200
    assert b'action="/o/login/"' in response.content


def test_the_sign_in_page__without_the_dashboards_a_staff_user_sees_it_too(client, settings, staff_user):
    settings.ROOT_URLCONF = "tests.platformsite.urls_auth_only"
    client.force_login(staff_user)
    assert client.get("/o/login/").status_code == 200


def test_an_error_before_the_consent_page__carries_iss_as_the_metadata_promises(client):
    # a client told authorization_response_iss_parameter_supported refuses an answer without iss;
    # the errors sent back before the consent page (plain PKCE, a scope the user lacks) had none
    client_id = public_client("webapp", "config:read")
    user_account_create(username="ivan", scopes=["config:read"], password="pw-ivan-123456")
    client.login(username="ivan", password="pw-ivan-123456")
    metadata = client.get("/o/.well-known/oauth-authorization-server").json()
    assert metadata["authorization_response_iss_parameter_supported"] is True
    query = {
        "client_id": client_id,
        "response_type": "code",
        "redirect_uri": "https://app.example.com/cb",
        "scope": "config:read",
        "code_challenge": "c" * 43,
        "code_challenge_method": "plain",  # refused before the consent page
        "state": "s1",
    }
    answer = parse_qs(urlparse(client.get("/o/authorize/", query)["Location"]).query)
    assert answer["error"] == ["invalid_request"]
    assert answer["iss"] == [metadata["issuer"]]


def test_a_disabled_accounts_user__is_refused_at_sign_in_and_access_denied_if_signed_in(client):
    # the user signed in, then the client was answered invalid_scope ("holds none of the client's
    # scopes"): neither said the account was disabled
    from auth_app.services import account_disable

    client_id = public_client("webapp", "config:read")
    account = user_account_create(username="gina", scopes=["config:read"], password="pw-gina-123456")
    query = authorization(client_id, pkce()[1], scope="config:read", state="s2")
    client.login(username="gina", password="pw-gina-123456")  # signed in while it was enabled
    account_disable(account=Account.objects.get(pk=account.pk))
    response = client.get("/o/authorize/", query)
    answer = parse_qs(urlparse(response["Location"]).query)
    assert answer["error"] == ["access_denied"] and answer["state"] == ["s2"]
    assert answer["error_description"] == ["The signed-in user's account is disabled."]
    client.logout()
    page = client.post("/o/login/", {"username": "gina", "password": "pw-gina-123456"})
    assert page.status_code == 200 and b"This account is disabled." in page.content
    assert "_auth_user_id" not in client.session


def user_tokens(client, app: str, user: str) -> tuple[str, dict]:
    """A user signs in, authorizes a public PKCE client ``app`` (config:read) and the client
    redeems the code: the client's id and the token answer."""
    client_id = public_client(app, "config:read")
    user_account_create(username=user, scopes=["config:read"], password=f"pw-{user}-123456")
    client.login(username=user, password=f"pw-{user}-123456")
    verifier, challenge = pkce()
    response = client.post(
        "/o/authorize/", authorization(client_id, challenge, scope="config:read", allow="1")
    )
    code = parse_qs(urlparse(response["Location"]).query)["code"][0]
    client.logout()
    redeemed = client.post(
        "/o/token/",
        {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": "https://app.example.com/cb",
            "client_id": client_id,
            "code_verifier": verifier,
        },
    )
    return client_id, redeemed.json()


def whoami(client, access_token: str) -> int:
    return client.get("/api/v1/auth/whoami/", HTTP_AUTHORIZATION=f"Bearer {access_token}").status_code


def test_refresh__the_access_token_it_replaced__is_refused_at_once_the_others_stay_cached(
    client, django_capture_on_commit_callbacks
):
    from auth_app import tokens

    # given two users' tokens, both validated (and so cached) by this process
    client_id, issued = user_tokens(client, "webapp", "dave")
    _, other = user_tokens(client, "otherapp", "erin")
    assert whoami(client, issued["access_token"]) == whoami(client, other["access_token"]) == 200
    # when dave's client refreshes
    with django_capture_on_commit_callbacks(execute=True):
        refreshed = client.post(
            "/o/token/",
            {"grant_type": "refresh_token", "refresh_token": issued["refresh_token"], "client_id": client_id},
        ).json()
    # then the access token it replaced is refused, not trusted from memory until it expires there
    assert whoami(client, issued["access_token"]) == 401
    assert whoami(client, refreshed["access_token"]) == 200
    # and erin's token is still answered from memory: a refresh drops nothing else
    assert tokens.cached_bearer(other["access_token"]) is not None


def test_refresh_on_another_node__the_replaced_token_is_dropped_at_the_next_poll(
    client, django_capture_on_commit_callbacks
):
    from auth_app import tokens

    # given a token another node validated and holds (its cache entry, kept aside)
    client_id, issued = user_tokens(client, "webapp", "dave")
    _, other = user_tokens(client, "otherapp", "erin")
    assert whoami(client, issued["access_token"]) == whoami(client, other["access_token"]) == 200
    held = dict(tokens._cache.entries)
    # when the refresh is made on this node
    with django_capture_on_commit_callbacks(execute=True):
        client.post(
            "/o/token/",
            {"grant_type": "refresh_token", "refresh_token": issued["refresh_token"], "client_id": client_id},
        )
    # then the other node, which still holds it, drops it at its next poll, and only it
    tokens._cache.entries.update(held)
    tokens._cache.next_poll = 0.0
    assert whoami(client, issued["access_token"]) == 401
    assert tokens.token_checksum(other["access_token"]) in tokens._cache.entries


def test_revoking_a_refresh_token__its_access_token_is_refused_at_once(
    client, django_capture_on_commit_callbacks
):
    client_id, issued = user_tokens(client, "webapp", "dave")
    assert whoami(client, issued["access_token"]) == 200
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            "/o/revoke_token/",
            {"token": issued["refresh_token"], "token_type_hint": "refresh_token", "client_id": client_id},
        )
    assert response.status_code == 200
    assert whoami(client, issued["access_token"]) == 401
