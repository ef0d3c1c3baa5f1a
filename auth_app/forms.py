"""Password sign-in forms (the dashboards', the admin's, and ``/o/login/`` of the authorization
code flow): a wrong password counts against the caller's address (:mod:`auth_app.lockout`, a
count of its own beside the token endpoint's), and a locked-out address signs in nowhere."""

from __future__ import annotations

from typing import Any

from django.contrib.admin.forms import AdminAuthenticationForm
from django.contrib.auth import get_user_model
from django.contrib.auth.forms import AuthenticationForm
from django.core.exceptions import ValidationError

from auth_app import lockout
from auth_app.scopes import account_disabled

LOCKED_OUT = "Too many failed sign-ins from this address; try again in a few minutes."
DISABLED = "This account is disabled."


class _Throttled:
    request: Any
    cleaned_data: dict[str, Any]

    def clean(self) -> dict[str, Any]:
        if self.request is not None and lockout.locked_out(self.request, lockout.SIGN_IN):
            raise ValidationError(LOCKED_OUT, code="locked_out")
        try:
            return super().clean()  # type: ignore[misc]
        except ValidationError as error:
            # the right password of a disabled account is not a guess: not counted
            if self.request is not None and error.code != "inactive":
                name = self.cleaned_data.get("username") or ""
                # a name no user has is not recorded: people type their password there too
                known = get_user_model().objects.filter(username=name).exists()
                subject = f"user:{name}" if known else "user:(unknown)"
                lockout.count_failure(self.request, subject=subject, endpoint="sign-in", kind=lockout.SIGN_IN)
            raise


class SignInForm(_Throttled, AuthenticationForm):
    """Any active user (``/o/login/``) whose account, if it has one, is enabled: a disabled
    account gets no token, so its user is told at once rather than by the client's error."""

    def confirm_login_allowed(self, user) -> None:
        super().confirm_login_allowed(user)
        if account_disabled(user):
            raise ValidationError(DISABLED, code="inactive")


class StaffSignInForm(_Throttled, AdminAuthenticationForm):
    """Active staff users only (the dashboards and the admin)."""
