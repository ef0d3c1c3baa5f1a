"""The admin kit: deletions through the service, and an admin that forgets to say how."""

from __future__ import annotations

import pytest

from platformsite.admin import DeletesThroughService


def test_an_admin_that_deletes_without_saying_how__is_refused_when_defined():
    with pytest.raises(TypeError, match="delete_one"):

        class Forgetful(DeletesThroughService):
            pass


def test_the_change_page_and_the_list_action__each_row_goes_through_delete_one():
    deleted = []

    class Rows(DeletesThroughService):
        def delete_one(self, request, row):
            deleted.append((request, row))

    Rows().delete_model("request", "a")
    Rows().delete_queryset("request", ["b", "c"])
    assert deleted == [("request", "a"), ("request", "b"), ("request", "c")]


# --- JSON fields ----------------------------------------------------------------------------------

HUGE_INTEGER = "1" * 5000  # past Python's 4,300 digits: int() raised ValueError, uncaught
LONE_SURROGATE = '{"a": "\\ud800"}'  # refused, then written bare into the re-shown form


def _account_change() -> tuple[str, dict, str]:
    from auth_app.services import service_account_create

    account, _ = service_account_create(name="payments", scopes=["config:read"])
    form = {"scopes": "config:read", "metadata": "{}", "is_active": "on"}
    return f"/admin/auth_app/account/{account.pk}/change/", form, "metadata"


def _subscription_add() -> tuple[str, dict, str]:
    form = {"name": "hook", "owner": "", "types": "[]", "sources": "[]", "subject_prefix": ""}
    form.update({"sink": "webhook", "url": "https://hooks.example.com/in", "is_active": "on"})
    return "/admin/event_app/subscription/add/", form, "types"


@pytest.mark.django_db
@pytest.mark.parametrize(
    "page", [_account_change, _subscription_add], ids=["auth-account", "event-subscription"]
)
@pytest.mark.parametrize(
    ("typed", "shown"),
    [
        (f'{{"a": {HUGE_INTEGER}}}', "Enter a valid JSON."),
        (f"[{HUGE_INTEGER}]", "Enter a valid JSON."),
        ("[" * 100_000 + "]" * 100_000, "Enter a valid JSON."),
        (LONE_SURROGATE, "\\ud800"),  # the validator's refusal, the value escaped as typed
        ('["\\ud800"]', "\\ud800"),
    ],
    ids=[
        "huge-integer-in-object",
        "huge-integer-in-list",
        "deep",
        "surrogate-in-object",
        "surrogate-in-list",
    ],
)
def test_admin_json_fields__what_cannot_be_read_or_stored__is_a_form_error(admin_client, page, typed, shown):
    url, form, field = page()
    response = admin_client.post(url, {**form, field: typed})
    assert response.status_code == 200
    text = response.content.decode()
    assert 'class="errornote"' in text and shown in text


def test_every_admin_json_field__answers_a_form_error_for_what_it_cannot_read():
    """Every screen's JSON fields are the platform's (a screen started from Django's ModelAdmin
    would bring the 500s back); their forms are built as the change page builds them."""
    from django.contrib import admin
    from django.db import models
    from django.test import RequestFactory

    from platformsite.admin import JSONFormField

    request = RequestFactory().get("/admin/")
    unsafe = []
    for model, model_admin in admin.site._registry.items():
        for field in model._meta.get_fields():
            if isinstance(field, models.JSONField):
                built = model_admin.formfield_for_dbfield(field, request=request)
                if built is not None and not isinstance(built, JSONFormField):
                    unsafe.append(f"{model._meta.label}.{field.name}")
    assert unsafe == []
