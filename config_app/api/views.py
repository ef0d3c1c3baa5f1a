"""The config service's REST API: namespaces, resolution (with long-poll watch), layers, history."""

from __future__ import annotations

import time
from typing import Any

from django.conf import settings
from django.db import connection
from django.http import HttpResponse
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import status
from rest_framework.request import Request
from rest_framework.response import Response

from auth_app.access import actor, principal
from config_app import sealing, selectors, services
from config_app.api import serializers as io
from config_app.api.filters import RevisionFilter
from config_app.documents import diff, get_at, missing, parse_path
from config_app.errors import ConfigError, NotFound
from config_app.models import Namespace, Revision
from platformsite.api.filters import filter_parameters, filtered
from platformsite.api.schema import ERROR
from platformsite.api.validators import SLUG, parse_wait
from platformsite.api.views import ServiceView, validated
from platformsite.hotpath import etag_matches, not_modified

#: The namespace and environment grammar (hot-path patterns use it too).
NAME_PATTERN = SLUG.pattern
SECRETS_SCOPE = "config:secrets"


def can_see_secrets(request: Request) -> bool:
    """Holders of ``config:secrets`` (and ``admin``, which implies it) see secret values."""
    scopes = principal(request)[1]
    return SECRETS_SCOPE in scopes or "admin" in scopes


def can_read(request: Request) -> bool:
    """``write`` does not imply ``read``: a write's answer carries the layer's data only for readers."""
    scopes = principal(request)[1]
    return "config:read" in scopes or "admin" in scopes


def check_name(value: str, what: str) -> str:
    return SLUG.check(value, what)


def parse_int(raw: str | None, name: str) -> int | None:
    if raw is None or raw == "":
        return None
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name} must be an integer.", details={name: raw[:40]}) from None
    if value < 0:
        raise ConfigError(f"{name} must not be negative.", details={name: value})
    return value


class ConfigView(ServiceView):
    """Base of the config views: URL ``ns`` and ``env`` name the policy resource
    ``config:<ns>/<env>``, or ``config:<ns>/_namespace`` for the namespace itself."""

    service = "config"

    def resources(self, request: Request, ns: str | None = None, env: str | None = None, **kwargs: Any):
        if ns is None:
            return ()
        if not SLUG.matches(ns):
            raise NotFound(f"There is no namespace {ns[:80]!r}.", details={"namespace": ns[:80]})
        if env is None:
            return (f"config:{ns}/_namespace",)
        return (f"config:{ns}/{check_name(env, 'env')}",)

    def present(self, request: Request, data: Any) -> Any:
        return sealing.reveal(data) if can_see_secrets(request) else sealing.mask(data)

    def expected_revision(self, request: Request, body_value: int | None) -> int | None:
        """The revision the write expects: the body's ``expected_revision``, ``If-Match``'s, or
        both when they agree (the header was ignored when the body named one)."""
        header = self.if_match(request)
        if body_value is not None and header is not None and body_value != header:
            raise ConfigError(
                f"expected_revision {body_value} and If-Match {header} name different revisions.",
                code="conflicting_preconditions",
                details={"expected_revision": body_value, "if_match": header},
            )
        return body_value if body_value is not None else header

    @staticmethod
    def if_match(request: Request) -> int | None:
        """``If-Match``'s layer revision (``"3"``, the layer's ETag); None without one or for ``*``.
        A weak tag never matches (If-Match compares strongly) and a write expects one revision:
        both are 400 ``invalid_if_match`` rather than a condition silently read otherwise."""
        raw = request.headers.get("If-Match")
        if raw is None or raw.strip() == "*":
            return None
        value = raw.strip()
        if not (
            value.startswith('"') and value.endswith('"') and value[1:-1].isascii() and value[1:-1].isdigit()
        ):
            raise ConfigError(
                'If-Match must hold one layer revision as a strong tag, e.g. "3".',
                code="invalid_if_match",
                details={"if_match": raw[:40]},
            )
        return int(value[1:-1])

    def namespace(self, name: str) -> Namespace:
        if not SLUG.matches(name):
            raise NotFound(f"There is no namespace {name[:80]!r}.", details={"namespace": name[:80]})
        return selectors.namespace_get(name)

    def value_at(self, request: Request, data: Any, segments: tuple[str, ...]) -> Any:
        """The value at ``segments``, read into secret values (all masked unless the caller sees secrets)."""
        node = data
        for segment in segments:
            if sealing.is_envelope(node):
                if not can_see_secrets(request):
                    return sealing.MASK
                node = sealing.open_envelope(node)
            node = get_at(node, (segment,))
            if missing(node):
                return node
        return self.present(request, node)

    def revision_body(self, request: Request, revision: Revision, with_data: bool = True) -> dict[str, Any]:
        body = io.RevisionOutput(revision).data
        if with_data:
            body["data"] = self.present(request, revision.data)
        return body

    def written(self, request: Request, revision: Revision) -> Response:
        response = Response(self.revision_body(request, revision, with_data=can_read(request)))
        response["ETag"] = f'"{revision.number}"'
        return response


# --- Namespaces -----------------------------------------------------------------------------------


class NamespaceListView(ConfigView):
    def resources(self, request: Request, **kwargs: Any):
        body = request.data if request.method == "POST" else None
        name = body.get("name") if isinstance(body, dict) else None
        return (f"config:{name}/_namespace",) if SLUG.matches(name) else ()

    @extend_schema(responses=io.NamespaceOutput(many=True))
    def get(self, request: Request) -> Response:
        allowed = self.allows(request, "read")

        def visible(page: list[Namespace]) -> list[Any]:
            shown = [ns for ns in page if allowed(f"config:{ns.name}/_namespace")]
            return io.NamespaceOutput(shown, many=True).data

        return self.paginate(Namespace.objects.all(), ordering="name", render=visible)

    @extend_schema(request=io.NamespaceInput, responses={201: io.NamespaceOutput, 409: ERROR})
    def post(self, request: Request) -> Response:
        data = validated(io.NamespaceInput, request.data)
        namespace = services.namespace_create(**data)
        return Response(io.NamespaceOutput(namespace).data, status=status.HTTP_201_CREATED)


class NamespaceDetailView(ConfigView):
    @extend_schema(responses=io.NamespaceDetailOutput)
    def get(self, request: Request, ns: str) -> Response:
        namespace = self.namespace(ns)
        namespace.layer_heads = selectors.layers_of(namespace)
        return Response(io.NamespaceDetailOutput(namespace).data)

    @extend_schema(request=io.NamespaceUpdateInput, responses=io.NamespaceOutput)
    def patch(self, request: Request, ns: str) -> Response:
        self.namespace(ns)
        data = validated(io.NamespaceUpdateInput, request.data)
        namespace = services.namespace_update(
            name=ns,
            description=data.get("description"),
            json_schema=data.get("json_schema", ...),
            secret_paths=data.get("secret_paths"),
            author=actor(request),
            may_declassify=can_see_secrets(request),
        )
        return Response(io.NamespaceOutput(namespace).data)


# --- Resolution and watch -------------------------------------------------------------------------


class ResolveView(ConfigView):
    """The merged document global/default -> global/env -> ns/default -> ns/env, from the cache."""

    def resources(self, request: Request, ns: str, **kwargs: Any):
        return super().resources(request, ns=ns, env=request.query_params.get("env", "default"))

    @extend_schema(
        parameters=[
            OpenApiParameter("env", str, description="Environment (default: 'default')."),
            OpenApiParameter("path", str, description="Return only this sub-value (slash path)."),
            OpenApiParameter("wait", str, description="Long-poll: wait up to this long (30s, max 60s)."),
            OpenApiParameter("revision", int, description="Long-poll: return once the revision differs."),
        ],
        responses={200: io.ResolvedOutput, 304: None},
    )
    def get(self, request: Request, ns: str) -> HttpResponse:
        params = request.query_params
        env = params.get("env", "default")
        raw_path = params.get("path")
        segments = parse_path(raw_path) if raw_path is not None else None
        known = parse_int(params.get("revision"), "revision")  # read by a long poll; refused if unreadable
        resolved, changed = selectors.resolve(ns, env), True
        if "wait" in params:
            seconds = parse_wait(params["wait"], default=0, maximum=settings.CONFIG_MAX_WAIT_SECONDS)
            resolved, changed = self.wait(ns, env, resolved, seconds, known)
        # Revealed secrets are another representation than the masked one: another ETag.
        revealed = resolved.has_secrets and can_see_secrets(request)
        etag = resolved.etag_for(revealed)
        if not changed:  # a long poll that saw no change, with the ETag a 200 carries (RFC 9110 §15.4.5)
            return not_modified(etag)
        if segments is not None:
            data = self.value_at(request, resolved.data, segments)
            if missing(data):  # a 404 whatever the If-None-Match (RFC 9110 §13.2.1)
                raise NotFound(f"{ns}/{env} has no value at {raw_path!r}.", details={"path": raw_path})
        # A ?path= answer carries the document's revision, revisions and etag, so it changes
        # exactly when the document does: the document's ETag validates it too (RFC 9110 §8.8.1).
        if "wait" not in params and etag_matches(request.headers.get("If-None-Match", ""), etag):
            return not_modified(etag)
        if segments is None and not revealed:
            response = HttpResponse(resolved.masked_body, content_type="application/json")
        else:
            if segments is None:
                data = self.present(request, resolved.data)
            body = resolved.body(data, "/".join(segments) if segments is not None else None)
            response = Response(body)
        response["ETag"] = etag
        return response

    def wait(self, ns: str, env: str, resolved, seconds: float, known: int | None):
        """Poll the shared cache's generations until the resolved revision differs from ``known``:
        the document then and whether it did."""
        if known is None:
            known = resolved.revision
        deadline = time.monotonic() + seconds
        gens = resolved.gens
        if not connection.in_atomic_block:
            connection.close()  # a waiting watcher holds no database connection (pool slots are few)
        while resolved.revision == known:
            if time.monotonic() >= deadline:
                return resolved, False
            time.sleep(settings.CONFIG_WATCH_POLL_SECONDS)
            if selectors.generations(ns) != gens:
                resolved = selectors.resolve(ns, env, fresh=True)
                gens = resolved.gens
        return resolved, True


# --- Layers ---------------------------------------------------------------------------------------


class LayerListView(ConfigView):
    @extend_schema(responses=io.LayerListOutput, operation_id="config_layers_list")
    def get(self, request: Request, ns: str) -> Response:
        namespace = self.namespace(ns)
        heads = [layer.head for layer in selectors.layers_of(namespace)]
        return Response(io.LayerListOutput({"namespace": ns, "results": heads}).data)


class LayerView(ConfigView):
    @extend_schema(responses=io.RevisionDataOutput)
    def get(self, request: Request, ns: str, env: str) -> Response:
        namespace = self.namespace(ns)
        head = selectors.layer_head(namespace, env)
        if head is None:
            raise NotFound(f"{ns}/{env} has no revision yet.", details={"namespace": ns, "env": env})
        return self.written(request, head)

    @extend_schema(request=io.LayerInput, responses=io.RevisionDataOutput)
    def put(self, request: Request, ns: str, env: str) -> Response:
        self.namespace(ns)
        data = validated(io.LayerInput, request.data)
        revision = services.layer_set(
            namespace=ns,
            env=env,
            data=data["data"],
            author=actor(request),
            comment=data["comment"],
            source=data["source"],
            expected_revision=self.expected_revision(request, data["expected_revision"]),
        )
        return self.written(request, revision)


class ValueView(ConfigView):
    def dispatch(self, request, *args, **kwargs):
        """``values/db/port/`` is the path ``db/port``, as every other address of the API ends in
        ``/``; one slash only: ``values/db//`` is the path ``db/``, whose last key is empty (400)."""
        path = kwargs.get("path", "")
        kwargs["path"] = path[:-1] if path.endswith("/") else path
        return super().dispatch(request, *args, **kwargs)

    def prepare(self, request: Request, ns: str, env: str, path: str) -> Namespace:
        parse_path(path)  # 400 invalid_path before anything is looked up
        return self.namespace(ns)

    @extend_schema(responses=io.ValueOutput)
    def get(self, request: Request, ns: str, env: str, path: str) -> Response:
        namespace = self.prepare(request, ns, env, path)
        head = selectors.layer_head(namespace, env)
        value = self.value_at(request, head.data, parse_path(path)) if head is not None else None
        if head is None or missing(value):
            raise NotFound(f"{ns}/{env} has no value at {path!r}.", details={"path": path})
        body = {"namespace": ns, "env": env, "revision": head.number, "path": path, "value": value}
        return Response(io.ValueOutput(body).data)

    @extend_schema(request=io.ValueInput, responses=io.RevisionDataOutput)
    def put(self, request: Request, ns: str, env: str, path: str, merge: bool = False) -> Response:
        self.prepare(request, ns, env, path)
        data = validated(io.ValueInput, request.data)
        revision = services.value_set(
            namespace=ns,
            env=env,
            path=path,
            value=data["value"],
            merge=merge,
            author=actor(request),
            comment=data["comment"],
            source=data["source"],
            expected_revision=self.expected_revision(request, data["expected_revision"]),
        )
        return self.written(request, revision)

    @extend_schema(request=io.ValueInput, responses=io.RevisionDataOutput)
    def patch(self, request: Request, ns: str, env: str, path: str) -> Response:
        return self.put(request, ns, env, path, merge=True)

    @extend_schema(request=io.WriteInput, responses=io.RevisionDataOutput)
    def delete(self, request: Request, ns: str, env: str, path: str) -> Response:
        self.prepare(request, ns, env, path)
        data = validated(io.WriteInput, request.data if isinstance(request.data, dict) else {})
        revision = services.value_delete(
            namespace=ns,
            env=env,
            path=path,
            author=actor(request),
            comment=data["comment"],
            source=data["source"],
            expected_revision=self.expected_revision(request, data["expected_revision"]),
        )
        return self.written(request, revision)


# --- History --------------------------------------------------------------------------------------


class AuditView(ConfigView):
    """Every revision (who, when, what layer, comment, source), newest first; never values."""

    def resources(self, request: Request, ns: str | None = None, **kwargs: Any):
        ns = ns or request.query_params.get("namespace")
        return super().resources(request, ns=ns) if ns else ("config:_all",)

    @extend_schema(
        parameters=[
            OpenApiParameter("namespace", str, description="Only this namespace (global audit)."),
            *filter_parameters(RevisionFilter),
        ],
        responses=io.RevisionOutput(many=True),
    )
    def get(self, request: Request, ns: str | None = None) -> Response:
        also = ("namespace",) if ns is None else ()  # the global audit takes ?namespace=
        ns = ns or request.query_params.get("namespace")
        namespace = self.namespace(ns) if ns else None
        revisions = filtered(RevisionFilter, request, selectors.audit_log(namespace=namespace), also=also)
        return self.paginate(revisions, serializer=io.RevisionOutput)


class RevisionListView(ConfigView):
    @extend_schema(responses=io.RevisionOutput(many=True))
    def get(self, request: Request, ns: str, env: str) -> Response:
        namespace = self.namespace(ns)
        return self.paginate(selectors.audit_log(namespace=namespace, env=env), serializer=io.RevisionOutput)


class RevisionDetailView(ConfigView):
    @extend_schema(responses=io.RevisionDataOutput)
    def get(self, request: Request, ns: str, env: str, number: int) -> Response:
        namespace = self.namespace(ns)
        return self.written(request, selectors.revision_get(namespace, env, number))


class DiffView(ConfigView):
    """Paths added, removed and changed between two revisions of a layer (0: the empty layer)."""

    @extend_schema(
        parameters=[OpenApiParameter("from", int), OpenApiParameter("to", int)], responses=io.DiffOutput
    )
    def get(self, request: Request, ns: str, env: str) -> Response:
        namespace = self.namespace(ns)
        head = selectors.layer_head(namespace, env)
        to_number = parse_int(request.query_params.get("to"), "to")
        if to_number is None:
            to_number = head.number if head is not None else 0
        from_number = parse_int(request.query_params.get("from"), "from")
        if from_number is None:
            from_number = max(to_number - 1, 0)
        latest = head.number if head is not None else 0
        for name, number in (("to", to_number), ("from", from_number)):
            if not 0 <= number <= latest:  # named as asked, not as the revision before it
                details = {"namespace": ns, "env": env, "revision": number, "param": name}
                raise NotFound(
                    f"{ns}/{env} has no revision {number} (its latest is {latest}).", details=details
                )

        def data_of(number: int) -> Any:
            return {} if number == 0 else sealing.reveal(selectors.revision_get(namespace, env, number).data)

        changes = diff(data_of(from_number), data_of(to_number))
        if not can_see_secrets(request):
            changes = _mask_diff(changes, namespace.secret_paths)
        return Response({"namespace": ns, "env": env, "from": from_number, "to": to_number, **changes})


def _mask_diff(changes: dict[str, list], secret_paths: list[str]) -> dict[str, list]:
    def masked(path: str, value: Any) -> Any:
        if any(path == p or path.startswith(p + "/") for p in secret_paths):
            return sealing.MASK
        for p in secret_paths:
            if path and p.startswith(path + "/"):  # a secret inside this leaf (a list)
                value = _mask_below(value, tuple(p[len(path) + 1 :].split("/")))
        return value

    for kind in ("added", "removed", "changed"):
        for item in changes[kind]:
            for key in ("value", "from", "to"):
                if key in item:
                    item[key] = masked(item["path"], item[key])
    return changes


def _mask_below(value: Any, segments: tuple[str, ...]) -> Any:
    """A copy of ``value`` with the value at ``segments`` (if there) masked."""
    if not segments:
        return sealing.MASK
    head, rest = segments[0], segments[1:]
    if isinstance(value, dict) and head in value:
        return {**value, head: _mask_below(value[head], rest)}
    if isinstance(value, list) and head.isdigit() and int(head) < len(value):
        index = int(head)
        return [*value[:index], _mask_below(value[index], rest), *value[index + 1 :]]
    return value


class RollbackView(ConfigView):
    @extend_schema(request=io.RollbackInput, responses=io.RevisionDataOutput)
    def post(self, request: Request, ns: str, env: str) -> Response:
        self.namespace(ns)
        data = validated(io.RollbackInput, request.data)
        revision = services.layer_rollback(
            namespace=ns,
            env=env,
            to_revision=data["revision"],
            author=actor(request),
            comment=data["comment"],
            expected_revision=self.expected_revision(request, data["expected_revision"]),
        )
        return self.written(request, revision)
