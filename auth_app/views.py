"""OAuth2 endpoints that wrap django-oauth-toolkit's to keep the token cache honest."""

from __future__ import annotations

from oauth2_provider import views as oauth_views

from auth_app.tokens import note_revocation


class RevokeTokenView(oauth_views.RevokeTokenView):
    """RFC 7009 revocation; a revoked token stops working on every node within the poll interval."""

    def post(self, request, *args, **kwargs):
        response = super().post(request, *args, **kwargs)
        if response.status_code == 200:
            note_revocation()
        return response
