"""The OAuth2 request validator: django-oauth-toolkit's, refusing clients of disabled accounts."""

from __future__ import annotations

from oauth2_provider.oauth2_validators import OAuth2Validator

from auth_app.models import Account
from auth_app.secrets import check_client_secret


def _client_is_active(request) -> bool:
    client = getattr(request, "client", None)
    if client is None:
        return False
    return not Account.objects.filter(application_id=client.pk, is_active=False).exists()


class PlatformOAuth2Validator(OAuth2Validator):
    def _check_secret(self, provided_secret, stored_secret) -> bool:
        return check_client_secret(provided_secret, stored_secret)

    def authenticate_client(self, request, *args, **kwargs) -> bool:
        return super().authenticate_client(request, *args, **kwargs) and _client_is_active(request)

    def authenticate_client_id(self, client_id, request, *args, **kwargs) -> bool:
        return super().authenticate_client_id(client_id, request, *args, **kwargs) and _client_is_active(
            request
        )
