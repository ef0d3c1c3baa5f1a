"""Create the operator (superuser) account on first run and print how to log in."""

from __future__ import annotations

import os
import secrets

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from django.db import IntegrityError, transaction


class Command(BaseCommand):
    help = (
        "Create the operator account if no superuser exists. The password comes from "
        "PLATFORM_ADMIN_PASSWORD, or is generated and printed once."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("--username", default=os.environ.get("PLATFORM_ADMIN_USER", "admin"))

    def handle(self, *args, username: str, **options) -> None:
        users = get_user_model()
        if users.objects.filter(is_superuser=True).exists():
            return
        password = os.environ.get("PLATFORM_ADMIN_PASSWORD") or secrets.token_urlsafe(12)
        try:
            with transaction.atomic():
                users.objects.create_superuser(username=username, email="", password=password)
        except IntegrityError:
            if users.objects.filter(is_superuser=True).exists():
                return  # another process starting at the same moment made it (and prints it)
            raise CommandError(
                f"A user named '{username}' exists and is not a superuser: choose the operator's "
                "name with PLATFORM_ADMIN_USER (or --username)."
            ) from None
        if os.environ.get("PLATFORM_ADMIN_PASSWORD"):
            self.stdout.write(
                f"Operator account created: user '{username}', password from PLATFORM_ADMIN_PASSWORD."
            )
        else:
            self.stdout.write(
                f"Operator account created: user '{username}', password '{password}' "
                "(shown this once; change it in /admin/)."
            )
