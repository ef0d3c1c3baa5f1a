"""The base of every service's API views, and the views every service shares.

:class:`ServiceView` is the one way a service's API view is written: the scope check (the
permission class, ``<service>:read`` or ``:write`` by method), then the policy check of every
resource the view's :meth:`~ServiceView.resources` hook names, both in ``initial()``, before any
handler runs, so no handler can forget them.  Handlers parse, call one service function, and
answer with an output serializer; errors are raised (``platformsite.api.errors``), never built.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any, ClassVar

from django.db.models import Model, QuerySet
from django.urls import URLPattern, URLResolver, get_resolver
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.permissions import SAFE_METHODS
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from auth_app.access import PolicyError, is_request_allowed
from platformsite.api.errors import Denied, Invalid, NotFound
from platformsite.api.pagination import CursorPagination
from platformsite.services import VERSION, service_by_name


def validated(
    serializer_class: type[serializers.Serializer], data: Any, *, known_only: bool = True
) -> dict[str, Any]:
    """``data`` checked by an input serializer: its validated data, or 400 naming each bad field.

    A body's field the serializer does not know is refused too (``known_only``; query strings
    pass False, they carry paging and other parameters): a misspelt optional field would
    otherwise be dropped silently and its default used, with a success answer."""
    serializer = serializer_class(data=data)
    if known_only and isinstance(data, Mapping):
        unknown = [name for name in data if name not in serializer.fields]
        if unknown:
            raise serializers.ValidationError({str(name)[:100]: ["Unknown field."] for name in unknown[:20]})
        if mistyped := _numbers_for_text(serializer.fields, data):
            raise serializers.ValidationError(mistyped)
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data


NOT_TEXT = "Not a valid string (a number is not text: quote it)."


def _numbers_for_text(fields: Mapping[str, serializers.Field], data: Mapping) -> dict[str, Any]:
    """A body's numbers where its serializer wants text, by field (nested too): DRF's ``CharField``
    takes a number as its digits, so ``{"name": 5}`` named an account "5" and ``{"account": 5}``
    bound whichever account has that name; a client sending a number there has a bug to see."""
    errors: dict[str, Any] = {}
    for name, field in fields.items():
        if name in data and not field.read_only and (problem := _number_for_text(field, data[name])):
            errors[name] = problem
    return errors


def _number_for_text(field: serializers.Field, value: Any) -> Any:
    if isinstance(field, serializers.CharField):
        return [NOT_TEXT] if isinstance(value, int | float) and not isinstance(value, bool) else None
    if isinstance(field, serializers.ListField | serializers.ListSerializer) and isinstance(value, list):
        for index, item in enumerate(value):
            if problem := _number_for_text(field.child, item):
                return {index: problem}
    elif isinstance(field, serializers.DictField) and isinstance(value, Mapping):
        for key, item in value.items():
            if problem := _number_for_text(field.child, item):
                return {str(key)[:100]: problem}
    elif isinstance(field, serializers.Serializer) and isinstance(value, Mapping):
        return _numbers_for_text(field.fields, value) or None
    return None


def one_or_404(rows: type[Model] | QuerySet, message: str, **lookup: Any) -> Any:
    """The one row ``lookup`` names, or a 404 saying what was looked for (``message``, e.g.
    ``f"No subscription named {name!r}."``), the lookup in its details: Django's own
    ``get_object_or_404`` answers "Not found." whatever was missing."""
    queryset = rows if isinstance(rows, QuerySet) else rows._default_manager.all()
    try:
        return queryset.get(**lookup)
    except queryset.model.DoesNotExist:
        details = {
            key.replace("__", "."): value
            if value is None or isinstance(value, str | int | float)
            else str(value)
            for key, value in lookup.items()  # a row given as a lookup is named by its str()
        }
        raise NotFound(message, details=details) from None


class ServiceView(APIView):
    """A service's API view: scope and policy are checked in ``initial()``, from declarations.

    ``service`` names the scopes (``<service>:read`` for safe methods, ``:write`` otherwise);
    ``required_scopes`` overrides them per method.  :meth:`resources` names the policy resources
    the call acts on, from the URL (and, for creations, the body); each is authorized for
    :meth:`policy_action`.  A view whose calls touch no resource keeps the default: the scope
    alone decides.
    """

    service: ClassVar[str] = ""

    def resources(self, request: Request, **kwargs: Any) -> Iterable[str]:
        """The policy resources (``<service>:<path>``) this call acts on."""
        return ()

    def policy_action(self, request: Request) -> str:
        return "read" if request.method in SAFE_METHODS else "write"

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        super().initial(request, *args, **kwargs)
        method = request.method.lower()
        if method == "options" or method not in self.http_method_names or not hasattr(self, method):
            return  # no handler reads anything: the answer is the view's metadata, or 405
        action = self.policy_action(request)
        for resource in self.resources(request, **kwargs):
            self.authorize(request, resource, action)

    def authorize(self, request: Request, resource: str, action: str) -> None:
        """403 ``policy_denied`` unless the policy lets the caller do ``action`` on ``resource``;
        403 ``insufficient_scope`` naming the scope when the caller lacks ``<service>:<action>``
        (a call whose action is not its method's, such as managing a subscription, which reads
        the stream, needs both scopes)."""
        try:
            decision = is_request_allowed(request, resource=resource, action=action)
        except PolicyError as exc:  # a resource built from input no rule can name
            raise Invalid(str(exc), code="invalid_resource", details={"resource": resource[:200]}) from exc
        if decision.allowed:
            return
        if decision.reason == "missing_scope":
            needed = f"{resource.partition(':')[0]}:{action}"
            raise Denied(f"This call needs the '{needed}' scope.", "insufficient_scope")
        raise Denied(f"Policy does not allow {action} on {resource}.", "policy_denied")

    def allows(self, request: Request, action: str) -> Callable[[str], bool]:
        """``resource -> bool`` for calls that act on many resources and skip the refused ones."""

        def allowed(resource: str) -> bool:
            try:
                return is_request_allowed(request, resource=resource, action=action).allowed
            except PolicyError:
                return False

        return allowed

    def paginate(
        self,
        queryset: Any,
        *,
        ordering: str = "-id",
        serializer: Any = None,
        render: Callable[[list[Any]], list[Any]] | None = None,
    ) -> Response:
        """One cursor page of ``queryset``, rendered by ``serializer`` (many) or ``render``."""
        paginator = CursorPagination()
        paginator.ordering = ordering
        page = paginator.paginate_queryset(queryset, self.request, view=self)
        if render is None:
            render = lambda items: serializer(items, many=True).data  # noqa: E731
        return paginator.get_paginated_response(render(page))


def _routes(patterns: list[Any], prefix: str = "") -> list[str]:
    routes: list[str] = []
    for pattern in patterns:
        if isinstance(pattern, URLResolver):
            routes += _routes(pattern.url_patterns, prefix + str(pattern.pattern))
        elif isinstance(pattern, URLPattern):
            routes.append(prefix + str(pattern.pattern))
    return routes


def service_routes(name: str) -> list[str]:
    """The routes of one service's API, e.g. ``["/api/v1/config/", ...]``, sorted."""
    for pattern in get_resolver().url_patterns:
        if isinstance(pattern, URLResolver) and pattern.namespace == name:
            return sorted("/" + route for route in _routes(pattern.url_patterns, str(pattern.pattern)))
    return []


class ServiceRootView(ServiceView):
    """The index of one service's API: what it is, whether it is built, its routes and websocket.

    ``websocket`` is the service's ``/ws/<name>/`` path when its app declares websocket routes,
    else null: an index never advertises a socket that is not served.
    """

    service = ""

    @extend_schema(
        responses=inline_serializer(
            "ServiceIndex",
            {
                "service": serializers.CharField(),
                "description": serializers.CharField(),
                "version": serializers.CharField(),
                "built": serializers.BooleanField(help_text="False while the service is a placeholder."),
                "routes": serializers.ListField(child=serializers.CharField()),
                "websocket": serializers.CharField(
                    allow_null=True, help_text="The service's websocket path, null if it serves none."
                ),
            },
        )
    )
    def get(self, request: Request) -> Response:
        info = service_by_name(self.service)
        return Response(
            {
                "service": info.name,
                "description": info.description,
                "version": VERSION,
                "built": info.built,
                "routes": service_routes(self.service),
                "websocket": info.websocket_path,
            }
        )
