"""The auth service's REST API: accounts, roles, rules, bindings, policy checks, keys."""

from __future__ import annotations

from django.db.models import Prefetch
from django.http import Http404
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response

from auth_app import keys, services
from auth_app.access import PolicyError, actor, granted_scopes, is_allowed, principal
from auth_app.api import serializers as io
from auth_app.api.filters import AccountFilter, BindingFilter, RuleFilter
from auth_app.models import Account, Role, RoleBinding, Rule
from auth_app.selectors import subject_decision
from platformsite.api.errors import Denied
from platformsite.api.filters import filter_parameters, filtered
from platformsite.api.permissions import IsAuthenticated
from platformsite.api.schema import ERROR
from platformsite.api.views import ServiceView, one_or_404, validated


def actor_scopes(request: Request) -> frozenset[str]:
    return principal(request)[1]


class AuthView(ServiceView):
    service = "auth"


ACCOUNTS = Account.objects.select_related("application", "user")


class AccountListView(AuthView):
    @extend_schema(parameters=filter_parameters(AccountFilter), responses=io.AccountOutput(many=True))
    def get(self, request: Request) -> Response:
        accounts = filtered(AccountFilter, request, ACCOUNTS.all())
        return self.paginate(accounts, serializer=io.AccountOutput)

    @extend_schema(request=io.AccountCreateInput, responses={201: io.AccountOutput, 409: ERROR})
    def post(self, request: Request) -> Response:
        data = validated(io.AccountCreateInput, request.data)
        secret = None
        if data["type"] == Account.Type.USER:
            account = services.user_account_create(
                username=data["name"],
                scopes=data["scopes"],
                email=data["email"],
                password=data.get("password"),
                metadata=data["metadata"],
                actor=actor(request),
                actor_scopes=actor_scopes(request),
            )
        else:
            account, secret = services.service_account_create(
                name=data["name"],
                scopes=data["scopes"],
                metadata=data["metadata"],
                grant_type=data["grant_type"],
                client_type=data["client_type"],
                redirect_uris=data["redirect_uris"],
                actor=actor(request),
                actor_scopes=actor_scopes(request),
            )
        body = io.AccountOutput(account).data
        if secret:
            body["client_secret"] = secret  # shown this once
        return Response(body, status=status.HTTP_201_CREATED)


class AccountView(AuthView):
    """Base of the views of one account: the lookup, and no handler of its own."""

    def get_account(self, name: str) -> Account:
        if "\x00" in name:  # no account has one, and PostgreSQL refuses it in a query
            raise Http404
        return one_or_404(ACCOUNTS, f"No account named {name!r}.", name=name)


class AccountDetailView(AccountView):
    @extend_schema(responses=io.AccountOutput)
    def get(self, request: Request, name: str) -> Response:
        return Response(io.AccountOutput(self.get_account(name)).data)

    @extend_schema(request=io.AccountUpdateInput, responses=io.AccountOutput)
    def patch(self, request: Request, name: str) -> Response:
        data = validated(io.AccountUpdateInput, request.data)
        account = services.account_update(
            account=self.get_account(name),
            scopes=data.get("scopes"),
            metadata=data.get("metadata"),
            actor=actor(request),
            actor_scopes=actor_scopes(request),
            actor_account_id=principal(request)[0],
        )
        return Response(io.AccountOutput(account).data)

    @extend_schema(responses={204: None})
    def delete(self, request: Request, name: str) -> Response:
        services.account_delete(
            account=self.get_account(name),
            actor=actor(request),
            actor_scopes=actor_scopes(request),
            actor_account_id=principal(request)[0],
        )
        return Response(status=status.HTTP_204_NO_CONTENT)


class AccountRotateSecretView(AccountView):
    @extend_schema(request=io.RotateSecretInput, responses=io.RotatedSecretOutput)
    def post(self, request: Request, name: str) -> Response:
        data = validated(io.RotateSecretInput, request.data)
        account = self.get_account(name)
        secret = services.account_rotate_secret(
            account=account,
            revoke_tokens=data["revoke_tokens"],
            actor=actor(request),
            actor_scopes=actor_scopes(request),
        )
        body = {"client_id": account.application.client_id, "client_secret": secret}
        return Response(io.RotatedSecretOutput(body).data)


class AccountDisableView(AccountView):
    @extend_schema(request=None, responses=io.AccountOutput)
    def post(self, request: Request, name: str) -> Response:
        validated(io.NoInput, request.data)  # a body field is refused, not ignored
        account = services.account_disable(
            account=self.get_account(name),
            actor=actor(request),
            actor_scopes=actor_scopes(request),
            actor_account_id=principal(request)[0],
        )
        return Response(io.AccountOutput(account).data)


class AccountEnableView(AccountView):
    @extend_schema(request=None, responses=io.AccountOutput)
    def post(self, request: Request, name: str) -> Response:
        validated(io.NoInput, request.data)
        account = services.account_enable(
            account=self.get_account(name), actor=actor(request), actor_scopes=actor_scopes(request)
        )
        return Response(io.AccountOutput(account).data)


class RoleListView(AuthView):
    @extend_schema(responses=io.RoleOutput(many=True))
    def get(self, request: Request) -> Response:
        return self.paginate(Role.objects.all(), serializer=io.RoleOutput)

    @extend_schema(request=io.RoleInput, responses={201: io.RoleOutput, 409: ERROR})
    def post(self, request: Request) -> Response:
        data = validated(io.RoleInput, request.data)
        role = services.role_create(name=data["name"], description=data["description"], actor=actor(request))
        return Response(io.RoleOutput(role).data, status=status.HTTP_201_CREATED)


class RoleDetailView(AuthView):
    def get_role(self, name: str) -> Role:
        roles = Role.objects.prefetch_related(
            Prefetch("rules", queryset=Rule.objects.select_related("role")),
            Prefetch("bindings", queryset=RoleBinding.objects.select_related("account")),
        )
        return one_or_404(roles, f"No role named {name!r}.", name=name)

    @extend_schema(responses=io.RoleDetailOutput)
    def get(self, request: Request, name: str) -> Response:
        return Response(io.RoleDetailOutput(self.get_role(name)).data)

    @extend_schema(request=io.RoleUpdateInput, responses=io.RoleOutput)
    def patch(self, request: Request, name: str) -> Response:
        data = validated(io.RoleUpdateInput, request.data)
        role = services.role_update(
            role=self.get_role(name), description=data["description"], actor=actor(request)
        )
        return Response(io.RoleOutput(role).data)

    @extend_schema(responses={204: None})
    def delete(self, request: Request, name: str) -> Response:
        services.role_delete(role=self.get_role(name), actor=actor(request))
        return Response(status=status.HTTP_204_NO_CONTENT)


class RuleListView(AuthView):
    @extend_schema(parameters=filter_parameters(RuleFilter), responses=io.RuleOutput(many=True))
    def get(self, request: Request) -> Response:
        rules = filtered(RuleFilter, request, Rule.objects.select_related("role"))
        return self.paginate(rules, serializer=io.RuleOutput)

    @extend_schema(request=io.RuleInput, responses={201: io.RuleOutput, 404: ERROR})
    def post(self, request: Request) -> Response:
        data = validated(io.RuleInput, request.data)
        role = one_or_404(Role, f"No role named {data['role']!r}.", name=data.pop("role"))
        rule = services.rule_create(role=role, actor=actor(request), **data)
        return Response(io.RuleOutput(rule).data, status=status.HTTP_201_CREATED)


class RuleDetailView(AuthView):
    def get_rule(self, pk: int) -> Rule:
        return one_or_404(Rule.objects.select_related("role"), f"No policy rule {pk}.", pk=pk)

    @extend_schema(responses=io.RuleOutput)
    def get(self, request: Request, pk: int) -> Response:
        return Response(io.RuleOutput(self.get_rule(pk)).data)

    @extend_schema(request=io.RuleUpdateInput, responses=io.RuleOutput)
    def patch(self, request: Request, pk: int) -> Response:
        data = validated(io.RuleUpdateInput, request.data)
        rule = services.rule_update(rule=self.get_rule(pk), actor=actor(request), **data)
        return Response(io.RuleOutput(rule).data)

    @extend_schema(responses={204: None})
    def delete(self, request: Request, pk: int) -> Response:
        services.rule_delete(rule=self.get_rule(pk), actor=actor(request))
        return Response(status=status.HTTP_204_NO_CONTENT)


class BindingListView(AuthView):
    @extend_schema(parameters=filter_parameters(BindingFilter), responses=io.BindingOutput(many=True))
    def get(self, request: Request) -> Response:
        bindings = filtered(BindingFilter, request, RoleBinding.objects.select_related("role", "account"))
        return self.paginate(bindings, serializer=io.BindingOutput)

    @extend_schema(request=io.BindingInput, responses={201: io.BindingOutput, 404: ERROR, 409: ERROR})
    def post(self, request: Request) -> Response:
        data = validated(io.BindingInput, request.data)
        binding = services.binding_create(
            role=one_or_404(Role, f"No role named {data['role']!r}.", name=data["role"]),
            account=one_or_404(Account, f"No account named {data['account']!r}.", name=data["account"]),
            actor=actor(request),
        )
        return Response(io.BindingOutput(binding).data, status=status.HTTP_201_CREATED)


class BindingDetailView(AuthView):
    @extend_schema(responses={204: None})
    def delete(self, request: Request, pk: int) -> Response:
        binding = one_or_404(
            RoleBinding.objects.select_related("role", "account"), f"No role binding {pk}.", pk=pk
        )
        services.binding_delete(binding=binding, actor=actor(request))
        return Response(status=status.HTTP_204_NO_CONTENT)


class CheckView(AuthView):
    """May a subject (the caller, by default) do ``action`` on ``resource``?

    Asking about another subject needs ``auth:read``; its account's scopes stand in for a token's.
    """

    permission_classes = [IsAuthenticated]

    @extend_schema(request=io.CheckInput, responses=io.DecisionOutput)
    def post(self, request: Request) -> Response:
        data = validated(io.CheckInput, request.data)
        resource, action = data["resource"], data["action"]
        subject = data.get("subject")
        try:
            if subject and subject != actor(request):
                if not ({"auth:read", "admin"} & granted_scopes(request)):
                    raise Denied(
                        "Checking another subject needs the 'auth:read' scope.", "insufficient_scope"
                    )
                decision = subject_decision(subject, resource=resource, action=action)
            else:
                subject = actor(request)
                account_id, scopes = principal(request)
                decision = is_allowed(account_id=account_id, scopes=scopes, resource=resource, action=action)
        except PolicyError as exc:
            raise serializers.ValidationError({"resource": [str(exc)]}) from exc
        return Response({**decision.as_dict(), "subject": subject})


class KeyListView(AuthView):
    """Signing keys of JWT access tokens (public parts); POST rotates (needs ``admin``)."""

    required_scopes = {"GET": "auth:read", "POST": "admin"}

    @extend_schema(responses=io.JwksOutput)
    def get(self, request: Request) -> Response:
        return Response(io.JwksOutput({"keys": keys.published_keys()}).data)

    @extend_schema(request=None, responses={201: io.SigningKeyOutput})
    def post(self, request: Request) -> Response:
        validated(io.NoInput, request.data)
        key = keys.signing_key_create()
        return Response(io.SigningKeyOutput(key).data, status=status.HTTP_201_CREATED)
