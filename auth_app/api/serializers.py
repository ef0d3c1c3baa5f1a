"""Input validation and output shapes of the auth API (kept apart)."""

from __future__ import annotations

from rest_framework import serializers

from auth_app.models import Account, Role, RoleBinding, Rule
from platformsite.api.validators import StrictBooleanField, StrictIntegerField
from platformsite.jsonvalues import unstorable

#: Deepest nesting of objects and lists in an account's metadata.
MAX_METADATA_DEPTH = 32


class ScopeListField(serializers.ListField):
    """Scopes as a JSON list, or one space-separated string."""

    child = serializers.CharField(max_length=50)

    def to_internal_value(self, data):
        if isinstance(data, str):
            data = data.split()
        return super().to_internal_value(data)


class MetadataField(serializers.DictField):
    """A JSON object the database can store: no NUL character or lone surrogate in it, nested at
    most ``MAX_METADATA_DEPTH`` levels."""

    def to_internal_value(self, data):
        data = super().to_internal_value(data)
        if problem := unstorable(data, max_depth=MAX_METADATA_DEPTH):
            raise serializers.ValidationError(problem)
        return data


# --- input ------------------------------------------------------------------------------------


class AccountCreateInput(serializers.Serializer):
    name = serializers.CharField(max_length=100)
    type = serializers.ChoiceField(choices=Account.Type.choices, default=Account.Type.SERVICE)
    scopes = ScopeListField(default=list)
    metadata = MetadataField(default=dict)
    grant_type = serializers.ChoiceField(
        choices=["client_credentials", "authorization_code", "password"], default="client_credentials"
    )
    client_type = serializers.ChoiceField(choices=["confidential", "public"], default="confidential")
    redirect_uris = serializers.ListField(child=serializers.URLField(max_length=500), default=list)
    email = serializers.EmailField(required=False, default="")
    password = serializers.CharField(required=False, write_only=True, min_length=8, max_length=200)

    #: The fields only one type of account takes (given for the other, they were dropped).
    ONLY_FOR = {
        Account.Type.USER: ("email", "password"),
        Account.Type.SERVICE: ("grant_type", "client_type", "redirect_uris"),
    }

    def validate(self, attrs: dict) -> dict:
        given = set(self.initial_data) if isinstance(self.initial_data, dict) else set()
        for kind, fields in self.ONLY_FOR.items():
            if attrs["type"] != kind:
                wrong = {name: [f"Only a {kind} account takes {name}."] for name in fields if name in given}
                if wrong:
                    raise serializers.ValidationError(wrong)
        if attrs["grant_type"] == "client_credentials" and attrs["redirect_uris"]:
            message = "Only an authorization_code client has redirect URIs."
            raise serializers.ValidationError({"redirect_uris": [message]})
        return attrs


class AccountUpdateInput(serializers.Serializer):
    scopes = ScopeListField(required=False)
    metadata = MetadataField(required=False)


class RotateSecretInput(serializers.Serializer):
    revoke_tokens = StrictBooleanField(default=False)


class RoleInput(serializers.Serializer):
    name = serializers.SlugField(max_length=100)
    description = serializers.CharField(required=False, allow_blank=True, default="", max_length=2000)


class RoleUpdateInput(serializers.Serializer):
    description = serializers.CharField(allow_blank=True, max_length=2000)


class RuleInput(serializers.Serializer):
    role = serializers.SlugField(max_length=100)
    resource = serializers.CharField(max_length=300)
    action = serializers.ChoiceField(choices=Rule.Action.values)
    effect = serializers.ChoiceField(choices=Rule.Effect.values, default=Rule.Effect.ALLOW)
    priority = StrictIntegerField(default=0, min_value=-1_000_000, max_value=1_000_000)
    description = serializers.CharField(required=False, allow_blank=True, default="", max_length=300)


class RuleUpdateInput(serializers.Serializer):
    resource = serializers.CharField(max_length=300, required=False)
    action = serializers.ChoiceField(choices=Rule.Action.values, required=False)
    effect = serializers.ChoiceField(choices=Rule.Effect.values, required=False)
    priority = StrictIntegerField(required=False, min_value=-1_000_000, max_value=1_000_000)
    description = serializers.CharField(required=False, allow_blank=True, max_length=300)


class BindingInput(serializers.Serializer):
    role = serializers.SlugField(max_length=100)
    account = serializers.CharField(max_length=100)


class CheckInput(serializers.Serializer):
    subject = serializers.RegexField(
        r"^(?:(?:service|user):)?[^\s:]+$",
        max_length=160,
        required=False,
        error_messages={"invalid": "service:<name>, user:<name> or an account's name."},
    )
    resource = serializers.CharField(max_length=320)
    action = serializers.ChoiceField(choices=["read", "write"])


class NoInput(serializers.Serializer):
    """A call that takes no body: any field is refused (``validated``'s unknown fields)."""


# --- output -----------------------------------------------------------------------------------


class AccountOutput(serializers.ModelSerializer):
    client_id = serializers.CharField(source="application.client_id", default=None, allow_null=True)
    grant_type = serializers.SerializerMethodField()
    client_type = serializers.CharField(source="application.client_type", default=None, allow_null=True)
    username = serializers.CharField(source="user.username", default=None, allow_null=True)
    scopes = serializers.ListField(source="scope_list", child=serializers.CharField())

    class Meta:
        model = Account
        fields = [
            "id",
            "name",
            "type",
            "client_id",
            "client_type",
            "grant_type",
            "username",
            "scopes",
            "metadata",
            "is_active",
            "created",
            "updated",
        ]

    def get_grant_type(self, account: Account) -> str | None:
        """The grant as ``POST /accounts/`` takes it (``client_credentials``), not DOT's spelling."""
        application = account.application
        if application is None:
            return None
        return application.authorization_grant_type.replace("-", "_")


class RuleOutput(serializers.ModelSerializer):
    role = serializers.CharField(source="role.name")

    class Meta:
        model = Rule
        fields = [
            "id",
            "role",
            "resource",
            "action",
            "effect",
            "priority",
            "description",
            "created",
            "updated",
        ]


class BindingOutput(serializers.ModelSerializer):
    role = serializers.CharField(source="role.name")
    account = serializers.CharField(source="account.name")

    class Meta:
        model = RoleBinding
        fields = ["id", "role", "account", "created"]


class RoleOutput(serializers.ModelSerializer):
    class Meta:
        model = Role
        fields = ["id", "name", "description", "created", "updated"]


class RoleDetailOutput(RoleOutput):
    rules = RuleOutput(many=True)
    accounts = serializers.SerializerMethodField()

    class Meta(RoleOutput.Meta):
        fields = [*RoleOutput.Meta.fields, "rules", "accounts"]

    def get_accounts(self, role: Role) -> list[str]:
        return [binding.account.name for binding in role.bindings.all()]


class DecisionOutput(serializers.Serializer):
    allowed = serializers.BooleanField()
    reason = serializers.CharField()
    rule = serializers.DictField(allow_null=True)
    subject = serializers.CharField()


class RotatedSecretOutput(serializers.Serializer):
    client_id = serializers.CharField()
    client_secret = serializers.CharField(help_text="Shown this once.")


class JwksOutput(serializers.Serializer):
    keys = serializers.ListField(child=serializers.DictField(), help_text="JSON Web Keys (public parts).")


class SigningKeyOutput(serializers.Serializer):
    kid = serializers.CharField()
    created = serializers.DateTimeField()
