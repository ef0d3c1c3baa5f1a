"""``manage.py create_service_account NAME --scopes "config:read config:write"``."""

from __future__ import annotations

import json

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from auth_app.services import service_account_create
from platformsite.api.errors import PlatformError


class Command(BaseCommand):
    help = (
        "Create a service account (an OAuth2 client-credentials client allowed exactly the given "
        "scopes) and print {client_id, client_secret} as JSON. The secret is shown only this once."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("name")
        parser.add_argument("--scopes", default="", help="Space- or comma-separated scopes.")

    def handle(self, *args, name: str, scopes: str, **options) -> None:
        requested = scopes.replace(",", " ").split()
        try:
            account, secret = service_account_create(name=name, scopes=requested)
        except ValidationError as exc:
            raise CommandError("; ".join(f"{k}: {' '.join(v)}" for k, v in exc.message_dict.items())) from exc
        except PlatformError as exc:  # the name is taken
            raise CommandError(str(exc)) from exc
        self.stdout.write(
            json.dumps(
                {
                    "name": account.name,
                    "client_id": account.application.client_id,
                    "client_secret": secret,
                    "scopes": account.scope_list,
                }
            )
        )
